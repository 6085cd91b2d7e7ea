"""Issue #9.7: security headers, no CORS by default, ops pages and detailed health private in production."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Api


@pytest.fixture
def production(container: Any) -> Iterator[None]:
    original = container.settings
    container.settings = original.model_copy(update={"environment": "production", "metrics_token": "m" * 8 + "-token"})
    yield
    container.settings = original


async def test_security_headers_on_every_answer(api: Api) -> None:
    for path in ("/courses", "/no-such-route", "/auth/me"):
        r = await api.client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "server" not in r.headers
    assert "strict-transport-security" not in r.headers  # plain http in development


async def test_hsts_behind_tls(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        r = await c.get("/courses")
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_no_cors_unless_configured(api: Api) -> None:
    r = await api.client.options(
        "/courses", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in r.headers


async def test_ops_pages_are_private_in_production(api: Api, container: Any, production: None) -> None:
    unknown = await api.client.get("/no-such-page")
    for path in ("/metrics", "/docs", "/openapi.json"):
        r = await api.client.get(path)
        assert r.status_code == 404, path
        # Told apart from an unknown path by nothing in the answer: the same body, a trace id too.
        assert {k: v for k, v in r.json().items() if k != "trace_id"} == {
            k: v for k, v in unknown.json().items() if k != "trace_id"
        }
        assert len(r.json()["trace_id"]) == 32 and r.headers["X-Trace-Id"] == r.json()["trace_id"], path
        r = await api.client.get(path, headers={"Authorization": "Bearer mmmmmmmm-token"})
        assert r.status_code == 200, path
    student = await api.user()
    assert (await api.client.get("/metrics", headers=student["headers"])).status_code == 404
    admin = await api.admin(container)
    assert (await api.client.get("/metrics", headers=admin["headers"])).status_code == 200
    r = await api.client.get("/health")
    assert set(r.json()) == {"status"}
    r = await api.client.get("/health", headers={"X-Metrics-Token": "mmmmmmmm-token"})
    assert len(r.json()) > 1


async def test_ops_pages_are_open_in_development(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 200
    assert len((await api.client.get("/health")).json()) > 1


async def test_ops_pages_are_counted_by_their_path(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    """FastAPI's own pages have fixed paths: counted (and logged) by them, not as `unmatched`; a path no route
    matches still is, and its log line says which path (explore10 F8: shed requests were `unmatched` only)."""
    from prometheus_client import REGISTRY

    def served(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return REGISTRY.get_sample_value("smartcourse_http_requests_total", labels) or 0.0

    for path in ("/openapi.json", "/docs"):
        before = served(path, "200")
        assert (await api.client.get(path)).status_code == 200
        assert served(path, "200") == before + 1, path
    before = served("unmatched", "404")
    caplog.set_level(logging.INFO, logger="smartcourse.access")
    assert (await api.client.get("/no-such-route")).status_code == 404
    assert served("unmatched", "404") == before + 1
    line = next(r for r in caplog.records if r.name == "smartcourse.access" and r.getMessage().endswith(" 404"))
    assert (line.__dict__["route"], line.__dict__["path"]) == ("unmatched", "/no-such-route")
    assert line.__dict__["user_id"] is None
    # explore30 F11: a signed-in caller's probing of unknown paths read as anonymous; a forged token still does.
    student = await api.user()
    caplog.clear()
    assert (await api.client.get("/no-such-route", headers=student["headers"])).status_code == 404
    forged = {"Authorization": student["headers"]["Authorization"][:-4] + "AAAA"}
    assert (await api.client.get("/no-such-route", headers=forged)).status_code == 404
    lines = [r for r in caplog.records if r.name == "smartcourse.access" and r.getMessage().endswith(" 404")]
    assert [r.__dict__["user_id"] for r in lines] == [student["id"], None]


async def test_tokens_and_personal_answers_are_not_stored_and_public_reads_say_a_token_is_optional(api: Api) -> None:
    student = await api.user()
    r = await api.client.post("/auth/login", json={"email": student["email"], "password": student["password"]})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"  # RFC 6749 5.1
    assert (await api.client.get("/auth/me", headers=student["headers"])).headers["cache-control"] == "no-store"
    teacher = await api.user("instructor")
    await api.course(teacher)  # a draft: the instructor's own catalogue lists it
    assert (await api.client.get("/courses", headers=teacher["headers"])).headers["cache-control"] == "no-store"
    spec = (await api.client.get("/openapi.json")).json()["paths"]
    for path in ("/courses", "/courses/{course_id}"):
        assert {} in spec[path]["get"]["security"] and {"HTTPBearer": []} in spec[path]["get"]["security"], path
    assert {} not in spec["/auth/me"]["get"]["security"]
    degraded = spec["/health"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert degraded["required"] == ["status"]  # the report, not the error body
