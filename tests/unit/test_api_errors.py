"""Failures of the infrastructure under a request answer 503 with Retry-After, never 500."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient

from smartcourse.api.app import create_app


def test_a_backend_socket_that_vanished_is_a_503_not_a_500() -> None:
    router = APIRouter()

    @router.get("/unix-socket-gone")
    async def gone() -> None:
        raise FileNotFoundError(2, "No such file or directory")  # asyncpg while PostgreSQL restarts

    @router.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    @router.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a real bug")

    client = TestClient(create_app(router), raise_server_exceptions=False)
    for path in ("/unix-socket-gone", "/refused"):
        r = client.get(path)
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "service_unavailable" and r.headers["Retry-After"] == "2"
    assert client.get("/bug").status_code == 500  # everything else is still an internal error
