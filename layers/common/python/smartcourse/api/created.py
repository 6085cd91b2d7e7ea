"""`Location` on the answers that create a resource: its URL, as a path (never built from the request's `Host`).

A 201 names the resource it created (RFC 9110 15.3.2) where that resource has a URL of its own to GET: a course,
an account, a material, an enrollment, a certificate; a 202 that starts a publish names the run to follow. Modules
and lessons have no GET of their own (they are read in `GET /courses/{id}`), so their 201s carry none.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Response

#: The header as the OpenAPI document declares it, for `responses={201: {"headers": LOCATION}}`.
LOCATION: dict[str, Any] = {
    "Location": {
        "description": "the created resource's URL, a path relative to the API's base URL",
        "schema": {"type": "string", "format": "uri-reference"},
    }
}


def created_at(response: Response, path: str) -> None:
    """Set `Location` to `path` (`/courses/<id>`). Behind a named API Gateway stage the edge puts the stage's prefix
    in front when the client's path carried it (`EdgeMiddleware._stage`; `API_BASE_PATH`: Mangum strips it from the
    paths the handlers see); through a custom domain it stays as it is."""
    response.headers["Location"] = quote(path, safe="/:@-._~")
