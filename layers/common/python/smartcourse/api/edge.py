"""The edge of every request, as one pure ASGI middleware: ops-page gate, security headers, trace headers,
metrics and the request log line.

One pure ASGI layer instead of three `@app.middleware("http")` functions: each of those (Starlette's
BaseHTTPMiddleware) runs the rest of the app in a task of its own behind memory streams, which cost ~0.4 ms of CPU
per request each — most of a cached catalogue read (docs/benchmarks.md, catalogue reads). This layer only wraps
`send` to see the status and add headers.
"""

from __future__ import annotations

import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from secrets import token_hex
from typing import Any

from opentelemetry import trace
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartcourse import telemetry
from smartcourse.api.tracing import name_server_span
from smartcourse.domain.materials import file_too_large, mib, size_said
from smartcourse.metrics import HTTP_LATENCY, HTTP_REQUESTS

#: The request log: one line per request (method, route template, status, duration_ms, user_id).
access_log = logging.getLogger("smartcourse.access")
#: Where `app._error` puts the stable `code` and message of the request's error answer, for its access line
#: (explore55 F5: a 503's line said nothing of why). A dict the edge makes per request, filled in place: a handler
#: may run in a task of its own, whose context is a copy.
ERROR_CODE: ContextVar[dict[str, str] | None] = ContextVar("smartcourse_error_code", default=None)

#: Pages for operators only: gated (404 unless allowed) in production, see `api.deps.ops_allowed`.
OPS_PATHS = frozenset({"/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

#: Not in the request log: scrapes and probes every few seconds.
UNLOGGED = frozenset({"/metrics", "/health", "/health/ready"})

#: The API's Content-Security-Policy (not the docs pages').
API_CSP = "default-src 'none'; frame-ancestors 'none'"
#: On every answer (and on the HTTP server's own refusals: `api/protocol.py`).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def route_template(scope: Scope) -> str:
    """The route's template; the ops pages (FastAPI's own routes, which do not name themselves in the scope) by
    their fixed path; anything else no route matched is `unmatched` (labels never carry a raw path)."""
    route = scope.get("route")
    if route is None:
        return scope["path"] if scope["path"] in OPS_PATHS else "unmatched"
    # `path_format`: the template without its convertors (`/courses/{course_id}`, not `{course_id:uuid}`).
    return str(getattr(route, "path_format", None) or getattr(route, "path", "unmatched"))


#: A JSON (or form) request body larger than this is refused with 413 before it is parsed (`MAX_BODY_BYTES`); a
#: multipart upload may be as large as `MAX_UPLOAD_BYTES` plus this much of the multipart framing.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a chunked body passes the limit: an HTTPException, so FastAPI's body parsing lets it
    through (anything else there becomes a 400 "error parsing the body") and the app's handler answers 413 with the
    refusal's code and details (`TooLargeAnswer`)."""

    def __init__(self, refusal: TooLargeAnswer) -> None:
        super().__init__(413, refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class TooLargeAnswer:
    """A 413 of the edge: an upload's is `file_too_large`, as the upload's own check answers a file within the
    framing's margin (explore78 F7: two codes for one condition, one without the limit), with `details.max_bytes`."""

    code: str
    message: str
    max_bytes: int

    @property
    def details(self) -> dict[str, int]:
        return {"max_bytes": self.max_bytes}


def unbracketed(query: bytes) -> bytes:
    """A query string with each `name[]=` (or `name%5B%5D=`) as `name=`: the form axios and jQuery send a list in
    (`status[]=a&status[]=b`), which the lists taking several values read as `status=a&status=b` (explore79 F4: 422
    "unknown query parameter 'status[]'")."""
    parts = []
    for part in query.split(b"&"):
        name, sep, value = part.partition(b"=")
        if name.endswith(b"[]"):
            name = name[:-2]
        elif name.upper().endswith(b"%5B%5D"):
            name = name[:-6]
        parts.append(name + sep + value)
    return b"&".join(parts)


#: A lesson's authoring routes (not a student's `/lessons/{id}/complete`: explore85 F7).
_LESSON_WRITE = re.compile(r"/modules/[^/]+/lessons(?:/|$)")


def too_large(
    limit: int, max_body: int, max_upload: int, declared: int | None = None, path: str = ""
) -> TooLargeAnswer:
    """The 413, in the limit a client can act on (explore57 F7: an upload refused "larger than 22020096 bytes", the
    20 MiB file limit plus the multipart framing; a 400,000-character Chinese lesson, within its 500,000 characters,
    refused "larger than 1048576 bytes"), with the size the request declared (an upload's, its framing included),
    and the lesson's advice on a lesson's route only (explore81 F12: a course's body was told to split its lesson)."""
    if limit != max_body:  # multipart
        return TooLargeAnswer("file_too_large", file_too_large(max_upload, declared, "the upload"), max_upload)
    said = f"it is {size_said(declared)}" if declared is not None else "it is larger"
    advice = (
        ": a lesson's 500,000 characters fit when most are ASCII; in a script of 3 bytes a character (Chinese, "
        "Japanese) about 340,000 do: split the lesson, or upload the text as a material"
        if _LESSON_WRITE.search(path)
        else ""
    )
    message = f"a request body may be at most {mib(max_body)} (MAX_BODY_BYTES, {max_body} bytes of UTF-8 JSON), {said}"
    return TooLargeAnswer("request_too_large", message + advice, max_body)


def body_limit(scope: Scope, max_body: int, max_upload: int) -> tuple[int, int | None]:
    """(the most bytes this request's body may have, the length it declares): an upload's size plus framing for
    multipart, else `max_body`; `Content-Length` or None (chunked, or none). One pass over the headers."""
    limit, declared = max_body, None
    for key, value in scope.get("headers") or ():
        if key == b"content-type":
            if value[:19].lower() == b"multipart/form-data":
                limit = max_upload + max_body
        elif key == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None
    return limit, declared


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts_always: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_upload_bytes: int = 20 * 1024 * 1024,
        base_path: str = "",
    ) -> None:
        self.app = app
        base = base_path.strip().strip("/")
        self.base_path = f"/{base}" if base else ""
        self.hsts_always = hsts_always
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def _stage(self, scope: Scope) -> str:
        """The named API Gateway stage's prefix (`API_BASE_PATH`) when the client's path carried it (Mangum strips it
        before routing): the relative `Location`s the app answers (a created resource, the trailing-slash redirect)
        get it back in front. Through a custom domain the path has no stage, and nothing is added."""
        if not self.base_path:
            return ""
        event = scope.get("aws.event") or {}
        raw = event.get("rawPath") or event.get("path") or ""
        return self.base_path if raw == self.base_path or raw.startswith(self.base_path + "/") else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        error: dict[str, str] = {}
        ERROR_CODE.set(error)
        method: str = scope["method"]
        query = scope.get("query_string") or b""
        if b"[]=" in query or b"%5B%5D=" in query.upper():
            scope = dict(scope, query_string=unbracketed(query))
        if method == "HEAD":
            # RFC 9110 9.3.2: HEAD is GET without the content (uptime probes use it). FastAPI's routes answer only
            # the methods they declare, so the app runs the GET and the body is dropped below; headers, status and
            # Content-Length stay the GET's.
            scope = dict(scope, method="GET")
        head_done = False
        path: str = scope["path"]
        status = 500
        docs_page = path.startswith("/docs") or path.startswith("/redoc")
        https = scope.get("scheme") == "https"
        server_span = trace.get_current_span()  # the request's, started by the tracing middleware around this one
        stage = self._stage(scope)

        async def send_with_headers(message: Message) -> None:
            nonlocal status, head_done
            if method == "HEAD" and message["type"] == "http.response.body":
                if not head_done:
                    head_done = True
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                if "route" in scope or path in OPS_PATHS:  # routed (the router matched once, here for the span too)
                    name_server_span(server_span, method, route_template(scope))
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS:
                    headers.setdefault(key, value)
                # Nothing is stored by a browser or an intermediary unless the route says it may be (the catalogue's
                # cached reads do): tokens (RFC 6749 5.1), a user's own data, an instructor's list with drafts.
                headers.setdefault("Cache-Control", "no-store")
                if not docs_page:
                    headers.setdefault("Content-Security-Policy", API_CSP)
                if self.hsts_always or https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
                trace_id = telemetry.current_trace_id()
                if trace_id:
                    for key, value in (telemetry.current_carrier() or {}).items():
                        headers[key] = value
                    headers["X-Trace-Id"] = trace_id
                location = headers.get("location")
                if stage and location and location.startswith("/") and not location.startswith("//"):
                    headers["location"] = stage + location
            await send(message)

        limit, declared = body_limit(scope, self.max_body_bytes, self.max_upload_bytes)
        if declared is None and scope.get("method") not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            # A chunked body: counted as it arrives.
            receive = _counted(receive, limit, too_large(limit, self.max_body_bytes, self.max_upload_bytes, None, path))
        try:
            if declared is not None and declared > limit:
                from smartcourse.api.app import _error

                # Refused before a byte of it is read or parsed.
                refusal = too_large(limit, self.max_body_bytes, self.max_upload_bytes, declared, path)
                await _error(413, refusal.code, refusal.message, refusal.details)(scope, receive, send_with_headers)
            elif path in OPS_PATHS and not await _ops_allowed(scope, receive):
                from smartcourse.api.app import _error

                # As an unknown path's 404, trace id included (an ops page is not traced: a random one, which no trace
                # has), so that a scanner cannot tell the hidden pages from paths that do not exist.
                unknown = _error(404, "not_found", "Not Found", trace_id=telemetry.current_trace_id() or token_hex(16))
                await unknown(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            self._observe(scope, method, path, status, started, error)

    @staticmethod
    def _observe(scope: Scope, method: str, path: str, status: int, started: float, error: dict[str, str]) -> None:
        elapsed = time.perf_counter() - started
        route = route_template(scope)
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_LATENCY.labels(method, route).observe(elapsed)
        principal: Any = (scope.get("state") or {}).get("principal")
        user_id = str(principal.user_id) if principal is not None else None
        if user_id:
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attribute("enduser.id", user_id)
        if path not in UNLOGGED:
            extra = {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "user_id": user_id,
            }
            if error:
                extra["code"] = error["code"]
            if route == "unmatched":
                # No route resolved: a 404, or a request answered before routing (503 shed, 408, 413). The log line
                # says which path (the metrics' labels never do: unbounded), cut short (explore10 F8), and who asked
                # when the request carried a valid access token (no route authenticated it: a signed-in caller's
                # probing of paths read as anonymous; explore30 F11).
                extra["path"] = path[:200]
                extra["user_id"] = user_id or _token_subject(scope)
            access_log.info("%s %s %s", method, route, status, extra=extra)


def _counted(receive: Receive, limit: int, refusal: TooLargeAnswer) -> Receive:
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(refusal)
        return message

    return receive_counted


async def _ops_allowed(scope: Scope, receive: Receive) -> bool:
    from smartcourse.api.deps import ops_allowed
    from smartcourse.bootstrap import get_container

    return bool(await ops_allowed(await get_container(), Request(scope, receive)))


def _token_subject(scope: Scope) -> str | None:
    """The user id of the request's access token if its signature and expiry hold (no database read: for a log line
    only, never for a decision), else None."""
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    from smartcourse.config import get_settings
    from smartcourse.errors import DomainError
    from smartcourse.security import decode_access_token

    try:
        return str(decode_access_token(get_settings(), token.strip()).user_id)
    except DomainError:
        return None
