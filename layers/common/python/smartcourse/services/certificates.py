"""Certificates: issued once per completed enrollment, rendered to PDF, verifiable by code without login."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from smartcourse.db import UnitOfWork
from smartcourse.domain.certificates import new_code, normalize_code
from smartcourse.domain.events import DomainEvent
from smartcourse.errors import Conflict, Invalid, NotFound
from smartcourse.models import Certificate, Course, Enrollment, User
from smartcourse.security import Principal
from smartcourse.services.notifications import create_notification


async def issue(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> uuid.UUID:
    """Insert the certificate unless one exists (unique enrollment_id), with `certificate.issued` in the same tx."""
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    if e.status != "completed":
        raise Conflict("only a completed enrollment earns a certificate", code="enrollment_not_completed")
    existing = await uow.session.scalar(select(Certificate.id).where(Certificate.enrollment_id == enrollment_id))
    if existing is not None:
        return existing
    student = await uow.session.get(User, e.student_id)
    course = await uow.session.get(Course, e.course_id)
    assert student is not None and course is not None
    cert_id = uuid.uuid4()
    code = new_code()
    result = await uow.session.execute(
        insert(Certificate)
        .values(
            id=cert_id,
            enrollment_id=e.id,
            student_id=e.student_id,
            course_id=e.course_id,
            code=code,
            student_name=student.full_name,
            course_title=course.title,
            issued_at=e.completed_at,
        )
        .on_conflict_do_nothing(index_elements=[Certificate.enrollment_id])
        .returning(Certificate.id)
    )
    if result.first() is None:  # a concurrent run issued it first
        await uow.session.rollback()
        found = await uow.session.scalar(select(Certificate.id).where(Certificate.enrollment_id == enrollment_id))
        assert found is not None
        return found
    uow.emit(
        DomainEvent(
            "certificate.issued",
            str(cert_id),
            {
                "certificate_id": str(cert_id),
                "enrollment_id": str(e.id),
                "student_id": str(e.student_id),
                "course_id": str(e.course_id),
                "code": code,
            },
        )
    )
    await uow.commit()
    return cert_id


def render_pdf(cert: Certificate, verify_url: str) -> bytes:
    """A one-page landscape certificate (reportlab)."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    width, height = landscape(A4)
    pdf = canvas.Canvas(buf, pagesize=(width, height))
    pdf.setTitle(f"Certificate {cert.code}")
    pdf.setLineWidth(3)
    pdf.rect(30, 30, width - 60, height - 60)
    pdf.setFont("Helvetica-Bold", 34)
    pdf.drawCentredString(width / 2, height - 130, "Certificate of Completion")
    pdf.setFont("Helvetica", 16)
    pdf.drawCentredString(width / 2, height - 190, "This certifies that")
    pdf.setFont("Helvetica-Bold", 28)
    pdf.drawCentredString(width / 2, height - 240, cert.student_name)
    pdf.setFont("Helvetica", 16)
    pdf.drawCentredString(width / 2, height - 290, "has completed the course")
    pdf.setFont("Helvetica-Bold", 22)
    pdf.drawCentredString(width / 2, height - 335, cert.course_title)
    pdf.setFont("Helvetica", 12)
    pdf.drawCentredString(width / 2, 110, f"Issued {cert.issued_at:%d %B %Y} - verification code {cert.code}")
    pdf.drawCentredString(width / 2, 90, f"Verify at {verify_url}")
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


async def store_pdf(*, uow: UnitOfWork, files: Any, certificate_id: uuid.UUID, base_url: str) -> str:
    """Render and store the PDF under a key derived from the certificate (a retry overwrites the same key)."""
    cert = await uow.session.get(Certificate, certificate_id, with_for_update=True)
    if cert is None:
        raise NotFound("certificate not found", code="certificate_not_found")
    key = f"certificates/{cert.id}.pdf"
    if cert.pdf_key == key:
        return key
    await files.put(key, render_pdf(cert, f"{base_url}/certificates/verify/{cert.code}"), "application/pdf")
    cert.pdf_key = key
    await uow.commit()
    return key


async def notify(*, uow: UnitOfWork, certificate_id: uuid.UUID) -> uuid.UUID:

    cert = await uow.session.get(Certificate, certificate_id)
    if cert is None:
        raise NotFound("certificate not found", code="certificate_not_found")
    notification_id = await create_notification(
        uow.session,
        user_id=cert.student_id,
        kind="certificate.issued",
        title=f"Your certificate for {cert.course_title}",
        body=(
            f"Congratulations {cert.student_name}! You completed {cert.course_title}. "
            f"Your certificate is attached; anyone can verify it with the code {cert.code}."
        ),
        dedupe_key=f"certificate:{cert.id}",
        data={"certificate_id": str(cert.id), "code": cert.code, "attachment_key": cert.pdf_key},
        email=True,
        attachment_key=cert.pdf_key,
    )
    await uow.commit()
    return notification_id


async def get_certificate(*, uow: UnitOfWork, principal: Principal, certificate_id: uuid.UUID) -> Certificate:
    cert = await uow.session.get(Certificate, certificate_id)
    if cert is None or not (principal.is_admin or cert.student_id == principal.user_id):
        raise NotFound("certificate not found", code="certificate_not_found")
    return cert


# SC-XXXX-XXXX-XXXX-XXXX in base32 (A-Z, 2-7); dashes optional when typed.
_CODE = re.compile(r"^(?:SC-?)?([A-Z2-7]{4})-?([A-Z2-7]{4})-?([A-Z2-7]{4})-?([A-Z2-7]{4})$")


def canonical_code(code: str) -> str:
    """The stored form of a typed code, or 422 `invalid_certificate_code` (never a database round trip)."""
    match = _CODE.match(normalize_code(code))
    if match is None:
        raise Invalid(
            "a certificate code looks like SC-XXXX-XXXX-XXXX-XXXX (letters A-Z and digits 2-7)",
            code="invalid_certificate_code",
        )
    return "SC-" + "-".join(match.groups())


async def verify(*, uow: UnitOfWork, code: str) -> Certificate | None:
    return await uow.session.scalar(select(Certificate).where(Certificate.code == canonical_code(code)))


async def my_certificates(*, uow: UnitOfWork, principal: Principal) -> list[Certificate]:
    """The caller's certificates, newest first."""
    rows = await uow.session.scalars(
        select(Certificate).where(Certificate.student_id == principal.user_id).order_by(Certificate.issued_at.desc())
    )
    return list(rows)


async def for_enrollment(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> Certificate | None:
    return await uow.session.scalar(select(Certificate).where(Certificate.enrollment_id == enrollment_id))


async def request_for_enrollment(
    *, uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID
) -> tuple[Certificate, bool]:
    """The enrollment's certificate, issued now if it is complete and the workflow has not issued it yet.

    (certificate, created). 404 for someone else's enrollment, 409 `enrollment_not_completed` before completion.
    """
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is None or not (principal.is_admin or e.student_id == principal.user_id):
        raise NotFound("enrollment not found", code="enrollment_not_found")
    existing = await for_enrollment(uow=uow, enrollment_id=enrollment_id)
    if existing is not None:
        return existing, False
    if e.status != "completed":
        raise Conflict("the course is not complete yet; no certificate", code="enrollment_not_completed")
    cert_id = await issue(uow=uow, enrollment_id=enrollment_id)
    cert = await uow.session.get(Certificate, cert_id)
    assert cert is not None
    return cert, True
