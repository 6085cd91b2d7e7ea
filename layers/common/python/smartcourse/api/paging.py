"""The product's pagination design (docs/api.md, "Pagination"): `page` (1-based) and `page_size` query parameters,
as `GET /courses` and `GET /search` have always taken them.

A bad value is 422 `validation_error` naming the parameter (FastAPI's bounds, as for the catalogue). Where the
body is an object it carries `total`, `page` and `page_size` (`CoursePage`); where it has always been a bare JSON
array (`GET /enrollments/my-courses`, `GET /certificates/my`) it stays one, and the same facts travel in headers:
`X-Total-Count` and a `Link` header (RFC 8288) with `rel="next"` / `rel="prev"`. The paginated lists set both.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 100_000

Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="the page to answer, from 1")]
PageSize = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description=f"items per page, at most {MAX_PAGE_SIZE}"),
]

#: `responses=` entry of a paginated route: the headers it sets, in the OpenAPI document.
PAGE_HEADERS: dict[str, dict[str, object]] = {
    "X-Total-Count": {"description": "how many items all the pages hold", "schema": {"type": "integer"}},
    "Link": {
        "description": "the next and previous pages (RFC 8288), as references relative to this request's URL: "
        '`<?page=3&page_size=20>; rel="next", <?page=1&page_size=20>; rel="prev"`',
        "schema": {"type": "string"},
    },
}


def offset(page: int, page_size: int) -> int:
    return (page - 1) * page_size


def page_links(request: Request, *, total: int, page: int, page_size: int) -> str:
    """The `Link` header value: next while items remain past this page, prev from page 2 on (the last page that has
    items, when this one is past the end). Query-only references (`<?page=2&page_size=20>`): they resolve against
    the request's own URL, whatever host or API Gateway stage prefix the client called, and trust no Host header."""

    def ref(number: int) -> str:
        return "?" + str(request.url.include_query_params(page=number, page_size=page_size).query)

    links = []
    if page * page_size < total:
        links.append(f'<{ref(page + 1)}>; rel="next"')
    if page > 1:
        last = max(1, -(-total // page_size))
        links.append(f'<{ref(min(page - 1, last))}>; rel="prev"')
    return ", ".join(links)


def set_page_headers(request: Request, response: Response, *, total: int, page: int, page_size: int) -> None:
    response.headers["X-Total-Count"] = str(total)
    if links := page_links(request, total=total, page=page, page_size=page_size):
        response.headers["Link"] = links
