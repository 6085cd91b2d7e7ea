"""Attempts from before 0019 get the fingerprint of the quiz they answered (explore22 F2).

0019 left them null, and a null fingerprint counts against every later version of the quiz: a student out of
attempts before the upgrade stayed out of them after the instructor rewrote the quiz, which docs/security.md says
hands out new ones. Here each such attempt takes the fingerprint of its quiz in the course's live version, which is
the quiz it answered when this runs together with 0019 (an upgrade from before it). Where 0019 ran earlier and the
quiz was rewritten since, the attempt counts against the quiz as it is, as it did. Attempts whose quiz is not in a
live version stored in PostgreSQL (a draft lesson, documents kept in MongoDB) keep their null, and its rule.

The fingerprint is computed as `domain.courses.quiz_fingerprint` computes it, copied here so that the migration stays
what it was if that function changes. Data only, in batches of one lesson's attempts; the downgrade leaves them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fingerprint(body: dict[str, Any]) -> str:
    questions = [
        {"prompt": q.get("prompt"), "options": q.get("options"), "answer": q.get("answer")}
        for q in body.get("questions") or []
    ]
    canonical = json.dumps(
        {"questions": questions, "pass_score": int(body.get("pass_score", 70))},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def upgrade() -> None:
    conn = op.get_bind()
    found = conn.execute(
        sa.text(
            "select distinct a.lesson_id, d.body from quiz_attempts a "
            "join enrollments e on e.id = a.enrollment_id "
            "join courses c on c.id = e.course_id "
            "join documents d on d.collection = 'course_versions' "
            "and d.id = c.id::text || '\\:v' || c.content_version::text "  # `\\:`: a colon, not a bind parameter
            "where a.quiz_fingerprint is null and c.content_version > 0"
        )
    ).all()
    for lesson_id, snapshot in found:
        doc = snapshot if isinstance(snapshot, dict) else json.loads(snapshot)
        lesson = next(
            (
                lsn
                for module in doc.get("modules") or []
                for lsn in module.get("lessons") or []
                if str(lsn.get("id")) == str(lesson_id) and lsn.get("type") == "quiz"
            ),
            None,
        )
        if lesson is None:
            continue
        conn.execute(
            sa.text(
                "update quiz_attempts set quiz_fingerprint = :fp where lesson_id = :lesson and quiz_fingerprint is null"
            ),
            {"fp": _fingerprint(lesson), "lesson": lesson_id},
        )


def downgrade() -> None:
    """Nothing to undo: 0019's downgrade drops the column."""
