"""A question or a search as typed is compared as the index has its text (explore23 F5)."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from smartcourse.assistant.schemas import AskIn
from smartcourse.content.extract import normalise_text
from smartcourse.domain.text import as_indexed


@pytest.mark.parametrize(
    ("typed", "indexed"),
    [
        ("Why do cor\u200bals ble\u200bach?", "Why do corals bleach?"),
        ("photo\u00adsynthesis", "photosynthesis"),
        ("\ufeff" + "".join(chr(ord(c) + 0xFEE0) for c in "Corals"), "Corals"),  # full-width
        ("\ufb01sh", "fish"),  # a ligature
        ("two\nlines\tand a tab", "two lines and a tab"),
        ("é and é", "é and é"),  # decomposed, composed: one form
    ],
)
def test_typed_text_is_normalised_as_the_indexed_text(typed: str, indexed: str) -> None:
    assert as_indexed(typed) == indexed
    assert normalise_text(typed).replace("\n", " ").replace("\t", " ").split() == as_indexed(typed).split()


def test_a_question_is_normalised_and_one_of_invisible_characters_only_is_empty() -> None:
    course = uuid.uuid4()
    assert AskIn(course_id=course, question=" cor\u200bals? ").question == "corals?"
    with pytest.raises(ValidationError):
        AskIn(course_id=course, question="\u200b\u00ad")
    with pytest.raises(ValidationError, match="NUL"):
        AskIn(course_id=course, question="a\x00b")
