"""Catalogue and course reads come from the cache (in process, keyed by the Redis generation; then Redis), with
ETags, and a publish, an update or an archive is visible on the very next read (issue #7 item 4, P7)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import update

from smartcourse.models import Course
from smartcourse.services import accounts, catalog_cache
from tests.conftest import Api


async def _behind_the_apis_back(container: Any, course_id: str, **values: Any) -> None:
    """Change a course row without the API (so without invalidation): a cached read must not see it."""
    async with container.uow() as uow:
        await uow.session.execute(update(Course).where(Course.id == uuid.UUID(course_id)).values(**values))
        await uow.commit()


async def test_reads_are_cached_and_changes_through_the_api_show_at_once(
    api: Api, worker: object, container: Any
) -> None:
    owner = await api.user("instructor")
    category = f"cache-{uuid.uuid4().hex[:8]}"
    course = await api.published_course(owner, title="Cached course", category=category)
    cid = course["id"]
    query = {"category": category}

    first = await api.client.get("/courses", params=query)
    assert first.status_code == 200, first.text
    assert [c["title"] for c in first.json()["items"]] == ["Cached course"]
    assert first.headers["cache-control"] == "no-cache" and first.headers["etag"]
    outline = await api.client.get(f"/courses/{cid}")
    assert outline.status_code == 200 and outline.json()["title"] == "Cached course"
    assert "content" not in outline.json()["modules"][0]["lessons"][0]  # the public outline: no bodies
    assert "index_status" not in outline.json()  # the owner's fields left out
    # ... but a course's own nulls are sent, as the schema has them (no seat limit, no level), as in the list
    assert outline.json()["capacity"] is None and outline.json()["level"] is None, outline.text
    owner_view = (await api.client.get(f"/courses/{cid}", headers=owner["headers"])).json()
    assert owner_view["capacity"] is None and owner_view["index_status"] == "ready", owner_view

    # Served from the cache: a change made behind the API's back is not seen ...
    await _behind_the_apis_back(container, cid, title="Changed behind the API")
    assert (await api.client.get("/courses", params=query)).json()["items"][0]["title"] == "Cached course"
    assert (await api.client.get(f"/courses/{cid}")).json()["title"] == "Cached course"
    # ... and a client holding the current copy gets 304 without a body.
    again = await api.client.get("/courses", params=query, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    same = await api.client.get(f"/courses/{cid}", headers={"If-None-Match": outline.headers["etag"]})
    assert same.status_code == 304

    # An update through the API is visible on the next read, in the list and on the course.
    r = await api.client.put(f"/courses/{cid}", json={"title": "Renamed course"}, headers=owner["headers"])
    assert r.status_code == 200, r.text
    listed = await api.client.get("/courses", params=query, headers={"If-None-Match": first.headers["etag"]})
    assert listed.status_code == 200 and [c["title"] for c in listed.json()["items"]] == ["Renamed course"]
    assert listed.headers["etag"] != first.headers["etag"]
    detail = await api.client.get(f"/courses/{cid}", headers={"If-None-Match": outline.headers["etag"]})
    assert detail.status_code == 200 and detail.json()["title"] == "Renamed course"

    # A second course published into the category shows at once (the go-live step invalidates).
    await api.published_course(owner, title="Second course", category=category)
    titles = {c["title"] for c in (await api.client.get("/courses", params=query)).json()["items"]}
    assert titles == {"Renamed course", "Second course"}

    # Archived: gone from the catalogue and the outline on the next read.
    assert (await api.client.delete(f"/courses/{cid}", headers=owner["headers"])).status_code == 200
    assert (await api.client.get(f"/courses/{cid}")).status_code == 404
    titles = {c["title"] for c in (await api.client.get("/courses", params=query)).json()["items"]}
    assert titles == {"Second course"}


async def test_instructor_filtered_pages_are_cached_apart(api: Api, worker: object, container: Any) -> None:
    """`instructor_id` is part of a catalogue page's key: two instructors' pages under the same other filters are two
    entries (a reader with a token, past the edge cache, gets each its own), and a publish, an update or an archive
    reaches a filtered page on the next read like any other."""
    first, second, reader = await api.user("instructor"), await api.user("instructor"), await api.user()
    category = f"by-cache-{uuid.uuid4().hex[:8]}"
    course = await api.published_course(first, title="First's course", category=category)
    await api.published_course(second, title="Second's course", category=category)

    async def titles(instructor: dict[str, Any], headers: dict[str, str]) -> list[str]:
        params = {"category": category, "instructor_id": instructor["id"]}
        r = await api.client.get("/courses", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [c["title"] for c in r.json()["items"]]

    for headers in (reader["headers"], {}):  # the cache layers, then the edge cache in front of them
        for _ in range(2):
            assert await titles(first, headers) == ["First's course"]
            assert await titles(second, headers) == ["Second's course"]
    # Two keys in Redis for the two filters (same category, page and size), nothing else for this category.
    gen = await catalog_cache.generation(container)
    pattern = f"courses:g{gen}:f{catalog_cache.PAGE_FORMAT}:list:category:{category}:page:1:*"
    assert len([k async for k in container.redis().scan_iter(match=pattern)]) == 2

    # The filtered pages are served from the cache (a change behind the API's back is not seen) ...
    await _behind_the_apis_back(container, course["id"], title="Changed behind the API")
    for headers in (reader["headers"], {}):
        assert await titles(first, headers) == ["First's course"]
    # ... and an update, a publish and an archive through the API show on the next read.
    r = await api.client.put(f"/courses/{course['id']}", json={"title": "Renamed"}, headers=first["headers"])
    assert r.status_code == 200, r.text
    for headers in (reader["headers"], {}):
        assert await titles(first, headers) == ["Renamed"]
        assert await titles(second, headers) == ["Second's course"]
    await api.published_course(first, title="First's second", category=category)
    for headers in (reader["headers"], {}):
        assert await titles(first, headers) == ["First's second", "Renamed"]
        assert await titles(second, headers) == ["Second's course"]
    assert (await api.client.delete(f"/courses/{course['id']}", headers=first["headers"])).status_code == 200
    for headers in (reader["headers"], {}):
        assert await titles(first, headers) == ["First's second"]


async def test_another_process_invalidation_reaches_this_processs_memory(
    api: Api, worker: object, container: Any
) -> None:
    """The in-process layer is keyed by the generation read from Redis on every request: a bump made by another
    process (here: straight in Redis, without touching this process's memory) is seen on the next read with a token;
    an anonymous reader, answered by the edge cache, sees it once the edge's reading of the generation is older than
    SMARTCOURSE_EDGE_CACHE_SECONDS."""
    owner, reader = await api.user("instructor"), await api.user()
    course = await api.published_course(owner, title="Shared course")
    cid = course["id"]
    assert (await api.client.get(f"/courses/{cid}")).json()["title"] == "Shared course"
    await _behind_the_apis_back(container, cid, title="Renamed elsewhere")
    assert (await api.client.get(f"/courses/{cid}")).json()["title"] == "Shared course"  # still cached
    assert (await api.client.get(f"/courses/{cid}", headers=reader["headers"])).json()["title"] == "Shared course"
    await container.redis().incr(catalog_cache.GENERATION_KEY)  # what invalidate() does in the other process
    seen = await api.client.get(f"/courses/{cid}", headers=reader["headers"])
    assert seen.json()["title"] == "Renamed elsewhere"
    delay = container.settings.edge_cache_seconds
    deadline = time.monotonic() + delay + 5
    while (await api.client.get(f"/courses/{cid}")).json()["title"] != "Renamed elsewhere":
        assert time.monotonic() < deadline, f"the anonymous read did not see the new generation in {delay} s"
        await asyncio.sleep(0.05)


async def test_views_by_audience_and_the_account_check(api: Api, worker: object, container: Any) -> None:
    """The outline is public (no account lookup: a disabled account's token gets what no token gets); the lesson
    bodies an enrolled student reads are given only to a current account, and never marked shareable."""
    owner = await api.user("instructor")
    course = await api.published_course(owner, title="Audience course")
    cid = course["id"]
    enrolled, outsider = await api.user(), await api.user()
    r = await api.client.post("/enrollments", json={"course_id": cid}, headers=enrolled["headers"])
    assert r.status_code in (201, 202), r.text

    student_view = await api.client.get(f"/courses/{cid}", headers=enrolled["headers"])
    assert student_view.status_code == 200
    assert student_view.json()["modules"][0]["lessons"][0]["content"]  # the body, for the enrolled student
    assert student_view.headers["cache-control"] == "private, no-cache"
    assert student_view.headers["vary"] == "Authorization"
    outsider_view = await api.client.get(f"/courses/{cid}", headers=outsider["headers"])
    assert outsider_view.status_code == 200 and "content" not in outsider_view.json()["modules"][0]["lessons"][0]
    assert outsider_view.headers["cache-control"] == "no-cache"
    own = await api.client.get(f"/courses/{cid}", headers=owner["headers"])
    assert own.status_code == 200 and own.json()["index_status"] == "ready"  # the owner's working copy, fresh
    assert "etag" not in own.headers

    for user in (enrolled, outsider):
        async with container.uow() as uow:
            await accounts.set_active(uow=uow, user_id=uuid.UUID(user["id"]), active=False)
    try:
        assert (await api.client.get(f"/courses/{cid}", headers=enrolled["headers"])).status_code == 401
        public = await api.client.get(f"/courses/{cid}", headers=outsider["headers"])
        assert public.status_code == 200 and public.json() == outsider_view.json()
        assert (await api.client.get("/courses", headers=outsider["headers"])).status_code == 200
        assert (await api.client.get("/auth/me", headers=outsider["headers"])).status_code == 401
        bad = {"Authorization": "Bearer not-a-token"}
        assert (await api.client.get(f"/courses/{cid}", headers=bad)).status_code == 401  # the signature still counts
        assert (await api.client.get("/courses", headers=bad)).status_code == 401
    finally:
        for user in (enrolled, outsider):
            async with container.uow() as uow:
                await accounts.set_active(uow=uow, user_id=uuid.UUID(user["id"]), active=True)


async def test_a_draft_stays_private_and_instructors_see_their_own(api: Api, container: Any) -> None:
    owner, other = await api.user("instructor"), await api.user("instructor")
    draft = await api.course(owner, title="Private draft", category=f"draft-{uuid.uuid4().hex[:8]}")
    query = {"category": draft["category"]}
    assert (await api.client.get(f"/courses/{draft['id']}")).status_code == 404
    assert (await api.client.get(f"/courses/{draft['id']}", headers=other["headers"])).status_code == 404
    assert (await api.client.get("/courses", params=query)).json()["items"] == []
    mine = await api.client.get("/courses", params={**query, "mine": "true"}, headers=owner["headers"])
    assert [c["title"] for c in mine.json()["items"]] == ["Private draft"]
    assert (await api.client.get("/courses", params=query, headers=other["headers"])).json()["items"] == []


async def test_redis_down_reads_go_to_the_database(api: Api, worker: object, container: Any, settings: Any) -> None:
    """No Redis: the cache is a pass-through (the answer comes from the database, still with its ETag)."""
    from smartcourse.bootstrap import build_container, set_container
    from smartcourse.engines import free_port

    owner = await api.user("instructor")
    course = await api.published_course(owner, title="Without Redis", category=f"nored-{uuid.uuid4().hex[:8]}")
    cut_off = build_container(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    set_container(cut_off)
    try:
        listed = await api.client.get("/courses", params={"category": course["category"]})
        assert listed.status_code == 200 and [c["title"] for c in listed.json()["items"]] == ["Without Redis"]
        detail = await api.client.get(f"/courses/{course['id']}")
        assert detail.status_code == 200 and detail.json()["title"] == "Without Redis" and detail.headers["etag"]
        await _behind_the_apis_back(container, course["id"], title="Seen at once")
        assert (await api.client.get(f"/courses/{course['id']}")).json()["title"] == "Seen at once"  # nothing kept
    finally:
        set_container(container)
        await cut_off.aclose()


async def test_anonymous_reads_are_answered_by_the_edge_cache(api: Api, worker: object) -> None:
    """The second anonymous read of a course comes from the edge cache (api/edge_cache.py): the same bytes and
    headers but the trace's, counted in the metrics; a reader with a token still goes through the whole stack."""
    from prometheus_client import REGISTRY

    def hits() -> float:
        return REGISTRY.get_sample_value("smartcourse_edge_cache_total", {"outcome": "hit"}) or 0.0

    def served(route: str) -> float:
        labels = {"method": "GET", "route": route, "status": "200"}
        return REGISTRY.get_sample_value("smartcourse_http_requests_total", labels) or 0.0

    owner, reader = await api.user("instructor"), await api.user()
    course = await api.published_course(owner, title="Edge course")
    cid = course["id"]
    first = await api.client.get(f"/courses/{cid}")
    before, counted = hits(), served("/courses/{course_id}")
    again = await api.client.get(f"/courses/{cid}")
    assert hits() == before + 1 and served("/courses/{course_id}") == counted + 1
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.headers["content-security-policy"] == first.headers["content-security-policy"]
    assert first.headers["x-trace-id"] and "x-trace-id" not in again.headers
    with_token = await api.client.get(f"/courses/{cid}", headers=reader["headers"])
    assert hits() == before + 1 and with_token.headers["x-trace-id"] and with_token.content == first.content


async def test_the_catalogues_facets_count_the_live_courses_of_each_filter_value(api: Api, worker: object) -> None:
    """explore78 F12: category and tags are free text, and nothing listed them: a filter sidebar walked the whole
    catalogue. Counted over live courses, any case, cached and revalidated as the catalogue's pages are."""
    teacher = await api.user("instructor")
    word = f"facet{uuid.uuid4().hex[:6]}"
    await api.published_course(teacher, title="F1", category=f"{word} Science", tags=[f"{word}-a", f"{word}-b"])
    await api.published_course(teacher, title="F2", category=f"{word} science", tags=[f"{word}-a"], level="advanced")
    await api.course(teacher, title="F3 draft", category=f"{word} Drafts", tags=[f"{word}-c"])

    def mine(facets: list[dict[str, Any]]) -> list[tuple[str, int]]:
        return [(f["value"], f["count"]) for f in facets if word in f["value"].lower()]

    r = await api.client.get("/courses/facets")
    assert r.status_code == 200, r.text
    body = r.json()
    assert mine(body["categories"]) == [(f"{word} Science", 2)], body["categories"]
    assert mine(body["tags"]) == [(f"{word}-a", 2), (f"{word}-b", 1)], body["tags"]
    assert any(f["value"] == "advanced" and f["count"] >= 1 for f in body["levels"]) and body["total"] >= 2
    assert (await api.client.get("/courses/facets", headers={"If-None-Match": r.headers["ETag"]})).status_code == 304
    # A course going live is counted at once (the catalogue's generation moved).
    await api.published_course(teacher, title="F4", category=f"{word} Science", tags=[f"{word}-c"])
    body = (await api.client.get("/courses/facets")).json()
    assert mine(body["categories"]) == [(f"{word} Science", 3)] and (f"{word}-c", 1) in mine(body["tags"]), body
