"""The enums the OpenAPI schema declares are the values the platform stores and answers."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any, get_args

import pytest
from temporalio.client import WorkflowExecutionStatus

from smartcourse import models, schemas
from smartcourse.assistant import schemas as assistant_schemas

LAYER = Path(schemas.__file__).resolve().parent


def _checked(table: Any, name: str) -> set[str]:
    """The values a `<column> in ('a','b')` CHECK constraint allows."""
    for constraint in table.constraints:
        if constraint.name == name:
            return set(re.findall(r"'([^']*)'", str(constraint.sqltext)))
    raise AssertionError(f"no constraint {name} on {table.name}")


@pytest.mark.parametrize(
    ("vocabulary", "table", "constraint"),
    [
        (schemas.Role, models.User.__table__, "ck_users_role"),
        (schemas.CourseStatus, models.Course.__table__, "ck_courses_status"),
        (schemas.IndexStatus, models.Course.__table__, "ck_courses_index_status"),
        (schemas.LessonType, models.Lesson.__table__, "ck_lessons_type"),
        (schemas.SourceType, models.ContentChunk.__table__, "ck_content_chunks_source_type"),
        (schemas.EnrollmentStatus, models.Enrollment.__table__, "ck_enrollments_status"),
        (schemas.NotificationKind, models.Notification.__table__, "ck_notifications_kind"),
        (assistant_schemas.InteractionKind, models.AiInteraction.__table__, "ck_ai_interactions_kind"),
        (assistant_schemas.InteractionOutcome, models.AiInteraction.__table__, "ck_ai_interactions_outcome"),
    ],
)
def test_a_stored_vocabulary_is_the_databases(vocabulary: Any, table: Any, constraint: str) -> None:
    assert set(get_args(vocabulary)) == _checked(table, constraint)


def test_every_workflow_status_temporal_can_report_is_declared() -> None:
    reported = {s.name.lower() for s in WorkflowExecutionStatus} | {"not_started", "unavailable", "skipped"}
    assert reported == set(get_args(schemas.WorkflowRunStatus))


def test_every_notification_kind_the_code_creates_is_declared() -> None:
    created: set[str] = set()
    for path in (LAYER / "services").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "create_notification",
            ):
                created |= {
                    k.value.value for k in node.keywords if k.arg == "kind" and isinstance(k.value, ast.Constant)
                }
    # Written by SQL in services/enrollment.py: the enrollment set-up's welcome, the waitlist statement's notice.
    for kind in ("enrollment.welcome", "waitlist.joined"):
        created.add(kind)
        assert kind in (LAYER / "services" / "enrollment.py").read_text()
    assert len(created) >= 4 and created == set(get_args(schemas.NotificationKind))


def test_the_openapi_schema_declares_the_enums_and_describes_every_operation() -> None:
    from smartcourse.api.local import build_local_app

    spec = build_local_app().openapi()
    components = spec["components"]["schemas"]
    assert components["EnrollmentPublic"]["properties"]["status"]["enum"] == list(get_args(schemas.EnrollmentStatus))
    assert components["WorkflowStatus"]["properties"]["kind"]["enum"] == list(get_args(schemas.WorkflowKind))
    assert components["NotificationPublic"]["properties"]["kind"]["enum"] == list(get_args(schemas.NotificationKind))
    undescribed = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if not operation.get("description")
    ]
    assert undescribed == []
    enroll = spec["paths"]["/enrollments"]["post"]["description"]
    assert enroll.startswith("Enroll the calling student") and "POST /enrollments" not in enroll


def test_every_workflow_kind_is_declared() -> None:
    from smartcourse.services import operations

    assert set(operations.KINDS.values()) == set(get_args(schemas.WorkflowKind))
