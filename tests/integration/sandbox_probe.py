"""A sandboxed workflow for tests/integration/test_worker_sandbox.py: during its run it imports modules the way a
process hook (tracing, logging, metrics) does lazily from the workflow thread, and says what went wrong, if
anything, and whether the `smartcourse` it sees is the worker's own module or a copy the sandbox imported afresh."""

from __future__ import annotations

from temporalio import workflow

MARK = "_sandbox_probe_mark"
LATE = ("opentelemetry.metrics", "redis.asyncio.client")


@workflow.defn(name="SandboxProbe")
class SandboxProbe:
    @workflow.run
    async def run(self) -> dict[str, object]:
        errors = []
        for module in LATE:
            try:
                __import__(module)
            except Exception as exc:  # the sandbox's refusal, reported to the test
                errors.append(f"{module}: {type(exc).__name__}")
        import smartcourse.domain.workflows as names

        return {"shared": hasattr(names, MARK), "errors": errors}
