"""Failures of the infrastructure under a request answer 503 with Retry-After, never 500."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import asyncpg.exceptions
import pytest
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from smartcourse.api.app import create_app
from smartcourse.config import get_settings
from smartcourse.schemas import EXTRA_FIELDS_READ, LoginIn, Strict, Title


def test_a_backend_socket_that_vanished_is_a_503_not_a_500() -> None:
    router = APIRouter()

    @router.get("/unix-socket-gone")
    async def gone() -> None:
        raise FileNotFoundError(2, "No such file or directory")  # asyncpg while PostgreSQL restarts

    @router.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    @router.get("/closed-while-connecting")
    async def closed() -> None:
        # asyncpg's own error from a new connection's set-up (SQLAlchemy's json codec) as PostgreSQL went away:
        # SQLAlchemy does not wrap it (seen in a chaos run as the one 500 of a PostgreSQL restart)
        raise asyncpg.exceptions.InterfaceError("connection is closed")

    @router.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a real bug")

    @router.get("/misuse")
    async def misuse() -> None:
        raise asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress")

    client = TestClient(create_app(router), raise_server_exceptions=False)
    for path in ("/unix-socket-gone", "/refused", "/closed-while-connecting"):
        r = client.get(path)
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "service_unavailable" and r.headers["Retry-After"] == "2"
    assert client.get("/bug").status_code == 500  # everything else is still an internal error
    assert client.get("/misuse").status_code == 500


def test_a_503_for_a_restarting_database_is_logged_and_counted_as_a_503() -> None:
    """explore10 F2, F3: during a PostgreSQL restart, 503s answered by the handler of `Exception` (outside the
    middlewares) were logged and counted as 500s; and "the database system is starting up" (57P03), wrapped by
    SQLAlchemy, was 503 `database_unavailable` with a traceback, which the docs tie to a pool-sizing problem."""
    from sqlalchemy.exc import DBAPIError

    from smartcourse.metrics import HTTP_REQUESTS

    router = APIRouter()

    @router.get("/cut")
    async def cut() -> None:
        raise asyncpg.exceptions.InterfaceError("connection is closed")

    @router.get("/starting")
    async def starting() -> None:
        cause = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        raise DBAPIError("SELECT 1", {}, cause) from cause

    def counted(route: str, status: str) -> float:
        return HTTP_REQUESTS.labels("GET", route, status)._value.get()

    client = TestClient(create_app(router), raise_server_exceptions=False)
    for route in ("/cut", "/starting"):
        before = (counted(route, "503"), counted(route, "500"))
        r = client.get(route)
        assert (r.status_code, r.json()["code"], r.headers["Retry-After"]) == (503, "service_unavailable", "2")
        assert (counted(route, "503"), counted(route, "500")) == (before[0] + 1, before[1]), route


class Body(BaseModel):
    name: str


def test_a_malformed_or_mistyped_json_body_is_named_as_such() -> None:
    router = APIRouter()

    @router.post("/things")
    async def things(body: Body) -> dict[str, str]:
        return {"name": body.name}

    client = TestClient(create_app(router), raise_server_exceptions=False)
    r = client.post("/things", content=b'{"name":', headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    (detail,) = r.json()["details"]
    assert detail["field"] == "body" and detail["type"] == "json_invalid"
    assert detail["message"].startswith("invalid JSON at character 8")  # not a field named "8"
    # Undecodable other than by its syntax: the same answer, with its reason (FastAPI's own is a bare 400).
    for body, reason in (
        (b'{"name":"caf\xe9"}', "invalid JSON: the body is not UTF-8 (byte 12)"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON: the body nests arrays or objects too deeply"),
        (  # without Python's advice on raising the limit (explore45 F9)
            b'{"name": ' + b"1" * 5000 + b"}",
            "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits",
        ),
    ):
        r = client.post("/things", content=body, headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
        assert r.json()["details"] == [{"field": "body", "message": reason, "type": "json_invalid"}], r.text

    r = client.post("/things", content=b'{"name": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type", r.text
    r = client.post("/things", content=b'{"name": "x"}', headers={"content-type": ""})  # none at all
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type", r.text
    r = client.post("/things")  # no body: the missing body is named
    assert r.status_code == 422 and r.json()["code"] == "validation_error", r.text
    assert client.post("/things", json={"name": "x"}).json() == {"name": "x"}
    r = client.post("/things", content=b'{"name": "x"}', headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


class Numbers(Strict):
    values: list[int]


def test_a_validation_error_is_bounded_whatever_the_body() -> None:
    """explore44 F2: a 1 MiB body of 111,000 unknown keys, sent anonymously to /auth/login, was answered with 10 MB
    listing each, after 0.6 s of CPU. An object with far more fields than its model's is refused whole, unread; and
    an answer lists at most `MAX_FIELD_ERRORS` field errors, then counts the rest."""
    from smartcourse.api.app import FIELD_NAME_CHARS, MAX_FIELD_ERRORS

    router = APIRouter()

    @router.post("/login")
    async def login(body: LoginIn) -> dict[str, str]:
        return {}

    @router.post("/numbers")
    async def numbers(body: Numbers) -> dict[str, str]:
        return {}

    client = TestClient(create_app(router), raise_server_exceptions=False)
    keys = {f"{i:x}": 0 for i in range(50_000)}
    r = client.post("/login", json=keys)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text[:300]
    message = "the object has 50000 fields it does not take (it takes email, password, device_token)"
    assert r.json()["details"] == [{"field": "body", "message": message, "type": "too_many_fields"}]
    few = {"email": "a@example.com", "password": "x", **{f"k{i}": 0 for i in range(EXTRA_FIELDS_READ)}}
    r = client.post("/login", json=few)  # within the bound: each unknown field is named, as always
    assert {d["type"] for d in r.json()["details"]} == {"extra_forbidden"}, r.text[:300]
    # Counted by the fields the model lacks, whatever else is missing (explore45 F6: 51-53 unknown keys were listed).
    r = client.post("/login", json={f"k{i}": 0 for i in range(EXTRA_FIELDS_READ + 1)})
    assert [d["type"] for d in r.json()["details"]] == ["too_many_fields"], r.text[:300]
    r = client.post("/numbers", json={"values": ["x"] * 500, "y" * 10_000: 1})
    details = r.json()["details"]
    assert len(details) == MAX_FIELD_ERRORS + 1 and len(r.content) < 20_000, len(r.content)
    assert details[-1] == {"field": "body", "message": "451 more errors not listed", "type": "too_many_errors"}
    r = client.post("/numbers", json={"values": [], "y" * 10_000: 1})
    (detail,) = r.json()["details"]
    assert detail["field"] == "y" * FIELD_NAME_CHARS + "\u2026" and len(r.content) < 2_000, r.text[:300]


def test_a_body_sent_to_a_route_that_takes_none_is_refused_not_ignored() -> None:
    """explore44 F3: `DELETE /enrollments/{id}` with `{"reason": …}` as JSON answered 200 and lost the reason (a query
    parameter); malformed JSON was accepted too. Nothing, `{}` or `null` is no body; a route that reads its body
    itself (an upload's form, declared in `openapi_extra`) takes one."""
    router = APIRouter()

    @router.delete("/things/{thing_id}")
    async def drop(thing_id: str, reason: str | None = None) -> dict[str, str | None]:
        return {"reason": reason}

    @router.post("/things", openapi_extra={"requestBody": {"content": {"multipart/form-data": {}}}})
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @router.post("/named")
    async def named(body: Body) -> dict[str, str]:
        return {"name": body.name}

    client = TestClient(create_app(router), raise_server_exceptions=False)
    json_type = {"content-type": "application/json"}
    r = client.request("DELETE", "/things/1", content=b'{"reason": "cheating"}', headers=json_type)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    assert r.json()["details"][0]["type"] == "body_not_accepted", r.text
    assert "send reason in the query string (?reason=" in r.json()["message"], r.text
    r = client.request("DELETE", "/things/1", content=b"garbage{", headers=json_type)
    assert (r.status_code, r.json()["details"][0]["type"]) == (422, "body_not_accepted"), r.text
    for empty in (b"", b"{}", b" null ", b"\n", b"{ }", b"{\n}", b"\xef\xbb\xbf{}"):  # explore45 F5, explore46 F7
        r = client.request("DELETE", "/things/1?reason=cheating", content=empty, headers=json_type)
        assert r.json() == {"reason": "cheating"}, (empty, r.text)
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = client.request("DELETE", "/things/1", content=b"reason=cheating", headers=form)
    assert "send reason in the query string" in r.json()["message"], r.text
    r = client.request("DELETE", "/things/1", content=b"[]", headers=json_type)
    assert r.json()["details"][0]["type"] == "body_not_accepted", r.text
    assert client.post("/things", content=b"--b\r\n").json() == {"bytes": 5}
    assert client.post("/named", json={"name": "x"}).json() == {"name": "x"}


def test_a_405_names_every_method_of_the_path_across_routers() -> None:
    reads, writes = APIRouter(), APIRouter()

    @reads.get("/things/{thing_id}")
    async def read(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @writes.put("/things/{thing_id}")
    async def write(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @writes.delete("/things/{thing_id}")
    async def remove(thing_id: str) -> None:
        return None

    r = TestClient(create_app(reads, writes)).patch("/things/1")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed", r.text
    assert r.headers["Allow"] == "DELETE, GET, HEAD, PUT"


def test_head_answers_as_get_without_the_body() -> None:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def read(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @router.post("/things")
    async def create() -> dict[str, str]:
        return {"id": "new"}

    client = TestClient(create_app(router))
    got, head = client.get("/things/abc"), client.head("/things/abc")
    assert head.status_code == got.status_code == 200
    assert head.content == b"" and head.headers["content-length"] == got.headers["content-length"] != "0"
    assert head.headers["content-type"] == got.headers["content-type"] == "application/json"
    assert client.head("/missing").status_code == 404
    r = client.head("/things")  # a path without GET: still a 405 naming what it answers
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and r.content == b""


def test_a_value_postgresql_refuses_as_data_is_the_clients_422() -> None:
    """SQLSTATE class 22 (a NUL byte in a text parameter is 22021, raised by asyncpg as its own error and wrapped by
    SQLAlchemy as a plain DBAPIError) is the request's value: 422, not a 503 that tells the client to retry."""
    from sqlalchemy.exc import DBAPIError

    router = APIRouter()

    @router.get("/nul")
    async def nul() -> None:
        orig = asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')
        raise DBAPIError("SELECT ...", {}, orig)

    @router.get("/broken")
    async def broken() -> None:
        raise DBAPIError("SELECT ...", {}, asyncpg.exceptions.InternalServerError("xx"))

    client = TestClient(create_app(router), raise_server_exceptions=False)
    r = client.get("/nul")
    assert r.status_code == 422 and r.json()["code"] == "invalid_input", r.text
    refused = client.get("/broken")
    # Every 503 says when to retry (docs/errors.md), this one too (explore7 F7: ai_output_invalid had none).
    assert refused.status_code == 503 and refused.json()["code"] == "database_unavailable"
    assert refused.headers["Retry-After"] == "5"


def test_a_body_past_the_limit_is_413_before_it_is_parsed_and_nothing_is_cached_unless_said() -> None:
    router = APIRouter()
    parsed: list[int] = []

    @router.post("/echo")
    async def echo(body: Body) -> dict[str, int]:
        parsed.append(len(body.name))
        return {"n": len(body.name)}

    @router.get("/cached")
    async def cached() -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"Cache-Control": "public, max-age=60"})

    client = TestClient(create_app(router), raise_server_exceptions=False)
    small = client.post("/echo", json={"name": "x" * 1000})
    assert small.status_code == 200 and small.headers["Cache-Control"] == "no-store"
    big = '{"name": "' + "x" * (1024 * 1024) + '"}'
    r = client.post("/echo", content=big, headers={"content-type": "application/json"})  # with Content-Length
    assert r.status_code == 413 and r.json()["code"] == "request_too_large", r.text
    # In the limit a client can act on (explore57 F7: "larger than 1048576 bytes" for a lesson within its length).
    assert r.json()["message"] == (
        "a request body may be at most 1 MiB (MAX_BODY_BYTES, 1048576 bytes of UTF-8 JSON), "
        f"it is 1.00 MiB ({len(big)} bytes)"
    ), r.text
    from smartcourse.api.edge import too_large

    # The lesson's advice on a lesson's route only (explore81 F12: a course's body was told to split its lesson).
    lesson = too_large(1048576, 1048576, 20 * 1048576, 2 * 1048576, "/courses/c/modules/m/lessons")
    assert "it is 2.00 MiB (2097152 bytes): a lesson's 500,000 characters fit" in lesson.message
    completing = too_large(1048576, 1048576, 20 * 1048576, 2 * 1048576, "/lessons/l/complete")  # explore85 F7
    assert completing.message.endswith("it is 2.00 MiB (2097152 bytes)"), completing.message
    said = too_large(21 * 1048576, 1048576, 20 * 1048576, 24641536)  # multipart: the file's limit, not the framing's
    assert said.message == (
        "a file may be at most 20 MiB (MAX_UPLOAD_BYTES, 20971520 bytes): the upload is 23.50 MiB (24641536 bytes)"
    )
    # The upload's own code and limit, as its check within the framing's margin answers (explore78 F7).
    assert (said.code, said.details) == ("file_too_large", {"max_bytes": 20 * 1048576})
    assert r.json()["details"] == {"max_bytes": 1048576}, r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}'

    r = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "request_too_large", r.text
    assert r.json()["details"] == {"max_bytes": 1048576}, r.text
    assert r.json()["message"].endswith("(MAX_BODY_BYTES, 1048576 bytes of UTF-8 JSON), it is larger"), r.text
    assert parsed == [1000]
    assert client.get("/cached").headers["Cache-Control"] == "public, max-age=60"  # the route's own


def test_a_literal_path_never_reaches_the_id_route_beside_it() -> None:
    """`/enrollments/my-courses` is not an enrollment id: its other methods are 405 (they were 422 "invalid UUID"
    from `DELETE /enrollments/{enrollment_id}`). Ids are UUIDs in the routes (`{enrollment_id:uuid}`); the handler
    still gets a UUID, OpenAPI and template.yaml keep the plain template, and a malformed id is 404 `not_found`."""
    from smartcourse.api.local import build_local_app
    from smartcourse.functions_registry import all_functions

    app = build_local_app()
    client = TestClient(app, raise_server_exceptions=False)
    for method, path in (("DELETE", "/enrollments/my-courses"), ("POST", "/certificates/my")):
        r = client.request(method, path)
        assert r.status_code == 405 and r.json()["code"] == "method_not_allowed", r.text
        assert r.headers["Allow"] == "GET, HEAD"
    for method, path, field in (
        ("GET", "/enrollments/not-a-uuid", "enrollment_id"),
        ("DELETE", "/enrollments/not-a-uuid", "enrollment_id"),
        ("PUT", "/courses/abc/modules/" + str(uuid.uuid4()), "course_id"),
        ("POST", "/notifications/not-a-uuid/read", "notification_id"),
    ):
        r = client.request(method, path)
        assert r.status_code == 404 and r.json()["code"] == "not_found", r.text
        assert r.json()["message"] == f"Not Found: {field} must be a UUID"
        assert [d["field"] for d in r.json()["details"]] == [field]
    assert client.get("/no/such/path").json()["message"] == "Not Found"
    spec = app.openapi()
    assert not [p for p in spec["paths"] if ":" in p]
    params = spec["paths"]["/enrollments/{enrollment_id}"]["delete"]["parameters"]
    [param] = [p for p in params if p["in"] == "path"]
    assert param["schema"] == {"type": "string", "format": "uuid", "title": "Enrollment Id"}
    routes = [path for fn in all_functions() for _, path in fn.routes]
    assert "/enrollments/{enrollment_id}" in routes and not [p for p in routes if re.search(r"\{[^}]*:", p)]

    router = APIRouter()

    @router.get("/things/{thing_id:uuid}")
    async def read(thing_id: uuid.UUID) -> dict[str, str]:
        return {"type": type(thing_id).__name__, "id": str(thing_id)}

    thing = uuid.uuid4()
    for spelling in (str(thing), str(thing).upper(), thing.hex):  # every spelling pydantic took still matches
        assert TestClient(create_app(router)).get(f"/things/{spelling}").json() == {"type": "UUID", "id": str(thing)}
    from smartcourse.api.edge import route_template

    # Metrics, the request log and span names label the route by its template without the convertor.
    assert route_template({"route": router.routes[0], "path": f"/things/{thing}"}) == "/things/{thing_id}"


def test_the_trailing_slash_redirect_is_relative_whatever_the_host_header_says() -> None:
    """The 307 to the path without (or with) its trailing slash named `http://<Host>/...`: a forged Host chose where
    the client went. It is a path and query now."""
    router = APIRouter()

    @router.get("/things")
    async def things() -> list[str]:
        return []

    @router.post("/things/{thing_id}/parts/")
    async def part(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    client = TestClient(create_app(router), raise_server_exceptions=False)
    for host in ("evil.example", "evil.example:443", "testserver"):
        r = client.get("/things/?q=a%20b&n=1", headers={"Host": host}, follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == "/things?q=a%20b&n=1", r.headers
    r = client.post("/things/x/parts", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/things/x/parts/"  # 307 keeps the method
    r = client.get("http://testserver//things/", follow_redirects=False)  # never a protocol-relative `//host`
    assert r.status_code == 404 and "location" not in r.headers, r.headers
    r = client.get("/things/", follow_redirects=True)
    assert r.status_code == 200 and r.json() == []
    r = client.get("/nothing/", follow_redirects=False)
    assert r.status_code == 404 and r.json()["code"] == "not_found" and "location" not in r.headers
    # A spelling whose route does not take the method is not redirected to a 405.
    r = client.delete("/things/", follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers, r.headers


def test_a_malformed_id_with_a_trailing_slash_is_named_as_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        _malformed_ids_with_a_trailing_slash(monkeypatch)
    finally:
        get_settings.cache_clear()


def _malformed_ids_with_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    """`GET /courses/NOTUUID` named the field, `GET /courses/NOTUUID/` was a plain 404: no 307 goes to the other
    spelling (no route takes a malformed id), so its 404 names the field too, whichever spelling the route has."""
    router = APIRouter()

    @router.get("/things/{thing_id:uuid}")
    async def read(thing_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(thing_id)}

    @router.post("/things/{thing_id:uuid}/parts/")
    async def part(thing_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(thing_id)}

    client = TestClient(create_app(router), raise_server_exceptions=False)

    def answer(method: str, path: str) -> tuple[int, dict[str, object], str | None]:
        r = client.request(method, path, follow_redirects=False)
        return r.status_code, {k: v for k, v in r.json().items() if k != "trace_id"}, r.headers.get("location")

    named = {
        "code": "not_found",
        "message": "Not Found: thing_id must be a UUID",
        "details": [{"field": "thing_id", "message": "Input should be a valid UUID", "type": "uuid_parsing"}],
    }
    for method, path in (
        ("GET", "/things/nope"),
        ("GET", "/things/nope/"),
        ("GET", "/things/nope//"),
        ("POST", "/things/nope/parts/"),
        ("POST", "/things/nope/parts"),
    ):
        assert answer(method, path) == (404, named, None), (method, path)
    # A well-formed id is still sent round to the route's spelling; an unknown path is still a plain 404.
    thing = uuid.uuid4()
    assert client.get(f"/things/{thing}/", follow_redirects=False).headers["location"] == f"/things/{thing}"
    status, body, location = answer("GET", "/nothing/nope/")
    assert (status, body["message"], body.get("details"), location) == (404, "Not Found", None, None)

    # The function pack's routes alike (without the edge cache, whose catalogue generation needs the engines: a unit
    # test must not start them).
    from smartcourse.api.local import build_local_app

    monkeypatch.setenv("SMARTCOURSE_EDGE_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    local = TestClient(build_local_app(), raise_server_exceptions=False)
    for method, path, field in (
        ("GET", "/courses/NOTUUID", "course_id"),
        ("GET", "/courses/NOTUUID/", "course_id"),
        ("PUT", "/courses/abc/modules/" + str(uuid.uuid4()) + "/", "course_id"),
        ("POST", "/notifications/not-a-uuid/read/", "notification_id"),
    ):
        r = local.request(method, path, follow_redirects=False)
        assert r.status_code == 404 and "location" not in r.headers, (method, path, r.text)
        assert r.json()["code"] == "not_found" and r.json()["message"] == f"Not Found: {field} must be a UUID"
        assert [d["field"] for d in r.json()["details"]] == [field]
    # A route's last segment left empty names no parameter the request never had (explore13 F8: "certificate_id
    # must be a UUID" for `/certificates/verify/`).
    r = local.get("/certificates/verify/", follow_redirects=False)
    assert (r.status_code, r.json()["message"], r.json()["details"]) == (404, "Not Found", None), r.text
    # A literal path beside an id's, with a method only the id's route takes: not a malformed id (without the
    # slash, 405), and no 307 to the spelling that does not take the method.
    for method, path in (("DELETE", "/enrollments/my-courses/"), ("POST", "/certificates/my/")):
        r = local.request(method, path, follow_redirects=False)
        assert r.status_code == 404 and "location" not in r.headers, (method, path, r.text)
        assert r.json()["message"] == "Not Found" and r.json()["details"] is None, r.text


def test_a_callers_traceparent_is_not_continued_unless_trusted(monkeypatch: object) -> None:
    """explore8 F13: anyone could choose the X-Trace-Id they got back and put requests into another's trace. The API
    starts a trace of its own (the caller's header kept as a span attribute) unless TRUST_TRACEPARENT is set."""
    import pytest

    from smartcourse.config import get_settings

    router = APIRouter()

    @router.get("/traced")
    async def traced() -> dict[str, str]:
        return {}

    caller = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = {"traceparent": f"00-{caller}-00f067aa0ba902b7-01"}
    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    for trusted in (False, True):
        monkeypatch.setenv("TRUST_TRACEPARENT", "true" if trusted else "false")
        get_settings.cache_clear()
        try:
            r = TestClient(create_app(router)).get("/traced", headers=header)
        finally:
            get_settings.cache_clear()
        assert r.status_code == 200 and len(r.headers["X-Trace-Id"]) == 32
        assert (r.headers["X-Trace-Id"] == caller) is trusted, (trusted, r.headers["X-Trace-Id"])


class _Things(BaseModel):
    n: int


def test_every_error_answer_is_counted_by_its_code() -> None:
    """explore8 F4: `smartcourse_domain_errors_total{code}` counted the services' refusals only; the API layer's
    answers (422 validation_error, 405 method_not_allowed, 404 not_found, 500 internal_error) are counted too."""
    from smartcourse.errors import Conflict
    from smartcourse.metrics import DOMAIN_ERRORS

    router = APIRouter()

    @router.post("/things")
    async def things(body: _Things) -> dict[str, int]:
        if body.n == 0:
            raise Conflict("zero", code="zero_things")
        if body.n < 0:
            raise RuntimeError("a bug")
        return {"n": body.n}

    def counted(code: str) -> float:
        return DOMAIN_ERRORS.labels(code)._value.get()

    codes = ("validation_error", "method_not_allowed", "not_found", "zero_things", "internal_error")
    before = {code: counted(code) for code in codes}
    client = TestClient(create_app(router), raise_server_exceptions=False)
    assert client.post("/things", json={"n": "x"}).status_code == 422
    assert client.get("/things").status_code == 405
    assert client.get("/nothing-here").status_code == 404
    assert client.post("/things", json={"n": 0}).status_code == 409
    assert client.post("/things", json={"n": -1}).status_code == 500
    assert {code: counted(code) - before[code] for code in codes} == dict.fromkeys(codes, 1)


def test_the_edges_early_answers_carry_the_cors_headers(monkeypatch: object) -> None:
    """explore8 F14: a body declared too large was refused by the edge outside CORS, so a browser app saw a CORS
    failure instead of 413 `request_too_large`. CORS is now the outer layer; a preflight still works."""
    import pytest

    from smartcourse.config import get_settings

    router = APIRouter()

    @router.post("/things")
    async def things(body: _Things) -> dict[str, int]:
        return {"n": body.n}

    origin = "https://app.example"
    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("CORS_ORIGINS", origin)
    get_settings.cache_clear()
    try:
        client = TestClient(create_app(router))
        big = b'{"n": 1, "pad": "' + b"x" * (get_settings().max_body_bytes + 10) + b'"}'
        r = client.post("/things", content=big, headers={"Origin": origin, "Content-Type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (413, "request_too_large")
        assert (
            r.headers["access-control-allow-origin"] == origin
            and "X-Trace-Id" in r.headers["access-control-expose-headers"]
        )
        r = client.post("/things", json={"n": 2}, headers={"Origin": origin})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        assert r.headers["x-content-type-options"] == "nosniff"  # the edge's headers still on every handler answer
        preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        r = client.options("/things", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
        # A web app revalidates the catalogue itself: it may send If-None-Match and read the ETag (explore60 F4).
        r = client.options("/things", headers={**preflight, "Access-Control-Request-Headers": "if-none-match"})
        assert r.status_code == 200, r.text
        r = client.post("/things", json={"n": 2}, headers={"Origin": origin})
        assert "ETag" in r.headers["access-control-expose-headers"]
        # A browser's trace context and common client headers pass; a download's file name is readable; a refused
        # preflight is an error like any, with its code (explore78 F9: plain text, and `traceparent` refused).
        asked = "traceparent, tracestate, x-requested-with, cache-control, content-type"
        r = client.options("/things", headers={**preflight, "Access-Control-Request-Headers": asked})
        assert r.status_code == 200, r.text
        exposed = client.post("/things", json={"n": 2}, headers={"Origin": origin}).headers
        assert "Content-Disposition" in exposed["access-control-expose-headers"]
        r = client.options("/things", headers={**preflight, "Access-Control-Request-Headers": "x-custom"})
        assert (r.status_code, r.json()["code"], r.json()["details"]["refused"]) == (400, "cors_refused", ["headers"])
        assert r.headers["access-control-allow-origin"] == origin and "traceparent" in r.json()["message"]
        assert r.json()["details"]["headers"] == ["x-custom"], r.json()  # which one (explore81 F8)
        r = client.options("/things", headers={**preflight, "Origin": "https://evil.example"})
        assert (r.status_code, r.json()["details"]["refused"]) == (400, ["origin"]), r.text
        assert "access-control-allow-origin" not in r.headers
    finally:
        get_settings.cache_clear()


def test_the_cached_catalogue_reads_declare_their_etag_and_304() -> None:
    """explore60 F4: `GET /courses/{id}` answered 304 to a current If-None-Match, undeclared: a generated client took
    it for an error."""
    from smartcourse.api.local import build_local_app

    schema = TestClient(build_local_app()).get("/openapi.json").json()
    for path in ("/courses/{course_id}", "/courses", "/search"):
        responses = schema["paths"][path]["get"]["responses"]
        assert "304" in responses and "ETag" in responses["304"]["headers"], (path, responses.keys())
        assert "ETag" in responses["200"]["headers"] and "content" in responses["200"], path


def test_a_lessons_quiz_questions_are_typed() -> None:
    """explore60 F7: `LessonPublic.questions` was an array of free-form objects."""
    from smartcourse.api.local import build_local_app

    schemas = TestClient(build_local_app()).get("/openapi.json").json()["components"]["schemas"]
    questions = schemas["LessonPublic"]["properties"]["questions"]
    assert "QuizQuestionPublic" in str(questions), questions
    assert set(schemas["QuizQuestionPublic"]["required"]) == {"prompt", "options"}


def test_the_analytics_answers_are_typed() -> None:
    """explore60 F7, explore61 F7: five of the six analytics answers were `object` in the OpenAPI document."""
    from smartcourse.api.local import build_local_app

    paths = TestClient(build_local_app()).get("/openapi.json").json()["paths"]
    for path, model in (
        ("/analytics/dashboard", "AnalyticsDashboard"),
        ("/analytics/enrollments", "EnrollmentSeries"),
        ("/analytics/reconcile", "Reconcile"),
        ("/analytics/course/{course_id}", "CourseAnalytics"),
        ("/analytics/student/{student_id}", "StudentAnalytics"),
        ("/analytics/completions", "CompletionSeries"),
    ):
        answer = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"#/components/schemas/{model}"}, (path, answer)


def test_a_handlers_unexpected_exception_is_a_500_that_leaves_the_connection_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """explore60 F1: Starlette's handler of `Exception` answered 500, then raised the exception again to the server,
    which closed the keep-alive connection: the client's next request failed with "connection reset by peer". The
    innermost middleware answers it instead, and nothing reaches the server (TestClient raises what reaches it)."""
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> dict[str, int]:
        raise RuntimeError("a bug")

    client = TestClient(create_app(router), raise_server_exceptions=True)
    with caplog.at_level(logging.ERROR, logger="smartcourse.api"):
        r = client.get("/boom")
    assert r.status_code == 500 and r.json()["code"] == "internal_error", r.text
    assert "unhandled error on GET /boom" in caplog.text and "RuntimeError: a bug" in caplog.text


def test_a_validators_message_is_ours_without_pydantics_prefix() -> None:
    """explore65 F16: each `details[].message` of a validator's refusal began with pydantic's "Value error, "."""
    router = APIRouter()

    @router.post("/titled")
    async def titled(body: _Titled) -> dict[str, str]:
        return {"title": body.title}

    r = TestClient(create_app(router)).post("/titled", json={"title": "two\nlines"})
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["message"].startswith("must be one line of text"), r.text


class _Titled(BaseModel):
    title: Title


def test_a_list_sent_with_brackets_is_read_as_repeated() -> None:
    """explore79 F4: axios and jQuery send `status[]=a&status[]=b`; it was 422 "unknown query parameter 'status[]'"."""
    from smartcourse.api.edge import unbracketed

    assert unbracketed(b"status[]=a&status%5B%5D=b&page=2&x=[]") == b"status=a&status=b&page=2&x=[]"
    router = APIRouter()

    @router.get("/things")
    async def things(status: Annotated[list[str] | None, Query()] = None) -> dict[str, Any]:
        return {"status": status}

    client = TestClient(create_app(router), raise_server_exceptions=False)
    r = client.get("/things?status[]=a&status%5B%5D=b")
    assert r.status_code == 200 and r.json() == {"status": ["a", "b"]}, r.text


def test_a_pattern_refusal_is_said_in_words() -> None:
    """explore80 F11: a blank search was refused with a raw regular expression."""
    router = APIRouter()

    @router.get("/find")
    async def find(q: Annotated[str, Query(pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")]) -> dict[str, str]:
        return {"q": q}

    client = TestClient(create_app(router), raise_server_exceptions=False)
    r = client.get("/find", params={"q": "   "})
    assert r.status_code == 422 and r.json()["details"][0]["message"] == "must not be blank, nor hold a NUL character"
