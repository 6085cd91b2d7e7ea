"""The patterns the OpenAPI shows for a field say what the server's own check accepts (explore13 F5).

They are schema-only (`json_schema_extra`): the server keeps its clearer messages. So nothing but these tests
keeps a pattern and its check in step. Each pattern is run the way a client would run it (`re`, which reads the
ECMA-262 subset used here the same way), on crafted edge cases and on generated strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from smartcourse import schemas
from smartcourse.domain.certificates import CODE_PATTERN, new_code
from smartcourse.errors import Invalid
from smartcourse.services import certificates, operations


def _accepts(check: Callable[[str], Any]) -> Callable[[str], bool]:
    def run(value: str) -> bool:
        try:
            check(value)
        except (ValueError, ValidationError, Invalid):
            return False
        return True

    return run


TITLE = _accepts(TypeAdapter(schemas.Title).validate_python)
LEVEL = _accepts(TypeAdapter(schemas.LevelFilter).validate_python)
STATUS = _accepts(operations.workflow_status_filter)
CODE = _accepts(certificates.canonical_code)

# The characters where the rules differ: controls, separators, bidi marks, whitespace, invisible characters.
TRICKY = st.sampled_from(list("aZ é-,\t\n\r\x00\x1f\x7f\x85\xa0\u2028\u2029\u202a\u202e\u2066\u2069\u200b"))


def _agree(pattern: str, check: Callable[[str], bool], value: str) -> None:
    assert bool(re.match(pattern, value)) == check(value), repr(value)


@pytest.mark.parametrize(
    "value",
    ["Biology", " Biology ", "Bio\tlogy", "Bio\nlogy", "a\u202eb", "a\u2028b", "a\x85b", "ß 中文 😀", "Biology\n"],
)
def test_one_line_pattern_is_the_one_line_rule(value: str) -> None:
    # A blank or invisible-only title is refused by another rule that a pattern does not try to say.
    if value.strip():
        _agree(schemas.ONE_LINE_PATTERN, TITLE, value)


@settings(max_examples=300, deadline=None)
@given(st.text(TRICKY, min_size=1, max_size=8).filter(lambda v: any(ch.isalpha() for ch in v)))
def test_one_line_pattern_agrees_on_generated_titles(value: str) -> None:
    # Python's `strip` and ECMA's `\s` differ on \x1c-\x1f and \x85 at the ends; \x1f and \x85 are in TRICKY, so
    # only the inside of the value is compared where they sit at an end.
    if value != value.strip() and value.strip(" \t\n\r\xa0") != value.strip():
        return
    _agree(schemas.ONE_LINE_PATTERN, TITLE, value)


@pytest.mark.parametrize(
    "value", ["", " ", "beginner", "BeGinner", " advanced ", "intermediate", "expert", "beginners", "begin ner"]
)
def test_level_filter_pattern_is_the_level_check(value: str) -> None:
    _agree(schemas.LEVEL_FILTER_PATTERN, LEVEL, value)


@pytest.mark.parametrize(
    "value",
    ["all", "failed", "failed,running", " failed , resolved ", "FAILED", "all,failed", "", "failed,,running", "nope"],
)
def test_workflow_status_pattern_is_the_status_check(value: str) -> None:
    _agree(operations.status_pattern(operations.WORKFLOW_STATUS_FILTERS), STATUS, value)


def test_certificate_code_pattern_is_the_code_check() -> None:
    codes = [new_code() for _ in range(5)]
    values = [
        *codes,
        *(code.lower() for code in codes),
        *(code.replace("-", "") for code in codes),
        *(code[3:] for code in codes),
        *(f" {code.replace('-', ' - ')} " for code in codes),
        "SC-XXXX",
        "SC-0000-AAAA-BBBB-CCCC",
        "SC-1881-AAAA-BBBB-CCCC",
        "SC-9999-AAAA-BBBB-CCCC",
        "SC--AAAA-BBBB-CCCC-DDDD",
        "sc aaaa bbbb cccc dddd",
        "hello",
        "",
    ]
    for value in values:
        _agree(CODE_PATTERN, CODE, value)


def test_the_openapi_shows_the_patterns() -> None:
    from smartcourse.api.local import build_local_app

    spec = build_local_app().openapi()
    components = spec["components"]["schemas"]
    assert components["CourseIn"]["properties"]["title"]["pattern"] == schemas.ONE_LINE_PATTERN
    assert components["CourseIn"]["properties"]["tags"]["items"]["pattern"] == schemas.ONE_LINE_PATTERN
    # Every other string of an input model says it takes no NUL (Strict refuses one in any field).
    assert components["CourseIn"]["properties"]["description"]["pattern"] == schemas.NO_NUL_PATTERN
    assert components["AskIn"]["properties"]["question"]["pattern"] == schemas.NO_NUL_PATTERN
    assert components["QuizQuestion"]["properties"]["options"]["uniqueItems"] is True

    def parameter(path: str, name: str) -> dict[str, Any]:
        found = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == name]
        schema: dict[str, Any] = found[0]["schema"]
        return schema

    assert parameter("/courses", "level")["anyOf"][0]["pattern"] == schemas.LEVEL_FILTER_PATTERN
    assert parameter("/ops/workflows", "status")["pattern"] == operations.status_pattern(
        operations.WORKFLOW_STATUS_FILTERS
    )
    assert parameter("/certificates/verify/{code}", "code")["pattern"] == CODE_PATTERN
    before = [p for p in spec["paths"]["/notifications"]["get"]["parameters"] if p["name"] == "before"]
    assert "Unix seconds" in before[0]["description"]


def test_operations_with_a_body_declare_the_body_timeout() -> None:
    from smartcourse.api.local import build_local_app

    spec = build_local_app().openapi()
    with_body = [op for ops in spec["paths"].values() for op in ops.values() if "requestBody" in op]
    assert with_body
    for operation in with_body:
        assert "`request_timeout`" in operation["responses"]["408"]["description"]
    assert "408" not in spec["paths"]["/courses"]["get"]["responses"]


@pytest.mark.parametrize(
    "value",
    ["\u200e\u200f", "\u00ad", "\u034f", "\u061c", "\U000e0041\U000e0042", "\ufe0f", "\u0301", "\uffff", " \u200b "],
)
def test_a_title_or_name_of_characters_that_show_nothing_is_refused(value: str) -> None:
    """explore35 F2: bidi marks, a soft hyphen, tag characters, a lone accent and U+FFFF passed as a title or name
    (a certificate would have carried a blank name); a rule by Unicode category closes the class."""
    assert not TITLE(value)
    assert not _accepts(TypeAdapter(schemas.Name).validate_python)(value)


@pytest.mark.parametrize("value", ["a", "e\u0301", "线粒体", "\U0001f600", "\u200f\u05e9\u05dc\u05d5\u05dd"])
def test_a_title_that_shows_something_is_kept(value: str) -> None:
    assert TITLE(value)
