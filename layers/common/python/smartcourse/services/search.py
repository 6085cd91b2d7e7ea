"""Content search over a course's live index version, and the catalogue search (metadata + content)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from smartcourse.ports import Hit, SearchMode
from smartcourse.security import Principal


@dataclass(frozen=True)
class Retrieval:
    """What one retrieval found: the live version it searched, the mode that ran, the hits best first."""

    course_id: uuid.UUID
    version: int
    mode: SearchMode
    hits: list[Hit]


async def retrieve(
    container: Any,
    *,
    principal: Principal | None,
    course_id: uuid.UUID,
    query: str,
    k: int = 8,
    mode: SearchMode = "hybrid",
) -> Retrieval:
    """Search the course's *live* index version (the one switched in with the publish that made it ready).

    Checks that `principal` may read the course's content (enrolled student, owner, admin): NotFound /
    Forbidden otherwise; Conflict `course_not_ready` before the first index is live."""
    raise NotImplementedError  # being built (issue: content + search)
