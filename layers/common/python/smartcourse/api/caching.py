"""Answers from the catalogue cache: the cached JSON as is, with its ETag, and 304 when the client has it."""

from __future__ import annotations

from fastapi import Request, Response

from smartcourse.services.catalog_cache import CachedJson

#: The request-state key under which a public answer names its catalogue generation for the edge cache.
EDGE_CACHE_MARK = "edge_cache_generation"

#: The OpenAPI `responses` of a route answered by `cached_json`: its ETag, and 304 to a current `If-None-Match`
#: (explore60 F4: a generated client took the undeclared 304 for an error).
CONDITIONAL: dict[int | str, dict[str, object]] = {
    200: {
        "headers": {
            "ETag": {"description": "The answer's version: send it as `If-None-Match`", "schema": {"type": "string"}}
        }
    },
    304: {
        "description": "Not Modified: the `If-None-Match` sent names the current version (no body)",
        "headers": {"ETag": {"description": "The answer's version", "schema": {"type": "string"}}},
    },
}


def cached_json(request: Request, value: CachedJson) -> Response:
    """The body straight from the cache (no re-validation or re-serialisation); `If-None-Match` → 304.

    `no-cache` lets a client or a shared cache keep the answer but makes it ask again each time (a 304 costs no
    body); a view meant for one caller is `private`. The answer depends on the caller's token: Vary on it.
    A public answer is marked for the edge cache (`api.edge_cache`), which keeps it for anonymous readers."""
    headers = {
        "ETag": value.etag,
        "Cache-Control": "no-cache" if value.public else "private, no-cache",
        "Vary": "Authorization",
    }
    if value.public and value.generation is not None:
        request.scope.setdefault("state", {})[EDGE_CACHE_MARK] = value.generation
    if value.matches(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=headers)
    return Response(content=value.body, media_type="application/json", headers=headers)
