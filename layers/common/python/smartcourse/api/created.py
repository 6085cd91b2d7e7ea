"""`Location` on the answers that create a resource: its URL, as a path (never built from the request's `Host`).

A 201 names the resource it created (RFC 9110 15.3.2) where that resource has a URL of its own to GET: a course,
an account, a material, an enrollment, a certificate; a 202 that starts a publish names the run to follow. Modules
and lessons have no GET of their own (they are read in `GET /courses/{id}`), so their 201s carry none.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Response

from smartcourse.config import Settings

#: The header as the OpenAPI document declares it, for `responses={201: {"headers": LOCATION}}`.
LOCATION: dict[str, Any] = {
    "Location": {
        "description": "the created resource's URL, a path relative to the API's base URL",
        "schema": {"type": "string", "format": "uri-reference"},
    }
}


def created_at(response: Response, settings: Settings, path: str) -> None:
    """Set `Location` to `path` (`/courses/<id>`), behind the named stage's prefix when there is one
    (`API_BASE_PATH`: the handlers strip it from the paths they see, the client's URLs carry it)."""
    base = settings.api_base_path.strip().strip("/")
    response.headers["Location"] = quote(f"/{base}{path}" if base else path, safe="/:@-._~")
