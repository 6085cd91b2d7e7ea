"""`models.iso`: every moment the API writes itself, as its response models write theirs (explore60 F8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pydantic import BaseModel

from smartcourse.models import iso


class _At(BaseModel):
    at: datetime


def test_a_moment_is_written_as_the_response_models_write_it() -> None:
    moment = datetime(2026, 12, 7, 8, 13, 25, 717527, tzinfo=UTC)
    assert iso(moment) == "2026-12-07T08:13:25.717527Z" == _At(at=moment).model_dump(mode="json")["at"]
    assert iso(moment.astimezone(timezone(timedelta(hours=2)))) == "2026-12-07T08:13:25.717527Z"
    assert iso(moment.replace(tzinfo=None)) == "2026-12-07T08:13:25.717527Z"
