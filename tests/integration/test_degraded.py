"""Degraded engines give clear answers, never a 500: Temporal unreachable, database pool exhausted."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import APIRouter

from tests.conftest import Api


async def test_enrollment_reads_without_the_workflow_engine(api: Api, worker: object, settings: Any) -> None:
    from smartcourse.bootstrap import build_container
    from smartcourse.engines import free_port
    from smartcourse.security import Principal
    from smartcourse.services import learning

    teacher, student = await api.user("instructor"), await api.user()
    course = await api.published_course(teacher)
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    eid = r.json()["id"]
    # The same database, but a Temporal address where nothing listens.
    cut_off = build_container(settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"}))
    try:
        detail = await learning.detail(
            container=cut_off, principal=Principal(uuid.UUID(student["id"]), "student"), enrollment_id=uuid.UUID(eid)
        )
    finally:
        await cut_off.aclose()
    assert detail.id == uuid.UUID(eid) and detail.workflow_status == "unavailable" and detail.steps == []


async def test_exhausted_pool_is_a_503_with_retry_after() -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from smartcourse.api.app import create_app

    router = APIRouter()

    @router.get("/busy")
    async def busy() -> None:
        raise PoolTimeout("QueuePool limit of size 10 overflow 20 reached")

    transport = httpx.ASGITransport(app=create_app(router), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/busy")
    assert r.status_code == 503 and r.json()["code"] == "database_busy" and r.headers["retry-after"] == "1"
