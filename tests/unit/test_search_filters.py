"""The catalogue's `tags` parameter: one reading for GET /courses and GET /search (their filters and cache keys)."""

from smartcourse.services.search import tag_filter


def test_tags_repeated_or_comma_separated_read_the_same() -> None:
    assert tag_filter(["b,a"]) == tag_filter(["a", "b"]) == tag_filter([" a ", "b,", ",a"]) == ["a", "b"]
    assert tag_filter(None) == tag_filter([]) == tag_filter([" ", ",,"]) == []
    assert tag_filter(["ka\x00fka"]) == ["kafka"]  # NUL cannot reach the database
