"""Domain events: past-tense facts, each with a versioned contract in events/schemas/."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Kafka topic per aggregate: events of one aggregate keep their order (key = aggregate id).
TOPICS = {
    "user": "smartcourse.users",
    "course": "smartcourse.courses",
    "enrollment": "smartcourse.enrollments",
    "waitlist": "smartcourse.enrollments",
    "progress": "smartcourse.progress",
    "certificate": "smartcourse.certificates",
    "analytics": "smartcourse.analytics",
    "ai": "smartcourse.ai",
}


@dataclass(frozen=True)
class DomainEvent:
    """`type` is `<aggregate>.<verb-past>`, e.g. `course.published`."""

    type: str
    aggregate_id: str
    data: dict[str, Any]
    version: int = 1
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def topic(self) -> str:
        return TOPICS[self.type.split(".", 1)[0]]

    def envelope(self) -> dict[str, Any]:
        """The wire form: what the outbox stores, Kafka carries and consumers receive."""
        return {
            "event_id": str(self.id),
            "event_type": self.type,
            "schema_version": self.version,
            "aggregate_id": self.aggregate_id,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }
