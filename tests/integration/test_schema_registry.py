"""The event contracts in the real schema registry: all register, BACKWARD is pinned and enforced."""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from smartcourse.adapters.schema_registry import CONTENT_TYPE, IncompatibleSchema, SchemaRegistry, canonical
from smartcourse.event_contracts import all_contracts, load_schema
from tests.engines import require_engine

pytestmark = [pytest.mark.engines, pytest.mark.timeout(60)]


@pytest.fixture
async def registry() -> AsyncIterator[SchemaRegistry]:
    url = os.environ.get("SCHEMA_REGISTRY_URL") or require_engine("schema_registry")
    require_engine("schema_registry")
    # A private subject namespace: this test's versions never meet another run's.
    client = SchemaRegistry(url, subject_prefix=f"t{uuid.uuid4().hex[:10]}.")
    yield client
    await client.aclose()


async def _get(registry: SchemaRegistry, path: str) -> Any:
    r = await registry._call("GET", path)
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_contract_registers_with_backward_compatibility(registry: SchemaRegistry) -> None:
    ids = await registry.register_all()
    contracts = all_contracts()
    assert set(ids) == set(contracts)
    for (event_type, version), schema in contracts.items():
        subject = registry.subject(event_type, version)
        assert (await _get(registry, f"/config/{subject}"))["compatibilityLevel"] == "BACKWARD"
        latest = await _get(registry, f"/subjects/{subject}/versions/latest")
        assert latest["id"] == ids[(event_type, version)]
        assert json.loads(latest["schema"]) == json.loads(canonical(schema))
        # What a consumer fetches by the id in a record is that contract.
        fetched = await _get(registry, f"/schemas/ids/{ids[(event_type, version)]}")
        assert json.loads(fetched["schema"]) == json.loads(canonical(schema))

    # Registering again (every relay and consumer start does) adds no version and keeps the ids.
    again = SchemaRegistry(registry._url, subject_prefix=registry._prefix)
    try:
        assert await again.register_all() == ids
        subject = registry.subject("course.published")
        assert await _get(registry, f"/subjects/{subject}/versions") == [1]
    finally:
        await again.aclose()


async def test_incompatible_contract_changes_are_rejected_by_the_registry(registry: SchemaRegistry) -> None:
    original = load_schema("course.archived", 1)
    first = await registry.register("course.archived", 1)
    subject = registry.subject("course.archived")

    new_required = copy.deepcopy(original)  # a new required field: old events lack it
    new_required["properties"]["data"]["required"].append("reason")
    new_required["properties"]["data"]["properties"]["reason"] = {"type": "string"}
    retyped = copy.deepcopy(original)  # a changed type: old events carry a string
    retyped["properties"]["data"]["properties"]["course_id"] = {"type": "integer"}

    for change in (new_required, retyped):
        assert await registry.is_compatible(subject, change) is False
        with pytest.raises(IncompatibleSchema):
            await registry.register("course.archived", 1, change)
        # The registry enforces it on its own too, even for a client that skips the check.
        async with httpx.AsyncClient() as raw:
            r = await raw.post(
                f"{registry._base}/subjects/{subject}/versions",
                content=json.dumps({"schema": canonical(change), "schemaType": "JSON"}),
                headers={"Content-Type": CONTENT_TYPE},
            )
        assert r.status_code == 409, r.text

    # A compatible change is accepted as the next version: an optional field on the closed envelope.
    optional = copy.deepcopy(original)
    optional["properties"]["trace_id"] = {"type": "string"}
    assert await registry.is_compatible(subject, optional) is True
    second = await registry.register("course.archived", 1, optional)
    assert second != first
    assert await _get(registry, f"/subjects/{subject}/versions") == [1, 2]


async def test_processes_starting_together_register_the_same_contracts(registry: SchemaRegistry) -> None:
    """The relay and the consumers process register every contract at start-up, at the same moment. Apicurio
    answered the one that set a subject's compatibility second 409 ("rule already exists"), which crashed the
    consumers process at start (seen in a stack benchmark)."""
    import asyncio

    others = [SchemaRegistry(registry._url, subject_prefix=registry._prefix) for _ in range(3)]
    try:
        results = await asyncio.gather(registry.register_all(), *(o.register_all() for o in others))
    finally:
        for other in others:
            await other.aclose()
    assert all(r == results[0] for r in results) and set(results[0]) == set(all_contracts())
    subject = registry.subject("user.registered")
    assert (await _get(registry, f"/config/{subject}"))["compatibilityLevel"] == "BACKWARD"
