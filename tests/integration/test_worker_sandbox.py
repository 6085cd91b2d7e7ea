"""The worker's sandbox for publishing and certificate runs (workflows/worker.py: `workflow_runner`): modules a run
imports from the process's hooks are the worker's own, not re-imported in each run (with a warning, or refused)."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import smartcourse.domain.workflows as names
from tests.integration.sandbox_probe import MARK, SandboxProbe
from workflows.worker import workflow_runner

LATE_IMPORT = "imported after initial workflow load"


async def _probe(settings: Any, runner: SandboxedWorkflowRunner) -> tuple[dict[str, Any], list[str]]:
    temporal = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with Worker(temporal, task_queue=queue, workflows=[SandboxProbe], workflow_runner=runner):
            run = temporal.execute_workflow("SandboxProbe", id=f"sandbox-probe-{uuid.uuid4()}", task_queue=queue)
            result: dict[str, Any] = await asyncio.wait_for(run, 60)
    return result, [str(w.message) for w in caught if LATE_IMPORT in str(w.message)]


@pytest.fixture
def marked() -> Any:
    setattr(names, MARK, True)
    yield
    delattr(names, MARK)


async def test_a_run_uses_the_workers_modules(settings: Any, marked: Any) -> None:
    result, late = await _probe(settings, workflow_runner())
    assert result == {"shared": True, "errors": []}
    assert late == []


async def test_the_default_sandbox_imports_them_afresh_or_refuses_them(settings: Any, marked: Any) -> None:
    """What the worker's runner avoids (and proof that the probe can tell)."""
    result, _ = await _probe(settings, SandboxedWorkflowRunner())
    assert result["shared"] is False
    assert result["errors"] == [
        "opentelemetry.metrics: RestrictedWorkflowAccessError",
        "redis.asyncio.client: RestrictedWorkflowAccessError",
    ]
