"""Outgoing email over SMTP (stdlib smtplib + email.mime): the sink in development, a relay in production.

One SMTP connection per process and server is kept open and reused (`SmtpConnection`): connecting, EHLO and QUIT
were three round trips and a server-side session per e-mail, about a fifth of the Celery task's CPU and half the
sink's (docs/benchmarks.md, "E-mail task"). A connection idle for a while is checked with NOOP before use, one idle
for long is reopened, and one that failed is dropped, never reused.

Messages are built with the `email.mime` classes (the `compat32` policy) rather than `EmailMessage`: the default
policy parses every header it is given through its header registry, which made building and flattening the welcome
message 0.66 ms against 0.12 ms here (docs/benchmarks.md, "Eighth pass"). Non-ASCII names and subjects are RFC 2047
encoded words, bodies quoted-printable UTF-8 (7bit when ASCII); the result reads the same to any client.
"""

from __future__ import annotations

import email.policy
import io
import os
import smtplib
import threading
import time
from collections.abc import Sequence
from email import encoders
from email.charset import QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, getaddresses, parseaddr

from opentelemetry import trace
from opentelemetry.trace import SpanKind

_tracer = trace.get_tracer("smartcourse.mail")


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP  # readable in the raw message (the default for utf-8 is base64)


def _text_part(body: str, subtype: str) -> MIMEText:
    if body.isascii():
        return MIMEText(body, subtype, "us-ascii")
    return MIMEText(body, subtype, _UTF8_QP)  # type: ignore[arg-type]  # a Charset is accepted at run time


def _send(smtp: smtplib.SMTP, msg: Message) -> None:
    """`send_message`, but for an address beyond ASCII too: smtplib's own SMTPUTF8 path clones the message's policy
    with `utf8=True`, which the `compat32` messages built here refuse, so such a message is flattened with the
    SMTPUTF8 policy here and sent with SMTPUTF8 (the server must offer it, as the embedded sink and the usual relays
    do)."""
    sender = parseaddr(str(msg["From"] or ""))[1]
    to = [address for _, address in getaddresses([str(v) for v in msg.get_all("To", [])])]
    if "".join([sender, *to]).isascii():
        smtp.send_message(msg)
        return
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("smtputf8"):
        raise smtplib.SMTPNotSupportedError("the SMTP server does not offer SMTPUTF8, needed for a non-ASCII address")
    out = io.BytesIO()
    BytesGenerator(out, policy=email.policy.SMTPUTF8).flatten(msg, linesep="\r\n")  # type: ignore[arg-type]
    smtp.sendmail(sender, to, out.getvalue(), mail_options=["SMTPUTF8", "BODY=8BITMIME"])


def recipient(name: str, address: str) -> str:
    """`Name <address>` for a header, whatever their scripts: the name quoted as needed (an encoded word when it is
    not ASCII), an internationalised domain in IDNA, and an address whose local part is not ASCII (`zoë@ex.com`,
    which a registration accepts) kept as it is, for the server to take with SMTPUTF8 (smtplib asks for it). The
    standard `formataddr` refuses such an address: every e-mail to one failed, retried for ever (explore12 F1)."""
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            pass
        address = f"{local}@{domain}"
    if address.isascii():
        return formataddr((name, address), charset="utf-8")
    if not name:
        return f"<{address}>"
    shown = formataddr((name, "x@x"), charset="utf-8").removesuffix("<x@x>").rstrip()
    return f"{shown} <{address}>"


def _address(value: str) -> str:
    """`Name <addr>` with the name as an encoded word when it is not ASCII."""
    if value.isascii():
        return value
    name, addr = parseaddr(value)
    return recipient(name, addr)


def _header_text(value: str, name: str) -> str:
    """A header's text, as encoded words when it is not ASCII, folded with the header's name counted on its first
    line: without it a long subject began on an empty line, read back with a leading space (explore83 F15: "Your
    certificate for Historia de España contemporánea")."""
    return value if value.isascii() else Header(value, "utf-8", header_name=name).encode()


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    message_id: str,
) -> Message:
    """The MIME message: text (plus an HTML alternative), attachments as (filename, bytes, content type)."""
    body: MIMEBase = _text_part(text, "plain")
    if html is not None:
        body = MIMEMultipart("alternative", _subparts=[body, _text_part(html, "html")])
    if attachments:
        parts: list[MIMEBase] = [body]
        for filename, data, content_type in attachments:
            maintype, _, subtype = content_type.partition("/")
            part: MIMENonMultipart
            if (maintype or "application") == "application":
                part = MIMEApplication(data, subtype or "octet-stream")
            else:
                part = MIMENonMultipart(maintype, subtype or "octet-stream")
                part.set_payload(data)
                encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=filename)
            parts.append(part)
        body = MIMEMultipart("mixed", _subparts=parts)
    body["From"] = _address(sender)
    body["To"] = _address(to)
    body["Subject"] = _header_text(subject, "Subject")
    body["Date"] = formatdate(localtime=False, usegmt=True)
    # Deterministic, supplied by the caller: a resend of the same notification carries the same id,
    # so a duplicate delivery is recognisable (and mail clients thread or collapse it).
    body["Message-ID"] = message_id if message_id.startswith("<") else f"<{message_id}>"
    return body


class SmtpConnection:
    """One reusable SMTP connection to one server (thread-safe: one message at a time)."""

    #: Used within this many seconds: sent on without a check (a burst pays no extra round trip).
    FRESH_SECONDS = 2.0
    #: Idle longer than this: reopened without asking (servers drop idle sessions after a minute or a few).
    MAX_IDLE_SECONDS = 30.0
    #: Messages per connection before it is reopened (relays limit them per session).
    MAX_MESSAGES = 100
    #: Connecting, and the server's greeting, within this; the NOOP of an idle connection within `NOOP_SECONDS`. A
    #: relay that stalls (accepts, then says nothing) held a Celery pool process 30 s per e-mail on a new connection
    #: and 60 s on a kept one (the NOOP's 30 s, then the new one's), and with it every other task (explore40 F5).
    #: Once connected, each read or write of the session has the caller's `timeout` (a large attachment).
    CONNECT_SECONDS = 10.0
    NOOP_SECONDS = 5.0
    #: The QUIT of a connection being closed, answered or not: its reply changes nothing, and a stalled relay held an
    #: idle connection's close for the session's 30 s before the new connection was tried (explore48 F2: 40 s).
    QUIT_SECONDS = 2.0

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.lock = threading.Lock()
        self.smtp: smtplib.SMTP | None = None
        self.used_at = 0.0
        self.sent = 0
        self.opened = 0  # connections opened so far (tests, diagnosis)

    def send(self, msg: Message) -> None:
        with self.lock:
            smtp = self._usable()
            try:
                _send(smtp, msg)
            except (smtplib.SMTPServerDisconnected, OSError):
                self.close()  # broken: never reused (the caller's retry opens a new one)
                raise
            except smtplib.SMTPException:
                self._reset()  # refused by the server, the session is still good: clear its state
                raise
            self.used_at, self.sent = time.monotonic(), self.sent + 1

    def _usable(self) -> smtplib.SMTP:
        idle = time.monotonic() - self.used_at
        if self.smtp is not None and (idle > self.MAX_IDLE_SECONDS or self.sent >= self.MAX_MESSAGES):
            self.close()
        if self.smtp is not None and idle > self.FRESH_SECONDS:
            try:
                self._within(self.smtp, min(self.NOOP_SECONDS, self.timeout))
                self.smtp.noop()
                self._within(self.smtp, self.timeout)
            except (smtplib.SMTPException, OSError):
                self.close()
        if self.smtp is None:
            smtp = smtplib.SMTP(self.host, self.port, timeout=min(self.CONNECT_SECONDS, self.timeout))
            self._within(smtp, self.timeout)
            self.smtp, self.sent, self.opened = smtp, 0, self.opened + 1
        return self.smtp

    @staticmethod
    def _within(smtp: smtplib.SMTP, seconds: float) -> None:
        smtp.timeout = seconds  # what smtplib gives a socket it opens later (STARTTLS)
        if smtp.sock is not None:
            smtp.sock.settimeout(seconds)

    def _reset(self) -> None:
        try:
            if self.smtp is not None:
                self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                self._within(smtp, min(self.QUIT_SECONDS, self.timeout))
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


_connections: dict[tuple[int, str, int], SmtpConnection] = {}
_connections_lock = threading.Lock()


def connection(host: str, port: int, timeout: float = 30.0) -> SmtpConnection:
    """This process's connection to `host:port` (a forked child gets its own, never its parent's socket)."""
    key = (os.getpid(), host, port)
    with _connections_lock:
        conn = _connections.get(key)
        if conn is None:
            conn = _connections[key] = SmtpConnection(host, port, timeout)
        return conn


def close_connections() -> None:
    """Close this process's SMTP connections (worker shutdown, tests)."""
    with _connections_lock:
        mine = [c for (pid, _, _), c in _connections.items() if pid == os.getpid()]
        _connections.clear()
    for conn in mine:
        with conn.lock:
            conn.close()


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
    """Send one message over this process's connection to the server; returns once the server accepted it (raises
    smtplib/OSError errors otherwise)."""
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
    with _tracer.start_as_current_span("smtp send", kind=SpanKind.CLIENT, attributes=attributes):
        connection(host, port, timeout).send(msg)
