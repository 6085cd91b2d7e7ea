"""Quiz attempts are counted per student and quiz, across the student's enrollments.

The limit (`QUIZ_MAX_ATTEMPTS`) has always been enforced across re-enrollments, but attempts were numbered per
enrollment, so after a drop and re-enroll the numbers (and `attempts_left`) disagreed with the rule. Now:

* `quiz_attempts.student_id` (the enrollment's student), backfilled;
* attempts renumbered per (student, quiz) in submission order (only a re-enrolled student's numbers change);
* the unique (enrollment, lesson, attempt) becomes unique (student, lesson, attempt): two attempts of a student on
  a quiz can never share a number, whichever enrollment they were made in; attempt numbers start at 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _renumber(partition: str) -> None:
    op.execute(
        f"""
        update quiz_attempts q set attempt = r.n
          from (select id, row_number() over (partition by {partition} order by submitted_at, attempt, id) as n
                  from quiz_attempts) r
         where r.id = q.id and q.attempt <> r.n
        """
    )


def upgrade() -> None:
    op.add_column("quiz_attempts", sa.Column("student_id", sa.UUID(), nullable=True))
    op.execute("update quiz_attempts q set student_id = e.student_id from enrollments e where e.id = q.enrollment_id")
    op.alter_column("quiz_attempts", "student_id", nullable=False)
    op.create_foreign_key("quiz_attempts_student_id_fkey", "quiz_attempts", "users", ["student_id"], ["id"])
    op.drop_constraint("uq_quiz_attempts_attempt", "quiz_attempts", type_="unique")
    _renumber("student_id, lesson_id")
    op.create_unique_constraint(
        "uq_quiz_attempts_student_attempt", "quiz_attempts", ["student_id", "lesson_id", "attempt"]
    )
    op.create_check_constraint("ck_quiz_attempts_attempt_positive", "quiz_attempts", "attempt >= 1")


def downgrade() -> None:
    op.drop_constraint("ck_quiz_attempts_attempt_positive", "quiz_attempts", type_="check")
    op.drop_constraint("uq_quiz_attempts_student_attempt", "quiz_attempts", type_="unique")
    _renumber("enrollment_id, lesson_id")
    op.create_unique_constraint("uq_quiz_attempts_attempt", "quiz_attempts", ["enrollment_id", "lesson_id", "attempt"])
    op.drop_constraint("quiz_attempts_student_id_fkey", "quiz_attempts", type_="foreignkey")
    op.drop_column("quiz_attempts", "student_id")
