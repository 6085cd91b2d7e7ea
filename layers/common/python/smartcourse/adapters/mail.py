"""Outgoing email over SMTP (stdlib smtplib + EmailMessage): the sink in development, a relay in production."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from opentelemetry import trace
from opentelemetry.trace import SpanKind

_tracer = trace.get_tracer("smartcourse.mail")


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    message_id: str,
) -> EmailMessage:
    """The MIME message: text (plus an HTML alternative), attachments as (filename, bytes, content type)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    # Deterministic, supplied by the caller: a resend of the same notification carries the same id,
    # so a duplicate delivery is recognisable (and mail clients thread or collapse it).
    msg["Message-ID"] = message_id if message_id.startswith("<") else f"<{message_id}>"
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(
            data, maintype=maintype or "application", subtype=subtype or "octet-stream", filename=filename
        )
    return msg


def send_email(
    *,
    host: str,
    port: int,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    message_id: str,
    timeout: float = 30.0,
) -> None:
    """Send one message; returns once the server accepted it (raises smtplib/OSError errors otherwise)."""
    msg = build_message(
        sender=sender,
        to=to,
        subject=subject,
        text=text,
        html=html,
        attachments=attachments,
        message_id=message_id,
    )
    attributes = {"server.address": host, "server.port": port, "smtp.message_id": msg["Message-ID"] or ""}
    with (
        _tracer.start_as_current_span("smtp send", kind=SpanKind.CLIENT, attributes=attributes),
        smtplib.SMTP(host, port, timeout=timeout) as smtp,
    ):
        smtp.send_message(msg)
