"""`api.app.lambda_handler`: a function's router behind Mangum as API Gateway (HTTP API, payload 2.0) calls it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter

from smartcourse import config, telemetry
from smartcourse.api.app import lambda_handler
from smartcourse.cli import LambdaContext
from smartcourse.devtools.samples import api_gateway_event

router = APIRouter()


@router.get("/ping")
async def ping() -> dict[str, bool]:
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


def test_a_trailing_slash_redirects_within_the_named_stage(env: pytest.MonkeyPatch) -> None:
    """The client called /production/ping/: the 307 must send it to /production/ping, not to /ping (no route)."""
    env.setenv("API_BASE_PATH", "/production")
    event = staged("production")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/production/ping/"
    answer = call(lambda_handler(router), event)
    assert answer["statusCode"] == 307 and answer["headers"]["location"] == "/production/ping", answer


def test_without_the_base_path_a_named_stage_matches_no_route(env: pytest.MonkeyPatch) -> None:
    env.delenv("API_BASE_PATH", raising=False)
    assert call(lambda_handler(router), staged("production"))["statusCode"] == 404


def test_spans_are_flushed_before_lambda_freezes_the_process(env: pytest.MonkeyPatch) -> None:
    flushed: list[int] = []
    env.setattr(telemetry, "force_flush", lambda timeout_millis=5000: flushed.append(timeout_millis) or True)
    call(lambda_handler(router), api_gateway_event("GET", "/ping", body=None, authorized=False))
    assert flushed
