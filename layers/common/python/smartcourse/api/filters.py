"""The catalogue's filters, as `GET /courses` and `GET /search` both take them: one bound and one error each
(explore44 F6: 25 repeated `tags` were `validation_error`, 25 comma-separated `too_many_tags`; `category` was bounded
at 100 characters on one and 200 on the other)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from smartcourse.schemas import CATEGORY_CHARS, MAX_TAGS

#: A text filter with something in it: not empty, not only spaces (which would list everything), no NUL.
FILLED = r"^[^\x00]*[^\s\x00][^\x00]*$"

CategoryFilter = Annotated[
    str | None,
    Query(max_length=CATEGORY_CHARS, pattern=r"^[^\x00]*$", description="a category, as courses have it"),
]
#: Repeated and/or comma-separated; counted once split and made distinct (`search.tag_filter`: more than `MAX_TAGS`
#: is 422 `too_many_tags` however they were sent).
TagsFilter = Annotated[
    list[str] | None,
    Query(
        json_schema_extra={"maxItems": MAX_TAGS},
        description=f"tags a course must all carry (any case): repeated or comma-separated, at most {MAX_TAGS} "
        "(else 422 `too_many_tags`)",
    ),
]
