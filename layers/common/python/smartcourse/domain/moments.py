"""Moments read from a query (`since`, `updated_since`): in UTC, one without a zone read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from smartcourse.errors import Invalid


def in_utc(moment: datetime | None, *, name: str = "since", code: str = "invalid_since") -> datetime | None:
    """`moment` in UTC (one without a zone is UTC); a moment no calendar can hold is a clear error (422 `code`)."""
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise Invalid(f"{name} is out of range", code=code) from exc
