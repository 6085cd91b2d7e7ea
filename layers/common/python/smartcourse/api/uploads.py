"""An upload's multipart body, read only once the request may upload at all.

FastAPI reads a route's whole form body before it runs the route's dependencies, so with `File()` parameters an
anonymous or unauthorised request had its body (up to `MAX_UPLOAD_BYTES` plus framing, 21 MiB by default) read and
spooled to disk before it was answered 401, 403 or 404 (explore27). The upload route therefore declares no body
parameter: it authenticates (its dependencies), checks the course (`materials.may_upload`), and only then reads the
form with `upload_form`, which answers what FastAPI's own validation answered for the same mistakes (422
`validation_error` naming `file` or `lesson_id`, `invalid_filename`, `too_many_files`). A client that sends
`Expect: 100-continue` (curl does for large files) gets its refusal before it sends a byte of the file: the server
only says "continue" when the body is first read.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from smartcourse.domain.materials import NO_FILE_PART
from smartcourse.errors import Invalid, UnsupportedMedia, field_problem

#: The request body as OpenAPI describes it (the route has no body parameter for FastAPI to describe it from).
MATERIAL_UPLOAD_BODY: dict[str, Any] = {
    # Read there too (`_lesson_id`): a client that sends it in the query string is served, and told so (explore46 F7).
    "parameters": [
        {
            "name": "lesson_id",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "format": "uuid"},
            "description": "the form's `lesson_id`, given in the query string instead (both, differing: 422)",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "title": "MaterialUpload",
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "title": "File",
                            "description": "PDF, Markdown, plain text, HTML or SRT/WebVTT; one file per request",
                        },
                        "lesson_id": {
                            "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}],
                            "title": "Lesson Id",
                            "description": "attach the material to this lesson of the course (optional)",
                        },
                    },
                }
            }
        },
    },
}

_UUID = TypeAdapter(uuid.UUID)


@dataclass(frozen=True)
class UploadForm:
    file: UploadFile
    lesson_id: uuid.UUID | None


def _field_errors(name: str, exc: ValidationError) -> list[dict[str, Any]]:
    return [{**err, "loc": ("body", name, *err["loc"])} for err in exc.errors(include_url=False)]


#: The fields of an upload's form.
UPLOAD_FIELDS = ("file", "lesson_id")


def parse_upload_form(
    files: list[Any], lesson: Any, unknown: Sequence[str] = (), unknown_query: Sequence[str] = ()
) -> UploadForm:
    """The `file` parts and the last `lesson_id` value of a form as the route takes them; refusals as FastAPI's
    validation gave them (every field's errors at once, `unknown` fields of the form and `unknown_query` parameters
    among them, as a JSON body's: a misspelled `lessonid`, in either, attached a lesson's handout to the whole course
    without a word, explore44 F4, explore45 F4), then the route's own (`invalid_filename`, one file)."""
    extra = [("body", name) for name in unknown] + [("query", name) for name in unknown_query]
    errors: list[dict[str, Any]] = [
        {"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted", "input": None} for loc in extra
    ]
    if not files:
        errors.append({"type": "missing", "loc": ("body", "file"), "msg": "Field required", "input": None})
    lesson_id: uuid.UUID | None = None
    if lesson is not None and lesson != "":  # an empty form field is "not sent", as FastAPI reads forms
        try:
            lesson_id = _UUID.validate_python(lesson)
        except ValidationError as exc:
            errors += _field_errors("lesson_id", exc)
    if errors:
        raise RequestValidationError(errors)
    file = files[-1]
    if isinstance(file, str):  # a part without a filename is a text field
        raise Invalid(NO_FILE_PART, code="invalid_filename")
    if len(files) > 1:
        raise Invalid(
            f"send one file per request, not {len(files)}", code="too_many_files", details={"files": len(files)}
        )
    return UploadForm(file=file, lesson_id=lesson_id)


@asynccontextmanager
async def upload_form(request: Request) -> AsyncIterator[UploadForm]:
    """Read and check the upload's form; its spooled file is closed (and removed) when the block ends. A body that is
    not a form is 415, as a JSON endpoint answers a body of another type (explore35 F5: JSON here was 422 "file:
    Field required")."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind and kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # No type at all (no body): read as an empty form, whose answer names the missing `file` (422).
        raise UnsupportedMedia(f"send the file as multipart/form-data (a `file` part), not {kind}")
    form = await request.form()
    try:
        unknown = [name for name in dict.fromkeys(form.keys()) if name not in UPLOAD_FIELDS]
        # The query string is read for `lesson_id` too, so a misspelling there is as silent (explore45 F4).
        unknown_query = [name for name in dict.fromkeys(request.query_params.keys()) if name != "lesson_id"]
        for values in (form.getlist("lesson_id"), request.query_params.getlist("lesson_id")):
            if len(values) > 1:
                message = "send lesson_id once: the form or the query string names it more than once"
                raise Invalid(message, code="invalid_field", details=field_problem("lesson_id", message))
        lesson = _lesson_id(form.get("lesson_id"), request)
        yield parse_upload_form(form.getlist("file"), lesson, unknown, unknown_query)
    finally:
        await form.close()


def _lesson_id(in_form: Any, request: Request) -> Any:
    """The form's `lesson_id`, else the query string's: a client that put it there (`?lesson_id=`) had its handout
    attached to the whole course without a word, and published to every student (explore35 F4). Both, differing:
    422, nothing guessed."""
    in_query = request.query_params.get("lesson_id")
    if in_form in (None, "") or in_query in (None, ""):
        return in_query if in_form in (None, "") else in_form
    if _same_id(str(in_form), in_query):
        return in_form
    message = "lesson_id is in both the form and the query string, with different values: send it once"
    raise Invalid(message, code="invalid_field", details=field_problem("lesson_id", message))


def _same_id(a: str, b: str) -> bool:
    """Two spellings of one id ("ABC…" and "abc…", with or without dashes); text compared as it is otherwise."""
    try:
        return uuid.UUID(a) == uuid.UUID(b)
    except ValueError:
        return a == b
