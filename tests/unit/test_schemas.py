"""Input models refuse what would be stored wrong or break later (an e-mail header, a grade, a quiz)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from smartcourse.schemas import (
    CourseIn,
    CourseUpdateIn,
    LessonIn,
    ModuleIn,
    QuizQuestion,
    QuizSubmitIn,
    RegisterIn,
    UserUpdateIn,
)

REGISTER = {"email": "eve@example.com", "password": "a-long-password", "role": "student"}


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: evil@example.com",  # would break the To: header of every e-mail to her
        "Eve\nAdams",
        "Eve\tAdams",
        "Eve\x85Adams",  # C1 next line
        "Eve\u2028Adams",  # line separator
        "Eve \u202eevA",  # right-to-left override: displays as another name
        "Eve\u2066Adams",  # isolate
    ],
)
def test_a_name_is_one_line_without_control_characters(name: str) -> None:
    with pytest.raises(ValidationError, match="one line of text"):
        RegisterIn(**REGISTER, full_name=name)
    with pytest.raises(ValidationError, match="one line of text"):
        UserUpdateIn(full_name=name)


def test_a_name_loses_the_characters_that_hide_in_it_and_an_address_is_written_plainly() -> None:
    """explore82 F3: "Admin\u200bistrator" printed as "Administrator" on a certificate; a full-width or a
    mixed-alphabet address was an account apart from the one it looks like, which the admin's search missed."""
    name = "Admin\u200bis\u00adtra\u034fto\u061cr\U000e0041\u200f\ufeff"  # explore85 F5: SHY, CGJ, ALM, tags
    assert RegisterIn(**REGISTER, full_name=name).full_name == "Administrator"
    assert UserUpdateIn(full_name=name).full_name == "Administrator"
    assert RegisterIn(**REGISTER, full_name="\u0645\u06cc\u200c\u0631\u0648\u0645").full_name.count("\u200c") == 1
    for address, rule in (
        ("\uff53tua@example.com", "address_form"),
        ("stu\u0430@example.com", "address_scripts"),
        ("stud\u058585@example.com", "address_scripts"),  # an Armenian "o" (explore85 F4)
        ("\u0430\u043e\u0435@example.com", "address_scripts"),  # all Cyrillic letters that read as Latin ones
    ):
        with pytest.raises(ValidationError, match=rule):
            RegisterIn(**{**REGISTER, "email": address}, full_name="Eve")
        with pytest.raises(ValidationError, match=rule):
            UserUpdateIn(email=address)
    for address in (
        "zo\u00eb@example.com",
        "\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444",
    ):
        assert RegisterIn(**{**REGISTER, "email": address}, full_name="Eve").email == address


def test_ordinary_names_and_titles_in_any_script_are_kept() -> None:
    for name in ("Zoë O'Brien-Łukasiewicz", "名前 😀", "Αλέξανδρος", "محمد", "  Ada  "):
        assert RegisterIn(**REGISTER, full_name=name).full_name == name.strip()
    assert ModuleIn(title="Введение").title == "Введение"


def test_titles_categories_and_tags_are_one_line_too() -> None:
    with pytest.raises(ValidationError):
        CourseIn(title="Kafka\r\nin practice", category="eng")
    with pytest.raises(ValidationError):
        CourseIn(title="Kafka", category="e\nng")
    assert CourseIn(title="Kafka", category=" eng\n").category == "eng"  # stripped at the ends first
    with pytest.raises(ValidationError):
        CourseIn(title="Kafka", category="eng", tags=["a\u202eb"])


def test_tags_keep_their_first_spelling_once() -> None:
    assert CourseIn(title="T", category="c", tags=["Kafka", "kafka", "KAFKA", "outbox"]).tags == ["Kafka", "outbox"]
    assert CourseUpdateIn(tags=["a", "a"]).tags == ["a"]


@pytest.mark.parametrize(
    "field,value",
    [("capacity", True), ("capacity", "10"), ("capacity", 10.0), ("waitlist_enabled", "yes"), ("waitlist_enabled", 1)],
)
def test_numbers_and_flags_are_not_coerced(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        CourseIn(title="T", category="c", **{field: value})
    with pytest.raises(ValidationError):
        CourseUpdateIn(**{field: value})


def test_quiz_answers_are_option_indexes_not_booleans_or_strings() -> None:
    assert QuizSubmitIn(answers=[1, 0]).answers == [1, 0]
    for answers in ([True, False], ["1", "0"], [1.0, 0]):
        with pytest.raises(ValidationError):
            QuizSubmitIn(answers=answers)
    with pytest.raises(ValidationError):
        QuizQuestion(prompt="?", options=["a", "b"], answer=True)


def test_a_quiz_question_needs_distinct_options() -> None:
    nfd = __import__("unicodedata").normalize("NFD", "Phở")
    for options in (
        ["a", "a"],
        ["Yes", "yes "],
        ["x", " ", "y"],
        ["Erosion by waves.", "erosion  by waves,"],
        # explore65 F8: the Arabic and full-width question marks, and the same letters typed decomposed
        ["\u0646\u0639\u0645", "\u0646\u0639\u0645\u061f"],
        ["\u306f\u3044", "\u306f\u3044\uff01"],
        ["Phở", nfd],
    ):
        with pytest.raises(ValidationError):
            QuizQuestion(prompt="?", options=options, answer=0)
    assert QuizQuestion(prompt="?", options=["a ", "b"], answer=1).options == ["a", "b"]
    # Punctuation inside an option still tells it apart.
    assert QuizQuestion(prompt="?", options=["C", "C++", "C#", "-1", "1"], answer=1).options[1] == "C++"


def test_a_quiz_asks_each_question_once() -> None:
    """explore57 F5: the same prompt twice with opposite answers was saved; passing depended on their order."""
    from smartcourse.schemas import LessonUpdateIn

    twice = [
        {"prompt": "Do tumbling windows overlap?", "options": ["Yes", "No"], "answer": 1},
        {"prompt": "do tumbling  windows overlap", "options": ["Yes", "No"], "answer": 0},
    ]
    for build in (
        lambda qs: LessonIn(title="Q", type="quiz", questions=qs),
        lambda qs: LessonUpdateIn(questions=qs),
    ):
        with pytest.raises(ValidationError, match="questions 0 and 1 have the same prompt"):
            build(twice)
        assert len(build([twice[0], {**twice[1], "prompt": "Do sliding windows overlap?"}]).questions or []) == 2


def test_a_text_lesson_needs_more_than_whitespace() -> None:
    with pytest.raises(ValidationError, match="blank"):
        LessonIn(title="L", type="text", content="   \n\t ")
    assert LessonIn(title="L", type="text", content="# Why\n").content == "# Why\n"


def test_a_lesson_takes_no_field_of_another_type_not_even_null() -> None:
    """A create took `"transcript": null` on a text lesson (the check looked at values, not at what was sent)."""
    for fields in (
        {"type": "text", "content": "x", "transcript": None},
        {"type": "text", "content": "x", "pass_score": None},
        {"type": "video", "video_url": "https://v.example.com/1", "content": None},
        {"type": "quiz", "questions": [{"prompt": "?", "options": ["a", "b"], "answer": 0}], "video_url": None},
    ):
        with pytest.raises(ValidationError, match=f"a {fields['type']} lesson does not take"):
            LessonIn(title="L", **fields)
    assert LessonIn.foreign_problem("text", {"title", "transcript", "video_url"}) == (
        "a text lesson does not take video_url, transcript"
    )
    assert LessonIn.foreign_problem("video", {"title", "transcript", "video_url", "position"}) is None


def test_a_lesson_type_rule_names_the_invalid_lesson_code() -> None:
    """The type rules' errors carry `invalid_lesson` (`schemas.rule_error`), which the API answers a create with, as
    the update's check does; a value_error with the bare reason otherwise."""
    from smartcourse.schemas import RULE_CODE, RULE_FIELDS

    for fields, message, named in (
        ({"type": "text", "content": "y", "transcript": "z"}, "a text lesson does not take transcript", "transcript"),
        ({"type": "video"}, "a video lesson needs video_url", "video_url"),
    ):
        with pytest.raises(ValidationError) as caught:
            LessonIn(title="L", **fields)
        [error] = caught.value.errors()
        assert (error["type"], error["msg"], error["loc"]) == ("value_error", message, ())
        assert error["ctx"] == {RULE_CODE: "invalid_lesson", RULE_FIELDS: named}  # the field, for `details`
    # A field's own error names no code: it stays the request validation's.
    with pytest.raises(ValidationError) as caught:
        LessonIn(title="L" * 201, type="text", content="y")
    assert all(RULE_CODE not in (e.get("ctx") or {}) for e in caught.value.errors())


def test_a_video_without_a_transcript_stores_none_and_says_null() -> None:
    import uuid

    from smartcourse.schemas import CourseDetail, LessonPublic, ModulePublic

    for transcript in ({}, {"transcript": None}, {"transcript": ""}):
        body = LessonIn(title="V", type="video", video_url="https://v.example.com/1", **transcript).body()
        assert body == {"type": "video", "video_url": "https://v.example.com/1", "transcript": None}
    ids = {"id": uuid.uuid4(), "module_id": uuid.uuid4(), "title": "V", "position": 0}
    # A body, or a published snapshot, written before held "" for "no transcript": it is read as none too.
    for stored in (None, ""):
        lesson = LessonPublic(**ids, type="video", video_url="https://v.example.com/1", transcript=stored)
        assert lesson.transcript is None
        dumped = lesson.model_dump(mode="json")
        assert "transcript" in dumped and dumped["transcript"] is None
        assert '"transcript":null' in lesson.model_dump_json()
        assert "transcript" not in lesson.model_dump(exclude_none=True)
        assert "transcript" not in lesson.model_dump(exclude={"transcript"})
        assert lesson.model_dump(include={"title"}) == {"title": "V"}
    with_words = LessonPublic(**ids, type="video", video_url="https://v.example.com/1", transcript="words")
    assert with_words.model_dump()["transcript"] == "words"
    # The outline (no body) and the other types leave it out.
    outline = LessonPublic(**ids, type="video")
    text = LessonPublic(**ids, type="text", content="x")
    assert "transcript" not in outline.model_dump() and "transcript" not in text.model_dump()
    # Nested, as `GET /courses/{id}` and the snapshot dump it; the answer's schema is still the fields'.
    module = ModulePublic(id=uuid.uuid4(), title="M", position=0, lessons=[with_words, lesson, outline, text])
    assert [x.get("transcript", "-") for x in module.model_dump(mode="json")["lessons"]] == ["words", None, "-", "-"]
    schema = CourseDetail.model_json_schema(mode="serialization")["$defs"]["LessonPublic"]
    assert schema["properties"]["transcript"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_a_password_is_more_than_spaces() -> None:
    with pytest.raises(ValidationError, match="blank"):
        RegisterIn(**{**REGISTER, "password": " " * 12}, full_name="Eve")
    with pytest.raises(ValidationError, match="blank"):
        UserUpdateIn(password="\t" * 9)
    assert RegisterIn(**{**REGISTER, "password": "  spaces inside are fine  "}, full_name="Eve")


def test_update_schemas_offer_null_only_where_the_server_takes_it() -> None:
    """An update's fields are optional; the schema declared each `anyOf [X, null]` although the server refuses null
    for most (422 `invalid_field`). Only the `NULLABLE` fields (null clears them) say null now."""
    from smartcourse.schemas import CourseUpdateIn, LessonUpdateIn, ModuleUpdateIn, UserUpdateIn

    expected = {
        CourseUpdateIn: {"level", "capacity"},
        LessonUpdateIn: {"transcript"},
        ModuleUpdateIn: set(),
        UserUpdateIn: {"bio"},
    }
    for model, nullable in expected.items():
        schema = model.model_json_schema()
        assert not schema.get("required"), model  # leave a field out to keep it
        says_null = {
            name
            for name, prop in schema["properties"].items()
            if any(v.get("type") == "null" for v in prop.get("anyOf", ())) or prop.get("type") == "null"
        }
        assert says_null == nullable == set(model.NULLABLE), model
        for name, prop in schema["properties"].items():
            if name not in nullable:
                assert "default" not in prop and ("type" in prop or "$ref" in prop or "anyOf" in prop), (name, prop)
            # The server's rule is the schema's: null is refused exactly where the schema does not offer it.
            refused = model.model_validate({name: None}).null_refused()
            assert (refused is None) == (name in nullable), (model, name)
    title = CourseUpdateIn.model_json_schema()["properties"]["title"]
    assert title["type"] == "string" and title["maxLength"] == 200  # the constraints are kept


def test_names_and_titles_are_stored_composed() -> None:
    """explore65 F7: a name typed decomposed (NFD) was stored so, and printed with its accents off their letters."""
    import unicodedata

    from smartcourse.schemas import RegisterIn

    typed = unicodedata.normalize("NFD", "Trần Văn Đức")
    body = RegisterIn(email="tran@example.com", password="quartz-lantern-1", full_name=typed, role="student")
    assert body.full_name == "Trần Văn Đức" == unicodedata.normalize("NFC", typed) != typed
