"""The catalogue's filters, as `GET /courses` and `GET /search` both take them: one bound and one error each
(explore44 F6: 25 repeated `tags` were `validation_error`, 25 comma-separated `too_many_tags`; `category` was bounded
at 100 characters on one and 200 on the other)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, get_args

from fastapi import Query
from pydantic import AfterValidator

from smartcourse.errors import Invalid
from smartcourse.schemas import CATEGORY_CHARS, MAX_TAGS, CourseStatus, EnrollmentStatus
from smartcourse.services import operations

#: A text filter with something in it: not empty, not only spaces (which would list everything), no NUL.
FILLED = r"^[^\x00]*[^\s\x00][^\x00]*$"

CategoryFilter = Annotated[
    str | None,
    Query(max_length=CATEGORY_CHARS, pattern=r"^[^\x00]*$", description="a category, as courses have it"),
]
#: Repeated and/or comma-separated; counted once split and made distinct (`search.tag_filter`: more than `MAX_TAGS`
#: is 422 `too_many_tags` however they were sent).
TagsFilter = Annotated[
    list[str] | None,
    Query(
        json_schema_extra={"maxItems": MAX_TAGS},
        description=f"tags a course must all carry (any case): repeated or comma-separated, at most {MAX_TAGS} "
        "(else 422 `too_many_tags`)",
    ),
]


_STATUSES = get_args(EnrollmentStatus)
_COURSE_STATUSES = get_args(CourseStatus)

#: An account's enrollments by status: one, or several comma-separated or repeated (`status=pending,active`: "My
#: courses" without the dropped attempts in one paged request; explore78 F8).
StatusesFilter = Annotated[
    list[str] | None,
    Query(
        alias="status",
        description=f"one status or several, comma-separated or repeated: {', '.join(_STATUSES)}",
    ),
]
#: Courses by status, as `GET /courses` lists them to whoever sees more than the live ones (explore77 F10).
CourseStatusesFilter = Annotated[
    list[str] | None,
    Query(
        alias="status",
        description=f"one status or several, comma-separated or repeated: {', '.join(_COURSE_STATUSES)} (the public "
        "catalogue lists live courses only: its other statuses give an empty page)",
    ),
]


def _split(sent: list[str]) -> list[str]:
    """The values of a parameter sent repeated and/or comma-separated, blanks left out."""
    return [part.strip() for value in sent for part in value.split(",") if part.strip()]


def _named(sent: list[str] | None, allowed: tuple[str, ...], field: str = "status") -> frozenset[str] | None:
    """The values a repeated and/or comma-separated `status` (or `field`) names (None: any), or 422
    `validation_error` naming what is not one of `allowed`."""
    if not sent:
        return None
    named = set(_split(sent))
    if unknown := sorted(named - set(allowed)):
        message = f"{field} {', '.join(map(repr, unknown))} is not one of {', '.join(allowed)}"
        details = [{"field": f"query.{field}", "message": message, "type": "literal_error"}]
        raise Invalid(message, code="validation_error", details=details)
    return frozenset(named) or None


def enrollment_statuses(sent: list[str] | None) -> frozenset[str] | None:
    """The statuses `StatusesFilter` names (None: any)."""
    return _named(sent, _STATUSES)


def course_statuses(sent: list[str] | None) -> frozenset[str] | None:
    """The statuses `CourseStatusesFilter` names (None: any)."""
    return _named(sent, _COURSE_STATUSES)


USER_STATES = ("active", "disabled", "erased")
#: Accounts by state: one, or several comma-separated or repeated (explore81 F11: `state=active,erased` was refused
#: while the courses' `status` took several).
UserStatesFilter = Annotated[
    list[str] | None,
    Query(
        alias="state",
        description="active, disabled (not erased) or erased accounts only (explore77 F10): one state or several, "
        "comma-separated or repeated",
    ),
]


def user_states(sent: list[str] | None) -> frozenset[str] | None:
    """The states `UserStatesFilter` names (None: any)."""
    return _named(sent, USER_STATES, "state")


#: Enrollments in these courses: one id, or several comma-separated or repeated (explore79 F9: a repeated one kept the
#: last, while a repeated `status` meant both).
CourseIdsFilter = Annotated[
    list[str] | None,
    Query(
        alias="course_id",
        description="only the enrollments in this course (every attempt), or in any of several: comma-separated or "
        "repeated",
    ),
]


def course_ids(sent: list[str] | None) -> frozenset[uuid.UUID] | None:
    """The course ids `CourseIdsFilter` names (None: any), or 422 `validation_error` naming one that is no UUID."""
    if not sent:
        return None
    named = _split(sent)
    ids = set()
    for value in named:
        try:
            ids.add(uuid.UUID(value))
        except ValueError:
            message = f"course_id {value[:60]!r} is not a UUID"
            details = [{"field": "query.course_id", "message": message, "type": "uuid_parsing"}]
            raise Invalid(message, code="validation_error", details=details) from None
    return frozenset(ids) or None


def _ops_status(filters: tuple[str, ...], described: str) -> Any:
    """The `status` parameter of an `/ops/*` list: `all`, or several of the others comma-separated (the pattern the
    OpenAPI shows; a bad one is 422 `validation_error` on field `status`, from its `AfterValidator`)."""
    return Query(
        max_length=100,
        description=f"{described}, or all; comma-separated",
        json_schema_extra={"pattern": operations.status_pattern(filters)},
    )


WorkflowStatusFilter = Annotated[
    str,
    AfterValidator(operations.workflow_status_filter),
    _ops_status(
        operations.WORKFLOW_STATUS_FILTERS,
        "failed (failed and not resolved by a later success of its subject, or still retrying after a failure), "
        "resolved, retrying, running, completed, canceled",
    ),
]
TaskStatusFilter = Annotated[
    str,
    AfterValidator(operations.task_status_filter),
    _ops_status(
        operations.TASK_STATUS_FILTERS, "failed (out of retries and not resolved since), resolved, retrying, succeeded"
    ),
]
DeadLetterStatusFilter = Annotated[
    str,
    AfterValidator(operations.dead_letter_status_filter),
    _ops_status(operations.DEAD_LETTER_STATUS_FILTERS, "pending (neither replayed nor discarded), replayed, discarded"),
]
