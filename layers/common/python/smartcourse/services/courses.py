"""Course authoring: courses, modules and lessons (structure in PostgreSQL, bodies in the document store)."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, literal_column, or_, select
from sqlalchemy.exc import IntegrityError

from smartcourse.adapters.documents import DocumentStore
from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as rules
from smartcourse.domain.events import DomainEvent
from smartcourse.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized, field_problem
from smartcourse.models import Course, CoursePrerequisite, Enrollment, Lesson, Module, User, utcnow
from smartcourse.schemas import (
    CourseAvailability,
    CourseDetail,
    CourseFacets,
    CourseIn,
    CoursePage,
    CourseSummary,
    CourseUpdateIn,
    Facet,
    LessonIn,
    LessonPublic,
    LessonUpdateIn,
    ModuleIn,
    ModulePublic,
    ModuleUpdateIn,
    UpdateIn,
)
from smartcourse.security import Principal
from smartcourse.services import accounts, catalog_cache, waitlist
from smartcourse.services.search import enrolled_reader, fold_for_filter, has_tags, is_enrolled, tag_words

LESSONS = "lesson_bodies"
VERSIONS = "course_versions"
MATERIALS = "materials"
#: What a version's snapshot keeps of each material (`publishing.snapshot_version`).
SNAPSHOT_MATERIAL_KEYS = ("id", "lesson_id", "filename", "content_type", "size", "sha256", "storage_key")


def snapshot_modules(modules: list[ModulePublic]) -> list[dict[str, Any]]:
    """The modules a version publishes, as its snapshot stores them: a module without lessons is left out (students
    would see an empty heading; it stays in the working copy, where the instructor fills it for a later version)."""
    return [m.model_dump(mode="json") for m in modules if m.lessons]


def snapshot_materials(materials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The materials a version publishes, as its snapshot stores them (students are served these, the index reads
    these)."""
    return [{k: m.get(k) for k in SNAPSHOT_MATERIAL_KEYS} for m in sorted(materials, key=lambda m: m["id"])]


def version_doc_id(course_id: uuid.UUID, version: int) -> str:
    return f"{course_id}:v{version}"


async def load_course(uow: UnitOfWork, course_id: uuid.UUID, *, lock: bool = False) -> Course:
    course = await uow.session.get(Course, course_id, with_for_update=lock)
    if course is None:
        raise NotFound("course not found", code="course_not_found")
    return course


async def visible_to(uow: UnitOfWork, principal: Principal | None, course: Course) -> bool:
    """Whether `GET /courses/{id}` shows `principal` this course at all: the owner and admins always; anyone a live
    course; its enrolled students (pending, active, completed) also once it is archived. Everyone else is told
    it does not exist (404), by every route."""
    if rules.can_see_draft(principal, course.instructor_id) or rules.is_live(course.status, course.content_version):
        return True
    return (
        principal is not None
        and rules.open_to_learners(course.status, course.content_version)
        and await is_enrolled(uow, principal.user_id, course.id)
    )


async def teaches_course(uow: UnitOfWork, principal: Principal, course_id: uuid.UUID) -> bool:
    """Whether the caller teaches the course (`domain.courses.teaches`: its instructor, or an admin): the reader a
    course-bound record (an enrollment, a generated quiz) has beside its own user."""
    teacher = await uow.session.scalar(select(Course.instructor_id).where(Course.id == course_id))
    return teacher is not None and rules.teaches(principal, teacher)


async def ensure_course_owner(uow: UnitOfWork, principal: Principal, course: Course) -> None:
    """The owner or an admin may change the course; anyone else gets the answer `GET /courses/{id}` gives them:
    404 `course_not_found` for a course they cannot see (another's draft: its existence is not revealed), else
    403 `not_course_owner`."""
    if rules.can_see_draft(principal, course.instructor_id):
        return
    if not await visible_to(uow, principal, course):
        raise NotFound("course not found", code="course_not_found")
    rules.ensure_owner(principal, course.instructor_id)


def reject_nulls(data: UpdateIn) -> None:
    """An update's rule for `null`: a field sent as null that cannot be empty is 422 `invalid_field` (leave the
    field out to keep its value); only the fields in the model's `NULLABLE` may be cleared that way (the OpenAPI
    schema says so: `schemas.UpdateIn`)."""
    if (key := data.null_refused()) is not None:
        message = f"{key} cannot be null"
        raise Invalid(message, code="invalid_field", details=field_problem(key, message, "null_not_allowed"))


async def _owned_course(uow: UnitOfWork, principal: Principal, course_id: uuid.UUID) -> Course:
    course = await load_course(uow, course_id, lock=True)
    await ensure_course_owner(uow, principal, course)
    if course.status == "archived":
        raise Conflict("the course is archived", code="course_archived")
    return course


#: pg_advisory_xact_lock key serialising prerequisite changes.
PREREQUISITES_LOCK_KEY = 0x5C_9E_4E_0


async def serialise_prerequisite_edits(uow: UnitOfWork) -> None:
    """Prerequisite changes take turns, so two opposite edits cannot both pass the cycle check. Take it before
    any course row lock: the rows an edit inserts check their foreign key with FOR KEY SHARE on the prerequisite's
    course row, which another edit holding that row FOR UPDATE while it waited here would block (a deadlock).
    Re-entrant within a transaction."""
    await uow.session.execute(select(func.pg_advisory_xact_lock(PREREQUISITES_LOCK_KEY)))


async def _set_prerequisites(
    uow: UnitOfWork, course_id: uuid.UUID, prereqs: list[uuid.UUID], *, owner_id: uuid.UUID, live: bool = False
) -> None:
    """Prerequisites are live courses or, while the course is being authored, the same instructor's own drafts. A
    course that is `live` (published, or being published) takes live prerequisites only (422
    `prerequisite_not_live`: nobody could enroll while one is missing from the catalogue); a cycle is refused
    (prerequisite_cycle)."""
    wanted = set(prereqs)
    if course_id in wanted:
        raise Invalid("a course cannot be its own prerequisite", code="invalid_prerequisite")
    if wanted:
        rows = (
            await uow.session.execute(
                select(Course.id, Course.title, Course.status, Course.content_version, Course.instructor_id).where(
                    Course.id.in_(wanted)
                )
            )
        ).all()
        # Someone else's draft is as good as unknown: its existence is not revealed.
        found = {r.id for r in rows if r.instructor_id == owner_id or rules.is_live(r.status, r.content_version)}
        missing = sorted(str(p) for p in wanted - found)
        if missing:
            raise Invalid("unknown prerequisite course", code="unknown_prerequisite", details={"missing": missing})
        not_live = [r for r in rows if not rules.is_live(r.status, r.content_version)]
        if live and not_live:
            raise prerequisites_not_live(not_live, code="prerequisite_not_live", doing="a live course")
        if archived := [r for r in not_live if r.status == "archived"]:  # can never be live again: not even a draft's
            raise prerequisites_not_live(archived, code="prerequisite_not_live", doing="a course")
        await serialise_prerequisite_edits(uow)  # taken already by an update (before its course row lock)
        reach = (
            select(CoursePrerequisite.prerequisite_id.label("id"))
            .where(CoursePrerequisite.course_id.in_(wanted))
            .cte("reach", recursive=True)
        )
        reach = reach.union(
            select(CoursePrerequisite.prerequisite_id).join(reach, CoursePrerequisite.course_id == reach.c.id)
        )
        if await uow.session.scalar(select(reach.c.id).where(reach.c.id == course_id).limit(1)) is not None:
            raise Invalid(
                "these prerequisites would make a cycle (a course would require itself)", code="prerequisite_cycle"
            )
    await uow.session.execute(delete(CoursePrerequisite).where(CoursePrerequisite.course_id == course_id))
    for p in wanted:
        uow.session.add(CoursePrerequisite(course_id=course_id, prerequisite_id=p))


def prerequisites_not_live(rows: Any, *, code: str, doing: str) -> Invalid:
    """422 naming the prerequisites (`rows`: id, title, status) that are not live courses, so the instructor knows
    which to publish first or remove."""
    named = sorted(rows, key=lambda r: (r.title, str(r.id)))
    listed = ", ".join(
        f"'{r.title}' ({r.id}, {'archived' if r.status == 'archived' else 'not published'})" for r in named
    )
    archived = sum(r.status == "archived" for r in named)
    if not archived:
        advice = "Publish them first, or remove them from the prerequisites"
    elif archived == len(named):
        advice = "Restore them first (POST /courses/{id}/restore), or remove them from the prerequisites"
    else:
        advice = "Publish the unpublished ones and restore the archived ones first, or remove them"
    return Invalid(
        f"{doing} can only require live courses; these prerequisites are not: {listed}. {advice}",
        code=code,
        details={"not_live": [{"id": str(r.id), "title": r.title, "status": r.status} for r in named]},
    )


async def ensure_prerequisites_live(uow: UnitOfWork, course_id: uuid.UUID, *, doing: str) -> None:
    """Every prerequisite of the course live, else 422 `prerequisites_not_live` naming the others: once the course is
    live, nobody could enroll in it while one is missing from the catalogue."""
    prerequisites = (
        await uow.session.execute(
            select(Course.id, Course.title, Course.status, Course.content_version)
            .join(CoursePrerequisite, CoursePrerequisite.prerequisite_id == Course.id)
            .where(CoursePrerequisite.course_id == course_id)
        )
    ).all()
    not_live = [r for r in prerequisites if not rules.is_live(r.status, r.content_version)]
    if not_live:
        raise prerequisites_not_live(not_live, code="prerequisites_not_live", doing=doing)


async def _prerequisites(uow: UnitOfWork, course_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        await uow.session.scalars(
            select(CoursePrerequisite.prerequisite_id).where(CoursePrerequisite.course_id == course_id)
        )
    )


async def create_course(
    *, uow: UnitOfWork, principal: Principal, data: CourseIn, documents: DocumentStore | None = None
) -> CourseDetail:
    rules.ensure_can_author(principal)
    # The role again, under a share lock on the account until this commits: an admin making the account a student
    # (which refuses an account that owns courses, `accounts._change_role`) waits for the course, or the course for
    # the change and is refused here; read before the lock, a course was created by a student (explore37 F6).
    role = await uow.session.scalar(select(User.role).where(User.id == principal.user_id).with_for_update(read=True))
    rules.ensure_can_author(replace(principal, role=role or ""))
    course = Course(
        id=uuid.uuid4(),
        instructor_id=principal.user_id,
        title=data.title,
        description=data.description,
        category=data.category,
        tags=data.tags,
        level=data.level,
        capacity=data.capacity,
        waitlist_enabled=data.waitlist_enabled,
        status="draft",
    )
    uow.session.add(course)
    await uow.flush()
    await _set_prerequisites(uow, course.id, data.prerequisites, owner_id=course.instructor_id)
    await uow.commit()
    if documents is not None:
        # As `GET /courses/{id}` and `PUT` answer the owner: with `unpublished_changes` and the index's fields
        # (explore78 F4: the create's answer lacked them, and an authoring screen read the course again).
        return await get_course(uow=uow, documents=documents, principal=principal, course_id=course.id)
    return CourseDetail(
        **CourseSummary.model_validate(course).model_dump(), prerequisites=data.prerequisites, modules=[]
    )


#: The words of `GET /courses?q=` that must each be in the title or the description (the rest are ignored).
MAX_Q_WORDS = 10


def _in_title_or_description(word: str) -> Any:
    """`word` inside the course's title or description, any case, as typed or with the catalogue's fold of accents
    and marks on both sides (`smartcourse_fold`): `espanol` finds "Español", and each word of `biology plant` is looked
    for on its own, so "Plant Biology" is found (explore75 F8: the whole text was one substring, as typed)."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    text = Course.title.op("||")(literal_column("' '")).op("||")(Course.description)
    folded_pattern = func.concat("%", func.lower(func.btrim(func.smartcourse_fold(escaped))), "%")
    return or_(
        text.ilike(pattern, escape="\\"),
        func.lower(func.smartcourse_fold(text)).like(folded_pattern, escape="\\"),
    )


async def list_courses(
    *,
    uow: UnitOfWork,
    principal: Principal | None,
    page: int,
    page_size: int,
    q: str | None,
    category: str | None,
    mine: bool = False,
    level: str | None = None,
    tags: list[str] | None = None,
    instructor_id: uuid.UUID | None = None,
    statuses: frozenset[str] | None = None,
) -> CoursePage:
    """Students and visitors see live courses; instructors also their own drafts; admins everything. `mine`: only
    the courses the caller owns, whatever their status, for anyone who can own courses (instructors and admins);
    see `ensure_can_ask_mine` for the others. `instructor_id`: only that instructor's courses, of those the caller
    sees (an id that owns none, or names no instructor at all, gives an empty page, like any other filter).
    `statuses`: only the courses in these, of those the caller sees (explore77 F10: an admin's `?status=archived` was
    ignored, every course listed)."""
    live = Course.live()
    stmt = select(Course)
    if mine:
        stmt = stmt.where(Course.instructor_id == ensure_can_ask_mine(principal).user_id)
    elif principal is not None and principal.is_admin:
        pass
    elif principal is not None and principal.role == "instructor":
        stmt = stmt.where(or_(live, Course.instructor_id == principal.user_id))
    else:
        stmt = stmt.where(live)
    if instructor_id is not None:
        stmt = stmt.where(Course.instructor_id == instructor_id)
    if statuses:
        stmt = stmt.where(Course.status.in_(sorted(statuses)))
    if q:
        # Words as a person splits them: "SQL:", "fundamentals." and `"sql"` are SQL and fundamentals (explore76 F9).
        stmt = stmt.where(*(_in_title_or_description(word) for word in re.findall(r"\w+", q)[:MAX_Q_WORDS]))
    if category:
        stmt = stmt.where(fold_for_filter(Course.category) == fold_for_filter(category.strip()))
    if level:
        stmt = stmt.where(func.lower(Course.level) == level.strip().lower())
    if tags and tag_words(tags):
        stmt = stmt.where(has_tags(tags))
    total = await uow.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = await uow.session.scalars(
        stmt.order_by(Course.created_at.desc(), Course.id).offset((page - 1) * page_size).limit(page_size)
    )
    return CoursePage(
        items=[CourseSummary.model_validate(c) for c in rows], total=total, page=page, page_size=page_size
    )


def ensure_can_ask_mine(caller: Principal | None) -> Principal:
    """`GET /courses?mine=true` lists the courses the caller owns, so it needs a caller who can own some: anonymous,
    401 `not_authenticated`; a student, 422 `mine_not_for_students` pointing to `GET /enrollments/my-courses` (the
    courses a student is enrolled in), never the public catalogue as if it were theirs."""
    if caller is None:
        raise Unauthorized("mine=true lists your own courses: log in as their instructor", code="not_authenticated")
    if caller.role not in rules.AUTHOR_ROLES:
        raise Invalid(
            "mine=true lists the courses you own (instructors and admins); "
            "the courses you are enrolled in are at GET /enrollments/my-courses",
            code="mine_not_for_students",
            details={"field": "mine"},
        )
    return caller


async def catalogue_page(
    container: Any,
    *,
    caller: Principal | None,
    page: int,
    page_size: int,
    q: str | None,
    category: str | None,
    level: str | None,
    tags: list[str],
    mine: bool,
    instructor_id: uuid.UUID | None = None,
    statuses: frozenset[str] | None = None,
) -> CoursePage | catalog_cache.CachedJson:
    """`GET /courses`. `caller` holds the signed claims of the caller's token: anyone but an instructor or an admin
    gets the public catalogue (the same page for everyone: cached, and no account lookup, since an anonymous
    caller gets that very page); instructors (their drafts too) and admins (everything) are checked against their
    account and read fresh. `mine=true` is for instructors and admins only (`ensure_can_ask_mine`)."""
    if mine:
        ensure_can_ask_mine(caller)
    principal: Principal | None = None
    if caller is not None and caller.role in ("admin", "instructor"):
        async with container.uow() as uow:
            principal = await accounts.authenticate(uow=uow, claims=caller)

    async def compute() -> CoursePage:
        async with container.uow() as uow:
            found = await list_courses(
                uow=uow,
                principal=principal,
                page=page,
                page_size=page_size,
                q=q,
                category=category,
                level=level,
                tags=tags,
                mine=mine,
                instructor_id=instructor_id,
                statuses=statuses,
            )
            if not mine:
                return found
            # The owner's own list says which courses have edits students do not see yet, as each course's page does.
            changed = await unpublished_changes(uow, container.documents, [c.id for c in found.items])
        items = [c.model_copy(update={"unpublished_changes": changed.get(c.id)}) for c in found.items]
        return found.model_copy(update={"items": items})

    if principal is not None and (principal.is_admin or principal.role == "instructor"):
        return await compute()  # their view includes drafts: not the shared catalogue page
    # Every filter is part of the key (`catalog_cache.page_key`); the id in its canonical spelling, so an upper-case or
    # hyphen-less id shares the page of the usual one.
    params = {
        "q": q,
        "category": category,
        "level": level,
        "tags": tags,
        "instructor": str(instructor_id) if instructor_id is not None else None,
        "page": page,
        "size": page_size,
    }
    if statuses:  # in the key only when asked: the pages cached without it keep theirs
        params["status"] = sorted(statuses)
    return await catalog_cache.cached_page(container, kind="list", params=params, compute=compute)


#: The tags `GET /courses/facets` lists, the most used first.
FACET_TAGS = 200


async def facets(container: Any) -> catalog_cache.CachedJson:
    """`GET /courses/facets`: the categories, levels and tags of the live courses, each with its number of courses
    and spelled as most of them spell it (the filters match any case), most used first; the public catalogue's, cached
    as its pages are (explore78 F12: a filter sidebar had to walk the whole catalogue)."""

    async def compute() -> CourseFacets:
        live = Course.live()
        async with container.uow() as uow:
            total = await uow.session.scalar(select(func.count()).select_from(Course).where(live)) or 0
            categories = await _facet(uow, select(Course.category.label("value")).where(live))
            levels = await _facet(uow, select(Course.level.label("value")).where(live, Course.level.is_not(None)))
            # One row per course and tag (a set-returning function in the select list: no second FROM).
            tags = await _facet(uow, select(func.unnest(Course.tags).label("value")).where(live), limit=FACET_TAGS)
        return CourseFacets(categories=categories, levels=levels, tags=tags, total=total)

    return await catalog_cache.cached_page(container, kind="facets", params={}, compute=compute)


async def _facet(uow: UnitOfWork, values: Any, *, limit: int | None = None) -> list[Facet]:
    """The `value` column of the rows `values` selects, grouped as the filters compare them (any case, any accent:
    `search.fold_for_filter`): the commonest spelling, and the count."""
    rows = values.subquery()
    grouped = fold_for_filter(rows.c.value)
    stmt = select(grouped, rows.c.value, func.count()).group_by(grouped, rows.c.value)
    spellings: dict[str, list[tuple[int, str]]] = {}
    for key, spelled, n in await uow.session.execute(stmt):
        if spelled and str(spelled).strip():
            spellings.setdefault(key, []).append((int(n), spelled))
    out = [
        Facet(value=min(forms, key=lambda f: (-f[0], f[1]))[1], count=sum(n for n, _ in forms))  # ties: "Science"
        for forms in spellings.values()
    ]
    out.sort(key=lambda f: (-f.count, f.value.lower()))
    return out[:limit] if limit else out


async def _structure_rows(uow: UnitOfWork, course_id: uuid.UUID) -> tuple[list[Module], list[Lesson]]:
    return await _structures_rows(uow, [course_id])


async def _structures_rows(uow: UnitOfWork, course_ids: list[uuid.UUID]) -> tuple[list[Module], list[Lesson]]:
    """The modules and the lessons of the courses, each in their outline's order (two statements)."""
    modules = list(
        await uow.session.scalars(
            select(Module).where(Module.course_id.in_(course_ids)).order_by(Module.position, Module.created_at)
        )
    )
    lessons = list(
        await uow.session.scalars(
            select(Lesson).where(Lesson.course_id.in_(course_ids)).order_by(Lesson.position, Lesson.created_at)
        )
    )
    return modules, lessons


async def _bodies(documents: DocumentStore, lessons: list[Lesson]) -> dict[str, Any]:
    return await documents.get_many(LESSONS, [str(lesson.id) for lesson in lessons])


def _assemble(modules: list[Module], lessons: list[Lesson], bodies: dict[str, Any]) -> list[ModulePublic]:
    by_module: dict[uuid.UUID, list[LessonPublic]] = {m.id: [] for m in modules}
    for lesson in lessons:
        body = {k: v for k, v in bodies.get(str(lesson.id), {}).items() if k != "type"}
        by_module[lesson.module_id].append(
            LessonPublic(
                id=lesson.id,
                module_id=lesson.module_id,
                title=lesson.title,
                type=lesson.type,
                position=lesson.position,
                **body,
            )
        )
    return [ModulePublic(id=m.id, title=m.title, position=m.position, lessons=by_module[m.id]) for m in modules]


async def build_structure(uow: UnitOfWork, documents: DocumentStore, course_id: uuid.UUID) -> list[ModulePublic]:
    """The working copy: modules and lessons in order, with their bodies."""
    modules, lessons = await _structure_rows(uow, course_id)
    return _assemble(modules, lessons, await _bodies(documents, lessons))


async def working_outline(container: Any, course_id: uuid.UUID) -> list[ModulePublic]:
    """The working copy's modules and lessons with their bodies, read as `build_structure` but with the connection
    back in the pool before the document reads (a request holds one pooled connection at a time)."""
    async with container.uow() as uow:
        modules, lessons = await _structure_rows(uow, course_id)
    return _assemble(modules, lessons, await _bodies(container.documents, lessons))


async def _release(uow: UnitOfWork) -> None:
    """End a read-only transaction so its connection is back in the pool before the document reads that follow:
    a request holds one pooled connection at a time (see docs/architecture.md, "Connection pools"). Not while its
    commit is held (`UnitOfWork.held`: a request's Idempotency-Key): the transaction has writes still to commit."""
    if uow.held:
        return
    await uow.session.close()


async def _working_copy(uow: UnitOfWork, documents: DocumentStore, course: Course) -> CourseDetail:
    """What the owner and admins see: the working copy with its bodies, and the index status (never cached)."""
    summary = CourseSummary.model_validate(course).model_dump()
    prereqs = await _prerequisites(uow, course.id)
    modules, lessons = await _structure_rows(uow, course.id)
    await _release(uow)
    structure = _assemble(modules, lessons, await _bodies(documents, lessons))
    return CourseDetail(
        **summary,
        prerequisites=prereqs,
        modules=structure,
        index_status=course.index_status,
        index_version=course.index_version,
        publish_report=course.publish_report,
        unpublished_changes=await differs_from_live(documents, course, structure),
    )


async def differs_from_live(documents: DocumentStore, course: Course, structure: list[ModulePublic]) -> bool:
    """Whether the working copy (modules, lessons, materials) is not what the live version holds: an instructor's
    view is the working copy, and without this they could not tell it from what students see (explore11 F6). A
    course never published differs by definition."""
    if course.content_version < 1:
        return True
    live = await documents.get(VERSIONS, version_doc_id(course.id, course.content_version))
    if _modules_differ(live, structure):
        return True
    return _materials_differ(live, await documents.find(MATERIALS, {"course_id": str(course.id)}))


def _modules_differ(live: dict[str, Any] | None, structure: list[ModulePublic]) -> bool:
    if live is None:
        return True
    # Through the model on both sides: an older snapshot may hold what the model now reads differently ("" for null).
    published = [ModulePublic.model_validate(m).model_dump(mode="json") for m in live.get("modules") or []]
    return bool(published != snapshot_modules(structure))


def _materials_differ(live: dict[str, Any] | None, materials: list[dict[str, Any]]) -> bool:
    listed = (live or {}).get("materials")
    if listed is None:  # a version frozen before snapshots listed their materials
        return True
    # A material deleted since the publish left the live version too (students no longer see it): what is left of
    # the snapshot's list is what they see (explore31 F5: one deletion read as unpublished changes for good).
    exists = {str(m.get("id")) for m in materials}
    return bool([m for m in listed if str(m.get("id")) in exists] != snapshot_materials(materials))


async def unpublished_changes(
    uow: UnitOfWork, documents: DocumentStore, course_ids: list[uuid.UUID]
) -> dict[uuid.UUID, bool]:
    """`differs_from_live` of each course, for a list (`GET /courses?mine=true`): their modules and lessons in two
    statements (the session is then released), their bodies and live versions in one read each, and the materials
    of those whose modules match the live version."""
    if not course_ids:
        return {}
    versions = dict(
        (await uow.session.execute(select(Course.id, Course.content_version).where(Course.id.in_(course_ids)))).all()
    )
    modules, lessons = await _structures_rows(uow, course_ids)
    await _release(uow)
    bodies = await _bodies(documents, lessons)
    live_ids = {cid: version_doc_id(cid, v) for cid, v in versions.items() if v >= 1}
    lives = await documents.get_many(VERSIONS, list(live_ids.values())) if live_ids else {}
    modules_of: dict[uuid.UUID, list[Module]] = {}
    lessons_of: dict[uuid.UUID, list[Lesson]] = {}
    for m in modules:
        modules_of.setdefault(m.course_id, []).append(m)
    for x in lessons:
        lessons_of.setdefault(x.course_id, []).append(x)
    out: dict[uuid.UUID, bool] = {}
    for cid in versions:
        live = lives.get(live_ids[cid]) if cid in live_ids else None
        structure = _assemble(modules_of.get(cid, []), lessons_of.get(cid, []), bodies)
        out[cid] = _modules_differ(live, structure) or _materials_differ(
            live, await documents.find(MATERIALS, {"course_id": str(cid)})
        )
    return out


async def get_course(
    *, uow: UnitOfWork, documents: DocumentStore, principal: Principal | None, course_id: uuid.UUID
) -> CourseDetail:
    """Owners and admins see the working copy and the index status; enrolled students the published version
    without answers, also once the course is archived; everyone else the published outline (titles and lesson
    types, no bodies or materials) of a live course, and 404 for any other. Uncached (after an update, say);
    `GET /courses/{id}` reads through `read_course`."""
    course = await load_course(uow, course_id)
    if rules.can_see_draft(principal, course.instructor_id):
        return await _working_copy(uow, documents, course)
    enrolled = (
        principal is not None
        and rules.open_to_learners(course.status, course.content_version)
        and await is_enrolled(uow, principal.user_id, course_id)
    )
    if not (enrolled or rules.is_live(course.status, course.content_version)):
        raise NotFound("course not found", code="course_not_found")
    summary = CourseSummary.model_validate(course).model_dump()
    prereqs = await _prerequisites(uow, course_id)
    await _release(uow)
    view = "student" if enrolled else "outline"
    return await published_view(documents, course, summary=summary, prerequisites=prereqs, view=view)


async def availability(*, uow: UnitOfWork, principal: Principal | None, course_id: uuid.UUID) -> CourseAvailability:
    """`GET /courses/{id}/availability`: the seats now, for whoever sees the course (`visible_to`; 404 else)."""
    course = await load_course(uow, course_id)
    if not await visible_to(uow, principal, course):
        raise NotFound("course not found", code="course_not_found")
    waitlisted = await uow.session.scalar(
        select(func.count()).where(Enrollment.course_id == course_id, Enrollment.status == "waitlisted")
    )
    left = None if course.capacity is None else max(course.capacity - course.seats_taken, 0)
    if not rules.is_live(course.status, course.content_version):
        state = "closed"
    elif left is None or left > 0:
        state = "open"
    else:
        state = "waitlist" if course.waitlist_enabled else "full"
    return CourseAvailability(
        course_id=course.id,
        state=state,
        capacity=course.capacity,
        seats_taken=course.seats_taken,
        seats_left=left,
        waitlist_enabled=course.waitlist_enabled,
        waitlisted=waitlisted or 0,
    )


async def published_course(container: Any, *, course_id: uuid.UUID, view: str) -> CourseDetail:
    """A live course as `view` sees it, read with one connection at a time (the cache's compute step). The
    `student` view (asked for enrolled students only) is also given of an archived course: an archive withdraws
    it from the catalogue, not from its learners."""
    async with container.uow() as uow:
        course = await load_course(uow, course_id)
        readable = rules.is_live(course.status, course.content_version) or (
            view == "student" and rules.open_to_learners(course.status, course.content_version)
        )
        if not readable:
            raise NotFound("course not found", code="course_not_found")
        summary = CourseSummary.model_validate(course).model_dump()
        prereqs = await _prerequisites(uow, course_id)
    return await published_view(container.documents, course, summary=summary, prerequisites=prereqs, view=view)


async def read_course(
    container: Any, *, caller: Principal | None, course_id: uuid.UUID
) -> CourseDetail | catalog_cache.CachedJson:
    """`GET /courses/{id}`. `caller` holds the *signed claims* of the caller's token, not yet checked against the
    account: the public outline needs no account check (anyone gets it), so an anonymous caller or a student who
    is not enrolled is answered from the cache without touching the users table. An enrolled student's view
    (lesson bodies) is given only after the account check; instructors and admins are always checked, and the
    owner and admins get the working copy, fresh from the database (a model, not cached JSON)."""
    enrolled = False
    if caller is not None and caller.role in ("admin", "instructor"):
        async with container.uow() as uow:
            principal = await accounts.authenticate(uow=uow, claims=caller)
            course = await load_course(uow, course_id)
            if rules.can_see_draft(principal, course.instructor_id):
                return await _working_copy(uow, container.documents, course)
            enrolled = await is_enrolled(uow, principal.user_id, course_id)
    elif caller is not None:
        # One read, on a bare pooled connection in autocommit: one round trip, no ORM session (a student reading the
        # course is launch day's most frequent authenticated request).
        async with container.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            enrolled = await enrolled_reader(conn, caller, course_id)
    view = "student" if enrolled else "outline"

    async def compute() -> CourseDetail:
        return await published_course(container, course_id=course_id, view=view)

    return await catalog_cache.cached_course(
        container, course_id=course_id, view=view, compute=compute, public=view == "outline"
    )


OUTLINE_FIELDS = ("id", "module_id", "title", "type", "position")


async def published_view(
    documents: DocumentStore, course: Course, *, summary: dict[str, Any], prerequisites: list[uuid.UUID], view: str
) -> CourseDetail:
    """The live version as an enrolled student (`student`: bodies, no answers) or anyone else (`outline`) sees it."""
    snapshot = await documents.get(VERSIONS, version_doc_id(course.id, course.content_version))
    raw_modules: list[dict[str, Any]] = (snapshot or {}).get("modules", [])

    def lesson_view(lesson: dict[str, Any]) -> LessonPublic:
        if view == "outline":
            return LessonPublic(**{k: lesson[k] for k in OUTLINE_FIELDS if k in lesson})
        return LessonPublic(**rules.student_view_of_lesson(lesson))

    modules = [
        ModulePublic(
            id=m["id"], title=m["title"], position=m["position"], lessons=[lesson_view(x) for x in m["lessons"]]
        )
        for m in raw_modules
    ]
    return CourseDetail(**summary, prerequisites=prerequisites, modules=modules)


async def update_course(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal,
    course_id: uuid.UUID,
    data: CourseUpdateIn,
) -> CourseDetail:
    if data.prerequisites:
        # One lock order for every prerequisite edit: the advisory lock, then the course row (see
        # `serialise_prerequisite_edits`).
        await serialise_prerequisite_edits(uow)
    course = await _owned_course(uow, principal, course_id)
    reject_nulls(data)  # null clears level and capacity (no level, no seat limit): CourseUpdateIn.NULLABLE
    if data.instructor_id is not None and data.instructor_id != course.instructor_id:
        await _ensure_new_owner(uow, principal, data.instructor_id)
    fields = data.model_dump(exclude_unset=True, exclude={"prerequisites"})
    for key, value in fields.items():
        setattr(course, key, value)
    if data.prerequisites is not None:
        live = course.status == "publishing" or rules.is_live(course.status, course.content_version)
        await _set_prerequisites(uow, course.id, data.prerequisites, owner_id=course.instructor_id, live=live)
    course.updated_at = utcnow()
    try:
        if "capacity" in fields or data.prerequisites is not None:
            # More seats (or none counted): they go to the waitlist's head first, in this transaction, never to
            # whoever enrolls next. Fewer prerequisites: a student passed over for one may be eligible now, and a
            # free seat is theirs (explore37 F2).
            await waitlist.promote_waitlist(uow, course)  # a read in it flushes the capacity: the check may fail there
        await uow.commit()
    except IntegrityError as exc:
        await uow.session.rollback()
        taken = await uow.session.scalar(select(Course.seats_taken).where(Course.id == course_id))
        # The lowest capacity allowed, so the instructor need not count the roster (explore29 F9).
        raise Conflict(
            f"capacity cannot go below the {taken} seats already taken",
            code="capacity_below_enrolled",
            details={"seats_taken": taken},
        ) from exc
    return await get_course(uow=uow, documents=documents, principal=principal, course_id=course_id)


async def _ensure_new_owner(uow: UnitOfWork, principal: Principal, user_id: uuid.UUID) -> None:
    """A course is handed to another account by an admin only (explore77 F2: a departing trainer's courses had to be
    archived before their account could be erased), and to an active instructor or admin. The account is share-locked
    until this commits, as `create_course` locks its author: a role change making it a student waits, then is refused
    (it owns a course), or is made first and refused here."""
    if not principal.is_admin:
        raise Forbidden("only an admin hands a course to another instructor", code="admin_only")
    row = (
        await uow.session.execute(
            select(User.role, User.is_active, User.erased_at).where(User.id == user_id).with_for_update(read=True)
        )
    ).first()
    if row is None:
        raise NotFound("no such account", code="user_not_found", details={"instructor_id": str(user_id)})
    if row.role not in ("instructor", "admin") or not row.is_active or row.erased_at is not None:
        raise Conflict(
            "a course goes to an active instructor or admin account",
            code="not_an_instructor",
            details={"role": row.role, "is_active": row.is_active and row.erased_at is None},
        )


async def archive_course(*, uow: UnitOfWork, principal: Principal, course_id: uuid.UUID) -> CourseSummary:
    """Withdraw the course from the catalogue and from new enrollments (idempotent). Its enrolled learners keep
    their records and keep reading and learning the version they enrolled in (`get_course`, `visible_to`); its
    waitlisted students are taken off the waitlist and told (`waitlist.release_waitlist`).

    Not while a publish runs (409 `course_publishing`): the run would go on extracting and indexing an archived
    course and fail at its last step as if publishing had broken. Archive once it has ended, or cancel it
    (`publishing.cancel_publish`) first (the row lock orders this against the request, the go-live and a cancel,
    which take it too)."""
    course = await load_course(uow, course_id, lock=True)
    await ensure_course_owner(uow, principal, course)
    if course.status == "publishing":
        raise Conflict(
            "the course is being published: wait for the publish to end, or cancel it "
            f"(POST /courses/{course.id}/publish/cancel), then archive it",
            code="course_publishing",
            details={"workflow_id": course.publish_workflow_id},
        )
    if course.status != "archived":
        was_live = rules.is_live(course.status, course.content_version)
        course.status = "archived"
        course.updated_at = utcnow()
        # Nobody will be admitted any more: the waitlist is released (each student dropped and told).
        await waitlist.release_waitlist(uow, course, course.updated_at)
        await _course_event(uow, course, "course.archived", was_live=was_live)
    return CourseSummary.model_validate(course)


async def _course_event(uow: UnitOfWork, course: Course, event_type: str, **data: Any) -> None:
    """Commit the course's change with its event (the course, its instructor, and `data`)."""
    payload = {"course_id": str(course.id), "instructor_id": str(course.instructor_id), **data}
    uow.emit(DomainEvent(event_type, str(course.id), payload))
    await uow.commit()


async def refuse_if_owner_erased(uow: UnitOfWork, course: Course, doing: str) -> None:
    """409 `instructor_erased`: a course whose instructor's account was erased is not put live again (explore71 F2:
    restored or published, it issued valid certificates taught by "Erased account", what the erasure's
    `owns_courses` refusal exists to prevent). It stays as it is, readable by admins."""
    erased = await uow.session.scalar(select(User.erased_at).where(User.id == course.instructor_id))
    if erased is not None:
        raise Conflict(
            f"this course's instructor account was erased: {doing} is refused (it stays as it is)",
            code="instructor_erased",
        )


async def restore_course(*, uow: UnitOfWork, principal: Principal, course_id: uuid.UUID) -> CourseSummary:
    """Undo an archive (idempotent: any other course is answered as it is). A course that was published goes live
    again with the version and index it had (catalogue, search, new enrollments); one never published is a draft
    again. The students its archive took off the waitlist stay dropped: they were told, and may enroll again."""
    course = await load_course(uow, course_id, lock=True)
    await ensure_course_owner(uow, principal, course)
    if course.status == "archived":
        await refuse_if_owner_erased(uow, course, "restoring it")
        live = course.content_version > 0
        if live:  # a dead end otherwise: nobody could enroll (a prerequisite archived since, say)
            await ensure_prerequisites_live(uow, course.id, doing="a restored course")
        course.status = "published" if live else "draft"
        course.updated_at = utcnow()
        await _course_event(uow, course, "course.restored", is_live=live)
    return CourseSummary.model_validate(course)


# --- modules --------------------------------------------------------------------------------


async def _sequence(
    uow: UnitOfWork, model: Any, parent: Any, parent_id: uuid.UUID, item: Any = None, index: int | None = None
) -> None:
    """Number the children of one parent (a course's modules, a module's lessons) 0..n-1 in the order readers see
    them (position, then creation), with `item` moved to `index` (the end when None or past the end) and the
    siblings shifted around it. Callers hold the course row's lock (`_owned_course`): one course's structure
    changes one request at a time, so the numbering stays whole."""
    rows = await uow.session.scalars(
        select(model).where(parent == parent_id).order_by(model.position, model.created_at, model.id)
    )
    siblings = [row for row in rows if item is None or row.id != item.id]
    if item is not None:
        siblings.insert(len(siblings) if index is None else min(index, len(siblings)), item)
    for number, row in enumerate(siblings):
        if row.position != number:
            row.position = number


async def add_module(*, uow: UnitOfWork, principal: Principal, course_id: uuid.UUID, data: ModuleIn) -> ModulePublic:
    course = await _owned_course(uow, principal, course_id)
    module = Module(id=uuid.uuid4(), course_id=course.id, title=data.title, position=0)
    await _sequence(uow, Module, Module.course_id, course.id, module, data.position)
    uow.session.add(module)
    course.updated_at = utcnow()
    await uow.commit()
    return ModulePublic(id=module.id, title=module.title, position=module.position, lessons=[])


async def _owned_module(uow: UnitOfWork, principal: Principal, course_id: uuid.UUID, module_id: uuid.UUID) -> Module:
    course = await _owned_course(uow, principal, course_id)
    module = await uow.session.get(Module, module_id)
    if module is None or module.course_id != course.id:
        raise NotFound("module not found", code="module_not_found")
    course.updated_at = utcnow()
    return module


async def update_module(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    data: ModuleUpdateIn,
) -> ModulePublic:
    module = await _owned_module(uow, principal, course_id, module_id)
    reject_nulls(data)
    if data.title is not None:
        module.title = data.title
    if data.position is not None:
        await _sequence(uow, Module, Module.course_id, module.course_id, module, data.position)
    await uow.commit()
    structure = await build_structure(uow, documents, course_id)
    return next(m for m in structure if m.id == module_id)


async def delete_module(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
) -> None:
    module = await _owned_module(uow, principal, course_id, module_id)
    lessons = {
        row.id: row.title
        for row in await uow.session.execute(select(Lesson.id, Lesson.title).where(Lesson.module_id == module.id))
    }
    await uow.session.delete(module)
    await uow.flush()
    await _sequence(uow, Module, Module.course_id, module.course_id)  # close the gap
    await uow.commit()
    # Bodies go after the rows: a crash in between leaves an orphan body, never a lesson without one.
    await _detach_materials(documents, course_id, lessons)
    for lesson_id in lessons:
        await documents.delete(LESSONS, str(lesson_id))


async def _detach_materials(documents: DocumentStore, course_id: uuid.UUID, lessons: dict[uuid.UUID, str]) -> None:
    """The course's materials attached to deleted lessons (`lessons`: id → title) become the course's own
    (`lesson_id` null): they named a lesson no version has, which an upload naming it is refused for (404
    `lesson_not_found`). Each keeps `detached_from` (the lesson's id and title), which the owner's material list
    shows, so a handout that became course-wide with its lesson's deletion is seen and can be deleted (explore29
    F3: it turned course-wide without a word, and was published so)."""
    gone = {str(lesson_id): title for lesson_id, title in lessons.items()}
    for doc in await documents.find(MATERIALS, {"course_id": str(course_id)}):
        lesson_id = doc.get("lesson_id")
        if lesson_id in gone:
            detached = {"lesson_id": lesson_id, "title": gone[lesson_id]}
            await documents.put(MATERIALS, str(doc["id"]), {**doc, "lesson_id": None, "detached_from": detached})


# --- lessons --------------------------------------------------------------------------------


async def add_lesson(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    data: LessonIn,
    lesson_id: uuid.UUID | None = None,
) -> LessonPublic:
    """Add a lesson to the module (`lesson_id`: its id, chosen by a caller that records it in the same transaction)."""
    module = await _owned_module(uow, principal, course_id, module_id)
    lesson_id = lesson_id or uuid.uuid4()
    lesson = Lesson(
        id=lesson_id, module_id=module.id, course_id=course_id, title=data.title, type=data.type, position=0
    )
    await _sequence(uow, Lesson, Lesson.module_id, module.id, lesson, data.position)
    body = data.body()
    # Body first: a crash before the commit leaves an unreferenced body, never a lesson without one.
    await documents.put(LESSONS, str(lesson_id), body)
    uow.session.add(lesson)
    position = lesson.position
    await uow.commit()
    return LessonPublic(
        id=lesson_id,
        module_id=module.id,
        title=data.title,
        type=data.type,
        position=position,
        **{k: v for k, v in body.items() if k != "type"},
    )


async def _owned_lesson(
    uow: UnitOfWork, principal: Principal, course_id: uuid.UUID, module_id: uuid.UUID, lesson_id: uuid.UUID
) -> Lesson:
    module = await _owned_module(uow, principal, course_id, module_id)
    lesson = await uow.session.get(Lesson, lesson_id, with_for_update=True)
    if lesson is None or lesson.module_id != module.id:
        raise NotFound("lesson not found", code="lesson_not_found")
    return lesson


async def update_lesson(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    lesson_id: uuid.UUID,
    data: LessonUpdateIn,
) -> LessonPublic:
    lesson = await _owned_lesson(uow, principal, course_id, module_id, lesson_id)
    if data.id is not None and data.id != lesson.id:
        message = "id names another lesson than the path's: a lesson's id does not change"
        raise Invalid(message, code="invalid_field", details=field_problem("id", message))
    if data.type is not None and data.type != lesson.type:
        # Sent back as read, the type is accepted; another is refused in words (explore80 F11: "Extra inputs").
        message = f"a lesson's type does not change ({lesson.type} here): add a {data.type} lesson instead"
        raise Invalid(message, code="invalid_field", details=field_problem("type", message))
    # A field of another type is refused whatever its value, as a create refuses it: `{"transcript": null}` on a
    # text lesson is "a text lesson does not take transcript", not a no-op, and is checked before the rule for null.
    if problem := LessonIn.foreign_problem(lesson.type, data.model_fields_set):
        fields = LessonIn.foreign_fields(lesson.type, data.model_fields_set)
        raise invalid_lesson([{"field": f, "message": problem, "type": "value_error"} for f in fields])
    reject_nulls(data)  # a video's transcript is optional, null removes it: LessonUpdateIn.NULLABLE
    current = await documents.get(LESSONS, str(lesson.id)) or {"type": lesson.type}
    merged: dict[str, Any] = {k: v for k, v in current.items() if k != "type"}
    merged.update(
        data.model_dump(exclude_unset=True, exclude={"id", "title", "position", "module_id", "type"}, mode="json")
    )
    try:
        candidate = LessonIn(title=data.title or lesson.title, type=lesson.type, **merged)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise invalid_lesson(problems(exc)) from exc
    if data.title is not None:
        lesson.title = data.title
    if data.module_id is not None and data.module_id != lesson.module_id:
        # A move (explore11 F8: restructuring meant delete and re-create, which lost students' progress on it).
        target = await uow.session.get(Module, data.module_id)
        if target is None or target.course_id != course_id:
            raise NotFound("module not found in this course", code="module_not_found")
        left = lesson.module_id
        lesson.module_id = target.id
        await uow.session.flush()
        await _sequence(uow, Lesson, Lesson.module_id, left)  # close the gap it left
        await _sequence(uow, Lesson, Lesson.module_id, target.id, lesson, data.position)
    elif data.position is not None:
        await _sequence(uow, Lesson, Lesson.module_id, lesson.module_id, lesson, data.position)
    lesson.updated_at = utcnow()
    body = candidate.body()
    await documents.put(LESSONS, str(lesson.id), body)
    await uow.commit()
    return LessonPublic(
        id=lesson.id,
        module_id=lesson.module_id,
        title=lesson.title,
        type=lesson.type,
        position=lesson.position,
        **{k: v for k, v in body.items() if k != "type"},
    )


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each problem of a lesson model that failed validation, as the request validation lists them."""
    return [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())) or "body",
            "message": str(err.get("msg", "invalid")).removeprefix("Value error, "),
            "type": str(err.get("type")),
        }
        for err in exc.errors()
    ]


def invalid_lesson(found: list[dict[str, str]]) -> Invalid:
    """422 `invalid_lesson` naming what is wrong with the lesson the update would make ("a text lesson does not
    take video_url"), as a create's 422 does (`LessonIn`'s rules are `schemas.rule_error`s, which the request
    validation answers the same way); `details` lists each problem as the request validation does."""
    return Invalid(
        "; ".join(dict.fromkeys(p["message"] for p in found)) or "invalid lesson",
        code="invalid_lesson",
        details=found,
    )


async def delete_lesson(
    *,
    uow: UnitOfWork,
    documents: DocumentStore,
    principal: Principal,
    course_id: uuid.UUID,
    module_id: uuid.UUID,
    lesson_id: uuid.UUID,
) -> None:
    lesson = await _owned_lesson(uow, principal, course_id, module_id, lesson_id)
    await uow.session.delete(lesson)
    await uow.flush()
    await _sequence(uow, Lesson, Lesson.module_id, lesson.module_id)  # close the gap
    await uow.commit()
    await _detach_materials(documents, course_id, {lesson_id: lesson.title})
    await documents.delete(LESSONS, str(lesson_id))
