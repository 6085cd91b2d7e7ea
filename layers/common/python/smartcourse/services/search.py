"""Content search over a course's live index version, and the catalogue search (metadata + content)."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from sqlalchemy import (
    Float,
    String,
    all_,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from smartcourse import telemetry
from smartcourse.assistant.evidence import STOPWORDS, is_quiz_prompts
from smartcourse.assistant.text import same_text_key
from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain.text import Spellings, as_indexed, fold_marks
from smartcourse.errors import Conflict, Forbidden, Invalid, NotFound
from smartcourse.models import ContentChunk, Course, Enrollment, User
from smartcourse.ports import Hit, SearchMode
from smartcourse.schemas import (
    MAX_TAGS,
    CatalogHit,
    CatalogSearchPage,
    ContentSearchHit,
    ContentSearchResult,
    CourseSummary,
    MatchedIn,
    SearchSource,
)
from smartcourse.security import Principal
from smartcourse.services import accounts

# Enrollment states that open a course's content to its student (a waitlisted student only sees the outline).
CONTENT_STATES = ("pending", "active", "completed")
MAX_K = 50


@dataclass(frozen=True)
class Retrieval:
    """What one retrieval found: the live version it searched, the mode that ran, the hits best first."""

    course_id: uuid.UUID
    version: int
    mode: SearchMode
    hits: list[Hit]


async def is_enrolled(uow: UnitOfWork, student_id: uuid.UUID, course_id: uuid.UUID) -> bool:
    found = await uow.session.scalar(
        select(Enrollment.id)
        .where(
            Enrollment.student_id == student_id,
            Enrollment.course_id == course_id,
            Enrollment.status.in_(CONTENT_STATES),
        )
        .limit(1)
    )
    return found is not None


#: `GET /courses/{id}` with a student's token: the account's check columns and whether the student may read the
#: course's content, in one round trip (built once: every such read runs it).
_READER_CHECK = select(
    User.role,
    User.is_active,
    User.token_version,
    exists()
    .where(
        Enrollment.student_id == bindparam("user_id", type_=PG_UUID(as_uuid=True)),
        Enrollment.course_id == bindparam("course_id", type_=PG_UUID(as_uuid=True)),
        Enrollment.status.in_(CONTENT_STATES),
    )
    .label("enrolled"),
).where(User.id == bindparam("user_id", type_=PG_UUID(as_uuid=True)))


async def enrolled_reader(db: AsyncConnection, claims: Principal, course_id: uuid.UUID) -> bool:
    """Whether the caller of a validly signed token reads `course_id` as an enrolled student: the enrollment and the
    account in one statement on the caller's connection. The account is held to its checks (401 with the reason,
    as `accounts.check_account`) only where the answer is not public, i.e. when enrolled."""
    row = (await db.execute(_READER_CHECK, {"user_id": claims.user_id, "course_id": course_id})).first()
    if row is None or not row.enrolled:
        return False
    accounts.account_principal(row, claims)
    return True


async def refuse_not_enrolled(
    uow: UnitOfWork, principal: Principal | None, course_id: uuid.UUID, message: str
) -> NoReturn:
    """403 for a reader of a live course's content who may not read it: `enrollment_not_active` for a student on
    its waitlist (enrolling again would only return that place), else `not_enrolled` with `message` ("enroll in
    ... to <doing>"; to anyone but a student, who may not enroll, who may <doing>)."""
    waiting = (
        await uow.session.scalar(
            select(Enrollment.status)
            .where(
                Enrollment.student_id == principal.user_id,
                Enrollment.course_id == course_id,
                Enrollment.status == "waitlisted",
            )
            .limit(1)
        )
        if principal is not None
        else None
    )
    if waiting is not None:
        raise Forbidden(
            "you are on the course's waitlist: its content opens once you have a seat",
            code="enrollment_not_active",
            details={"status": waiting},
        )
    if principal is not None and principal.role != "student":
        # Only students enroll: "enroll in the course to ..." asked another instructor for what they cannot do
        # (explore29 F8).
        message = "only the course's instructor, admins and its enrolled students may " + message.split(" to ", 1)[1]
    raise Forbidden(message, code="not_enrolled")


async def can_read_content(uow: UnitOfWork, principal: Principal | None, course: Course) -> bool:
    """Lesson bodies, materials and search: the owner, admins, and students enrolled in the course."""
    if principal is None:
        return False
    if rules.can_see_draft(principal, course.instructor_id):
        return True
    return await is_enrolled(uow, principal.user_id, course.id)


async def ensure_content_access(
    uow: UnitOfWork, principal: Principal | None, course_id: uuid.UUID, *, doing: str = "search its content"
) -> Course:
    """The course, if `principal` may read its content and it has a live index; else a clear error. Its enrolled
    students keep that access once the course is archived (as `courses.get_course`); others then get 404. `doing`:
    what the refusal says enrolling allows ("ask its assistant" on the assistant's routes: explore23 F8)."""
    course = await uow.session.get(Course, course_id)
    if course is None:
        raise NotFound("course not found", code="course_not_found")
    if not rules.can_see_draft(principal, course.instructor_id):
        enrolled = (
            principal is not None
            and rules.open_to_learners(course.status, course.content_version)
            and await is_enrolled(uow, principal.user_id, course.id)
        )
        if not (enrolled or rules.is_live(course.status, course.content_version)):
            raise NotFound("course not found", code="course_not_found")
        if not enrolled:
            await refuse_not_enrolled(uow, principal, course.id, f"enroll in the course to {doing}")
    if course.index_version <= 0:
        raise Conflict(
            "the course's content is not searchable yet: publish it and wait until it is ready",
            code="course_not_ready",
            details={"index_status": course.index_status},
        )
    return course


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
    async with container.uow() as uow:
        course = await ensure_content_access(uow, principal, course_id)
        version = course.index_version
    return await retrieve_version(container, course_id=course_id, version=version, query=query, k=k, mode=mode)


async def retrieve_version(
    container: Any, *, course_id: uuid.UUID, version: int, query: str, k: int = 8, mode: SearchMode = "hybrid"
) -> Retrieval:
    """Search one index version (no access check: callers have done it)."""
    k = max(1, min(k, MAX_K))
    query = as_indexed(query).strip()
    tracer = telemetry.tracer()  # the query's embedding and the index's search, each a span (explore40 F9 residue)
    vector = None
    if mode != "keyword":
        with tracer.start_as_current_span("embed query", attributes={"smartcourse.query_chars": len(query)}):
            vector = await container.embedder().embed_query(query)
    attributes = {"smartcourse.index_version": version, "smartcourse.search_mode": mode, "smartcourse.k": k}
    with tracer.start_as_current_span("index search", attributes=attributes) as span:
        hits = await container.vector_index().search(
            str(course_id), version, query=query, vector=vector, k=k, mode=mode
        )
        span.set_attribute("smartcourse.hits", len(hits))
    hits = await _without_deleted_materials(container, course_id, version, hits)
    return Retrieval(course_id=course_id, version=version, mode=mode, hits=hits)


async def _without_deleted_materials(container: Any, course_id: uuid.UUID, version: int, hits: list[Hit]) -> list[Hit]:
    """`hits` less the passages of materials deleted from the live version (`materials.delete_material`).

    The deletion takes their rows out of LanceDB, which the process that deleted them sees at once, and out of
    `content_chunks` in its transaction. Another process (another API worker, a Lambda) holds a cached table handle
    that sees LanceDB's deletion only on its first read after `REFRESH_SECONDS` (adapters/lance_index.py); until
    then its hits would alternate with the others'. So a material's hits are kept only while their `content_chunks`
    rows are: one indexed read, and only when a hit is a material's (lessons do not leave a live version)."""
    ids = [h.chunk.chunk_id for h in hits if h.chunk.source_type == "material"]
    if not ids:
        return hits
    async with container.uow() as uow:
        kept = set(
            await uow.session.scalars(
                select(ContentChunk.chunk_id).where(
                    ContentChunk.course_id == course_id, ContentChunk.version == version, ContentChunk.chunk_id.in_(ids)
                )
            )
        )
    return [h for h in hits if h.chunk.source_type != "material" or h.chunk.chunk_id in kept]


def _source(hit: Hit) -> SearchSource:
    c = hit.chunk
    return SearchSource(type=c.source_type, id=c.source_id, title=c.title, location=c.location)


def _public_hits(hits: list[Hit]) -> list[ContentSearchHit]:
    """One hit per passage: a passage whose text an earlier (better) hit has, blanks and case aside, is that hit's
    `also_in` (the same file uploaded as `photosynthesis.pdf` and `UPPER.PDF` was listed twice; explore7 F3)."""
    out: dict[str, ContentSearchHit] = {}
    for h in hits:
        key = same_text_key(h.chunk.text)
        if key in out:
            # Once per place: a file that repeats a passage listed itself in its own hit's `also_in` (explore27 F5).
            first, source = out[key], _source(h)
            if source != first.source and source not in first.also_in:
                first.also_in.append(source)
        else:
            out[key] = ContentSearchHit(
                chunk_id=h.chunk.chunk_id, text=h.chunk.text, score=round(h.score, 6), source=_source(h)
            )
    return list(out.values())


async def search_course(
    container: Any, *, principal: Principal | None, course_id: uuid.UUID, q: str, k: int, mode: SearchMode
) -> ContentSearchResult:
    """`GET /courses/{id}/search`: hybrid by default; `mode` says what ran.

    A hybrid search answers the passages that matched a word of the query or whose meaning is near enough
    (cosine similarity at least `ASSISTANT_RELEVANCE_FLOOR`, the assistant's evidence floor): fusion ranks whatever
    the two legs return, so a question the course does not cover used to get its k nearest passages anyway, however
    far. `mode=vector` still answers the k nearest, with their `score`, for whoever wants them."""
    # A hybrid search reads more than `k` and cuts after the floor: cut first, `k=1` could answer nothing, its one
    # slot taken by the nearest passage however far (explore76 F2).
    wide = min(MAX_K, max(3 * k, HYBRID_READ)) if mode == "hybrid" else k
    found = await retrieve(container, principal=principal, course_id=course_id, query=q, k=wide, mode=mode)
    hits = found.hits
    if found.mode == "hybrid":
        hits = fused_above_floor(hits, container.settings.assistant_relevance_floor)
    # The passages that teach before a quiz's prompts, each group in its order: "stereocentre" ranked the quiz asking
    # about stereocentres above the lessons on them (explore80 F9). A quiz searched for by its words still comes.
    hits = sorted(hits, key=is_quiz_prompts)
    return ContentSearchResult(items=_public_hits(hits)[:k], mode=found.mode, version=found.version, query=q)


#: The least a hybrid course search reads before its floor and its cut to `k`.
HYBRID_READ = 20
#: The constant of Reciprocal Rank Fusion, as the index fuses (Cormack et al.; lancedb's RRFReranker default).
RRF_K = 60


def fused_above_floor(hits: list[Hit], floor: float) -> list[Hit]:
    """The hits that matched a word of the query or are near enough in meaning (cosine at least `floor`), ranked by
    Reciprocal Rank Fusion of the keyword ranking and of the *near enough* ones' vector ranking: a passage far in
    meaning (0.08) ranked first by the vector leg outranked the one with the word ("unlike WHERE" above the lesson
    on WHERE: explore76 F2). `score` is that fused score."""
    kept = [h for h in hits if h.keyword_score is not None or (h.vector_score or 0.0) >= floor]
    by_words = sorted((h for h in kept if h.keyword_score is not None), key=lambda h: -(h.keyword_score or 0.0))
    by_meaning = sorted((h for h in kept if (h.vector_score or 0.0) >= floor), key=lambda h: -(h.vector_score or 0.0))
    fused: dict[str, float] = {}
    for ranking in (by_words, by_meaning):
        for rank, h in enumerate(ranking, 1):
            fused[h.chunk.chunk_id] = fused.get(h.chunk.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    ranked = sorted(kept, key=lambda h: (-fused.get(h.chunk.chunk_id, 0.0), h.chunk.ordinal))
    return [replace(h, score=fused.get(h.chunk.chunk_id, 0.0)) for h in ranked]


# --- the catalogue ---------------------------------------------------------------------------------


def _tsquery(q: str) -> Any:
    """The catalogue's query, accents folded as the documents are (`_tsvector`)."""
    return func.websearch_to_tsquery("english", func.smartcourse_fold(q))


#: The text search configuration and the separator of a document's fields, written into the statement as constants:
#: an expression index serves only a query with the same expression, and a bound parameter is not the same thing as
#: the index's constant in a generic plan (which PostgreSQL may choose for a statement prepared five times).
_ENGLISH: Any = literal_column("'english'::regconfig")
_SPACE = literal_column("' '", String)


def _document(*fields: Any) -> Any:
    """`a || ' ' || b || ...`: the fields of a catalogue document, as the GIN indexes join them."""
    out = fields[0]
    for f in fields[1:]:
        out = out.op("||")(_SPACE).op("||")(f)
    return out


def _tsvector(document: Any) -> Any:
    """A catalogue document with its accents folded (`smartcourse_fold`, migration 0013: `bechamel` finds
    `Béchamel`). The GIN indexes (`ix_courses_fts`, `ix_content_chunks_fts`) are built on these same expressions
    (`tests/integration/test_catalog_fts_plan.py` checks that the plan uses them)."""
    return func.to_tsvector(_ENGLISH, func.smartcourse_fold(document))


#: The documents the catalogue matches (and its indexes are built on).
COURSE_DOCUMENT = _document(Course.title, Course.description, Course.category)


#: A chunk: its source's title, that title with `.`, `-` and `_` as spaces (`passwd` finds `passwd.txt`, which the
#: parser takes for one file-name token), its heading path (a Markdown or HTML heading is not in the text), its text
#: (migration 0017).
def _chunk_document(chunk: Any) -> Any:
    """The catalogue document of `chunk` (`ContentChunk` or an alias of it)."""
    title_words = func.regexp_replace(
        chunk.title, literal_column("'[._-]+'", String), _SPACE, literal_column("'g'", String)
    )
    return _document(chunk.title, title_words, chunk.location, chunk.text)


CHUNK_DOCUMENT = _chunk_document(ContentChunk)


def _headline_query(q: str) -> Any:
    """What a headline marks: the words as typed or folded (a headline quotes the author's own spelling, so a word
    typed without its accents matches but is not marked)."""
    return _tsquery(q).op("||")(func.websearch_to_tsquery("english", q))


def fold_for_filter(value: Any) -> Any:
    """A string as the catalogue's filters compare it: lower case, accents folded (`smartcourse_fold`): `tags=espana`
    and `category=Economia` found nothing tagged "España" or filed under "Economía" (explore83 F11)."""
    return func.smartcourse_fold(func.lower(value))


def _lowered(values: Any) -> Any:
    """`ARRAY(SELECT fold_for_filter(v) FROM unnest(values) AS v)`: an array of strings, each as filters compare it."""
    v = column("v", String)
    return func.array(select(fold_for_filter(v)).select_from(func.unnest(values).alias("v")).scalar_subquery())


def tag_filter(raw: list[str] | None) -> list[str]:
    """The `tags` query parameter (repeated and/or comma-separated) as the sorted, distinct, stripped tags a filter
    and its cache key use: `tags=a,b`, `tags=b&tags=a` and `tags= a` ask for the same thing. At most `MAX_TAG_FILTER`
    of them, counted after the split (422 `too_many_tags`), as a course has at most that many."""
    tags = sorted({t.strip() for value in raw or [] for t in value.replace("\x00", "").split(",") if t.strip()})
    if len(tags) > MAX_TAG_FILTER:
        raise Invalid(f"filter by at most {MAX_TAG_FILTER} tags", code="too_many_tags", details={"tags": len(tags)})
    return tags


#: The most tags a filter may name (as many as a course carries: `schemas.Tags`).
MAX_TAG_FILTER = MAX_TAGS


def tag_words(tags: list[str]) -> list[str]:
    """The tags a filter asks for: stripped, blanks dropped (matched without regard to case, see `has_tags`)."""
    return [t.strip() for t in tags if t.strip()]


def has_tags(tags: list[str]) -> Any:
    """The course carries every one of `tags`, compared without regard to case (as `category` and `level` are):
    a course tagged "Kafka" is found by `tags=kafka` and the other way round. Both sides are lower-cased by
    PostgreSQL, so the comparison follows one rule. (There is no index on `courses.tags`: the catalogue's filters
    run on the status/category index and the course rows.)"""
    wanted = bindparam("wanted_tags", tag_words(tags), type_=ARRAY(String), unique=True)
    return _lowered(Course.tags).op("@>")(_lowered(wanted))


def _shares_a_tag(words: list[str]) -> Any:
    """The course carries a tag equal to one of `words`, without regard to case."""
    wanted = bindparam("query_words", words, type_=ARRAY(String), unique=True)
    return _lowered(Course.tags).op("&&")(_lowered(wanted))


def _somewhere_in_course(term: str, meta_doc: Any) -> Any:
    """The word (or quoted phrase) `term` is in the course's title, description or category, in a chunk of its live
    content, or is one of its tags; a stop word ("the", whose query is empty) is found anywhere."""
    tq = func.websearch_to_tsquery("english", func.smartcourse_fold(term))
    return or_(func.numnode(tq) == 0, meta_doc.op("@@")(tq), _in_live_content(tq), _shares_a_tag([term.strip('"')]))


def _in_live_content(tq: Any) -> Any:
    """A chunk of the course's live index version matches `tq` (correlated to the course only, with its own alias:
    the statements it goes into read `content_chunks` too)."""
    chunk = aliased(ContentChunk)
    return (
        select(literal(1))
        .select_from(chunk)
        .where(
            chunk.course_id == Course.id,
            chunk.version == Course.index_version,
            _tsvector(_chunk_document(chunk)).op("@@")(tq),
        )
        .correlate(Course)
        .exists()
    )


def split_exclusions(query: str) -> tuple[str, list[str]]:
    """A catalogue query's words and phrases to find, and those it excludes: `-word` or `-"a phrase"` after a space
    or at the start, outside quotes, as `websearch_to_tsquery` reads them (`plants -water` → ("plants", ["water"]);
    the "-" of `write-ahead` or of a quoted `"-5 degrees"` excludes nothing)."""
    # A token with no letter or digit ("-", `--`, a lone `or`) is no word to find or exclude: `-` found nothing, `--`
    # everything, `or -plants` nothing (explore76 F12).
    tokens = [(negated, t) for negated, t in _query_tokens(query) if re.search(r"\w", t)]
    kept = [t for negated, t in tokens if not negated]
    if all(t.lower() == "or" for t in kept):
        kept = []
    return " ".join(kept), [t for negated, t in tokens if negated]


def _query_tokens(query: str) -> list[tuple[bool, str]]:
    """(excluded, word or "quoted phrase") of a catalogue query, in order (`split_exclusions`)."""
    out: list[tuple[bool, str]] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        negated = query[i] == "-" and i + 1 < n and not query[i + 1].isspace()
        start = i + 1 if negated else i
        if start < n and query[start] == '"':
            close = query.find('"', start + 1)
            end = n if close < 0 else close + 1
            token = query[start:end]
        else:
            end = start
            while end < n and not query[end].isspace():
                end += 1
            token = query[start:end]
        if negated:
            word = token.strip('"').strip()
            if word:
                out.append((True, word))
        else:
            out.append((False, token))
        i = end
    return out


#: The most words a catalogue query may have to be found apart (each in some part of the course).
MAX_SPREAD_TERMS = 8


async def search_catalog(
    *,
    uow: UnitOfWork,
    q: str | None,
    category: str | None,
    level: str | None,
    tags: list[str],
    page: int,
    page_size: int,
    instructor_id: uuid.UUID | None = None,
    suggest: bool = True,
) -> CatalogSearchPage:
    """Published, ready courses ranked by their metadata and their content (full text over the live chunks);
    `instructor_id`: only that instructor's (as on `GET /courses`: an id with none gives an empty page).

    A course whose PDF explains a term is found by that term: its chunks of the live index version count,
    with less weight than the title and description. The page is public, so it quotes public fields only
    (`_public_matches`): a content match is named in `matched_in`, never shown."""
    ready = and_(Course.live(), Course.index_version > 0)
    filters = [ready]
    if category:
        filters.append(fold_for_filter(Course.category) == fold_for_filter(category.strip()))
    if level:
        filters.append(func.lower(Course.level) == level.strip().lower())
    if tag_words(tags):
        filters.append(has_tags(tags))
    if instructor_id is not None:
        filters.append(Course.instructor_id == instructor_id)
    query = as_indexed(q or "").strip()
    positive, excluded = split_exclusions(query)
    if excluded:
        # `-word` excludes a course that has the word anywhere: its title, description, category, a chunk, a tag.
        # Matched document by document, `plants & !water` was true of any chunk without "water", so a negation
        # never removed a course, and a query of negations alone matched every course (explore75 F1).
        neg = func.websearch_to_tsquery("english", func.smartcourse_fold(" or ".join(f'"{e}"' for e in excluded)))
        in_text = or_(_tsvector(COURSE_DOCUMENT).op("@@")(neg), _in_live_content(neg), _shares_a_tag(excluded))
        filters.append(~in_text)
    if not positive:
        stmt = select(Course).where(*filters)
        total = await uow.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = await uow.session.scalars(
            stmt.order_by(Course.published_at.desc().nulls_last(), Course.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        items = [CatalogHit(**CourseSummary.model_validate(c).model_dump(), score=0.0, highlights=[]) for c in rows]
        return CatalogSearchPage(items=items, total=total, page=page, page_size=page_size, query=query)

    tsq = _tsquery(positive)
    meta_doc = _tsvector(COURSE_DOCUMENT)
    meta_rank = func.ts_rank_cd(meta_doc, tsq)
    words = positive.split()
    tag_match = _shares_a_tag(words)
    chunk_doc = _tsvector(CHUNK_DOCUMENT)
    # A word that is one of the course's tags counts as found; the other words must all be in its text (the title,
    # description and category, or one chunk), as every word of a query is: a tag equal to any one word was enough
    # alone, so `python plankton` found the Python course by its tag, not the course about plankton (explore56 F4).
    w = column("w", String)
    untagged = func.array_to_string(
        func.array(
            select(w)
            .select_from(func.unnest(bindparam("query_words_untagged", words, type_=ARRAY(String))).alias("w"))
            .where(fold_for_filter(w) != all_(_lowered(Course.tags)))
            .scalar_subquery()
        ),
        " ",
    )
    rest = func.websearch_to_tsquery("english", func.smartcourse_fold(untagged))
    rest_in_text = or_(
        func.numnode(rest) == 0,  # every word is a tag
        meta_doc.op("@@")(rest),
        select(literal(1))
        .select_from(ContentChunk)
        .where(
            ContentChunk.course_id == Course.id,
            ContentChunk.version == Course.index_version,
            chunk_doc.op("@@")(rest),
        )
        .exists(),
    )
    by_tags = and_(tag_match, rest_in_text)
    # Every word somewhere in the course, each in its own part: "xylem photosynthesis" is a course titled
    # Photosynthesis with a lesson on xylem (explore75 F6: found by each word alone, not by both), ranked below one
    # that has them together. Not for a query with `or` (websearch's alternative), nor one of many words.
    terms = [t for _, t in _query_tokens(positive)]
    spread: Any = literal(False)
    if 2 <= len(terms) <= MAX_SPREAD_TERMS and not any(t.lower() == "or" for t in terms):
        spread = and_(*(_somewhere_in_course(t, meta_doc) for t in terms))
    content = (
        select(
            ContentChunk.course_id.label("course_id"),
            # rank / (rank + 1) (normalization 32): a chunk repeating the word a thousand times is not a thousand
            # times the evidence (explore7 F6: a word-stuffed text file outranked the course about it).
            func.max(func.ts_rank_cd(chunk_doc, tsq, literal_column("32"))).label("rank"),
            func.count().label("matches"),
        )
        .join(Course, and_(Course.id == ContentChunk.course_id, ContentChunk.version == Course.index_version))
        .where(chunk_doc.op("@@")(tsq), *filters)
        .group_by(ContentChunk.course_id)
        .subquery()
    )
    content_rank = func.coalesce(content.c.rank, literal(0.0))
    # A course whose title, description or category matches ranks above one matched by its content alone (content
    # ranks below 1); among them, metadata counts twice as much as content; a tag naming the query word is a
    # strong signal too.
    meta_match = meta_doc.op("@@")(tsq)
    score = (
        case((spread, 0.05), else_=0.0)
        + case((meta_match, 1.0), else_=0.0)
        + cast(meta_rank, Float) * 2.0
        + cast(content_rank, Float)
        + case((tag_match, 0.5), else_=0.0)
        + func.least(func.coalesce(content.c.matches, 0), 10) * 0.01
    ).label("score")
    stmt = (
        select(Course, score)
        .outerjoin(content, content.c.course_id == Course.id)
        .where(*filters, or_(meta_match, content.c.course_id.is_not(None), by_tags, spread))
    )
    total = await uow.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = (
        await uow.session.execute(
            stmt.order_by(score.desc(), Course.id).offset((page - 1) * page_size).limit(page_size)
        )
    ).all()
    ids = [c.id for c, _ in rows]
    found = await _public_matches(uow, ids, positive) if ids else {}
    items = [
        CatalogHit(
            **CourseSummary.model_validate(c).model_dump(),
            score=round(float(s), 6),
            highlights=found[c.id][0] if c.id in found else [],
            matched_in=found[c.id][1] if c.id in found else [],
        )
        for c, s in rows
    ]
    # Nothing found: the query as the catalogue's public words would spell it ("budgt" → "budget": explore75 F10,
    # a phone's typo gave an empty page and no hint).
    suggestion = await _did_you_mean(uow, query) if total == 0 and suggest else None
    if suggestion is not None:
        # Offered only when it finds something under the same filters: a suggestion is a link to click (explore76
        # F10: "budget plants" was offered, and found nothing either).
        found = await search_catalog(
            uow=uow,
            q=suggestion,
            category=category,
            level=level,
            tags=tags,
            page=1,
            page_size=1,
            instructor_id=instructor_id,
            suggest=False,
        )
        suggestion = suggestion if found.total else None
    return CatalogSearchPage(
        items=items, total=total, page=page, page_size=page_size, query=query, did_you_mean=suggestion
    )


#: How near a typed word must be to a catalogue word to be offered for it (difflib's ratio: "budgt"/"budget" 0.91).
SUGGESTION_CUTOFF = 0.8
#: The live courses whose public fields make the vocabulary of a suggestion (the newest first).
SUGGESTION_COURSES = 5000
_WORD = re.compile(r"[^\W\d_]{3,}")


async def _did_you_mean(uow: UnitOfWork, query: str) -> str | None:
    """`query` with each plain word that no live course's public fields (title, description, category, tags) have
    replaced by the nearest one they have, if one is near enough; None when nothing was replaced. Only public fields:
    a suggestion must never reveal a word of what only enrolled students read. Quoted phrases, exclusions and words
    of fewer than four letters are left as typed."""
    tokens = query.split()
    if not tokens or len(tokens) > MAX_SPREAD_TERMS or '"' in query:
        return None
    rows = await uow.session.execute(
        select(Course.title, Course.description, Course.category, Course.tags)
        .where(Course.live(), Course.index_version > 0)
        .order_by(Course.published_at.desc().nulls_last())
        .limit(SUGGESTION_COURSES)
    )
    # Compared without accents, as the search is (explore83 F11: "revolucón" had no suggestion, "revolucon" had):
    # each folded word suggests its commonest spelling.
    vocabulary = Spellings(
        found
        for title, description, category, tags in rows
        for text in (title, description, category, *(tags or []))
        for found in _WORD.findall(str(text or "").lower())
    )
    out, changed = [], False
    for token in tokens:
        # A question's marks are no part of a word ("¿qué es la transcion?": explore85 F8, no suggestion).
        token = token.strip("¿?¡!.,;:") or token
        word = fold_marks(token.lower())
        if len(tokens) > 1 and word in STOPWORDS and word not in vocabulary:
            # A word of asking, or "course", that no course has: every word of a query is required, so "qué es la
            # autarquía" and "curso de historia" found nothing (explore83 F10). Left out of the suggestion.
            changed = True
            continue
        if token.startswith("-") or len(word) < 4 or not word.isalpha() or word in vocabulary:
            out.append(token)
            continue
        near = vocabulary.nearest(word, SUGGESTION_CUTOFF)
        if near is None:
            # A word cut short, as people abbreviate ("intro organic chem": explore80 F10): the commonest catalogue
            # word it begins, the shortest of those.
            longer = [v for v in vocabulary.forms if v.startswith(word)]
            near = min(longer, key=lambda v: (-vocabulary.count(v), len(v), v), default=None)
        out.append(vocabulary.spelt(near) if near is not None else token)
        changed = changed or near is not None
    return " ".join(out) if changed and out else None


#: The marks `ts_headline` puts around a matched word: two private-use characters, removed from the text first, so
#: that after the fragment is HTML-escaped they are the only places `<b>`/`</b>` go in.
_START, _STOP = "\ue000", "\ue001"
_HEADLINE_OPTIONS = f'MaxFragments=1, MaxWords=25, MinWords=8, StartSel="{_START}", StopSel="{_STOP}"'


def _headline(document: Any, tsq: Any) -> Any:
    """`ts_headline` over `document` without the marker characters (an author cannot type a mark in)."""
    return func.ts_headline("english", func.translate(document, _START + _STOP, ""), tsq, _HEADLINE_OPTIONS)


def safe_fragment(fragment: str) -> str:
    """A headline as HTML: everything escaped (`<`, `>`, `&`, quotes: an author's `<img onerror=...>` is text), then
    the matched words' marks turned into `<b>`…`</b>`, the only markup a highlight carries."""
    return html.escape(fragment, quote=True).replace(_START, "<b>").replace(_STOP, "</b>")


def _matches(document: Any, tsq: Any) -> Any:
    return _tsvector(document).op("@@")(tsq)


async def _public_matches(
    uow: UnitOfWork, course_ids: list[uuid.UUID], query: str
) -> dict[uuid.UUID, tuple[list[str], list[MatchedIn]]]:
    """Per course: its highlights and where the query matched (`matched_in`).

    A word that is one of the course's tags counts as found there, as `search_catalog` finds it: the other fields are
    looked at for the rest of the query (`python plankton` finds a course tagged `python` that mentions plankton in
    its lessons: matched in its tags and its content; the whole query, in no field but the tags, said `["tags"]`
    alone), for the whole query when every word is a tag. Grouped by that rest, each group's query a constant (the
    GIN indexes serve it): one group unless some courses carry a query word as a tag."""
    words = query.split()
    groups: dict[str, list[uuid.UUID]] = {}
    for cid, tags in (await uow.session.execute(select(Course.id, Course.tags).where(Course.id.in_(course_ids)))).all():
        lowered = {fold_marks(t.lower()) for t in tags or ()}
        groups.setdefault(" ".join(w for w in words if fold_marks(w.lower()) not in lowered) or query, []).append(cid)
    # A rest that is only exclusions (`python -zebra`, `python -"zebra yak"`: "not zebra") matches every field: the
    # whole query is looked at then, as when every word is a tag (explore62 F6, explore64 F3: all six fields named,
    # nothing highlighted). PostgreSQL says it: such a query's `querytree` (its part an index can search) is `T`.
    for text in [t for t in groups if t != query]:
        searchable = await uow.session.scalar(select(func.querytree(_tsquery(text))))
        if searchable in (None, "", "T"):
            groups.setdefault(query, []).extend(groups.pop(text))
    out: dict[uuid.UUID, tuple[list[str], list[MatchedIn]]] = {}
    for text, ids in groups.items():
        out.update(await _matches_in(uow, ids, query, text))
    # A course found through its words apart, each in some part (`_somewhere_in_course`), matches the whole query in
    # no field: where each word did, together (explore76 F1: `matched_in: []` and no highlight).
    apart = [cid for cid, (_, found) in out.items() if not found]
    terms = [t for negated, t in _query_tokens(query) if not negated]
    if apart and 2 <= len(terms) <= MAX_SPREAD_TERMS:
        for term in terms:
            for cid, (lights, found) in (await _matches_in(uow, apart, term, term)).items():
                have_lights, have_found = out[cid]
                out[cid] = (
                    [*have_lights, *(x for x in lights if x not in have_lights)],
                    [*have_found, *(x for x in found if x not in have_found)],
                )
        for cid in apart:
            lights, found = out[cid]
            out[cid] = (lights, [name for name in _MATCHED_ORDER if name in found])
    return out


#: The order of `matched_in`.
_MATCHED_ORDER: tuple[MatchedIn, ...] = ("title", "description", "category", "tags", "lessons", "content")


async def _matches_in(
    uow: UnitOfWork, course_ids: list[uuid.UUID], query: str, looked_for: str
) -> dict[uuid.UUID, tuple[list[str], list[MatchedIn]]]:
    """`_public_matches` for courses whose fields are looked at for `looked_for` (the query, or its words that are
    not one of their tags); the highlights mark the query's words.

    The catalogue is public, so its highlights quote only what anyone may read (docs/security.md): the title and
    description, and the title of a lesson of the live version (the outline). Lesson bodies, transcripts, quiz
    prompts and materials rank a course but are never quoted: a match there is reported as `content`. The
    fragments are HTML-safe: the author's text is escaped and `<b>`/`</b>` are the only tags (`safe_fragment`)."""
    tsq, marked = _tsquery(looked_for), _headline_query(query)
    highlights: dict[uuid.UUID, list[str]] = {cid: [] for cid in course_ids}
    where: dict[uuid.UUID, set[str]] = {cid: set() for cid in course_ids}
    meta = await uow.session.execute(
        select(
            Course.id,
            _matches(Course.title, tsq),
            _matches(Course.description, tsq),
            _matches(Course.category, tsq),
            _shares_a_tag(query.split()),
            _matches(Course.title + " " + Course.description, tsq),
            _headline(Course.title + ". " + Course.description, marked),
        ).where(Course.id.in_(course_ids))
    )
    for cid, in_title, in_description, in_category, in_tags, in_either, fragment in meta.all():
        flags = {"title": in_title, "description": in_description, "category": in_category, "tags": in_tags}
        if in_either and not (in_title or in_description):  # the query's words are split between the two
            flags["title"] = flags["description"] = True
        where[cid].update(name for name, hit in flags.items() if hit)
        if in_either:
            highlights[cid].append(safe_fragment(fragment))
    live = and_(Course.id == ContentChunk.course_id, ContentChunk.version == Course.index_version)
    chunk_doc = CHUNK_DOCUMENT
    in_lesson_title = and_(ContentChunk.source_type == "lesson", _matches(ContentChunk.title, tsq))
    chunks = await uow.session.execute(
        select(
            ContentChunk.course_id,
            func.bool_or(in_lesson_title),
            func.bool_or(or_(_matches(ContentChunk.text, tsq), ~in_lesson_title)),
        )
        .join(Course, live)
        .where(ContentChunk.course_id.in_(course_ids), _matches(chunk_doc, tsq))
        .group_by(ContentChunk.course_id)
    )
    for cid, lessons, content in chunks.all():
        where[cid].update(name for name, hit in (("lessons", lessons), ("content", content)) if hit)
    titled = (
        select(
            ContentChunk.course_id,
            ContentChunk.title,
            func.row_number()
            .over(
                partition_by=ContentChunk.course_id,
                order_by=(
                    func.ts_rank_cd(_tsvector(ContentChunk.title), tsq).desc(),
                    ContentChunk.title,
                ),
            )
            .label("n"),
        )
        .join(Course, live)
        .where(ContentChunk.course_id.in_(course_ids), in_lesson_title)
        .subquery()
    )
    best = await uow.session.execute(
        select(titled.c.course_id, _headline(titled.c.title, marked)).where(titled.c.n == 1)
    )
    for cid, fragment in best.all():
        highlights[cid].append(safe_fragment(fragment))
    return {cid: (highlights[cid], [name for name in _MATCHED_ORDER if name in where[cid]]) for cid in course_ids}
