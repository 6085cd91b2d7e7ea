"""CertificateWorkflow: issue (exactly one per enrollment), store the PDF, notify."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from smartcourse.domain import workflows as names
from workflows.steps import Steps

RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
STEP_NAMES = names.CERTIFICATE_STEPS


@dataclass
class CertificateInput:
    enrollment_id: str


@workflow.defn(name=names.CERTIFICATE)
class CertificateWorkflow:
    def __init__(self) -> None:
        self._steps = Steps(STEP_NAMES)

    @workflow.query(name="steps")
    def steps(self) -> list[dict[str, Any]]:
        return self._steps.items

    async def _step(self, index: int, activity: str, arg: Any) -> Any:
        self._steps.running(index)
        result = await workflow.execute_activity(
            activity, arg, start_to_close_timeout=timedelta(minutes=1), retry_policy=RETRY
        )
        self._steps.completed(index)
        return result

    @workflow.run
    async def run(self, inp: CertificateInput) -> dict[str, Any]:
        certificate_id: str = await self._step(0, "certificate.issue", inp.enrollment_id)
        await self._step(1, "certificate.render_pdf", certificate_id)
        await self._step(2, "certificate.notify", certificate_id)
        return {"certificate_id": certificate_id, "steps": self._steps.items}
