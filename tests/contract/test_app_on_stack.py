"""The app itself on the stack's MongoDB and S3: course authoring end to end through the services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.test_courses import make_pdf
from tests.engines import require_engine


@pytest.fixture
async def stack_container(settings: Any) -> AsyncIterator[Any]:
    """A Container like production's: documents in MongoDB, files in S3 (the database stays the suite's)."""
    from smartcourse.adapters.documents import MongoDocumentStore
    from smartcourse.adapters.files import S3FileStore
    from smartcourse.bootstrap import build_container

    database = f"smartcourse_test_{uuid.uuid4().hex[:12]}"
    c = build_container(
        settings.model_copy(
            update={
                "mongodb_url": require_engine("mongo"),
                "mongodb_database": database,
                "s3_endpoint_url": require_engine("s3"),
                "s3_bucket": "smartcourse",
            }
        )
    )
    assert isinstance(c.documents, MongoDocumentStore) and isinstance(c.files, S3FileStore)
    await c.files.ensure_bucket()
    try:
        yield c
    finally:
        await c.documents._client.drop_database(database)
        await c.aclose()


async def test_course_authoring_on_mongodb_and_s3(stack_container: Any, container: Any) -> None:
    from smartcourse.adapters.documents import PostgresDocumentStore
    from smartcourse.schemas import CourseIn, LessonIn, ModuleIn, RegisterIn
    from smartcourse.security import Principal
    from smartcourse.services import accounts, courses, materials

    c = stack_container
    async with c.uow() as uow:
        user = await accounts.register(
            uow=uow,
            data=RegisterIn(
                email=f"stack-{uuid.uuid4().hex[:8]}@example.com",
                password="stack-pass-1",
                full_name="Stack Teacher",
                role="instructor",
            ),
        )
    teacher = Principal(user_id=user.id, role="instructor")
    async with c.uow() as uow:
        course = await courses.create_course(
            uow=uow, principal=teacher, data=CourseIn(title="On the stack", category="engineering")
        )
    async with c.uow() as uow:
        module = await courses.add_module(uow=uow, principal=teacher, course_id=course.id, data=ModuleIn(title="M1"))
    body = "# Ünïcode lesson\n\nStored in MongoDB."
    async with c.uow() as uow:
        lesson = await courses.add_lesson(
            uow=uow,
            documents=c.documents,
            principal=teacher,
            course_id=course.id,
            module_id=module.id,
            data=LessonIn(title="L1", type="text", content=body),
        )
    pdf = make_pdf("Handout on the stack")
    async with c.uow() as uow:
        material = await materials.upload_material(
            uow=uow,
            documents=c.documents,
            files=c.files,
            principal=teacher,
            course_id=course.id,
            filename="handout.pdf",
            data=pdf,
            lesson_id=lesson.id,
            max_bytes=c.settings.max_upload_bytes,
        )

    async with c.uow() as uow:
        detail = await courses.get_course(uow=uow, documents=c.documents, principal=teacher, course_id=course.id)
    assert [m.title for m in detail.modules] == ["M1"]
    [got_lesson] = detail.modules[0].lessons
    assert got_lesson.id == lesson.id and got_lesson.content == body
    async with c.uow() as uow:
        doc = await materials.get_material(
            uow=uow, documents=c.documents, principal=teacher, course_id=course.id, material_id=material.id
        )
    assert doc["filename"] == "handout.pdf" and doc["size"] == len(pdf)
    assert doc["lesson_id"] == str(lesson.id)
    assert await c.files.get(doc["storage_key"]) == pdf
    url = await c.files.presigned_url(doc["storage_key"], "handout.pdf")
    assert url is not None
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == pdf

    # Really there, and only there: MongoDB has the bodies, the embedded JSONB store does not.
    assert (await c.documents.get("lesson_bodies", str(lesson.id)))["content"] == body
    assert await c.documents.get("materials", str(material.id)) == doc
    embedded = PostgresDocumentStore(container.engine)
    assert await embedded.get("lesson_bodies", str(lesson.id)) is None
    assert await embedded.get("materials", str(material.id)) is None
