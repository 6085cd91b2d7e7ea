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
    assert found["too_many_files"]["where"] == {"api/uploads.py"}
    assert found["not_found"]["status"] == {"404"}  # a class's own code, raised without one
    assert "assistant_failed" in found and "unavailable" not in found  # a code passed through is not the default
    # The framework's HTTP errors (api.app._STATUS_CODES) are listed, but not as every operation's.
    assert found["method_not_allowed"]["status"] == {"405"} and found["not_acceptable"]["status"] == {"406"}
    assert "method_not_allowed" not in error_codes.everywhere().get(405, frozenset())


def test_each_operation_names_the_codes_it_may_answer() -> None:
    """The OpenAPI schema's error responses name the codes each endpoint's code reaches, beside the API layer's
    own; an endpoint's own description of a status stays."""
    from smartcourse.api.local import build_local_app

    paths = build_local_app().openapi()["paths"]

    def said(path: str, method: str, status: int) -> str:
        return str(paths[path][method]["responses"][str(status)]["description"])

    assert "`course_full`" in said("/enrollments", "post", 409) and "`prerequisites_not_met`" in said(
        "/enrollments", "post", 409
    )
    assert "`token_expired`" in said("/enrollments", "post", 401) and "`overloaded`" in said(
        "/enrollments", "post", 503
    )
    upload = said("/courses/{course_id}/materials", "post", 422)
    assert "`too_many_files`" in upload and "`validation_error`" in upload and "`course_full`" not in upload
    assert "`invalid_certificate_code`" in said("/certificates/verify/{code}", "get", 422)
    assert said("/health", "get", 503).startswith("degraded")  # its own words, not a list
    for status in ("429", "503"):  # when to come back
        assert "Retry-After" in paths["/enrollments"]["post"]["responses"][status]["headers"]
    # explore13: a code passed to a helper with a default (F1), a body model's rule (F3), a function handed to
    # asyncio.to_thread (F4) were named nowhere.
    assert "`quiz_cooldown`" in said("/quizzes/{lesson_id}/submit", "post", 429)
    assert "`rate_limited`" in said("/auth/login", "post", 429)  # the helper's default code still counts
    assert "`invalid_lesson`" in said("/courses/{course_id}/modules/{module_id}/lessons", "post", 422)
    assert "`encrypted_pdf`" in upload
    for generation in ("/ai/generate-summary", "/ai/generate-objectives", "/ai/generate-quiz", "/ai/explain"):
        assert "`ai_output_invalid`" in said(generation, "post", 503)  # F2: declared, raised behind the run object
    assert "`assistant_failed`" in said("/ai/ask", "post", 503)
    # Codes of an event breaking its own contract are a programming error, not an answer to the request.
    assert "event_contract_violation" not in said("/enrollments", "post", 422)
