"""The local router: every HTTP function behind one FastAPI app (like `sam local start-api`), plus /metrics."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Response

from smartcourse import metrics
from smartcourse.api.app import create_app
from smartcourse.bootstrap import get_container
from smartcourse.functions_registry import all_functions

log = logging.getLogger(__name__)


def _specificity(path: str) -> list[int]:
    """Literal segments before parameters, as API Gateway matches: /enrollments/my-courses beats /{id}."""
    return [1 if seg.startswith("{") else 0 for seg in path.strip("/").split("/")]


def build_local_app() -> FastAPI:
    functions = [f for f in all_functions() if f.router is not None and f.routes]
    functions.sort(key=lambda f: min(_specificity(path) for _, path in f.routes))
    routers = [f.router for f in functions if f.router is not None]
    app = create_app(*routers)
    metrics.mark_process("api")

    @app.get("/metrics", include_in_schema=False)
    async def serve_metrics() -> Response:
        # Every API worker's figures when several share PROMETHEUS_MULTIPROC_DIR (smartcourse/metrics.py), and the
        # stored state (the outbox and enrollment backlogs, dead letters) read at most every 5 s.
        # Never in the way of the scrape: with the database (or the container) down, /metrics still answers, its
        # state gauges as last read (`smartcourse_state_refreshed_timestamp_seconds` tells when).
        # And each engine up or down, as /health probes them (at most every 10 s; 2 s per probe, in parallel).
        from smartcourse.services import health

        refreshers = {
            "the stored state could not be read": lambda c: metrics.DATABASE_STATE.refresh_if_stale(c.sessionmaker),
            "the engines could not be probed": health.refresh_engine_gauges,
        }
        for failure, refresh in refreshers.items():
            try:
                async with asyncio.timeout(3.0):
                    await refresh(await get_container())
            except Exception:
                log.warning("/metrics: %s", failure, exc_info=True)
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    return app
