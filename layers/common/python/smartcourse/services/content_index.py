"""The publishing pipeline's content steps: extract → chunk → embed → index → verify, then the atomic switch.

Each step is idempotent (it replaces what an earlier attempt of the same version left) and hands its output to
the next through durable storage, not through workflow payloads: sections as a JSON file in the file store,
chunks as `content_chunks` rows, vectors in the embedding cache, the index as a LanceDB table per version.
The version becomes searchable only in the transaction that marks the course ready (`courses.index_version`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, insert, select, update

from smartcourse.content.bounded import extract_material_bounded
from smartcourse.content.chunk import chunk_sections
from smartcourse.content.extract import ExtractionError, Section, sections_from_snapshot
from smartcourse.db import UnitOfWork
from smartcourse.errors import Conflict, Invalid, NotFound
from smartcourse.metrics import MATERIALS_SKIPPED
from smartcourse.models import ContentChunk, Course, WorkflowRun, iso, utcnow
from smartcourse.ports import Chunk, DocumentStore, FileStore, VectorIndex
from smartcourse.services import operations
from smartcourse.services.courses import VERSIONS, version_doc_id
from smartcourse.services.notifications import create_notification

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

EMBED_BATCH = 64


def staging_key(course_id: uuid.UUID, version: int) -> str:
    return f"publish-staging/{course_id}/v{version}/sections.json"


async def _snapshot(documents: DocumentStore, course_id: uuid.UUID, version: int) -> dict[str, Any]:
    snapshot = await documents.get(VERSIONS, version_doc_id(course_id, version))
    if snapshot is None:
        raise NotFound(f"content version {version} has no snapshot", code="snapshot_missing")
    return snapshot


async def _update_report(uow: UnitOfWork, course_id: uuid.UUID, version: int, **fields: Any) -> None:
    """Merge `fields` into the course's publish report (only while it describes this version)."""
    course = await uow.session.get(Course, course_id, with_for_update=True)
    if course is None:
        return
    report = dict(course.publish_report or {})
    if report.get("version") not in (None, version):
        return
    report.update(fields, version=version)
    course.publish_report = report


# --- extract -------------------------------------------------------------------------------------


async def extract(
    *, uow: UnitOfWork, documents: DocumentStore, files: FileStore, course_id: uuid.UUID, version: int
) -> dict[str, Any]:
    """Every lesson body, transcript and quiz prompt of the snapshot, and every material it lists.

    A material that cannot be read is skipped with a warning (in the step's detail and the publish report):
    one broken upload should not block a course whose other content is fine, and the instructor sees which
    file and why. A course with no readable text at all fails (`no_content`)."""
    snapshot = await _snapshot(documents, course_id, version)
    sections: list[Section] = sections_from_snapshot(snapshot)
    skipped: list[dict[str, str]] = []
    partial: list[dict[str, str]] = []  # read, but not whole: a PDF's damaged pages (explore51 F4)
    materials = snapshot.get("materials", [])
    for m in materials:
        try:
            data = await files.get(m["storage_key"])
            notes: list[str] = []
            sections.extend(
                await extract_material_bounded(
                    data,
                    filename=m["filename"],
                    content_type=m.get("content_type") or "application/octet-stream",
                    source_id=m["id"],
                    title=m.get("title") or m["filename"],
                    notes=notes,
                )
            )
            if notes:
                partial.append(
                    {"material_id": m["id"], "filename": m["filename"], "reason": "partly_unreadable",
                     "message": "; ".join(notes)}
                )  # fmt: skip
                MATERIALS_SKIPPED.labels("partly_unreadable").inc()
                log.warning(
                    "publish of course %s v%s: material %s (%s) indexed in part: %s",
                    course_id, version, m["id"], m["filename"], "; ".join(notes),
                )  # fmt: skip
        except ExtractionError as exc:
            skipped.append(
                {"material_id": m["id"], "filename": m["filename"], "reason": exc.reason, "message": str(exc)}
            )
            MATERIALS_SKIPPED.labels(exc.reason).inc()
            log.warning(
                "publish of course %s v%s: material %s (%s) not indexed: %s",
                course_id,
                version,
                m["id"],
                m["filename"],
                exc,
            )
        except NotFound:
            skipped.append(
                {"material_id": m["id"], "filename": m["filename"], "reason": "missing", "message": "file not found"}
            )
            # Not the instructor's doing: the file store lost an object it had accepted (explore18 F11: only the
            # instructor's report said so).
            MATERIALS_SKIPPED.labels("missing").inc()
            log.error(
                "publish of course %s v%s: material %s (%s) has no stored file at %s; the file store lost it",
                course_id,
                version,
                m["id"],
                m["filename"],
                m["storage_key"],
            )
    if not any(s.text.strip() for s in sections):
        raise Invalid(
            "the course has no readable text to index: its lessons have none (a video lesson needs its transcript) "
            "and none of its materials could be read",
            code="no_content",
            details={"skipped": skipped},
        )
    payload = json.dumps([asdict(s) for s in sections]).encode()
    await files.put(staging_key(course_id, version), payload, "application/json")
    detail = {
        "sections": len(sections),
        "materials": len(materials),
        "materials_read": len(materials) - len(skipped),
        "skipped": skipped,
        "partial": partial,
    }
    await _update_report(uow, course_id, version, extract=detail, warnings=skipped + partial)
    await uow.commit()
    return detail


# --- chunk ---------------------------------------------------------------------------------------


async def chunk(
    *,
    uow: UnitOfWork,
    files: FileStore,
    course_id: uuid.UUID,
    version: int,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Structure-respecting, token-sized chunks with overlap, stored as this version's `content_chunks`.

    Off the event loop but for the inserts, which go `CHUNK_INSERT_BATCH` rows a statement with `progress` (done,
    total) after each (explore57 F8: 43,000 ORM rows added and flushed on the loop held the worker 45 s, its workflow
    tasks and queries unanswered, the step without progress)."""
    staged = await files.get(staging_key(course_id, version))

    def prepare() -> tuple[list[Chunk], list[dict[str, Any]]]:
        sections = [Section(**s) for s in json.loads(staged)]
        made = chunk_sections(
            sections, course_id=str(course_id), version=version, max_tokens=max_tokens, overlap_tokens=overlap_tokens
        )
        return made, [_chunk_values(c, course_id, version) for c in made]

    chunks, rows = await asyncio.to_thread(prepare)
    await uow.session.execute(
        delete(ContentChunk).where(ContentChunk.course_id == course_id, ContentChunk.version == version)
    )
    for start in range(0, len(rows), CHUNK_INSERT_BATCH):
        await uow.session.execute(insert(ContentChunk), rows[start : start + CHUNK_INSERT_BATCH])
        if progress is not None:
            progress(min(start + CHUNK_INSERT_BATCH, len(rows)), len(rows))
    await uow.commit()
    return {"chunks": len(chunks), "sources": len({(c.source_type, c.source_id) for c in chunks})}


#: Chunk rows written a statement (an executemany of this many parameter sets).
CHUNK_INSERT_BATCH = 1000


def _chunk_values(c: Chunk, course_id: uuid.UUID, version: int) -> dict[str, Any]:
    return {
        "chunk_id": c.chunk_id,
        "course_id": course_id,
        "version": version,
        "source_type": c.source_type,
        "source_id": c.source_id,
        "title": c.title,
        "location": c.location,
        "text": c.text,
        "content_hash": c.content_hash,
        "ordinal": c.ordinal,
    }


def to_chunk(row: ContentChunk) -> Chunk:
    """A `content_chunks` row as the port's Chunk."""
    return Chunk(
        chunk_id=row.chunk_id,
        course_id=str(row.course_id),
        version=row.version,
        source_type=row.source_type,  # type: ignore[arg-type]
        source_id=row.source_id,
        title=row.title,
        location=row.location,
        text=row.text,
        content_hash=row.content_hash,
        ordinal=row.ordinal,
    )


async def load_chunks(uow: UnitOfWork, course_id: uuid.UUID, version: int) -> list[Chunk]:
    rows = await uow.session.scalars(
        select(ContentChunk)
        .where(ContentChunk.course_id == course_id, ContentChunk.version == version)
        .order_by(ContentChunk.ordinal, ContentChunk.chunk_id)
    )
    return [to_chunk(r) for r in rows]


# --- embed ---------------------------------------------------------------------------------------


async def embed(
    *, uow: UnitOfWork, embedder: Any, course_id: uuid.UUID, version: int, progress: Progress | None = None
) -> dict[str, Any]:
    """Vectors for every chunk, through the cache: a chunk whose text did not change is not embedded again,
    and a retry after a crash resumes where the cache stops."""
    chunks = await load_chunks(uow, course_id, version)
    await uow.session.rollback()  # hold no connection open while the model works
    total, done, embedded, cached, repeated = len(chunks), 0, 0, 0, 0
    if progress:
        progress(0, total)
    for start in range(0, total, EMBED_BATCH):
        batch = chunks[start : start + EMBED_BATCH]
        _, stats = await embedder.embed_chunks(batch)
        embedded += stats.get("embedded", 0)
        cached += stats.get("cached", 0)
        repeated += stats.get("repeated", 0)
        done += len(batch)
        if progress:
            progress(done, total)
    # embedded + cached + repeated = chunks (explore31 F9: a file of repeated paragraphs read 1,135 chunks, 18
    # embedded, 85 cached, with nothing saying where the rest went).
    return {"chunks": total, "embedded": embedded, "cached": cached, "repeated": repeated, "model": embedder.name}


# --- index ---------------------------------------------------------------------------------------


async def index(
    *,
    uow: UnitOfWork,
    embedder: Any,
    vector_index: VectorIndex,
    course_id: uuid.UUID,
    version: int,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write this version's index beside the live one (replacing what a failed attempt left)."""
    chunks = await load_chunks(uow, course_id, version)
    await uow.session.rollback()
    if progress:
        progress(0, len(chunks))
    vectors, stats = await embedder.embed_chunks(chunks)  # all cached by the embed step: a lookup
    if stats.get("embedded"):
        log.info("index step embedded %d chunks the embed step had not cached", stats["embedded"])
    rows = await vector_index.write_version(str(course_id), version, chunks, vectors)
    if progress:
        progress(len(chunks), len(chunks))
    return {"rows": rows}


async def verify(
    *, uow: UnitOfWork, vector_index: VectorIndex, embedder: Any, course_id: uuid.UUID, version: int
) -> dict[str, Any]:
    """The index holds exactly this version's chunks, and a search in it finds one of them."""
    chunks = await load_chunks(uow, course_id, version)
    await uow.session.rollback()
    rows = await vector_index.count(str(course_id), version)
    if rows != len(chunks):
        raise Conflict(
            f"the index has {rows} rows for {len(chunks)} chunks", code="index_incomplete", details={"rows": rows}
        )
    probe = chunks[0]
    vector = await embedder.embed_query(probe.text)
    hits = await vector_index.search(str(course_id), version, query=probe.title, vector=vector, k=5, mode="hybrid")
    if not hits:
        raise Conflict("a probe search of the new index found nothing", code="index_unsearchable")
    return {"rows": rows, "probe_hit": any(h.chunk.chunk_id == probe.chunk_id for h in hits)}


# --- compensation and clean-up -------------------------------------------------------------------


async def discard_version(
    *, uow: UnitOfWork, files: FileStore, vector_index: VectorIndex, course_id: uuid.UUID, version: int
) -> None:
    """Remove everything a publish of `version` built (never the live version)."""
    live = await uow.session.scalar(select(Course.index_version).where(Course.id == course_id))
    if live == version:
        return
    await vector_index.drop_version(str(course_id), version)
    await uow.session.execute(
        delete(ContentChunk).where(ContentChunk.course_id == course_id, ContentChunk.version == version)
    )
    await uow.commit()
    try:
        await files.delete(staging_key(course_id, version))
    except NotFound:
        pass


async def cleanup_old_versions(
    *, uow: UnitOfWork, files: FileStore, vector_index: VectorIndex, course_id: uuid.UUID, live_version: int
) -> dict[str, Any]:
    """Drop every version below the live one but the one live before it: the previous version stays for a grace
    period, so a search that read the old pointer just before the switch still finds its table. The previous version
    is the one the go-live switched from (`publish_report.previous_index_version`), not `live - 1`: a canceled or
    failed attempt spends a number (explore51 F2: the version live a moment before went in the same run), and one
    whose own clean-up failed leaves a version no student ever searched, which goes now (explore52 N1: it was kept
    as "the previous one" and the version live a moment before dropped). A report without the field (a go-live
    before it was recorded): the newest version below the live one in the index or the chunks."""
    course = await uow.session.get(Course, course_id)
    report = (course.publish_report or {}) if course is not None else {}
    versions = await vector_index.versions(str(course_id))
    if report.get("version") == live_version and "previous_index_version" in report:
        previous = int(report["previous_index_version"] or 0)
    else:
        chunked = await uow.session.scalars(
            select(ContentChunk.version).where(ContentChunk.course_id == course_id).distinct()
        )
        previous = max((v for v in {*versions, *chunked} if v < live_version), default=0)
    dropped = [v for v in versions if v < live_version and v != previous]
    for v in dropped:
        await vector_index.drop_version(str(course_id), v)
    await uow.session.execute(
        delete(ContentChunk).where(
            ContentChunk.course_id == course_id,
            ContentChunk.version < live_version,
            ContentChunk.version != previous,
        )
    )
    await uow.commit()
    try:
        await files.delete(staging_key(course_id, live_version))
    except NotFound:
        pass
    return {"dropped_versions": dropped}


async def record_failure(
    *, uow: UnitOfWork, course_id: uuid.UUID, version: int, workflow_id: str, step: str, error: str
) -> uuid.UUID | None:
    """The publish failed: say so on the course and the run, and tell the instructor (in-app + e-mail).
    Returns the notification to e-mail (once per workflow run)."""

    course = await uow.session.get(Course, course_id, with_for_update=True)
    if course is None:
        return None
    run = await uow.session.get(WorkflowRun, workflow_id)
    if run is not None and run.status == operations.CANCELED:
        # Canceled (`publishing.cancel_publish`): a run the cancel did not reach failed at its go-live. Not a
        # failure to report: the course, the run and the report already say what happened.
        return None
    now = utcnow()
    report = dict(course.publish_report or {})
    if report.get("version") in (None, version):
        shown = operations.without_paths(error)
        report.update(version=version, status="failed", failed_step=step, error=shown, finished_at=iso(now))
        course.publish_report = report
    if course.index_status == "indexing":
        course.index_status = "ready" if course.index_version > 0 else "failed"
    await uow.session.execute(
        update(WorkflowRun)
        .where(WorkflowRun.workflow_id == workflow_id)
        .values(status="failed", error=f"{step}: {error}", finished_at=now, updated_at=now)
    )
    live = "The previously published version stays live." if course.content_version > 0 else "It is back to draft."
    notification_id = await create_notification(
        uow.session,
        user_id=course.instructor_id,
        kind="publish_failed",
        title=f"Publishing “{course.title}” failed",
        body=f"Publishing version {version} failed at the {step} step: {operations.without_paths(error)}. {live}",
        dedupe_key=f"publish-failed:{workflow_id}",
        data={"course_id": str(course_id), "version": version, "workflow_id": workflow_id, "step": step},
    )
    await uow.commit()
    return notification_id
