"""Pure rules: no engines, no I/O."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from smartcourse.domain import courses as course_rules
from smartcourse.domain import enrollment as rules
from smartcourse.domain.certificates import new_code, normalize_code
from smartcourse.domain.materials import MAX_FILENAME_BYTES, attachment_disposition, detect_content_type, safe_filename
from smartcourse.errors import Forbidden, Invalid, UnsupportedMedia
from smartcourse.security import Principal


def test_transitions() -> None:
    assert rules.can_transition("pending", "active")
    assert rules.can_transition("waitlisted", "pending")
    assert rules.can_transition("active", "dropped")
    assert not rules.can_transition("completed", "dropped")
    assert not rules.can_transition("dropped", "active")
    assert not rules.can_transition("active", "pending")


def test_workflow_ids_are_deterministic() -> None:
    c, s = uuid.uuid4(), uuid.uuid4()
    assert rules.enrollment_workflow_id(c, s, 1) == rules.enrollment_workflow_id(c, s, 1)
    assert rules.enrollment_workflow_id(c, s, 1) != rules.enrollment_workflow_id(c, s, 2)


def test_missing_prerequisites() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert rules.missing_prerequisites([a, b], [a]) == [str(b)]
    assert rules.missing_prerequisites([a], [a, b]) == []


def test_progress_arithmetic() -> None:
    m1, m2 = uuid.uuid4(), uuid.uuid4()
    lessons = [rules.LessonRef(uuid.uuid4(), m1), rules.LessonRef(uuid.uuid4(), m1), rules.LessonRef(uuid.uuid4(), m2)]
    assert rules.percent_complete(lessons, set()) == 0
    assert rules.percent_complete(lessons, {lessons[0].lesson_id}) == 33.33
    assert rules.percent_complete(lessons, {lsn.lesson_id for lsn in lessons}) == 100
    assert rules.percent_complete([], set()) == 0
    assert rules.completed_modules(lessons, {lessons[2].lesson_id}) == {m2}
    assert rules.completed_modules(lessons, {lessons[0].lesson_id}) == set()


@pytest.mark.parametrize(
    ("answers", "score", "passed"),
    [([1, 0, 2], 100, True), ([1, 0, 0], 66, False), ([0, 1, 1], 0, False), ([1], 33, False)],
)
def test_quiz_grading(answers: list[int], score: int, passed: bool) -> None:
    questions = [{"answer": 1}, {"answer": 0}, {"answer": 2}]
    assert course_rules.grade_quiz(questions, answers, 70) == (score, passed)


def test_students_never_see_answers() -> None:
    lesson = {"type": "quiz", "questions": [{"prompt": "?", "options": ["a", "b"], "answer": 1}]}
    view = course_rules.student_view_of_lesson(lesson)
    assert "answer" not in view["questions"][0] and lesson["questions"][0]["answer"] == 1


def test_ownership() -> None:
    owner, other = uuid.uuid4(), uuid.uuid4()
    course_rules.ensure_owner(Principal(owner, "instructor"), owner)
    course_rules.ensure_owner(Principal(other, "admin"), owner)
    with pytest.raises(Forbidden):
        course_rules.ensure_owner(Principal(other, "instructor"), owner)
    with pytest.raises(Forbidden):
        course_rules.ensure_can_author(Principal(other, "student"))


def test_live_means_a_published_version_not_archived() -> None:
    assert course_rules.is_live("published", 1)
    assert course_rules.is_live("publishing", 2)  # re-publishing keeps v1 visible
    assert not course_rules.is_live("publishing", 0)
    assert not course_rules.is_live("archived", 3)


def test_certificate_codes() -> None:
    codes = {new_code() for _ in range(500)}
    assert len(codes) == 500
    code = next(iter(codes))
    assert code.startswith("SC-") and len(code) == 22
    assert normalize_code(f"  {code.lower()} ") == code
    # Digits base32 never has, typed for the letters they look like (explore36 F5).
    assert normalize_code("sc-h0b1-8aaa-aaaa-aaaa") == "SC-HOBI-BAAA-AAAA-AAAA"


def test_material_types_are_checked_by_content() -> None:
    assert detect_content_type("a.md", b"# hi") == "text/markdown"
    assert detect_content_type("a.HTML", b"<p>x</p>") == "text/html"
    assert detect_content_type("a.pdf", b"%PDF-1.7\n") == "application/pdf"  # its structure: validate_pdf
    with pytest.raises(Invalid) as info:  # named as a type we take, but not one: the client fixes the file
        detect_content_type("a.pdf", b"plain text pretending")
    assert info.value.code == "invalid_pdf" and info.value.status_code == 422
    with pytest.raises(UnsupportedMedia) as refused:
        detect_content_type("a.txt", b"\xff\xfe\x00bin")
    assert refused.value.message == (
        ".txt files must be UTF-8 text; accepted: PDF, Markdown, plain text, HTML, SRT/WebVTT transcripts"
    )
    # A lecture's captions are taken (explore57 F9: refused, then indexed raw when renamed .txt).
    assert detect_content_type("talk.srt", b"1\n00:00:01,000 --> 00:00:04,000\nHi\n") == "application/x-subrip"
    assert detect_content_type("talk.VTT", b"WEBVTT\n\n00:01.000 --> 00:04.000\nHi\n") == "text/vtt"
    with pytest.raises(UnsupportedMedia) as refused:  # explore31 F9: the cause said, not "must be UTF-8"
        detect_content_type("notes.TXT", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    assert refused.value.message == "the file is a PDF named .txt: rename it .pdf and upload it again"
    with pytest.raises(UnsupportedMedia):
        detect_content_type("a.exe", b"MZ")
    assert safe_filename("../../etc/passwd") == "passwd"
    with pytest.raises(Invalid):
        safe_filename("")


def test_a_long_file_name_keeps_its_suffix() -> None:
    name = safe_filename("a" * 300 + ".txt")
    assert name == "a" * 196 + ".txt" and detect_content_type(name, b"x") == "text/plain"
    assert safe_filename("b" * 300 + ".Markdown") == "b" * 191 + ".Markdown"
    assert safe_filename("c" * 199 + ".md") == "c" * 197 + ".md"  # 202 characters: cut before the suffix
    assert safe_filename("d" * 200) == "d" * 200
    # no suffix, or a "suffix" too long to be a type: cut plainly
    assert safe_filename("e" * 250) == "e" * 200
    assert safe_filename("f." + "g" * 300) == ("f." + "g" * 300)[:200]
    assert safe_filename("." + "h" * 300) == ("." + "h" * 300)[:200]


def test_a_name_of_many_bytes_is_cut_to_whole_characters_that_fit_a_file_system() -> None:
    """explore27 F2: 63 emoji and ".txt" (256 bytes, 67 characters) were "File name too long" in the local store,
    answered 503 "retry shortly" for ever."""
    emoji = chr(0x1F600)
    for typed in (emoji * 63 + ".txt", emoji * 199 + ".txt", chr(0xE9) * 199 + ".txt"):
        name = safe_filename(typed)
        assert len(name.encode()) <= MAX_FILENAME_BYTES and name.endswith(".txt") and len(name) > 50, name
        assert typed.startswith(name[:-4])  # whole characters, from the start
    assert safe_filename(emoji * 62 + ".txt") == emoji * 59 + ".txt"  # 252 bytes: over 240, cut to 240
    assert safe_filename(emoji * 50 + ".txt") == emoji * 50 + ".txt"  # 204 bytes: kept


def test_a_download_names_its_file_for_every_client() -> None:
    assert attachment_disposition("Handout 1.pdf") == (
        "attachment; filename=\"Handout 1.pdf\"; filename*=UTF-8''Handout%201.pdf"
    )
    typed = "R" + chr(0xE9) + "sum" + chr(0xE9) + " " + chr(0x1F600) + ";x.txt"
    header = attachment_disposition(typed)
    assert header.isascii() and "filename*=UTF-8''R%C3%A9sum%C3%A9%20%F0%9F%98%80%3Bx.txt" in header
    assert 'filename="R_sum_ _;x.txt"' in header


def test_a_browser_encoded_name_and_a_name_that_is_only_a_suffix() -> None:
    """explore7 F11: `quote"name.txt` arrived as `quote%22name.txt` (browsers percent-encode `"`, CR, LF) and was
    stored so; a file named `.txt` was refused as "unsupported file type (none)"."""
    assert safe_filename("quote%22name.txt") == "quotename.txt"
    assert safe_filename("two%0Alines.md") == "twolines.md"  # a line break is not printable: dropped
    assert detect_content_type(".txt", b"notes") == "text/plain"
    assert detect_content_type(".md", b"# x") == "text/markdown"
    with pytest.raises(UnsupportedMedia):
        detect_content_type(".bashrc", b"x")


def test_analytics_metrics_definitions() -> None:
    from smartcourse.services.analytics import _drift, _metrics

    today = date(2026, 11, 22)
    m = _metrics(
        students=10,
        instructors=2,
        published=3,
        per_day={"2026-11-22": 2, "2026-11-20": 3, "2026-11-01": 4, "2026-10-01": 9},
        admitted=9,
        completed=3,
        completion_seconds=3 * 7200,
        per_course={"b": 4, "a": 4, "c": 1, "d": 0},
        per_student={"s1": 2, "s2": 1, "s3": 0},
        today=today,
        titles={"a": ("A", "published"), "b": ("B", "archived")},
    )
    assert m["new_enrollments"] == {"day": 2, "week": 5, "month": 9}
    # An archived course keeps the enrollments it had, and says it is archived; an unknown one says nothing.
    assert [(p["title"], p["status"]) for p in m["popular_courses"]] == [
        ("A", "published"),
        ("B", "archived"),
        (None, None),
    ]
    assert m["completion_rate"] == 33.33 and m["avg_time_to_complete_hours"] == 2
    assert [p["course_id"] for p in m["popular_courses"]] == ["a", "b", "c"]
    assert m["avg_courses_per_student"] == 1.5
    assert _drift(m, m) == 0
    assert _drift({"x": 1}, {"x": 2}) == 1


def test_no_completion_has_no_average_time_to_complete() -> None:
    """A mean of nothing is null (as in /analytics/completions' series), never 0.0 h ("completed at once"), and
    reconcile compares it: null on both sides is no drift, on one side only is."""
    from smartcourse.services.analytics import _drift, _metrics

    empty = dict(per_day={}, admitted=2, completed=0, completion_seconds=0, per_course={}, per_student={})
    m = _metrics(students=1, instructors=1, published=1, today=date(2026, 11, 22), **empty)  # type: ignore[arg-type]
    assert m["avg_time_to_complete_hours"] is None and m["completion_rate"] == 0.0
    assert _drift(m, m) == 0
    assert _drift({"avg_time_to_complete_hours": None}, {"avg_time_to_complete_hours": 0.5}) == 1
    assert _drift({"avg_time_to_complete_hours": 0.0}, {"avg_time_to_complete_hours": None}) == 1
