"""DocumentStore contract: the embedded PostgreSQL JSONB adapter and MongoDB must behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.engines import require_engine

RICH = {
    "title": "Événements et idempotence — 事件 🚀",
    "nested": {"level": {"deeper": {"n": 3, "ok": True}}, "empty": {}},
    # No array directly inside an array: FerretDB 1.x (the stack's MongoDB) refuses them. Arrays of
    # objects holding arrays (quiz questions and their options) are fine, and are what the app stores.
    "list": [1, "two", {"three": 3, "four": [4, 5]}, None],
    "none": None,
    "flag": False,
    "int": 9_007_199_254_740_993,  # beyond a double's exact range: must stay an exact integer
    "float": 1.5,
    "empty_list": [],
}


@pytest.fixture(params=["postgres", "mongo"])
async def store(request: pytest.FixtureRequest, container: Any) -> AsyncIterator[Any]:
    from smartcourse.adapters.documents import MongoDocumentStore, PostgresDocumentStore

    if request.param == "postgres":
        yield PostgresDocumentStore(container.engine)
        return
    database = f"smartcourse_test_{uuid.uuid4().hex[:12]}"
    mongo = MongoDocumentStore(require_engine("mongo"), database)
    try:
        yield mongo
    finally:
        await mongo._client.drop_database(database)
        await mongo.close()


@pytest.fixture
def coll() -> str:
    """A collection of the test's own: the PostgreSQL adapter shares one table across runs."""
    return f"contract_{uuid.uuid4().hex[:12]}"


async def test_put_then_get_round_trips_every_json_shape(store: Any, coll: str) -> None:
    await store.put(coll, "d1", RICH)
    assert await store.get(coll, "d1") == RICH


async def test_get_returns_a_copy_without_the_store_id(store: Any, coll: str) -> None:
    await store.put(coll, "d1", {"a": 1})
    doc = await store.get(coll, "d1")
    assert doc == {"a": 1} and "_id" not in doc and "id" not in doc
    doc["a"] = 2
    assert await store.get(coll, "d1") == {"a": 1}


async def test_put_replaces_the_whole_document(store: Any, coll: str) -> None:
    await store.put(coll, "d1", {"a": 1, "b": {"c": 2}})
    await store.put(coll, "d1", {"b": {"d": 3}})  # an upsert, not a merge: "a" and "b.c" are gone
    assert await store.get(coll, "d1") == {"b": {"d": 3}}
    await store.put(coll, "d1", {"b": {"d": 3}})  # idempotent
    assert await store.get(coll, "d1") == {"b": {"d": 3}}


async def test_unknown_ids_and_collections(store: Any, coll: str) -> None:
    assert await store.get(coll, "nope") is None
    assert await store.get_many(coll, ["nope"]) == {}
    assert await store.get_many(coll, []) == {}
    assert await store.find(coll, {"a": 1}) == []
    assert await store.delete(coll, "nope") is False


async def test_get_many_returns_found_ids_only(store: Any, coll: str) -> None:
    for i in range(4):
        await store.put(coll, f"d{i}", {"i": i, "tags": [f"t{i}"]})
    got = await store.get_many(coll, ["d0", "d2", "missing", "d3"])
    assert got == {"d0": {"i": 0, "tags": ["t0"]}, "d2": {"i": 2, "tags": ["t2"]}, "d3": {"i": 3, "tags": ["t3"]}}


async def test_collections_are_separate_namespaces(store: Any, coll: str) -> None:
    await store.put(coll, "same", {"where": "one"})
    await store.put(coll + "_b", "same", {"where": "two"})
    assert (await store.get(coll, "same"))["where"] == "one"
    assert (await store.get(coll + "_b", "same"))["where"] == "two"
    assert await store.delete(coll + "_b", "same") is True
    assert await store.get(coll, "same") == {"where": "one"}


async def test_find_by_field_equality(store: Any, coll: str) -> None:
    course_a, course_b = str(uuid.uuid4()), str(uuid.uuid4())
    await store.put(coll, "m1", {"course_id": course_a, "kind": "pdf", "size": 10, "meta": {"x": 1}})
    await store.put(coll, "m2", {"course_id": course_a, "kind": "md", "size": 20, "meta": None})
    await store.put(coll, "m3", {"course_id": course_b, "kind": "pdf", "size": 10, "meta": None})
    by_course = await store.find(coll, {"course_id": course_a})
    assert sorted(d["kind"] for d in by_course) == ["md", "pdf"]
    both = await store.find(coll, {"course_id": course_a, "kind": "pdf"})
    assert both == [{"course_id": course_a, "kind": "pdf", "size": 10, "meta": {"x": 1}}]
    assert sorted(d["course_id"] for d in await store.find(coll, {"size": 10})) == sorted([course_a, course_b])
    assert len(await store.find(coll, {"meta": None})) == 2  # an explicit null matches null
    assert await store.find(coll, {"size": "10"}) == []  # types matter: "10" is not 10
    assert await store.find(coll, {"course_id": course_a, "kind": "video"}) == []


async def test_delete_removes_once(store: Any, coll: str) -> None:
    await store.put(coll, "d1", {"a": 1})
    await store.put(coll, "d2", {"a": 1})
    assert await store.delete(coll, "d1") is True
    assert await store.delete(coll, "d1") is False
    assert await store.get(coll, "d1") is None
    assert await store.find(coll, {"a": 1}) == [{"a": 1}]


async def test_ids_may_be_any_string(store: Any, coll: str) -> None:
    ids = [str(uuid.uuid4()), "course:v12", "ünï/cödé id"]
    for i, doc_id in enumerate(ids):
        await store.put(coll, doc_id, {"n": i})
    assert await store.get_many(coll, ids) == {doc_id: {"n": i} for i, doc_id in enumerate(ids)}
