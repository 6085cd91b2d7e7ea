"""Recommendations from what learners do: similar courses, a student's next courses, and what to revisit.

Signals (docs/recommendations.md explains the blend and its weights):

* content: a course's embedding is the normalised mean of its live chunks' vectors (from the embedding cache),
  computed when the course goes live (`course.published`) or lazily on first read; its nearest live courses
  (cosine) are kept in `course_neighbours`, refreshed on publish and by `refresh_all_neighbours`;
* co-enrollment: `course_pairs` counts learners admitted to / completed both courses, kept by this module's
  consumer (each pair is counted once, by the later of the two events, so replays and reorderings agree);
* popularity: `course_popularity` (admissions, completions), by the same consumer;
* the prerequisite graph, read from `course_prerequisites`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Integer, and_, any_, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.adapters.embedders import vector_from_bytes, vector_to_bytes
from smartcourse.assistant import evidence
from smartcourse.db import arrays, insert_from_arrays
from smartcourse.domain import courses as course_rules
from smartcourse.errors import Conflict, Forbidden, NotFound
from smartcourse.event_consumer import Consumer, deferred
from smartcourse.models import (
    AiInteraction,
    Certificate,
    ContentChunk,
    Course,
    CourseEmbedding,
    CourseNeighbour,
    CoursePair,
    CoursePopularity,
    CoursePrerequisite,
    EmbeddingCache,
    Enrollment,
    LessonProgress,
    QuizAttempt,
    iso,
)
from smartcourse.schemas import (
    CourseSummary,
    EnrollmentReview,
    RecommendationList,
    RecommendationReason,
    RecommendedCourse,
    ReviewItem,
    ReviewSection,
)
from smartcourse.security import Principal
from smartcourse.services.learner_view import published_lessons
from smartcourse.services.progress import counts_against
from smartcourse.services.search import retrieve_version

log = logging.getLogger(__name__)

# --- the blend (docs/recommendations.md) ----------------------------------------------------------
W_NEXT = 2.0  # a course the learner just became eligible for (a prerequisite completed) ranks first
W_CO = 1.0  # co-enrollment strength n / (n + CO_HALF): 5 shared learners = 0.5
W_CONTENT = 1.0  # content similarity above SIM_FLOOR, rescaled to [0, 1]
W_POPULAR = 0.3  # log-scaled admissions: breaks ties, and is the whole answer for a brand-new student
W_SIMILAR_NEXT = 0.6  # /similar: "this course is a prerequisite of it"
CO_HALF = 5.0
CO_ADMITTED_WEIGHT = 0.5  # an admission together counts half a completion together
SIM_FLOOR = 0.1  # MiniLM cosine between unrelated course texts sits around 0.0-0.1
SEED_WEIGHTS = {"completed": 1.0, "active": 0.6, "pending": 0.6, "waitlisted": 0.3}
NEIGHBOURS = 20  # content neighbours kept per course
POPULAR_POOL = 50
PAIRS_PER_SEED = 50  # co-enrollment partners read per seed course
MAX_K = 50
LIVE_STATES = ("waitlisted", "pending", "active", "completed")
CACHE_TTL_SECONDS = 120
# Review: a lesson finished faster than this share of its reading time (200 words a minute) was rushed.
RUSH_SHARE = 0.25
RUSH_MIN_SECONDS = 15.0
MAX_REVIEW_SEARCHES = 8
SECTIONS_PER_ITEM = 3


def _ready(course: Any) -> bool:
    return course_rules.is_live(course.status, course.content_version) and course.index_version > 0


def _ready_clause() -> Any:
    return and_(Course.live(), Course.index_version > 0)


def co_strength(n: float) -> float:
    return n / (n + CO_HALF) if n > 0 else 0.0


def content_signal(similarity: float) -> float:
    return max(0.0, (similarity - SIM_FLOOR) / (1.0 - SIM_FLOOR))


def popularity_signal(admissions: int, most: int) -> float:
    return math.log1p(admissions) / math.log1p(most) if most > 0 and admissions > 0 else 0.0


@dataclass
class Candidate:
    """Signals gathered for one candidate course."""

    next_step: float = 0.0
    content: float = 0.0
    co: float = 0.0
    popular: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)

    def contributions(self, w_next: float = W_NEXT) -> dict[RecommendationReason, float]:
        return {
            "next_step": w_next * self.next_step,
            "co_enrolled": W_CO * co_strength(self.co),
            "similar_content": W_CONTENT * self.content,
            "popular": W_POPULAR * self.popular,
        }


def blend(c: Candidate, *, w_next: float = W_NEXT) -> tuple[float, RecommendationReason, dict[str, float]]:
    """(score, reason = the strongest contribution, each contribution); ties go in the order listed."""
    parts = c.contributions(w_next)
    reason = max(parts, key=lambda r: parts[r])  # dicts keep order: next_step wins a tie
    return sum(parts.values()), reason, {k: round(v, 6) for k, v in parts.items() if v > 0}


# --- the consumer: signals kept from events, once per event ----------------------------------------


async def _bump_popularity(session: AsyncSession, course_id: uuid.UUID, *, admissions: int, completions: int) -> None:
    """Add to a course's popularity; inside `Consumer.together`, only added up (written by `_flush`)."""
    pending = deferred(session)
    totals: dict[uuid.UUID, list[int]] = {} if pending is None else pending.setdefault("popularity", {})
    total = totals.setdefault(course_id, [0, 0])
    total[0] += admissions
    total[1] += completions
    if pending is None:
        await _write_popularity(session, totals)


# The consumer's batched writes: one statement of one shape each, built once (see `db.insert_from_arrays`).
_POPULARITY = CoursePopularity.__table__
_POPULARITY_COLUMNS = (("course_id", PG_UUID(as_uuid=True)), ("admissions", Integer()), ("completions", Integer()))
_popularity = insert_from_arrays(_POPULARITY, _POPULARITY_COLUMNS)
_WRITE_POPULARITY = _popularity.on_conflict_do_update(
    index_elements=[_POPULARITY.c.course_id],
    set_={
        "admissions": _POPULARITY.c.admissions + _popularity.excluded.admissions,
        "completions": _POPULARITY.c.completions + _popularity.excluded.completions,
    },
)
_PAIRS = CoursePair.__table__


def _pairs_statement(column: str) -> tuple[Any, Any]:
    columns = (("course_id", PG_UUID(as_uuid=True)), ("other_id", PG_UUID(as_uuid=True)), (column, Integer()))
    stmt = insert_from_arrays(_PAIRS, columns)
    upsert = stmt.on_conflict_do_update(
        index_elements=[_PAIRS.c.course_id, _PAIRS.c.other_id],
        set_={column: _PAIRS.c[column] + stmt.excluded[column]},
    )
    return columns, upsert


_WRITE_PAIRS = {column: _pairs_statement(column) for column in ("co_admitted", "co_completed")}


async def _write_popularity(session: AsyncSession, totals: dict[uuid.UUID, list[int]]) -> None:
    if not totals:
        return
    rows = [(c, a, d) for c, (a, d) in sorted(totals.items())]
    await session.execute(_WRITE_POPULARITY, arrays(_POPULARITY_COLUMNS, rows))


async def _bump_pairs(session: AsyncSession, course_id: uuid.UUID, others: Iterable[uuid.UUID], column: str) -> None:
    """Count each (course, other) pair both ways; inside `Consumer.together`, only added up (written by `_flush`)."""
    pending = deferred(session)
    totals: dict[tuple[uuid.UUID, uuid.UUID], int] = (
        {} if pending is None else pending.setdefault(f"pairs.{column}", {})
    )
    for other in others:
        for pair in ((course_id, other), (other, course_id)):
            totals[pair] = totals.get(pair, 0) + 1
    if pending is None:
        await _write_pairs(session, totals, column)


async def _write_pairs(session: AsyncSession, totals: dict[tuple[uuid.UUID, uuid.UUID], int], column: str) -> None:
    if not totals:
        return
    columns, statement = _WRITE_PAIRS[column]
    await session.execute(statement, arrays(columns, [(a, b, n) for (a, b), n in sorted(totals.items())]))


async def _flush(session: AsyncSession, pending: dict[str, Any]) -> None:
    """What the effects of a `Consumer.together` block added up: one statement per table (rows in key order)."""
    await _write_popularity(session, pending.get("popularity") or {})
    await _pairs_of_the_block(session, pending.get("reached") or [])
    for column in ("co_admitted", "co_completed"):
        await _write_pairs(session, pending.get(f"pairs.{column}") or {}, column)


@dataclass(frozen=True)
class _Reached:
    """An enrollment that reached its course (admitted, or completed) at `at`: its pairs are to be counted."""

    enrollment_id: uuid.UUID
    student_id: uuid.UUID
    course_id: uuid.UUID
    at: datetime
    completed: bool


def _reached(data: dict[str, Any], *, completed: bool) -> _Reached:
    at = datetime.fromisoformat(data["completed_at"] if completed else data["admitted_at"])
    return _Reached(
        enrollment_id=uuid.UUID(data["enrollment_id"]),
        student_id=uuid.UUID(data["student_id"]),
        course_id=uuid.UUID(data["course_id"]),
        at=at if at.tzinfo else at.replace(tzinfo=UTC),  # compared with the database's timestamptz values
        completed=completed,
    )


async def _count_pairs(session: AsyncSession, reached: _Reached) -> None:
    """The pairs of one enrollment that reached its course; inside `Consumer.together`, left for `_flush`, which
    reads the students of the whole block in one query (`_pairs_of_the_block`)."""
    pending = deferred(session)
    if pending is not None:
        pending.setdefault("reached", []).append(reached)
        return
    at_column = Enrollment.completed_at if reached.completed else Enrollment.admitted_at
    rows = await session.execute(
        select(Enrollment.id, Enrollment.course_id, at_column, Enrollment.status).where(
            Enrollment.student_id == reached.student_id, at_column.is_not(None)
        )
    )
    await _bump_earlier(session, reached, [tuple(row) for row in rows])


#: The enrollments of a block's students: one statement text whatever their number (an array, not an IN list).
_ENROLLMENTS_OF_STUDENTS = select(
    Enrollment.student_id,
    Enrollment.id,
    Enrollment.course_id,
    Enrollment.admitted_at,
    Enrollment.completed_at,
    Enrollment.status,
).where(Enrollment.student_id == any_(bindparam("students", type_=ARRAY(PG_UUID(as_uuid=True)))))


async def _pairs_of_the_block(session: AsyncSession, block: list[_Reached]) -> None:
    if not block:
        return
    rows = await session.execute(_ENROLLMENTS_OF_STUDENTS, {"students": sorted({r.student_id for r in block})})
    by_student: dict[uuid.UUID, list[tuple[Any, ...]]] = {}
    for student_id, *rest in rows:
        by_student.setdefault(student_id, []).append(tuple(rest))
    for reached in block:
        mine = by_student.get(reached.student_id, [])
        at_index = 3 if reached.completed else 2  # (id, course_id, admitted_at, completed_at, status)
        await _bump_earlier(
            session, reached, [(r[0], r[1], r[at_index], r[4]) for r in mine if r[at_index] is not None]
        )


async def _bump_earlier(session: AsyncSession, reached: _Reached, rows: list[tuple[Any, ...]]) -> None:
    """Count the pairs of `reached` with the student's other courses reached before it; `rows` are the student's
    enrollments that reached theirs, as (id, course_id, at, status).

    Ordering by the enrollment's own timestamps (ties by id) makes each pair counted exactly once, by whichever
    of its two events is processed for the later enrollment, whatever order the events arrive in. None is counted
    when this is not the student's first time reaching this course (a re-enrollment: its pairs were counted)."""
    earlier = {
        course_id
        for enrollment_id, course_id, at, status in rows
        if enrollment_id != reached.enrollment_id
        and (at < reached.at or (at == reached.at and enrollment_id < reached.enrollment_id))
        and (not reached.completed or status == "completed")
    }
    if reached.course_id in earlier:
        return
    others = sorted(earlier)
    if others:
        await _bump_pairs(session, reached.course_id, others, "co_completed" if reached.completed else "co_admitted")


async def _admitted(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    if not data.get("admitted_at"):  # waitlisted: not admitted yet
        return
    await _bump_popularity(session, uuid.UUID(data["course_id"]), admissions=1, completions=0)
    await _count_pairs(session, _reached(data, completed=False))


async def _completed(session: AsyncSession, env: dict[str, Any]) -> None:
    data = env["data"]
    await _bump_popularity(session, uuid.UUID(data["course_id"]), admissions=0, completions=1)
    await _count_pairs(session, _reached(data, completed=True))


async def _published(session: AsyncSession, env: dict[str, Any]) -> None:
    await refresh_course(session, uuid.UUID(env["data"]["course_id"]))


async def _restored(session: AsyncSession, env: dict[str, Any]) -> None:
    if env["data"]["is_live"]:  # live again: back among its neighbours' (the archive left it out at the next repair)
        await refresh_course(session, uuid.UUID(env["data"]["course_id"]))


CONSUMER = Consumer(
    name="recommendations",
    flush=_flush,
    effects={
        "course.published": _published,
        "course.restored": _restored,
        "enrollment.created": _admitted,
        "waitlist.promoted": _admitted,
        "enrollment.completed": _completed,
    },
)


# --- content: course embeddings and neighbours ------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else v


#: The models of the embedding cache, read by skipping from one to the next along its primary key (a few index
#: probes, however many vectors each has).
_CACHED_MODELS = text(
    "with recursive m(model) as ("
    " (select model from embedding_cache order by model limit 1)"
    " union all"
    " select (select e.model from embedding_cache e where e.model > m.model order by e.model limit 1)"
    " from m where m.model is not null"
    ") select model from m where model is not null"
)


async def _cached_models(session: AsyncSession) -> list[str]:
    return [str(m) for m in (await session.scalars(_CACHED_MODELS)).all()]


async def refresh_course(session: AsyncSession, course_id: uuid.UUID, *, model: str | None = None) -> bool:
    """Store the course's embedding (mean of its live chunks' cached vectors, normalised) and its neighbours.

    `model` picks the embedding model; by default the one that embedded most of the live chunks. False when
    the course has no live index or no cached vector yet."""
    course = await session.get(Course, course_id)
    if course is None or course.index_version <= 0:
        return False
    by_model: dict[str, list[list[float]]] = defaultdict(list)
    # One model at a time, so that each chunk's vector is a primary-key lookup (model, content_hash): joined on the
    # hash alone, a plan without fresh statistics scanned the whole key per chunk (explore57 F2: 74 s for a course of
    # 43,000 chunks, which held the event bus).
    for m in [model] if model is not None else await _cached_models(session):
        stmt = (
            select(EmbeddingCache.vector)
            .join(
                ContentChunk,
                and_(EmbeddingCache.model == m, ContentChunk.content_hash == EmbeddingCache.content_hash),
            )
            .where(ContentChunk.course_id == course_id, ContentChunk.version == course.index_version)
        )
        by_model[m] = [vector_from_bytes(vec) for vec in (await session.scalars(stmt)).all()]
    by_model = {m: vectors for m, vectors in by_model.items() if vectors}
    if not by_model:
        return False
    chosen = max(by_model, key=lambda m: len(by_model[m]))
    mean = _unit(np.asarray(by_model[chosen], dtype=np.float32).mean(axis=0))
    values = {
        "course_id": course_id,
        "model": chosen,
        "version": course.index_version,
        "chunks": len(by_model[chosen]),
        "vector": vector_to_bytes(mean.tolist()),
    }
    await session.execute(
        insert(CourseEmbedding)
        .values(**values)
        .on_conflict_do_update(
            index_elements=[CourseEmbedding.course_id, CourseEmbedding.model],
            set_={**{k: values[k] for k in ("version", "chunks", "vector")}, "updated_at": func.now()},
        )
    )
    await _refresh_neighbours_of(session, course_id, chosen, mean)
    return True


async def _live_embeddings(session: AsyncSession, model: str) -> tuple[list[uuid.UUID], np.ndarray]:
    rows = (
        await session.execute(
            select(CourseEmbedding.course_id, CourseEmbedding.vector)
            .join(Course, Course.id == CourseEmbedding.course_id)
            .where(CourseEmbedding.model == model, CourseEmbedding.version == Course.index_version, _ready_clause())
        )
    ).all()
    ids = [r[0] for r in rows]
    matrix = np.asarray([vector_from_bytes(r[1]) for r in rows], dtype=np.float32) if rows else np.zeros((0, 1))
    return ids, matrix


async def _refresh_neighbours_of(session: AsyncSession, course_id: uuid.UUID, model: str, vector: np.ndarray) -> None:
    """Replace the course's neighbour list, and enter it into its neighbours' lists (each trimmed to NEIGHBOURS)."""
    ids, matrix = await _live_embeddings(session, model)
    pairs = [(cid, float(s)) for cid, s in zip(ids, (matrix @ vector) if ids else [], strict=True) if cid != course_id]
    top = sorted(pairs, key=lambda p: -p[1])[:NEIGHBOURS]
    await session.execute(delete(CourseNeighbour).where(CourseNeighbour.course_id == course_id))
    if not top:
        return
    rows = [{"course_id": course_id, "neighbour_id": n, "similarity": s} for n, s in top]
    rows += [{"course_id": n, "neighbour_id": course_id, "similarity": s} for n, s in top]
    stmt = insert(CourseNeighbour).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CourseNeighbour.course_id, CourseNeighbour.neighbour_id],
            set_={"similarity": stmt.excluded.similarity, "updated_at": func.now()},
        )
    )
    await session.execute(
        text(
            "DELETE FROM course_neighbours n USING (SELECT course_id, neighbour_id, row_number() OVER "
            "(PARTITION BY course_id ORDER BY similarity DESC) AS r FROM course_neighbours "
            "WHERE course_id = ANY(:ids)) t "
            "WHERE n.course_id = t.course_id AND n.neighbour_id = t.neighbour_id AND t.r > :keep"
        ),
        {"ids": [n for n, _ in top], "keep": NEIGHBOURS},
    )


async def refresh_all_neighbours(session: AsyncSession, model: str) -> int:
    """Recompute every live course's neighbour list from the stored embeddings (the periodic repair:
    drops archived courses, picks up any change a missed event left). Returns the number of courses."""
    ids, matrix = await _live_embeddings(session, model)
    await session.execute(delete(CourseNeighbour))
    if len(ids) < 2:
        return len(ids)
    sims = matrix @ matrix.T
    np.fill_diagonal(sims, -np.inf)
    rows = []
    for i, cid in enumerate(ids):
        for j in np.argsort(-sims[i])[: min(NEIGHBOURS, len(ids) - 1)]:
            rows.append({"course_id": cid, "neighbour_id": ids[int(j)], "similarity": float(sims[i, int(j)])})
    for start in range(0, len(rows), 5000):
        await session.execute(insert(CourseNeighbour).values(rows[start : start + 5000]))
    return len(ids)


async def _ensure_embedding(container: Any, course: Course) -> None:
    """The lazy path: a course that went live before this consumer existed (or whose event is still queued)."""
    model = container.embedder().name
    async with container.uow() as uow:
        found = await uow.session.scalar(
            select(CourseEmbedding.version).where(
                CourseEmbedding.course_id == course.id, CourseEmbedding.model == model
            )
        )
        if found == course.index_version:
            return
        if await refresh_course(uow.session, course.id, model=model):
            await uow.commit()


# --- reading: candidates, eligibility, the blend ----------------------------------------------------


async def _courses(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Course]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(Course).where(Course.id.in_(wanted), _ready_clause()))
    return {c.id: c for c in rows}


def _ranked(
    cands: dict[uuid.UUID, Candidate], courses: dict[uuid.UUID, Course], k: int, *, w_next: float = W_NEXT
) -> list[RecommendedCourse]:
    scored = []
    for cid, cand in cands.items():
        course = courses.get(cid)
        if course is None:
            continue
        score, reason, parts = blend(cand, w_next=w_next)
        if score <= 0:
            continue
        scored.append((score, course, reason, parts))
    scored.sort(key=lambda t: (-t[0], t[1].title, str(t[1].id)))
    return [
        RecommendedCourse(course=CourseSummary.model_validate(c), reason=r, score=round(s, 6), signals=p)
        for s, c, r, p in scored[:k]
    ]


async def similar(container: Any, *, course_id: uuid.UUID, k: int) -> RecommendationList:
    """`GET /courses/{id}/similar`: live courses near this one by content, co-enrollment and the prerequisite graph."""
    k = max(1, min(k, MAX_K))
    async with container.uow() as uow:
        course = await uow.session.get(Course, course_id)
        if course is None or not _ready(course):
            raise NotFound("course not found", code="course_not_found")
    await _ensure_embedding(container, course)
    async with container.uow() as uow:
        s = uow.session
        cands: dict[uuid.UUID, Candidate] = defaultdict(Candidate)
        for nid, sim in (
            await s.execute(
                select(CourseNeighbour.neighbour_id, CourseNeighbour.similarity).where(
                    CourseNeighbour.course_id == course_id
                )
            )
        ).all():
            cands[nid].content = content_signal(sim)
        for oid, done, admitted in (
            await s.execute(
                select(CoursePair.other_id, CoursePair.co_completed, CoursePair.co_admitted).where(
                    CoursePair.course_id == course_id
                )
            )
        ).all():
            cands[oid].co = done + CO_ADMITTED_WEIGHT * admitted
        for (nid,) in (
            await s.execute(select(CoursePrerequisite.course_id).where(CoursePrerequisite.prerequisite_id == course_id))
        ).all():
            cands[nid].next_step = 1.0
        cands.pop(course_id, None)
        courses = await _courses(s, cands)
        return RecommendationList(items=_ranked(cands, courses, k, w_next=W_SIMILAR_NEXT))


async def _student_fingerprint(session: AsyncSession, student_id: uuid.UUID) -> str:
    """Changes whenever one of the student's enrollments is created or changes state, or a certificate of theirs is
    revoked (its completion then opens no next course; cheap: two index scans)."""
    revoked = select(func.max(Certificate.revoked_at)).where(Certificate.student_id == student_id).scalar_subquery()
    row = (
        await session.execute(
            select(func.count(), func.max(Enrollment.updated_at), func.max(Enrollment.completed_at), revoked).where(
                Enrollment.student_id == student_id
            )
        )
    ).one()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16]


async def recommendations(container: Any, *, principal: Principal, k: int) -> RecommendationList:
    """`GET /recommendations`: the calling student's next courses (cached per student state, see the docs)."""
    if principal.role != "student":
        raise Forbidden("recommendations are for students", code="role_forbidden")
    k = max(1, min(k, MAX_K))
    async with container.uow() as uow:
        fingerprint = await _student_fingerprint(uow.session, principal.user_id)
    key = None
    try:
        redis = container.redis()
        generation = int(await redis.get("courses:generation") or 0)
        key = f"recs:student:{principal.user_id}:{fingerprint}:g{generation}:k{k}"
        hit = await redis.get(key)
        if hit is not None:
            return RecommendationList.model_validate_json(hit)
    except Exception:
        log.warning("recommendation cache unavailable; computing", exc_info=True)
    async with container.uow() as uow:
        result = await compute_recommendations(uow.session, student_id=principal.user_id, k=k)
    if key is not None:
        try:
            await container.redis().set(key, result.model_dump_json(), ex=CACHE_TTL_SECONDS)
        except Exception:
            log.warning("could not cache recommendations", exc_info=True)
    return result


async def compute_recommendations(session: AsyncSession, *, student_id: uuid.UUID, k: int) -> RecommendationList:
    """The blend for one student, straight from the tables (no cache)."""
    rows = (
        await session.execute(
            select(Enrollment.course_id, Enrollment.status, Enrollment.completion_revoked_at).where(
                Enrollment.student_id == student_id, Enrollment.status.in_(LIVE_STATES)
            )
        )
    ).all()
    mine = [(cid, st) for cid, st, _ in rows]
    taken = {cid for cid, _ in mine}
    # A completion whose certificate was revoked opens no next course (as the admission judges it); a retake's does.
    completed = {cid for cid, st, revoked in rows if st == "completed" and revoked is None}
    seeds: dict[uuid.UUID, float] = {}
    for cid, st in mine:
        seeds[cid] = max(seeds.get(cid, 0.0), SEED_WEIGHTS[st])
    cands: dict[uuid.UUID, Candidate] = defaultdict(Candidate)
    if completed:
        for (nid,) in (
            await session.execute(
                select(CoursePrerequisite.course_id).where(CoursePrerequisite.prerequisite_id.in_(completed)).distinct()
            )
        ).all():
            cands[nid].next_step = 1.0
    if seeds:
        for cid, nid, sim in (
            await session.execute(
                select(CourseNeighbour.course_id, CourseNeighbour.neighbour_id, CourseNeighbour.similarity).where(
                    CourseNeighbour.course_id.in_(seeds)
                )
            )
        ).all():
            cands[nid].content = max(cands[nid].content, seeds[cid] * content_signal(sim))
        # The strongest PAIRS_PER_SEED partners of each seed (a popular course pairs with hundreds).
        strength = CoursePair.co_completed + CO_ADMITTED_WEIGHT * CoursePair.co_admitted
        ranked = (
            select(
                CoursePair.course_id,
                CoursePair.other_id,
                CoursePair.co_completed,
                CoursePair.co_admitted,
                func.row_number().over(partition_by=CoursePair.course_id, order_by=strength.desc()).label("r"),
            )
            .where(CoursePair.course_id.in_(seeds))
            .subquery()
        )
        for cid, oid, done, admitted in (
            await session.execute(
                select(ranked.c.course_id, ranked.c.other_id, ranked.c.co_completed, ranked.c.co_admitted).where(
                    ranked.c.r <= PAIRS_PER_SEED
                )
            )
        ).all():
            cands[oid].co += seeds[cid] * (done + CO_ADMITTED_WEIGHT * admitted)
    popular = (
        await session.execute(
            select(CoursePopularity.course_id, CoursePopularity.admissions)
            .join(Course, Course.id == CoursePopularity.course_id)
            .where(_ready_clause(), CoursePopularity.admissions > 0)
            .order_by(CoursePopularity.admissions.desc(), CoursePopularity.course_id)
            .limit(POPULAR_POOL)
        )
    ).all()
    most = popular[0][1] if popular else 0
    for cid, n in popular:
        cands[cid].popular = popularity_signal(n, most)
    for cid in taken:
        cands.pop(cid, None)
    # Score first, then load and check only the best candidates (eligibility only removes), batch by batch. A
    # candidate scoring 0 (a content neighbour under the floor, nothing else) is no recommendation: left to the fill.
    scores = {cid: blend(cand)[0] for cid, cand in cands.items()}
    order = sorted((cid for cid, score in scores.items() if score > 0), key=lambda cid: -scores[cid])
    courses: dict[uuid.UUID, Course] = {}
    for start in range(0, len(order), 4 * k):
        batch = await _courses(session, order[start : start + 4 * k])
        await _drop_ineligible(session, batch, completed)
        courses.update(batch)
        if len(courses) >= k:
            break
    if len(courses) < k:  # fewer scored courses than places (a new platform, a narrow history): the newest fill
        newest = await session.scalars(
            select(Course)
            .where(_ready_clause(), Course.id.not_in(taken | set(courses)) if (taken or courses) else text("true"))
            .order_by(Course.published_at.desc().nulls_last(), Course.id)
            .limit(k + len(taken))
        )
        for c in newest:
            courses[c.id] = c
            cands[c.id].popular = max(cands[c.id].popular, 0.01)
        await _drop_ineligible(session, courses, completed)
    return RecommendationList(items=_ranked(cands, courses, k))


async def _drop_ineligible(session: AsyncSession, courses: dict[uuid.UUID, Course], completed: set[uuid.UUID]) -> None:
    """Remove courses the student cannot enroll in: full without a waitlist, or a prerequisite not completed."""
    for cid in [cid for cid, c in courses.items() if c.capacity is not None and c.seats_taken >= c.capacity]:
        if not courses[cid].waitlist_enabled:
            del courses[cid]
    if not courses:
        return
    needs: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for cid, pid in (
        await session.execute(
            select(CoursePrerequisite.course_id, CoursePrerequisite.prerequisite_id).where(
                CoursePrerequisite.course_id.in_(list(courses))
            )
        )
    ).all():
        needs[cid].add(pid)
    for cid, required in needs.items():
        if not required <= completed:
            courses.pop(cid, None)


# --- review: what to revisit in one enrollment --------------------------------------------------------


def _words(lesson_body: dict[str, Any]) -> int:
    text_parts = [str(lesson_body.get(k) or "") for k in ("content", "transcript", "title")]
    return sum(len(p.split()) for p in text_parts)


async def _attempts_counted(container: Any, student_id: uuid.UUID, lesson_id: uuid.UUID, fingerprint: str) -> int:
    """The attempts the limit counts on a quiz as it is (`progress.counts_against`), across enrollments."""
    async with container.uow() as uow:
        used = await uow.session.scalar(
            select(func.count())
            .select_from(QuizAttempt)
            .where(
                QuizAttempt.student_id == student_id,
                QuizAttempt.lesson_id == lesson_id,
                counts_against(fingerprint),
            )
        )
    return int(used or 0)


async def _search_sections(
    container: Any, course: Course, query: str, *, quizzes: frozenset[str], evidence_only: bool = False
) -> list[ReviewSection]:
    """The live version's sections for `query`, never a quiz's prompts (`quizzes`: the ids of its quiz lessons; a
    prompt is no place to learn from, explore63 F10: another quiz's prompts were offered to a student who failed
    one); with `evidence_only`, only the hits the assistant would count as
    evidence (`evidence.strong_hits`: cosine at ASSISTANT_RELEVANCE_FLOOR, or a keyword hit with most of its subject
    words), so a student's question is not tied to a section it merely shares a weak chunk with."""
    found = await retrieve_version(
        container,
        course_id=course.id,
        version=course.index_version,
        query=query[:1000],
        k=SECTIONS_PER_ITEM + 3 + min(len(quizzes), 6),
    )
    hits = found.hits
    if evidence_only:
        floor = container.settings.assistant_relevance_floor
        hits = evidence.strong_hits(hits, floor, evidence.subject_words(query))
    out = []
    for h in hits:
        c = h.chunk
        if c.source_type == "lesson" and c.source_id in quizzes:
            continue
        out.append(_section(c))
    return _one_per_place(out)[:SECTIONS_PER_ITEM]


def _section(c: Any) -> ReviewSection:
    return ReviewSection(
        chunk_id=c.chunk_id, title=c.title, location=c.location, source_type=c.source_type, source_id=c.source_id
    )


def _one_per_place(sections: list[ReviewSection]) -> list[ReviewSection]:
    """One section per place (source and location): two chunks of one lesson section were listed as two places to
    reread, the same title and location twice (explore83 F13)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for sec in sections:
        if (key := (sec.source_type, sec.source_id, sec.location)) not in seen:
            seen.add(key)
            out.append(sec)
    return out


async def review(container: Any, *, principal: Principal, enrollment_id: uuid.UUID) -> EnrollmentReview:
    """`GET /enrollments/{id}/review`: failed quiz questions (answers never shown; which questions were missed only
    once the quiz is passed or out of attempts, as the quiz itself does), lessons finished too fast before a failed
    quiz, and the student's questions to the assistant that point to the same sections (to the student only) — each
    with the live version's sections to reread. The enrollment's student, the course's owner and admins; others
    404."""

    async with container.uow() as uow:
        s = uow.session
        e = await s.get(Enrollment, enrollment_id)
        course = await s.get(Course, e.course_id) if e is not None else None
        allowed = (
            e is not None
            and course is not None
            and (
                principal.is_admin
                or e.student_id == principal.user_id
                or course_rules.teaches(principal, course.instructor_id)
            )
        )
        if not allowed or e is None or course is None:
            raise NotFound("enrollment not found", code="enrollment_not_found")
        if course.index_version <= 0:
            raise Conflict("the course's content index is not live yet", code="course_not_ready")
        attempts = list(
            await s.scalars(
                select(QuizAttempt).where(QuizAttempt.enrollment_id == e.id).order_by(QuizAttempt.submitted_at)
            )
        )
        progress = {
            p.lesson_id: p
            for p in await s.scalars(select(LessonProgress).where(LessonProgress.enrollment_id == e.id))
            if p.completed_at is not None
        }
        # The student's questions to the assistant are theirs alone, as the conversations they were asked in: the
        # course's instructor and admins read the review without them (explore69 F3: a question with health data).
        asked = (
            []
            if principal.user_id != e.student_id
            else list(
                (
                    await s.execute(
                        select(AiInteraction.question, AiInteraction.created_at)
                        .where(
                            AiInteraction.user_id == e.student_id,
                            AiInteraction.course_id == course.id,
                            AiInteraction.kind == "ask",
                            AiInteraction.question.is_not(None),
                        )
                        .order_by(AiInteraction.created_at.desc())
                        .limit(5)
                    )
                ).all()
            )
        )
    lessons = await published_lessons(container.documents, course)
    quizzes = frozenset(str(lesson.lesson_id) for lesson in lessons if lesson.type == "quiz")
    limit = int(container.settings.quiz_max_attempts)
    by_lesson: dict[uuid.UUID, list[QuizAttempt]] = defaultdict(list)
    for a in attempts:
        by_lesson[a.lesson_id].append(a)
    start = e.activated_at or e.admitted_at or e.created_at
    completions = sorted((p.completed_at, lid) for lid, p in progress.items() if p.completed_at is not None)
    previous: dict[uuid.UUID, datetime] = {}
    last = start
    for at, lid in completions:
        previous[lid] = last if last is not None and last <= at else at
        last = at

    items: list[ReviewItem] = []
    searches = 0
    rushed_seen: set[uuid.UUID] = set()
    for index, lesson in enumerate(lessons):
        tries = by_lesson.get(lesson.lesson_id)
        passed = any(a.passed for a in tries or [])
        # Once passed, later attempts are practice: what the student missed is what they missed before the pass
        # (explore20 F5: a practice attempt after a 100 % pass listed every question as missed). A quiz passed at
        # the first try and practised since has nothing to review.
        before_pass = list(itertools.takewhile(lambda a: not a.passed, tries or [])) if passed else (tries or [])
        failed = [a for a in before_pass if not a.passed]
        if lesson.type != "quiz" or not failed:
            continue
        questions = lesson.body.get("questions") or []
        # The attempts on the quiz as it is (its fingerprint) count for the limit, across the student's enrollments
        # (re-enrolling does not reset them), as the limit counts them; an attempt is compared with the questions it
        # answered, never with a rewritten quiz's (explore11 F2).
        fingerprint = course_rules.quiz_fingerprint(lesson.body)
        failed_now = [a for a in failed if a.quiz_fingerprint in (fingerprint, None)]
        reveal = passed or await _attempts_counted(container, e.student_id, lesson.lesson_id, fingerprint) >= limit
        detail: dict[str, Any] = {
            "attempts": len(tries or []),
            "best_score": max(a.score for a in tries or []),
            "passed": passed,
        }
        if not failed_now:
            detail["missed_questions"] = None  # the failed attempts answered a quiz rewritten since
            detail["quiz_changed"] = True
            query = " ".join(str(q.get("prompt", "")) for q in questions) or lesson.title
        elif reveal:
            answers = failed_now[-1].answers
            missed = [
                {"index": i, "prompt": q.get("prompt", "")}
                for i, q in enumerate(questions)
                if i >= len(answers) or answers[i] != q.get("answer")
            ]
            detail["missed_questions"] = missed
            query = " ".join(m["prompt"] for m in missed) or lesson.title
        else:
            detail["missed_questions"] = None  # withheld until the quiz is passed or out of attempts
            query = " ".join(str(q.get("prompt", "")) for q in questions) or lesson.title
        sections: list[ReviewSection] = []
        # Each missed question searched on its own, its best place first (explore83 F13: the prompts searched as one
        # query pointed to one lesson twice, and to none for two of the four questions); then the whole query.
        for prompt in [m["prompt"] for m in detail.get("missed_questions") or []][:SECTIONS_PER_ITEM]:
            if searches >= MAX_REVIEW_SEARCHES:
                break
            sections += (await _search_sections(container, course, prompt, quizzes=quizzes))[:1]
            searches += 1
        if len(_one_per_place(sections)) < SECTIONS_PER_ITEM and searches < MAX_REVIEW_SEARCHES:
            sections += await _search_sections(container, course, query, quizzes=quizzes)
            searches += 1
        sections = _one_per_place(sections)[:SECTIONS_PER_ITEM]
        items.append(
            ReviewItem(
                kind="quiz_failed", lesson_id=lesson.lesson_id, title=lesson.title, detail=detail, sections=sections
            )
        )
        first_fail = failed[0].submitted_at
        for before in lessons[:index]:
            if before.module_id != lesson.module_id or before.type == "quiz" or before.lesson_id in rushed_seen:
                continue
            p = progress.get(before.lesson_id)
            if p is None or p.completed_at is None or p.completed_at > first_fail:
                continue
            spent = (p.completed_at - previous.get(before.lesson_id, p.completed_at)).total_seconds()
            needed = max(RUSH_MIN_SECONDS, RUSH_SHARE * _words(before.body) * 60 / 200)
            if spent >= needed:
                continue
            rushed_seen.add(before.lesson_id)
            own = await _lesson_sections(container, course, before.lesson_id)
            items.append(
                ReviewItem(
                    kind="rushed_lesson",
                    lesson_id=before.lesson_id,
                    title=before.title,
                    detail={
                        "seconds_spent": round(spent, 1),
                        "expected_seconds": round(needed, 1),
                        "quiz": lesson.title,
                    },
                    sections=own,
                )
            )
    pointed = {sec.chunk_id for item in items for sec in item.sections}
    for question, at in asked:
        if not pointed or searches >= MAX_REVIEW_SEARCHES:
            break
        searches += 1
        sections = await _search_sections(container, course, question, quizzes=quizzes, evidence_only=True)
        overlap = [sec for sec in sections if sec.chunk_id in pointed]
        if overlap:
            items.append(
                ReviewItem(
                    kind="question_asked",
                    title=question[:200],
                    detail={"asked_at": iso(at)},
                    sections=overlap,
                )
            )
    return EnrollmentReview(enrollment_id=e.id, course_id=course.id, version=course.index_version, items=items)


async def _lesson_sections(container: Any, course: Course, lesson_id: uuid.UUID) -> list[ReviewSection]:
    """The lesson's own chunks in the live version (first SECTIONS_PER_ITEM, in order)."""
    async with container.uow() as uow:
        rows = await uow.session.scalars(
            select(ContentChunk)
            .where(
                ContentChunk.course_id == course.id,
                ContentChunk.version == course.index_version,
                ContentChunk.source_type == "lesson",
                ContentChunk.source_id == str(lesson_id),
            )
            .order_by(ContentChunk.ordinal)
        )
        return _one_per_place([_section(c) for c in rows])[:SECTIONS_PER_ITEM]
