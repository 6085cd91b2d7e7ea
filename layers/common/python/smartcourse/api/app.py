"""The app factory shared by every function (under Mangum) and by the local router."""

from __future__ import annotations

import errno
import functools
import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, quote

import asyncpg.exceptions as pg_errors
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.convertors import UUIDConvertor
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match, Route, compile_path

from smartcourse import __version__, db, telemetry
from smartcourse.api.deps import OptionalUser
from smartcourse.api.edge import ERROR_CODE, BodyTooLarge, EdgeMiddleware
from smartcourse.api.edge_cache import install_edge_cache
from smartcourse.api.emails import install_email_handover
from smartcourse.api.overload import install_load_shedding
from smartcourse.api.tracing import install_tracing
from smartcourse.config import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE, CORS_METHODS
from smartcourse.db import is_transient
from smartcourse.errors import DomainError, Invalid
from smartcourse.logging import configure_logging
from smartcourse.metrics import DOMAIN_ERRORS
from smartcourse.schemas import RULE_CODE, RULE_FIELDS, ErrorBody

log = logging.getLogger("smartcourse.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",  # also the load shedder's answer to a body that stops arriving (api/overload.py)
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

#: An OSError that says the server's own storage refused a write, not that a backend is briefly away.
_STORAGE_REFUSED = frozenset({errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT})

#: The header that comes with a 429 and (when a retry is worth it) a 503, as the OpenAPI document declares it.
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    }
}

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    s: {"model": ErrorBody, **({"headers": RETRY_AFTER} if s in (429, 503) else {})}
    for s in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}


class _ExplainedError(JSONResponse):
    """A 5xx answer that says why on its server span: the tracing instrumentation sets the span `ERROR`, without a word,
    as the answer starts; the reason is set right after (explore55 F5: a 503's span said `ERROR` and nothing more)."""

    span: Any = None
    why = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_then_explain(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.start" and self.span is not None and self.span.is_recording():
                self.span.set_status(Status(StatusCode.ERROR, self.why))

        await super().__call__(scope, receive, send_then_explain)


def _error(
    status: int, code: str, message: str, details: object = None, *, trace_id: str | None = None
) -> JSONResponse:
    """Every error answer of the API: `{code, message, details, trace_id}` (the request's trace unless given),
    counted by its code."""
    DOMAIN_ERRORS.labels(code).inc()
    if (seen := ERROR_CODE.get()) is not None:  # the access line says it, and a 5xx's server span (`EdgeMiddleware`)
        seen.update(code=code, message=message)
    span = trace.get_current_span()  # the request's server span
    if span.is_recording():
        span.set_attribute("smartcourse.error_code", code)
    trace_id = trace_id or telemetry.current_trace_id()  # quote it to an operator: `smartcourse trace <id>`, or Jaeger
    content = {"code": code, "message": message, "details": details, "trace_id": trace_id}
    response: JSONResponse
    if status >= 500 and span.is_recording():
        response = _ExplainedError(status_code=status, content=content)
        response.span, response.why = span, f"{code}: {message}"[:300]
    else:
        response = JSONResponse(status_code=status, content=content)
    if status == 503:  # every 503 says when to retry (a handler or an error's own headers may say sooner or later)
        response.headers["Retry-After"] = "5"
    if trace_id:
        response.headers["X-Trace-Id"] = trace_id
    return response


#: The most field errors an answer lists; the rest are counted in one last entry (`too_many_errors`): a body of 1 MiB
#: with 111,000 unknown keys, sent anonymously to /auth/login, was answered with 10 MB listing each (explore44 F2).
MAX_FIELD_ERRORS = 50
FIELD_NAME_CHARS = 200


def _field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """The request's field errors, at most `MAX_FIELD_ERRORS` of them, then one entry counting the others."""
    errors = exc.errors()
    out = _listed_errors(errors[:MAX_FIELD_ERRORS])
    if len(errors) > MAX_FIELD_ERRORS:
        more = len(errors) - MAX_FIELD_ERRORS
        out.append({"field": "body", "message": f"{more} more errors not listed", "type": "too_many_errors"})
    for entry in out:  # a field is named by the client's key, as long as it sent it
        if len(entry["field"]) > FIELD_NAME_CHARS:
            entry["field"] = entry["field"][:FIELD_NAME_CHARS] + "\u2026"
    return out


def _listed_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for err in errors:
        if err.get("type") == "json_invalid":  # its loc is ("body", <character offset>): not a field
            position = next((p for p in err.get("loc", ())[1:] if isinstance(p, int)), None)
            reason = (err.get("ctx") or {}).get("error", "malformed")
            where = "" if position is None else f" at character {position}"
            out.append({"field": "body", "message": f"invalid JSON{where}: {reason}", "type": "json_invalid"})
            continue
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        named = [f for f in str((err.get("ctx") or {}).get(RULE_FIELDS) or "").split(",") if f]  # a model rule's
        # A validator's ValueError is "Value error, <ours>" in pydantic's words: ours alone (explore65 F16).
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "string_pattern_mismatch":
            message = _pattern_said((err.get("ctx") or {}).get("pattern", ""), message)
        for field in named or [".".join(loc) or "body"]:
            out.append({"field": field, "message": message, "type": str(err.get("type"))})
    return out


def _pattern_said(pattern: str, message: str) -> str:
    """A pattern's refusal in words, not the pattern (explore80 F11: "String should match pattern
    '^[^\\x00]*[^\\x00\\s][^\\x00]*$'" for a blank search)."""
    if r"[^\s\x00]" in pattern or r"[^\x00\s]" in pattern:
        return "must not be blank, nor hold a NUL character"
    if pattern == r"^[^\x00]*$":
        return "must not hold a NUL character"
    if pattern == r"^[\x21-\x7e]+$":
        return "must be printable ASCII characters, without spaces"
    return message


def _media_type(request: Request) -> str:
    """The request's `Content-Type` without its parameters, lower-cased ("" when none)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _sent_as_json(request: Request) -> bool:
    content_type = _media_type(request)
    return content_type == "application/json" or content_type.endswith("+json")


def _unreadable_json(request: Request, exc: StarletteHTTPException) -> dict[str, str] | None:
    """The field error of a JSON body FastAPI could not decode other than by a syntax error (its 400 "There was an
    error parsing the body" raised from the decoder's exception), in `_field_errors`' shape; None otherwise (a form
    body's parse error among them)."""
    if not _sent_as_json(request):
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        reason = f"the body is not UTF-8 (byte {cause.start})"
    elif isinstance(cause, RecursionError):
        reason = "the body nests arrays or objects too deeply"
    elif isinstance(cause, ValueError):  # what else json.loads raises: a number too long to convert
        # Python's own advice ("use sys.set_int_max_str_digits() to increase the limit") is not the client's to
        # follow (explore45 F9).
        reason = str(cause).split(";")[0][:200]
    else:
        return None
    return {"field": "body", "message": f"invalid JSON: {reason}", "type": "json_invalid"}


def _rule_code(exc: RequestValidationError) -> str | None:
    """The error code of a request refused only by model rules that name one (`schemas.rule_error`: a lesson's
    fields that do not fit its type are `invalid_lesson`, as the update's check answers); None otherwise."""
    codes = {str((err.get("ctx") or {}).get(RULE_CODE) or "") for err in exc.errors()}
    return next(iter(codes)) if len(codes) == 1 and "" not in codes else None


def _unencodable(exc: BaseException) -> bool:
    """The driver could not encode a parameter (asyncpg: a time outside PostgreSQL's range is an OverflowError), or
    PostgreSQL refused a value as data (SQLSTATE class 22, "data exception": a NUL byte in a text parameter is 22021,
    which asyncpg raises as its own error and SQLAlchemy wraps as a plain DBAPIError, not a DataError): the request's
    value, never the database's state."""
    seen: BaseException | None = exc
    for _ in range(5):
        seen = getattr(seen, "orig", None) or (seen.__cause__ if seen is not None else None)
        if seen is None:
            return False
        if isinstance(seen, OverflowError) or str(getattr(seen, "sqlstate", "") or "").startswith("22"):
            return True
    return False


def _allowed_methods(request: Request) -> str:
    """Every method the path answers (RFC 9110's Allow): the routes of one path come from several functions' routers,
    and the router's 405 names only the first route that matched the path."""
    methods: set[str] = set()
    for route in getattr(request.app.state, "method_routes", ()):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")  # answered for every GET route (`api.edge`)
    return ", ".join(sorted(methods))


_UUID = re.compile(UUIDConvertor.regex)


def id_routes(routes: list[Any]) -> list[tuple[re.Pattern[str], list[str]]]:
    """For each route whose path takes UUIDs (`{course_id:uuid}`): its path with any segment in their place, and
    their names. A path no route matched that matches one of these has a malformed id."""
    out = []
    for route in routes:
        ids = [
            name
            for name, conv in (getattr(route, "param_convertors", None) or {}).items()
            if isinstance(conv, UUIDConvertor)
        ]
        if ids and isinstance(route, Route):
            out.append((compile_path(route.path_format)[0], ids))
    return out


def _other_spelling(path: str) -> str | None:
    """The path without its trailing slash, or with one (None for the root)."""
    if path in ("", "/"):
        return None
    return path.rstrip("/") if path.endswith("/") else path + "/"


def _malformed_ids(request: Request) -> list[str]:
    """The ids of a path that no route matched which are not UUIDs (`/enrollments/xyz`): for the 404's message.
    Its other spelling too (`/enrollments/xyz/`): no 307 goes there (no route takes a malformed id), so its 404
    names the field as the path without the slash does; unless that spelling is a route's path that only does not
    take the method (`DELETE /enrollments/my-courses/`: a literal path, not a malformed id)."""
    path = request.scope.get("path", "")
    routes = getattr(request.app.state, "method_routes", None) or request.app.router.routes  # included ones too
    if path.endswith("/") and any(str(getattr(route, "path_format", "")).startswith(path) for route in routes):
        return []  # `/certificates/verify/`: a route's segment left empty, not a malformed id (explore13 F8)
    for spelling in (path, _other_spelling(path)):
        if spelling is None:
            continue
        if spelling != path:
            other = dict(request.scope, path=spelling)
            if any(route.matches(other)[0] is not Match.NONE for route in request.app.router.routes):
                return []
        for loose, ids in getattr(request.app.state, "id_routes", ()):
            if matched := loose.match(spelling):
                return [name for name in ids if not _UUID.fullmatch(matched.group(name))]
    return []


def _slash_redirect(request: Request) -> str | None:
    """Where a path that differs from a route's only by a trailing slash redirects (307): the other spelling, as a
    path and query only. Starlette's own redirect (turned off in `create_app`) built an absolute URL from the
    request's `Host` header, so a forged `Host` chose where the client was sent."""
    scope = request.scope
    if (other_path := _other_spelling(scope.get("path", ""))) is None:
        return None
    other = dict(scope, path=other_path)
    # Only to a route that takes this method too: a 307 to a 405 sends the client round for nothing.
    if not any(route.matches(other)[0] is Match.FULL for route in request.app.router.routes):
        return None
    # Never `//host/...`; a named stage's prefix goes in front at the edge (`EdgeMiddleware._stage`).
    location = "/" + quote(other["path"], safe="/:@!$&'()*+,;=-._~").lstrip("/")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{location}?{query}" if query else location


def _json_body_sent_as_other_type(request: Request, exc: RequestValidationError) -> bool:
    """A JSON endpoint's whole body refused because it came with a content type FastAPI does not parse as JSON."""
    if _sent_as_json(request):
        return False
    if not request.headers.get("content-type") and not int(request.headers.get("content-length") or 0):
        return False  # no body at all: the fields it lacks are named (422)
    return any(
        tuple(err.get("loc", ())) == ("body",) and err.get("type") in ("dict_type", "model_attributes_type")
        for err in exc.errors()
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        resp = _error(exc.status_code, exc.code, exc.message, exc.details)
        for k, v in exc.headers.items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _json_body_sent_as_other_type(request, exc):
            return _error(415, "unsupported_media_type", "send the request body as application/json")
        fields = _field_errors(exc)
        if code := _rule_code(exc):  # the answer the service gives for the same rule (`courses.invalid_lesson`)
            # One rule named for several fields is one message ("a quiz lesson does not take content, transcript").
            return _error(422, code, "; ".join(dict.fromkeys(f["message"] for f in fields)), fields)
        names = ", ".join(sorted({f["field"] for f in fields}))
        return _error(422, "validation_error", f"invalid request: {names}", fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (location := _slash_redirect(request)):
            return RedirectResponse(location, status_code=307)
        if exc.status_code == 400 and (unreadable := _unreadable_json(request, exc)):
            # FastAPI answers a JSON syntax error with a RequestValidationError (422 `json_invalid`, above) but a
            # body that is not UTF-8, or nested past the parser's depth, with a bare 400: the same mistake, one answer.
            return _error(422, "validation_error", "invalid request: body", [unreadable])
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message, details = str(exc.detail), None
        if isinstance(exc, BodyTooLarge):  # counted past the limit as it arrived: the edge's own 413 (`too_large`)
            code, details = exc.refusal.code, exc.refusal.details
        if exc.status_code == 404 and (malformed := _malformed_ids(request)):
            # Ids are UUIDs in the routes themselves (`{enrollment_id:uuid}`, so that `/enrollments/my-courses`
            # never reaches the id's route): a malformed one names no resource, as an unknown path does.
            message = f"Not Found: {', '.join(malformed)} must be a UUID"
            details = [
                {"field": name, "message": "Input should be a valid UUID", "type": "uuid_parsing"} for name in malformed
            ]
        resp = _error(exc.status_code, code, message, details)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            resp.headers["Allow"] = allowed
        return resp

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        # Every connection is busy: back-pressure, not a bug. Tell the client to retry.
        log.warning("database pool exhausted on %s %s", request.method, request.url.path)
        resp = _error(503, "database_busy", "the service is busy; retry shortly")
        resp.headers["Retry-After"] = "1"
        return resp

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # A value PostgreSQL refuses (bad encoding, out of range) is the client's input, not our failure.
        if isinstance(exc, DataError) or _unencodable(exc):
            return _error(422, "invalid_input", "a value in the request cannot be stored")
        if is_transient(exc):
            # PostgreSQL restarting ("the database system is starting up", 57P03), a connection cut, a deadlock:
            # briefly unavailable, as the docs say of a restart, not a database fault with a traceback (explore10 F3).
            return _backend_down(request, exc, "is restarting or unreachable", 2)
        log.exception("database error on %s %s", request.method, request.url.path)
        return _error(503, "database_unavailable", "the database could not complete the request; retry later")

    def _backend_down(request: Request, exc: BaseException, what: str, retry_after: int) -> JSONResponse:
        log.warning("backend %s on %s %s: %r", what, request.method, request.url.path, exc)
        resp = _error(503, "service_unavailable", f"a backend service {what}; retry shortly")
        resp.headers["Retry-After"] = str(retry_after)
        return resp

    @app.exception_handler(TimeoutError)
    async def _too_slow(request: Request, exc: TimeoutError) -> JSONResponse:
        # A backend that accepted the request but did not answer in time: PostgreSQL stalled past
        # DB_STATEMENT_TIMEOUT (asyncpg's command_timeout, raised unwrapped through SQLAlchemy). Retryable.
        return _backend_down(request, exc, "did not answer in time", 5)

    @app.exception_handler(OSError)
    async def _unreachable(request: Request, exc: OSError) -> JSONResponse:
        # A backend's socket refused or vanished mid-connect (asyncpg raises ConnectionRefusedError over TCP and
        # FileNotFoundError over a Unix socket while PostgreSQL restarts; SQLAlchemy does not wrap either):
        # the service is briefly unavailable, which the client may retry, not an internal error.
        if exc.errno in _STORAGE_REFUSED or (exc.filename is not None and not isinstance(exc, ConnectionError)):
            # The server's own storage refused a write (permissions, a full disk, a read-only mount), or failed on a
            # path it names (a failing disk, a directory replaced: explore32 F3; a socket's error names no path):
            # not a passing outage a retry gets past, and the file's path says where (explore18 F5: "unreachable;
            # retry shortly").
            # str(), not repr(): an OSError's repr leaves out the path it names (explore21 F2).
            log.error(
                "storage refused on %s %s: %s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
                exc,
                extra={"path": exc.filename},
            )
            resp = _error(
                503,
                "storage_unavailable",
                "the server could not write its storage; an operator has been told (GET /health names it)",
            )
            resp.headers["Retry-After"] = "60"
            return resp
        return _backend_down(request, exc, "is unreachable", 2)

    async def _driver(request: Request, exc: Exception) -> JSONResponse:
        # The driver's own errors, which SQLAlchemy does not always wrap (asyncpg's "connection is closed" from a
        # connection cut under the request), answered here rather than by the handler of `Exception`: that one runs
        # outside the middlewares, which then log and count a 500 whatever was answered (explore10 F2).
        if is_transient(exc):
            return _backend_down(request, exc, "is restarting or unreachable", 2)
        log.exception("unhandled database driver error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "an unexpected error occurred; it has been logged")

    for driver_error in (pg_errors.InterfaceError, pg_errors.PostgresError, DisconnectionError):
        app.add_exception_handler(driver_error, _driver)  # type: ignore[arg-type]

    # What a middleware outside `LastResort` raises (the handlers' own exceptions are answered by `LastResort`).
    app.add_exception_handler(Exception, _unexpected)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    if is_transient(exc):
        # The driver's own error, unwrapped by SQLAlchemy, while PostgreSQL restarts (asyncpg's "connection is
        # closed" from a new connection's set-up, a deadlock): briefly unavailable, not a bug.
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        resp = _error(503, "service_unavailable", "a backend service is unreachable; retry shortly")
        resp.headers["Retry-After"] = "2"
        return resp
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error(500, "internal_error", "an unexpected error occurred; it has been logged")


class LastResort:
    """ASGI middleware, the innermost: a handler's unexpected exception answered as 500 `internal_error` (503 when the
    database is away) here, not by Starlette's handler of `Exception`. That one answers, then raises the exception
    again to the server, and uvicorn closes the connection after the 500 without `Connection: close`: a client's next
    request on it failed with "connection reset by peer", an unrelated request seeing a network error (explore60 F1).
    Answered here, the connection stays open, and the middlewares outside it see the 500 as any answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # too late to answer: the server ends the response as it must
                raise
            span = trace.get_current_span()  # the request's server span: the exception is on it, as when raised
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:500]))
            response = await _unexpected(Request(scope, receive), exc)
            await response(scope, receive, send)


def install_security(app: FastAPI) -> None:
    """CORS only for configured origins; the ops-page gate and the security headers are in `api.edge`."""
    from smartcourse.config import get_settings

    origins = get_settings().cors_origin_list
    if origins:
        app.add_middleware(
            _CORS,
            allow_origins=origins,
            allow_methods=list(CORS_METHODS),
            allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS),
            max_age=CORS_MAX_AGE,
        )


class _CORS(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as every error is (`{code, message, details}`), not a bare
    "Disallowed CORS headers" in plain text (explore78 F9): 400 `cors_refused`, `details.refused` naming what (origin,
    method, headers), `details.allowed_headers` what may be sent."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        said = bytes(response.body).decode("latin-1")
        refused = said.removeprefix("Disallowed CORS ").split(", ")
        # What exactly (explore81 F8: the kind alone), and the headers as the check reads them (the safelisted ones
        # Starlette adds included).
        asked = [h.strip() for h in request_headers.get("access-control-request-headers", "").lower().split(",")]
        details = {
            "refused": refused,
            "origin": request_headers.get("origin") if "origin" in refused else None,
            "method": request_headers.get("access-control-request-method") if "method" in refused else None,
            "headers": [h for h in asked if h and h not in self.allow_headers] or None,
            "allowed_headers": sorted(self.allow_headers),
            "allowed_methods": list(CORS_METHODS),
        }
        named = [
            f"{k} {v if isinstance(v, str) else ', '.join(v)}"
            for k in ("origin", "method", "headers")
            if (v := details[k])
        ]
        answer = _error(
            400,
            "cors_refused",
            f"{said.lower()} ({'; '.join(named) or 'see details'}): the origins allowed are CORS_ORIGINS, the "
            f"request headers {', '.join(sorted(self.allow_headers))}",
            {k: v for k, v in details.items() if v is not None},
        )
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "content-type"):
                answer.headers[key] = value
        return answer


def install_edge(app: FastAPI) -> None:
    """Ops-page gate, security and trace headers, metrics and the request log line (one pure ASGI layer)."""
    from smartcourse.config import get_settings

    settings = get_settings()
    app.add_middleware(
        EdgeMiddleware,
        hsts_always=settings.is_production,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        base_path=settings.api_base_path,
    )


#: Bodies a client may send to a route that takes none: nothing, `{}` or `null` (what generic clients send).
_EMPTY_BODIES = frozenset({b"", b"{}", b"null"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _takes_a_body(route: APIRoute) -> bool:
    """The route reads a body: a body parameter, or one it reads itself and declares (an upload's form)."""
    return route.body_field is not None or "requestBody" in (route.openapi_extra or {})


def _sent_fields(request: Request, body: bytes) -> set[str] | None:
    """The field names of a JSON object or a form sent as the body (an empty set for `{ }` or `null`), else None."""
    if _media_type(request) == "application/x-www-form-urlencoded":
        return set(parse_qs(body.decode("latin-1"), keep_blank_values=True))
    try:
        sent = json.loads(body)
    except ValueError:
        return None
    return set(sent) if isinstance(sent, dict) else set() if sent is None else None


def _query_fields(dependant: Dependant) -> list[Any]:
    """The query parameters a route reads, its dependencies' included (FastAPI's fields)."""
    fields = list(dependant.query_params)
    for sub in dependant.dependencies:
        fields += _query_fields(sub)
    return fields


def _query_names(dependant: Dependant) -> set[str]:
    """The names of `_query_fields`."""
    return {f.alias for f in _query_fields(dependant)}


#: Query parameters any route takes without reading them: a client's cache buster (`?_=1700000000`).
_IGNORED_QUERY = frozenset({"_"})


def _reads(route: APIRoute) -> frozenset[str]:
    """The query parameters the route reads (kept on the route: a `Dependant` is not hashable)."""
    reads: frozenset[str] | None = getattr(route, "_smartcourse_reads", None)
    if reads is None:
        reads = frozenset(_query_names(route.dependant))
        route._smartcourse_reads = reads  # type: ignore[attr-defined]
    return reads


async def refuse_unknown_query(request: Request, caller: OptionalUser) -> None:
    """A query parameter the route does not read is refused, 422 `validation_error` naming it and the ones it reads,
    instead of ignored: on the figures managers report (analytics, users, the roster, ops), a filter the route does not
    have answered the unfiltered figure, 200 and no warning (explore61 F4: `/analytics/enrollments?course_id=` gave
    the platform's 27 for a course's 4; `/users?is_active=false` listed everyone). A dependency of those routes; the
    public catalogue and pages keep ignoring what they do not read (links carry tracking parameters).

    The caller is the routes' own (`CurrentUser` depends on the same `OptionalUser`, which FastAPI resolves once per
    request): the token is decoded and the account checked once, here, before the parameters are looked at; a bad
    token or a disabled account is the 401 the route would give."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or caller is None:
        # Anonymous: the route's own authentication answers first (401), not a 422 naming the filters that its
        # callers have (explore62 F10, explore64 F2: the admin-only filters listed to anyone).
        return
    reads = _reads(route)
    unknown = sorted(set(request.query_params) - reads - _IGNORED_QUERY)
    if not unknown:
        return
    said = f"it reads {', '.join(sorted(reads))}" if reads else "it reads none"
    # The parameters it reads, checked now: every bad one is said in the same answer (explore79 F14: `page=abc` and
    # `status=nope` came out only on the next try).
    _, errors = request_params_to_args(_query_fields(route.dependant), request.query_params)
    details = _listed_errors(errors) + [
        {
            "field": f"query.{name}",
            "message": f"this endpoint has no query parameter {name!r}; {said}",
            "type": "unknown_parameter",
        }
        for name in unknown
    ]
    raise Invalid(
        f"unknown query parameter {', '.join(map(repr, unknown))}; {said}", code="validation_error", details=details
    )


async def refuse_unread_body(request: Request) -> None:
    """A body sent to a route that takes none is refused, 422 `validation_error`, instead of ignored: a drop's
    `{"reason": …}` sent as JSON was answered 200 and the reason lost (`reason` is a query parameter; explore44 F3).
    The message names the query parameters the body's keys were meant to be. An app-wide dependency: a route with
    a body pays one attribute read."""
    route = request.scope.get("route")
    if request.method not in _BODY_METHODS or not isinstance(route, APIRoute) or _takes_a_body(route):
        return
    body = (await request.body()).removeprefix(b"\xef\xbb\xbf").strip()  # a BOM, as the JSON routes take it
    if body in _EMPTY_BODIES:
        return
    sent = _sent_fields(request, body)
    if sent == set() and body[:1] == b"{":  # `{ }`, `{\n}` (explore45 F5); not `[]`
        return
    message = "this endpoint takes no request body"
    if meant := sorted(_query_names(route.dependant) & (sent or set())):
        message += f": send {', '.join(meant)} in the query string (?{meant[0]}=…)"
    details = [{"field": "body", "message": message, "type": "body_not_accepted"}]
    raise Invalid(message, code="validation_error", details=details)


def create_app(*routers: APIRouter, title: str = "SmartCourse API") -> FastAPI:
    """One FastAPI app around the given routers, with SmartCourse's error format and metrics."""
    configure_logging()
    app = FastAPI(
        title=title,
        version=__version__,
        description="SmartCourse: course authoring, enrollment, learning and an AI assistant.",
        responses=ERROR_RESPONSES,
        redirect_slashes=False,  # redirected by the 404 handler, to a relative Location (`_slash_redirect`)
        dependencies=[Depends(refuse_unread_body)],
    )
    app.add_middleware(LastResort)  # innermost: an unexpected exception is a 500 that keeps the connection open
    install_email_handover(app)  # a request's new notifications are e-mailed after its commit
    install_load_shedding(app)  # 503 overloaded when this process is saturated (issue #7)
    install_error_handlers(app)
    install_tracing(app)
    install_edge(app)  # outside the handlers: it sees every answer they give (inside the trace's span)
    # CORS outside the edge: the edge's own early answers (413 request_too_large, a hidden ops page's 404) carry the
    # CORS headers too, so a browser app reads their code instead of a CORS failure. A preflight is answered by CORS
    # itself (no edge: not counted by route nor logged).
    install_security(app)
    install_edge_cache(app)  # outside the trace's span too: anonymous public catalogue reads from memory
    for router in routers:
        describe_operations(router)
        app.include_router(router)
    # The routes as their routers declared them (FastAPI keeps included routers nested), for the 405's Allow.
    app.state.method_routes = [r for router in routers for r in router.routes if isinstance(r, Route)]
    app.state.id_routes = id_routes(app.state.method_routes)
    app.openapi = functools.partial(_openapi_with_error_codes, app, app.openapi)  # type: ignore[method-assign]
    return app


_ROUTE_PREFIX = re.compile(r"^[A-Z]+ /\S*: ")


def describe_operations(router: APIRouter) -> None:
    """Each operation of a function without a description of its own gets its module's docstring (the line that
    also describes the function in template.yaml), without its leading `METHOD /path: `."""
    import inspect

    from fastapi.routing import APIRoute

    for route in router.routes:
        if not isinstance(route, APIRoute) or route.description:
            continue
        # The module's globals: the function packs are loaded by path, not registered in sys.modules.
        doc = getattr(route.endpoint, "__globals__", {}).get("__doc__")
        if isinstance(doc, str) and doc.strip():
            doc = inspect.cleandoc(doc)
            text = _ROUTE_PREFIX.sub("", doc, count=1)
            paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
            description = "\n\n".join(paragraphs)
            route.description = description[:1].upper() + description[1:]


def _openapi_with_error_codes(app: FastAPI, generate: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's schema, with each operation's error responses naming the `code`s it may answer
    (`devtools.error_codes.for_route`: read from the code the endpoint and its dependencies reach; docs/errors.md
    lists them all). Made once, on the first `/openapi.json`; a failure to name them leaves the plain schema."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = generate()
    try:
        from http import HTTPStatus

        from fastapi.routing import APIRoute

        from smartcourse.devtools.error_codes import for_route

        for route in app.state.method_routes:  # as the routers declared them (`app.routes` nests included ones)
            if not isinstance(route, APIRoute):
                continue
            codes = for_route(route)
            for method in route.methods or ():
                responses = schema["paths"].get(route.path_format, {}).get(method.lower(), {}).get("responses", {})
                for status, response in responses.items():
                    named = codes.get(int(status), set()) if status.isdigit() and int(status) >= 400 else set()
                    phrase = HTTPStatus(int(status)).phrase if named else ""
                    if named and response.get("description") == phrase:  # an endpoint's own description stays
                        response["description"] = f"{phrase}: {', '.join(f'`{code}`' for code in sorted(named))}"
        _declare_body_timeout(schema)
    except Exception:  # documentation must never take the API's schema down
        log.warning("the error codes could not be added to the OpenAPI schema", exc_info=True)
    return schema


def _declare_body_timeout(schema: dict[str, Any]) -> None:
    """Every operation that takes a body may answer 408 `request_timeout`: the load shedder's answer to a body that
    stops arriving or arrives too slowly (`api/overload.py`); explore13 F12, no operation declared it."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "408",
                    {
                        "description": "Request Timeout: `request_timeout` (the body stopped arriving, or came too "
                        "slowly; the connection is closed)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                    },
                )


def lambda_handler(router: APIRouter) -> Callable[..., dict[str, object]]:
    """The Lambda entry point of one function: its router in an app, behind Mangum."""
    from mangum import Mangum

    from smartcourse.config import get_settings

    # A named HTTP API stage is the first segment of every path Lambda sees (/production/health): strip it, or no
    # route matches. Mangum strips it only from paths that start with it.
    base_path = "/" + get_settings().api_base_path.strip().strip("/")
    asgi = Mangum(create_app(router, title="SmartCourse function"), lifespan="off", api_gateway_base_path=base_path)

    def handler(event: dict[str, Any], context: Any) -> dict[str, object]:
        db.new_invocation()  # pooled connections may have died while the container was frozen
        try:
            return asgi(event, context)  # type: ignore[no-any-return]
        finally:
            # Lambda freezes the process once the answer is out: spans still queued would leave at some later
            # invocation, or never. A no-op unless an exporter is configured (OTEL_EXPORTER_OTLP_ENDPOINT).
            telemetry.force_flush(telemetry.LAMBDA_FLUSH_MILLIS)

    return handler
