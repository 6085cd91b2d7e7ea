"""`event_contracts.validate_event`: the compiled fast path answers exactly as the jsonschema check it stands for."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from smartcourse.errors import Invalid
from smartcourse.event_contracts import all_contracts, validate_event


def _created(**data: Any) -> dict[str, Any]:
    base = {
        "enrollment_id": str(uuid.uuid4()),
        "student_id": str(uuid.uuid4()),
        "course_id": str(uuid.uuid4()),
        "status": "pending",
        "attempt": 1,
        "workflow_id": "enroll-x",
        "admitted_at": "2026-12-04T02:00:00+00:00",
    }
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "enrollment.created",
        "schema_version": 1,
        "aggregate_id": base["enrollment_id"],
        "occurred_at": "2026-12-04T02:00:00+00:00",
        "data": {**base, **data},
    }


@pytest.mark.parametrize(
    ("envelope", "ok"),
    [
        (_created(), True),
        (_created(status="waitlisted", admitted_at=None, workflow_id=None), True),
        (_created(attempt=0), False),  # minimum
        (_created(attempt=True), False),  # a bool is no integer, in both
        (_created(status="active"), False),  # enum
        ({**_created(), "extra": 1}, False),  # additionalProperties at the root
        ({k: v for k, v in _created().items() if k != "data"}, False),  # required
        (_created(attempt=uuid.uuid4()), False),  # not JSON at all: the full check decides
    ],
)
def test_the_fast_path_agrees_with_jsonschema(envelope: dict[str, Any], ok: bool) -> None:
    schema = all_contracts()["enrollment.created", 1]
    assert (not list(Draft202012Validator(schema).iter_errors(envelope))) is ok
    if ok:
        validate_event("enrollment.created", 1, envelope)
    else:
        with pytest.raises(Invalid) as refused:
            validate_event("enrollment.created", 1, envelope)
        assert refused.value.code == "event_contract_violation"
        assert "enrollment.created v1 breaks its contract at " in str(refused.value)
