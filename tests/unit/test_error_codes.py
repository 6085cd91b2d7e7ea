"""docs/errors.md is the catalogue the source gives (`smartcourse.devtools.error_codes`)."""

from __future__ import annotations

from pathlib import Path

from smartcourse.devtools import error_codes

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_the_catalogue_is_current() -> None:
    assert DOC.read_text() == error_codes.render(), "run `python -m smartcourse.devtools.error_codes > docs/errors.md`"


def test_it_finds_codes_in_each_way_they_are_raised() -> None:
    found = error_codes.catalogue()
    assert found["course_full"]["status"] == {"409"}  # Conflict(..., code="course_full")
    assert found["prerequisite_not_live"]["status"] == {"422"}  # through courses.prerequisites_not_live(code=...)
    assert found["invalid_lesson"]["status"] == {"422"} and "schemas.py" in found["invalid_lesson"]["where"]
    assert found["no_text"]["status"] == {"422"}  # ExtractionError(filename, "no_text", ...)
    assert found["validation_error"]["status"] == {"422"} and "api/app.py" in found["validation_error"]["where"]
    assert found["too_many_files"]["where"] == {"functions/upload_material"}
    assert found["not_found"]["status"] == {"404"}  # a class's own code, raised without one
    assert "assistant_failed" in found and "unavailable" not in found  # a code passed through is not the default
