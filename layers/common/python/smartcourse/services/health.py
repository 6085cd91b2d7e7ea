"""Status for /health: each engine answers a cheap real request within a short timeout (the SMTP server too, where
e-mail is configured), each background process has beaten recently (services/heartbeats.py), and the outbox's
unrelayed backlog with the age of its oldest event (read from the table: it shows a stopped relay too)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from smartcourse.adapters.local_index import local_directory, probe_local
from smartcourse.metrics import ENGINE_UP
from smartcourse.services import dispatcher, heartbeats, outbox
from smartcourse.supervise import children_gone

#: The header of a health report's 503 in the OpenAPI document (every 503 carries it: `api.app._error`'s rule).
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before asking again", "schema": {"type": "integer"}}}


def report_schema(*statuses: str) -> dict[str, Any]:
    """The OpenAPI content of a health report: `status` one of `statuses` for everyone, the rest for operators."""
    return {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"status": {"type": "string", "enum": list(statuses)}},
                "required": ["status"],
                "additionalProperties": True,
            }
        }
    }


async def _probe(fn: Callable[[], Awaitable[Any]], timeout: float = 3.0) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(fn(), timeout)
    except TimeoutError:
        return {"status": "down", "error": f"no answer within {timeout:g} s"}
    except Exception as exc:
        # Some say nothing (httpx's ReadTimeout: explore40 F12 read "ReadTimeout: "): the type alone then.
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def ready(c: Any) -> dict[str, Any]:
    """Whether this API process can serve requests: the engines every request path needs (PostgreSQL, and Redis where
    configured) answer. The check for a load balancer or an orchestrator's readiness probe: unlike `check`, an SMTP
    outage or a stale background process (which requests do not wait on) does not take the API out of service."""

    async def db() -> None:
        async with c.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def redis() -> None:
        await c.redis().ping()

    probes: dict[str, Callable[[], Awaitable[Any]]] = {"database": db}
    if c.settings.redis_url:
        probes["redis"] = redis
    results = await asyncio.gather(*(_probe(fn) for fn in probes.values()))
    engines = dict(zip(probes, results, strict=True))
    return {"status": "ok" if all(e["status"] == "up" for e in engines.values()) else "unavailable", "engines": engines}


async def engines(c: Any, *, timeout: float = 3.0) -> dict[str, dict[str, Any]]:
    """Each engine the platform uses, probed with a real request: `status` up or down, `latency_ms` or `error`."""

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

    async def smtp() -> None:
        await smtp_greeting(c.settings.smtp_host, c.settings.smtp_port)

    async def files() -> None:
        # A write and its removal: an unwritable store (a full disk, a read-only mount, wrong permissions) answered
        # uploads "a backend service is unreachable; retry" while this said `up` unprobed (explore18 F5).
        await c.files.probe()

    async def index() -> None:
        await probe_local(c.settings.resolved_index_uri)

    embedded = c.embedded_llm()
    llm_url = c.settings.llm_base_url if embedded is None else embedded[0]
    llm_exited = embedded is not None and embedded[1]

    async def llm() -> None:
        import httpx

        if llm_exited or not llm_url:
            raise RuntimeError(
                "the embedded model server has exited; `smartcourse run` starts it again within seconds (else the "
                "next assistant call does)"
            )

        headers = {"Authorization": f"Bearer {c.settings.llm_api_key}"} if c.settings.llm_api_key else {}
        async with httpx.AsyncClient(timeout=2.5) as http:
            (await http.get(f"{llm_url.rstrip('/')}/models", headers=headers)).raise_for_status()

    probes: dict[str, Callable[[], Awaitable[Any]]] = {"database": db, "documents": documents}
    if c.settings.temporal_address:
        probes["temporal"] = temporal
    if c.settings.redis_url:
        probes["redis"] = redis
    if c.settings.smtp_host:  # e-mail configured (`smartcourse run` points it at the embedded sink)
        probes["smtp"] = smtp
    if llm_url or llm_exited:  # the embedded model starts on the first assistant call: not probed before
        probes["llm"] = llm
    if callable(getattr(c.files, "probe", None)):  # the local store (S3 is not probed)
        probes["files"] = files
    if local_directory(c.settings.resolved_index_uri):  # the content index on the local disk (S3 is not probed)
        probes["index"] = index
    if callable(getattr(c, "messaging_probes", None)):  # Kafka, its schema registry, Celery's broker: if configured
        probes.update(c.messaging_probes())
    results = await asyncio.gather(*(_probe(fn, timeout) for fn in probes.values()))
    found = dict(zip(probes, results, strict=True))
    kind = "s3" if c.settings.uses_s3 else "local"
    # S3 is not probed: a write would need the health function's role to write the bucket.
    found["files"] = {**found.get("files", {"status": "up", "probed": False}), "kind": kind}
    index_kind = "local" if "index" in probes else "s3"
    found["index"] = {**found.get("index", {"status": "up", "probed": False}), "kind": index_kind}
    return found


async def refresh_engine_gauges(c: Any, *, max_age: float = 10.0, timeout: float = 2.0) -> None:
    """`smartcourse_engine_up{engine}` from `engines`, at most every `max_age` s (called on a scrape of the API's
    /metrics): an engine outage had no metric and so no alert, only /health showed it (explore18 F4)."""
    global _engines_read_at
    now = time.monotonic()
    if now - _engines_read_at < max_age:
        return
    _engines_read_at = now
    for name, result in (await engines(c, timeout=timeout)).items():
        ENGINE_UP.labels(name).set(1 if result["status"] == "up" else 0)


_engines_read_at = float("-inf")


async def check(c: Any) -> dict[str, Any]:
    engines_now, backlog, processes, outbox = await asyncio.gather(engines(c), _backlog(c), _processes(c), _outbox(c))
    alive = all(p.get("status") == "up" for p in processes.values())
    overall = "ok" if alive and all(e["status"] == "up" for e in engines_now.values()) else "degraded"
    embedded = c.embedded_llm()
    if embedded is None:  # LLM_BASE_URL, or a test's model
        endpoint = c.settings.llm_base_url or "embedded llama.cpp server (starts on first use)"
    else:  # the server running now, whichever API process started it (explore42 F6: this process's last one)
        endpoint = embedded[0] or "embedded llama.cpp server (starts on the next assistant call)"
    assistant = {"model": getattr(c._chat, "name", None) or c.settings.llm_model, "endpoint": endpoint}
    return {
        "status": overall,
        "engines": engines_now,
        "processes": processes,
        "outbox": outbox,
        "assistant": assistant,
        "enrollment_backlog": backlog,
    }


async def smtp_greeting(host: str, port: int) -> None:
    """Connect, read the server's 220 greeting, say QUIT: the SMTP server is there and answering (no message)."""
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ssl.create_default_context() if port == 465 else None
    )
    try:
        greeting = await reader.readline()
        if not greeting.startswith(b"220"):
            raise ConnectionError(f"unexpected greeting {greeting[:100]!r}")
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def _processes(c: Any, timeout: float = 3.0) -> dict[str, dict[str, Any]]:
    """The background processes' heartbeats (services/heartbeats.py); an unreadable table says so per process."""
    expected = heartbeats.expected_processes(c.settings.background_processes)
    if expected == []:
        return {}
    try:
        async with asyncio.timeout(timeout), c.sessionmaker() as session:
            report = await heartbeats.liveness(
                session, expected=expected, stale_after=c.settings.heartbeat_stale_seconds
            )
    except Exception as exc:
        error = f"heartbeats unreadable: {type(exc).__name__}: {exc}"[:300]
        return {name: {"status": "unknown", "error": error} for name in expected or ("background",)}
    # Under `smartcourse run`, a child that is not running is down at once, whatever the age of its last beat.
    for name, pid in (await asyncio.to_thread(children_gone, c.settings.data_dir)).items():
        entry = report.get(name)
        if entry is not None and entry["status"] == "up":
            entry["status"] = "down"
            entry["error"] = (
                f"its process (pid {pid}) is not running: killed or crashed; `smartcourse run` restarts it (its log "
                "says when)"
            )
    return report


async def _outbox(c: Any, timeout: float = 3.0) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout), c.sessionmaker() as session:
            return await outbox.backlog_figures(session)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}


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
