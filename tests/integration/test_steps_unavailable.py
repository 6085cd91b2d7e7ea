"""A run whose steps no worker answers for (a worker down, restarting or busy) says so: `steps_unavailable`, beside
the engine's status (explore40 F6: `running`, `steps: []` and nothing more, after a 5 s wait, while the worker was
down)."""

from __future__ import annotations

import time
import uuid
from typing import Any


async def test_a_run_no_worker_answers_for_says_its_steps_are_unavailable(container: Any) -> None:
    from smartcourse.services import workflows

    client = await container.temporal()
    workflow_id = f"steps-unavailable-{uuid.uuid4().hex[:8]}"
    # On a task queue no worker polls: the engine knows the run, nobody can answer its query.
    handle = await client.start_workflow(
        "EnrollmentWorkflow", {}, id=workflow_id, task_queue=f"nobody-{uuid.uuid4().hex[:8]}"
    )
    try:
        described = await workflows.describe(container, workflow_id, ("set_up",))
        assert described.status == "running" and described.steps == []
        assert described.steps_unavailable == workflows.STEPS_UNAVAILABLE
        # An enrollment's read (3 s in all) keeps the status the engine answered within its budget.
        started = time.monotonic()
        read = await workflows.describe_or_unavailable(container, workflow_id, ("set_up",), budget=1.0)
        assert read == ("running", [], workflows.STEPS_UNAVAILABLE) and time.monotonic() - started < 3
        # So does a publish's read (`GET /workflows/{id}`: `describe` with a budget), which waited the adapter's 5 s.
        started = time.monotonic()
        bounded = await workflows.describe(container, workflow_id, ("set_up",), budget=1.0)
        assert bounded == ("running", [], workflows.STEPS_UNAVAILABLE) and time.monotonic() - started < 3
    finally:
        await handle.terminate("test over")
    done = await workflows.describe(container, workflow_id, ("set_up",))
    assert done.status == "terminated"
