"""No request can stall the API (issue #7): every read endpoint, driven at 4x the database pool concurrently,
answers as it does when called alone.

The app runs against a container whose pool is tiny (2 connections, no overflow, a short checkout timeout). A
request that held one pooled connection while it waited for a second one (the JSONB document store used to
draw from the same pool) deadlocked such a pool as soon as the requests outnumbered its connections: each
then failed after the checkout timeout with 503 `database_busy` (with the default pool, the whole API stalled
for 30 s at 64 clients). Each route gets 8 requests at once, from every kind of caller the authorisation
matrix allows, with the catalogue cache emptied first so the cached routes really read the database.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from smartcourse.bootstrap import build_container, set_container
from smartcourse.services import catalog_cache
from tests.conftest import Api
from tests.e2e.test_authz_matrix import ROLES, build_world, call, load_matrix, make_users, openapi_routes

POOL_SIZE = 2
CONCURRENCY = 4 * POOL_SIZE
#: Long enough for 8 short requests to queue for 2 connections on a busy machine; a deadlock lasts exactly this.
POOL_TIMEOUT = 5.0


def callers(row: dict[str, Any]) -> list[str]:
    """The callers the matrix lets through (so the request reaches the database), else a logged-in student."""
    allowed = [role for role in ROLES if row["who"][role] in {"allow", "public"}]
    return allowed or ["student"]


async def test_every_read_endpoint_answers_at_four_times_the_pool(
    api: Api, worker: object, container: Any, app: Any, settings: Any
) -> None:
    rows = load_matrix()
    reads = sorted(route for route in openapi_routes(app) if route.startswith("GET "))
    assert len(reads) >= 25, reads  # every GET route of the pack, not a sample
    world = await build_world(api, container, await make_users(api, container))

    small = build_container(settings, pool_size=POOL_SIZE, max_overflow=0, pool_timeout=POOL_TIMEOUT)
    assert small.engine.pool.size() == POOL_SIZE  # type: ignore[attr-defined]
    set_container(small)
    try:
        alone: dict[tuple[str, str], int] = {}
        for route in reads:
            for role in callers(rows[route]):
                await catalog_cache.invalidate(small)
                alone[route, role] = await call(api, world, route, rows[route], role)
        assert not {k: s for k, s in alone.items() if s >= 500}, alone

        failures: list[str] = []
        for route in reads:
            plan = list(itertools.islice(itertools.cycle(callers(rows[route])), CONCURRENCY))
            await catalog_cache.invalidate(small)  # a cold cache: the cached routes read the database too
            statuses = await asyncio.wait_for(
                asyncio.gather(*(call(api, world, route, rows[route], role) for role in plan)),
                timeout=4 * POOL_TIMEOUT + 30,
            )
            for role, status in zip(plan, statuses, strict=True):
                if status != alone[route, role]:
                    failures.append(f"{route} as {role}: {status} at {CONCURRENCY} at once, {alone[route, role]} alone")
        assert not failures, f"reads at {CONCURRENCY} concurrent requests on a pool of {POOL_SIZE}:\n  " + "\n  ".join(
            sorted(set(failures))
        )
    finally:
        set_container(container)
        await small.aclose()
