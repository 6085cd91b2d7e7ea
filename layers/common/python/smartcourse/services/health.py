"""Engine status for /health: each engine answers a cheap real request within a short timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from smartcourse.services import dispatcher


async def _probe(fn: Callable[[], Awaitable[Any]], timeout: float = 3.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(fn(), timeout)
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def check(c: Any) -> dict[str, Any]:
    async def db() -> None:
        async with c.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def documents() -> None:
        await c.documents.get("health", "probe")

    async def temporal() -> None:
        client = await c.temporal()
        await client.service_client.check_health()

    async def redis() -> None:
        await c.redis().ping()

    async def llm() -> None:
        import httpx

        headers = {"Authorization": f"Bearer {c.settings.llm_api_key}"} if c.settings.llm_api_key else {}
        async with httpx.AsyncClient(timeout=2.5) as http:
            (await http.get(f"{c.settings.llm_base_url.rstrip('/')}/models", headers=headers)).raise_for_status()

    probes: dict[str, Callable[[], Awaitable[Any]]] = {"database": db, "documents": documents}
    if c.settings.temporal_address:
        probes["temporal"] = temporal
    if c.settings.redis_url:
        probes["redis"] = redis
    if c.settings.llm_base_url:  # the embedded model starts on the first assistant call: not probed before
        probes["llm"] = llm
    results, backlog = await asyncio.gather(asyncio.gather(*(_probe(fn) for fn in probes.values())), _backlog(c))
    engines = dict(zip(probes, results, strict=True))
    engines["files"] = {"status": "up", "kind": "s3" if c.settings.uses_s3 else "local"}
    overall = "ok" if all(e["status"] == "up" for e in engines.values()) else "degraded"
    assistant = {
        "model": getattr(c._chat, "name", None) or c.settings.llm_model,
        "endpoint": c.settings.llm_base_url or "embedded llama.cpp server (starts on first use)",
    }
    return {"status": overall, "engines": engines, "assistant": assistant, "enrollment_backlog": backlog}


async def _backlog(c: Any, timeout: float = 3.0) -> dict[str, Any]:
    """Admitted enrollments not yet active (their workflow queued or running), and how long the oldest has waited."""
    try:
        async with asyncio.timeout(timeout), c.sessionmaker() as session:
            figures = (await dispatcher.backlog(session)).as_dict()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    figures["max_in_flight"] = c.settings.dispatch_max_in_flight
    figures["admission_limit"] = c.settings.admission_backlog_limit or None
    return figures
