"""The HTTP server's own answers to a request it cannot take, in the API's error shape.

uvicorn answers a request its parser refuses (an unknown method token, a control character in a header, a malformed
`Content-Length`, raw bytes in the path) before the application sees it, with `400 text/plain "Invalid HTTP request
received."`: no `code` for a client to branch on (explore44 F5). And it reads a request line and headers of any
size: a 30 MB header, 300,000 header lines (explore45 F8), where bodies are capped at 1 MiB. This is uvicorn's
httptools protocol with both fixed: its 400 written as every other error is, `{code, message, details, trace_id}`
with the code `bad_request` (no trace: no request was read), and a URL over `MAX_URL_BYTES` answered 414
`uri_too_long`, headers over `MAX_HEADER_BYTES` or `MAX_HEADERS` lines 431 `headers_too_large`, as they arrive.
Behind API Gateway the gateway answers such requests itself (its own limits: 10 KB of headers)."""

from __future__ import annotations

import json
from urllib.parse import quote

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from smartcourse.api.edge import API_CSP, SECURITY_HEADERS
from smartcourse.metrics import DOMAIN_ERRORS

CODE = "bad_request"
#: The largest request target and header section read (what nginx and most proxies take: 8 KiB lines, a few of them).
MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 200

_STATUS_LINES = {400: b"400 Bad Request", 414: b"414 URI Too Long", 431: b"431 Request Header Fields Too Large"}
#: The headers the app's answers carry (`api/edge.py`), on these too (explore48 F9: docs/security.md says every
#: answer). No Strict-Transport-Security: TLS ends before this server, which cannot tell.
_HEADERS = b"".join(
    f"{name}: {value}\r\n".encode("ascii")
    for name, value in (*SECURITY_HEADERS, ("Cache-Control", "no-store"), ("Content-Security-Policy", API_CSP))
)


def error_body(message: str, code: str = CODE) -> bytes:
    return json.dumps({"code": code, "message": message, "details": None, "trace_id": None}).encode()


def _encoded(line: bytes) -> str:
    """The request line's target percent-encoded, as a hint (" (send /search?q=Espa%C3%B1a)"), or "" when it cannot
    be read."""
    parts = line.split(b" ")
    if len(parts) != 3:
        return ""
    target = quote(parts[1], safe="/?&=:;,+@!$'()*%#~[]")
    return f" (send {target[:200]})" if len(target) <= 200 else ""


class _TooLarge(Exception):
    """Raised from a parser callback: the parser stops, and `data_received` answers through `send_400_response`."""


class JsonErrorsProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=JsonErrorsProtocol)`: uvicorn's httptools protocol, its refusals in the API's shape."""

    _refusal: tuple[int, str, str] | None = None
    _header_bytes = 0

    _received = b""

    def data_received(self, data: bytes) -> None:
        self._received = data  # what the parser refused, read by `send_400_response`
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refusal, self._header_bytes = None, 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._refuse(414, "uri_too_long", f"the request target is longer than {MAX_URL_BYTES} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) > MAX_HEADERS:
            message = f"the request's headers are larger than {MAX_HEADER_BYTES} bytes or {MAX_HEADERS} lines"
            self._refuse(431, "headers_too_large", message)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refusal = (status, code, message)
        raise _TooLarge(message)

    def send_400_response(self, msg: str) -> None:
        line = self._received.split(b"\n", 1)[0]
        if self._refusal is None and not line.isascii():
            # `curl "…/search?q=España"`: what to do, not only that it failed (explore83 F17), shown on its own target
            # when it can be read (explore85 F14: a fixed example).
            msg = "the request line holds characters beyond ASCII: percent-encode them in the URL" + _encoded(line)
        status, code, message = self._refusal or (400, CODE, msg)
        DOMAIN_ERRORS.labels(code).inc()
        body = error_body(message, code)
        content = [b"HTTP/1.1 ", _STATUS_LINES[status], b"\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                _HEADERS,
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
