"""The HTTP server's own answer to a request it cannot parse, in the API's error shape.

uvicorn answers a request its parser refuses (an unknown method token, a control character in a header, a malformed
`Content-Length`, a request line past the parser's limit, raw bytes in the path) before the application sees it,
with `400 text/plain "Invalid HTTP request received."`: no `code` for a client to branch on (explore44 F5). This is
uvicorn's httptools protocol with that one answer written as every other error is, `{code, message, details,
trace_id}` with the code `bad_request` (no trace: no request was read). Behind API Gateway the gateway answers such
requests itself."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from smartcourse.metrics import DOMAIN_ERRORS

CODE = "bad_request"


def error_body(message: str) -> bytes:
    return json.dumps({"code": CODE, "message": message, "details": None, "trace_id": None}).encode()


class JsonErrorsProtocol(HttpToolsProtocol):
    """`uvicorn.Config(http=JsonErrorsProtocol)`: uvicorn's httptools protocol, its 400 in the API's shape."""

    def send_400_response(self, msg: str) -> None:
        DOMAIN_ERRORS.labels(CODE).inc()
        body = error_body(msg)
        content = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
