"""GET /certificates/verify/{code}: public check that a certificate is genuine (no login; a page for a browser)."""

import html
import re
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse

from smartcourse.api.app import lambda_handler
from smartcourse.api.deps import ContainerDep
from smartcourse.domain.certificates import CODE_PATTERN
from smartcourse.errors import Invalid
from smartcourse.schemas import CertificateVerification
from smartcourse.services import certificates

router = APIRouter(tags=["certificates"])

_PAGE = {"text/html": {"schema": {"type": "string"}}}
#: Every answer varies with Accept, and asks search engines not to index it: a verify link the student posts (the PDF
#: prints it) put their name in search results under the platform's domain (explore67 F10).
_HEADERS = {"Vary": "Accept", "X-Robots-Tag": "noindex, nofollow"}


@router.get(
    "/certificates/verify/{code}",
    response_model=CertificateVerification,
    response_model_exclude_none=True,
    responses={200: {"content": _PAGE, "description": "JSON; a short HTML page when the caller prefers text/html"}},
)
async def verify_certificate(
    code: Annotated[str, Path(max_length=64, json_schema_extra={"pattern": CODE_PATTERN})],
    c: ContainerDep,
    request: Request,
    response: Response,
) -> CertificateVerification | Response:
    browser = _wants_html(request.headers.get("accept", ""))
    try:
        async with c.uow() as uow:
            cert = await certificates.verify(uow=uow, code=code)
            live = cert is not None and await certificates.course_is_live(uow=uow, cert=cert)
    except Invalid as exc:
        if not browser:
            exc.headers.update(_HEADERS)  # not for search engines either (explore69 F11)
            raise  # 422 invalid_certificate_code
        # A code mistyped from the PDF into a browser: the page a person can read, not JSON (explore9 F3).
        unknown = CertificateVerification(valid=False, status="unknown")
        return HTMLResponse(_page(code, unknown), status_code=422, headers=_HEADERS)
    if cert is None:
        answer = CertificateVerification(valid=False, status="unknown")
    elif cert.withdrawn_at is not None:  # withdrawn by its holder, or their account erased: it names nobody
        answer = CertificateVerification(valid=False, status="withdrawn")
    else:
        answer = CertificateVerification(
            valid=cert.revoked_at is None,
            status="valid" if cert.revoked_at is None else "revoked",
            student_name=cert.student_name,
            course_title=cert.course_title,
            issued_at=cert.issued_at,
            revoked_at=cert.revoked_at,
            course_id=cert.course_id,
            course_url=f"{c.settings.public_base_url}/courses/{cert.course_id}" if live else None,
            instructor_name=cert.instructor_name,
            reissued_at=cert.reissued_at,
        )
    if browser:
        return HTMLResponse(_page(code, answer), headers=_HEADERS)  # the link printed on the PDF, opened in a browser
    response.headers.update(_HEADERS)
    return answer


def _wants_html(accept: str) -> bool:
    """A browser (`text/html` asked for, before any JSON); API clients (`application/json`, `*/*`) get JSON. A type
    given `q=0` is not acceptable, so not asked for."""
    kinds = [
        part.split(";")[0].strip().lower()
        for part in accept.split(",")
        if not re.search(r";\s*q\s*=\s*0(?:\.0*)?\s*(?:;|$)", part)
    ]
    return "text/html" in kinds and (
        "application/json" not in kinds or kinds.index("text/html") < kinds.index("application/json")
    )


def _page(code: str, answer: CertificateVerification) -> str:
    e = html.escape
    if answer.status == "unknown":
        verdict, lines = "Not a SmartCourse certificate", ["No certificate has this code. Check how it was typed."]
    elif answer.status == "withdrawn":
        verdict, lines = "Withdrawn certificate", ["This certificate was withdrawn: it is no longer valid."]
    else:
        verdict = "Valid certificate" if answer.status == "valid" else "Revoked certificate"
        taught = f", taught by {e(answer.instructor_name)}" if answer.instructor_name else ""
        course = e(answer.course_title or "")
        if answer.course_url:
            course = f'<a href="{e(answer.course_url)}">{course}</a>'
        lines = [
            f"Awarded to {e(answer.student_name or '')} for completing {course}{taught}, on SmartCourse.",
            f"Issued on {answer.issued_at:%d %B %Y}." if answer.issued_at else "",
            f"Re-issued under the holder's corrected name on {answer.reissued_at:%d %B %Y}."
            if answer.reissued_at
            else "",
            f"Revoked on {answer.revoked_at:%d %B %Y}: it is no longer valid." if answer.revoked_at else "",
        ]
    body = "".join(f"<p>{line}</p>" for line in lines if line)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex, nofollow">'
        "<title>"
        f"{verdict}</title></head><body><h1>{verdict}</h1><p>Code: {e(code)}</p>{body}</body></html>"
    )


handler = lambda_handler(router)
