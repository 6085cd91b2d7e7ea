"""api/paging.py: the Link header of a paginated list (docs/api.md, "Pagination")."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from smartcourse.api.paging import page_links


def _request(query: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "server": ("evil.example", 443),
        "path": "/enrollments/my-courses",
        "query_string": query.encode(),
        "headers": [(b"host", b"evil.example")],
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("total", "page", "size", "expected"),
    [
        (0, 1, 20, ""),
        (20, 1, 20, ""),  # exactly one page
        (21, 1, 20, '<?page=2&page_size=20>; rel="next"'),
        (21, 2, 20, '<?page=1&page_size=20>; rel="prev"'),
        (9, 2, 4, '<?page=3&page_size=4>; rel="next", <?page=1&page_size=4>; rel="prev"'),
        (9, 7, 4, '<?page=3&page_size=4>; rel="prev"'),  # past the end: back to the last page with items
        (0, 5, 4, '<?page=1&page_size=4>; rel="prev"'),
    ],
)
def test_next_and_prev(total: int, page: int, size: int, expected: str) -> None:
    assert page_links(_request(f"page={page}&page_size={size}"), total=total, page=page, page_size=size) == expected


def test_links_keep_the_other_parameters_name_the_size_in_use_and_never_the_host() -> None:
    links = page_links(_request("q=a%26b"), total=50, page=1, page_size=20)  # defaults: neither parameter sent
    assert links == '<?q=a%26b&page=2&page_size=20>; rel="next"'
    assert "evil.example" not in links
