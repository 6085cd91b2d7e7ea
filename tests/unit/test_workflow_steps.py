"""A failed step is recorded (`/ops/workflows`, the dashboard) under the name `GET /workflows/{id}` lists it by."""

from __future__ import annotations

from workflows.failures import step_name
from workflows.publishing.workflow import CLEANUP, STEPS


def test_every_publish_step_is_recorded_under_its_own_name() -> None:
    assert {spec.name: step_name(spec.activity) for spec in (*STEPS, CLEANUP)} == {
        spec.name: spec.name for spec in (*STEPS, CLEANUP)
    }
