"""`api.app.lambda_handler`: a function's router behind Mangum as API Gateway (HTTP API, payload 2.0) calls it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Response

from smartcourse import config, telemetry
from smartcourse.api.app import lambda_handler
from smartcourse.api.created import created_at
from smartcourse.cli import LambdaContext
from smartcourse.devtools.samples import api_gateway_event

router = APIRouter()


@router.get("/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@router.post("/things", status_code=201)
async def make_thing(response: Response) -> dict[str, bool]:
    created_at(response, "/things/1")
    return {"ok": True}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("SMARTCOURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMARTCOURSE_ENV", "test")
    monkeypatch.setenv("SMARTCOURSE_EDGE_CACHE_SECONDS", "0")
    config.get_settings.cache_clear()
    yield monkeypatch
    config.get_settings.cache_clear()


def staged(stage: str) -> dict[str, Any]:
    event = api_gateway_event("GET", "/ping", body=None, authorized=False)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/{stage}/ping"
    event["requestContext"]["stage"] = stage
    return event


def call(handler: Any, event: dict[str, Any]) -> dict[str, Any]:
    loop = asyncio.new_event_loop()  # as Lambda runs it: a thread with its own loop (Mangum makes its own)
    try:
        asyncio.set_event_loop(loop)
        return dict(handler(event, LambdaContext("ping")))
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.parametrize("base_path", ["/production", "production", "/production/"])
def test_a_named_stage_is_stripped_from_the_path(env: pytest.MonkeyPatch, base_path: str) -> None:
    env.setenv("API_BASE_PATH", base_path)
    handler = lambda_handler(router)
    answer = call(handler, staged("production"))
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"ok": True}
    assert call(handler, api_gateway_event("GET", "/ping", body=None, authorized=False))["statusCode"] == 200


@pytest.mark.parametrize(
    ("path", "method", "status", "location"),
    [
        # The client called the stage's URL: the relative Locations keep the stage in front ...
        ("/production/ping/", "GET", 307, "/production/ping"),
        ("/production/things", "POST", 201, "/production/things/1"),
        # ... and through a custom domain (no stage in the path) they stay as they are.
        ("/ping/", "GET", 307, "/ping"),
        ("/things", "POST", 201, "/things/1"),
    ],
)
def test_a_relative_location_carries_the_stage_when_the_client_path_did(
    env: pytest.MonkeyPatch, path: str, method: str, status: int, location: str
) -> None:
    env.setenv("API_BASE_PATH", "/production")
    event = api_gateway_event(method, "/ping", body=None, authorized=False)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["stage"] = "production" if path.startswith("/production") else "$default"
    answer = call(lambda_handler(router), event)
    assert answer["statusCode"] == status and answer["headers"]["location"] == location, answer


def test_without_the_base_path_a_named_stage_matches_no_route(env: pytest.MonkeyPatch) -> None:
    env.delenv("API_BASE_PATH", raising=False)
    assert call(lambda_handler(router), staged("production"))["statusCode"] == 404


def test_spans_are_flushed_before_lambda_freezes_the_process(env: pytest.MonkeyPatch) -> None:
    flushed: list[int] = []
    env.setattr(telemetry, "force_flush", lambda timeout_millis=5000: flushed.append(timeout_millis) or True)
    call(lambda_handler(router), api_gateway_event("GET", "/ping", body=None, authorized=False))
    assert flushed == [telemetry.LAMBDA_FLUSH_MILLIS]


def test_a_collector_that_does_not_answer_costs_an_invocation_the_flush_bound_once(env: pytest.MonkeyPatch) -> None:
    """explore33 F4: the SDK's flush waited out the exporter's timeouts and retries, 7-15 s on every invocation."""
    import threading
    import time

    release = threading.Event()

    class Hung:
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            release.wait(10)
            return True

    env.setattr(telemetry, "_provider", Hung())
    env.setattr(telemetry, "_flushing", None)
    try:
        started = time.monotonic()
        assert telemetry.force_flush(300) is False
        first = time.monotonic() - started
        started = time.monotonic()
        assert telemetry.force_flush(300) is False  # the hung export still runs: not waited for again
        second = time.monotonic() - started
        assert 0.25 < first < 2 and second < 0.1, (first, second)
    finally:
        release.set()
    flushing = telemetry._flushing
    assert flushing is not None
    flushing.join(5)
    assert telemetry.force_flush(300) is True  # the exporter answers again: flushed


def test_a_browser_on_an_allowed_origin_may_read_the_headers_the_api_answers_with(env: pytest.MonkeyPatch) -> None:
    """CORS exposes what a client needs: Location of a create, the pages' Link and X-Total-Count, Retry-After of a
    503, and X-Trace-Id to quote in a bug report."""
    from fastapi.testclient import TestClient

    from smartcourse.api.app import create_app

    env.setenv("CORS_ORIGINS", "https://app.example.com")
    r = TestClient(create_app(router)).post("/things", headers={"Origin": "https://app.example.com"})
    assert r.status_code == 201 and r.headers["location"] == "/things/1"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"location", "link", "x-total-count", "retry-after", "x-trace-id"} <= exposed, exposed
