"""Certificates: issued once per completed enrollment, rendered to PDF, verifiable by code without login."""

from __future__ import annotations

import asyncio
import io
import logging
import math
import re
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from smartcourse.db import UnitOfWork
from smartcourse.domain import courses as course_rules
from smartcourse.domain.certificates import CODE_PATTERN, new_code, normalize_code, revoked_history
from smartcourse.domain.events import DomainEvent
from smartcourse.domain.moments import in_utc
from smartcourse.errors import Conflict, Forbidden, Invalid, NotFound
from smartcourse.models import Certificate, Course, Enrollment, User, utcnow
from smartcourse.security import Principal
from smartcourse.services.courses import ensure_course_owner, load_course, teaches_course
from smartcourse.services.notifications import create_notification
from smartcourse.services.waitlist import give_back_seat, history_entry

log = logging.getLogger(__name__)


async def issue(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> uuid.UUID:
    """Insert the certificate unless one exists (unique enrollment_id), with `certificate.issued` in the same tx."""
    cert_id, _ = await issue_once(uow=uow, enrollment_id=enrollment_id)
    return cert_id


async def issue_once(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
    """As `issue`, and whether this call inserted it (a concurrent one may have, between its check and its insert)."""
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    if e.status != "completed":
        raise Conflict("only a completed enrollment earns a certificate", code="enrollment_not_completed")
    existing = await uow.session.scalar(select(Certificate.id).where(Certificate.enrollment_id == enrollment_id))
    if existing is not None:
        return existing, False
    # The student's row shared-locked and read afresh: an erasure holding it (`services/erasure.py`) finishes first
    # and the certificate is issued withdrawn, or this one commits first and the erasure withdraws it (explore69 F1:
    # read unlocked, it named the erased student, valid).
    student = await uow.session.get(User, e.student_id, with_for_update={"read": True}, populate_existing=True)
    course = await uow.session.get(Course, e.course_id)
    assert student is not None and course is not None
    teacher = await uow.session.scalar(select(User.full_name).where(User.id == course.instructor_id))
    # A completion that lands after its student's erasure (its workflow was under way): issued withdrawn, naming the
    # erased account only, so no notice, PDF or valid check follows (services/erasure.py).
    withdrawn = student.erased_at
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
            instructor_name=teacher,
            issued_at=e.completed_at,
            withdrawn_at=withdrawn,
        )
        .on_conflict_do_nothing(index_elements=[Certificate.enrollment_id])
        .returning(Certificate.id)
    )
    if result.first() is None:  # a concurrent run issued it first
        await uow.session.rollback()
        found = await uow.session.scalar(select(Certificate.id).where(Certificate.enrollment_id == enrollment_id))
        assert found is not None
        return found, False
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
    return cert_id, True


# ---------------------------------------------------------------------------------------------- the PDF
# Names and titles are whatever people type (up to 200 characters, any script), so the page embeds TrueType
# fonts instead of the standard Type-1 ones (Latin-1 only), falls back per character, and fits each line to the
# page: shrink it, then wrap it. docs/security.md "Certificates" says what each script gets.

PAGE_WIDTH, PAGE_HEIGHT = 841.8897637795277, 595.2755905511812  # landscape A4, in points
FRAME = 30.0  # the drawn border's distance from the page edges
MARGIN = 60.0  # text stays this far from the page's left and right edges
LEADING = 1.2  # line height, as a multiple of the font size
MIN_FONT_SIZE = 4.0  # the last resort of a text that fits nowhere else (200 characters never need it)

SANS, SANS_BOLD, CJK = "SmartCourse-Sans", "SmartCourse-Sans-Bold", "SmartCourse-CJK"

_font_lock = threading.Lock()
_render_lock = threading.Lock()  # a reportlab TTFont serves one document at a time
_cmaps: dict[str, frozenset[int]] = {}


def _register(name: str) -> frozenset[int]:
    """Register one of the certificate's fonts with reportlab (once); the code points it has glyphs for.

    FiraGO (pymupdf-fonts): Latin, Greek, Cyrillic, Arabic, Hebrew, Georgian, Thai, Devanagari.
    WenQuanYi Micro Hei (paperang-p2-fonts-cjk, byte for byte Debian's fonts-wqy-microhei): Chinese, Japanese,
    Korean; loaded only when a text has a character FiraGO lacks.
    """
    with _font_lock:
        if name in _cmaps:
            return _cmaps[name]
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        font: TTFont
        if name == CJK:
            from importlib.resources import as_file, files

            with as_file(files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc") as path:
                font = TTFont(name, str(path), subfontIndex=0)  # 0: Micro Hei, 1: its monospaced face
        else:
            if name == SANS_BOLD:
                from pymupdf_fonts import FiraGO_Bold as fira
            else:
                from pymupdf_fonts import FiraGO_Regular as fira
            font = TTFont(name, io.BytesIO(fira.fontbuffer))
        pdfmetrics.registerFont(font)
        _cmaps[name] = frozenset(font.face.charToGlyph)
        return _cmaps[name]


def _font_for(char: str, bold: bool) -> str:
    """The first font of the fallback chain with a glyph for `char` (the main one when none has: a box)."""
    main = SANS_BOLD if bold else SANS
    if ord(char) in _register(main):
        return main
    if ord(char) in _register(CJK):
        return CJK
    return main


@dataclass(frozen=True)
class Run:
    """Characters drawn in one font."""

    text: str
    font: str


@dataclass(frozen=True)
class PlacedLine:
    """One line of the page: its runs, size, left end, baseline and width (points)."""

    runs: tuple[Run, ...]
    size: float
    x: float
    y: float
    width: float

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)


@dataclass(frozen=True)
class _Char:
    char: str
    font: str
    advance: float  # width at 1 pt


def _measure(char: str, bold: bool) -> _Char:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    # A space is the main font's whatever surrounds it: a character's font and width never depend on its
    # neighbours, so reordering a right-to-left line keeps its width.
    font = (SANS_BOLD if bold else SANS) if char == " " else _font_for(char, bold)
    return _Char(char, font, stringWidth(char, font, 1))


class _Text:
    """A text with each character's font and advance, measured once and scaled per size."""

    def __init__(self, text: str, bold: bool) -> None:
        text = _clean(text)
        if any(unicodedata.bidirectional(c) == "AL" for c in text):
            import arabic_reshaper  # letters to their joined (initial, medial, final) forms, lam-alef ligatures

            # Its short vowels (harakat) kept: the reshaper's default deletes them, and a name printed without the
            # shadda its owner typed is not their name (explore65 F6).
            text = arabic_reshaper.ArabicReshaper(configuration={"delete_harakat": False}).reshape(text)
        main = _register(SANS_BOLD if bold else SANS)
        if any(_is_arabic_form(c) for c in text):  # FiraGO draws isolated forms as the plain letters
            text = "".join(_plain_letter(c) if _is_arabic_form(c) and ord(c) not in main else c for c in text)
        # Invisible format characters (joiners, bidi marks) that the font lacks would draw as boxes: left out.
        self.chars = [_measure(c, bold) for c in text if unicodedata.category(c) != "Cf" or ord(c) in main]

    @staticmethod
    def width(chars: list[_Char], size: float) -> float:
        return sum(c.advance for c in chars) * size

    def lines(self, size: float, max_width: float) -> list[list[_Char]]:
        """Greedy wrap at spaces and around CJK characters; a word longer than a line breaks anywhere."""
        limit = max_width / size  # in advances (1 pt units)
        lines: list[list[_Char]] = []
        line: list[_Char] = []
        used = pending = 0.0  # the line's width without its trailing spaces; those spaces' width
        for word in _words(self.chars):
            body = _rstrip(word)
            body_width = self.width(body, 1)
            tail_width = self.width(word, 1) - body_width
            if line and used + pending + body_width <= limit:
                line.extend(word)
                used, pending = used + pending + body_width, tail_width
                continue
            if line:
                lines.append(_rstrip(line))
            line, used = [], 0.0
            for c in body:  # the whole word when it fits a line, else as much of it as fits, line after line
                if line and used + c.advance > limit and body_width > limit and not unicodedata.combining(c.char):
                    lines.append(line)
                    line, used = [], 0.0
                line.append(c)
                used += c.advance
            line.extend(word[len(body) :])
            pending = tail_width
        if line or not lines:
            lines.append(_rstrip(line))
        return lines


def _is_arabic_form(char: str) -> bool:
    return "\ufb50" <= char <= "\ufdff" or "\ufe70" <= char <= "\ufeff"


def _plain_letter(char: str) -> str:
    plain = unicodedata.normalize("NFKC", char)
    return plain if len(plain) == 1 else char


def _clean(text: str) -> str:
    """One paragraph: control characters, tabs and line or paragraph breaks become single spaces."""
    text = "".join(" " if c.isspace() or unicodedata.category(c) == "Cc" else c for c in text)
    return re.sub(" {2,}", " ", text).strip()


_STRONG_RTL = frozenset({"R", "AL", "AN"})


def _visual_order(chars: list[_Char], bold: bool) -> list[_Char]:
    """A line's characters in the order they are drawn, left to right: the Unicode bidirectional algorithm
    (python-bidi) when it has right-to-left text. python-bidi does not mirror brackets: those inside a
    right-to-left run are mirrored here first (rules N0-N1 simplified: a pair goes the way of the strong text
    it encloses, or of its context when that text is the other way)."""
    text = "".join(c.char for c in chars)
    if not any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        return chars
    from bidi import get_base_level, get_display
    from bidi.mirror import MIRRORED

    base = "R" if get_base_level(text) == 1 else "L"
    strong: list[str | None] = []
    last = base
    for ch in text:
        kind = unicodedata.bidirectional(ch)
        if kind in _STRONG_RTL or (kind == "EN" and last == "R"):
            strong.append("R")
        elif kind in ("L", "EN"):
            strong.append("L")
        else:
            strong.append(None)
        if kind in ("L", "R", "AL"):
            last = "L" if kind == "L" else "R"

    def before(i: int) -> str:
        return next((d for d in reversed(strong[:i]) if d), base)

    def after(i: int) -> str:
        return next((d for d in strong[i + 1 :] if d), base)

    direction: dict[int, str] = {}
    opened: list[int] = []
    for i, ch in enumerate(text):  # bracket pairs (N0)
        if ch in "([{<\u00ab\u2039" and ch in MIRRORED:
            opened.append(i)
        elif ch in ")]}>\u00bb\u203a" and opened and MIRRORED.get(text[opened[-1]]) == ch:
            start = opened.pop()
            inside = {d for d in strong[start + 1 : i] if d}
            if base in inside:
                side = base
            elif inside:
                side = before(start) if before(start) != base else base
            else:
                side = before(start) if before(start) == after(i) else base
            direction[start] = direction[i] = side
    mirrored = []
    for i, ch in enumerate(text):
        if ch in MIRRORED:
            side = direction.get(i) or (before(i) if before(i) == after(i) else base)  # N1, else N2
            if side == "R":
                ch = MIRRORED[ch]
        mirrored.append(ch)
    return [_measure(ch, bold) for ch in get_display("".join(mirrored), base_dir=base)]


def _breaks_anywhere(char: str) -> bool:
    """CJK ideographs, kana and hangul: a line may break before or after each (they are written without spaces)."""
    return unicodedata.east_asian_width(char) in ("W", "F") and not char.isspace()


def _words(chars: list[_Char]) -> list[list[_Char]]:
    """Units no line breaks inside: a word with the spaces after it, or one wide (CJK) character."""
    words: list[list[_Char]] = []
    for c in chars:
        last = words[-1][-1].char if words else ""
        starts = not words or (
            not unicodedata.combining(c.char)
            and not c.char.isspace()
            and (_breaks_anywhere(c.char) or last.isspace() or _breaks_anywhere(last))
        )
        if starts:
            words.append([c])
        else:
            words[-1].append(c)
    return words


def _rstrip(chars: list[_Char]) -> list[_Char]:
    end = len(chars)
    while end and chars[end - 1].char.isspace():
        end -= 1
    return chars[:end]


def _runs(chars: list[_Char]) -> tuple[Run, ...]:
    runs: list[Run] = []
    for c in chars:
        if runs and runs[-1].font == c.font:
            runs[-1] = Run(runs[-1].text + c.char, c.font)
        else:
            runs.append(Run(c.char, c.font))
    return tuple(runs)


def fit_text(
    text: str,
    *,
    bold: bool,
    size: float,
    min_single_size: float,
    max_height: float,
    max_width: float = PAGE_WIDTH - 2 * MARGIN,
) -> tuple[float, list[list[_Char]]]:
    """(font size, lines) for `text` in a box `max_width` wide and `max_height` high.

    One line at `size` if it fits; else one line shrunk down to `min_single_size`; else wrapped, at the largest
    size (from `size` down) whose lines fit the height; at worst MIN_FONT_SIZE, wrapped, which never overflows
    sideways (a line holds at least one character).
    """
    measured = _Text(text, bold)
    one_line = measured.width(measured.chars, 1)
    if one_line * size <= max_width:
        return size, [measured.chars]
    shrunk = math.floor(max_width / one_line * 10) / 10
    if shrunk >= min_single_size:
        return shrunk, [measured.chars]
    current = size
    while current > MIN_FONT_SIZE:
        lines = measured.lines(current, max_width)
        if len(lines) * current * LEADING <= max_height:
            return current, lines
        current = round(current - 0.5, 1)
    return MIN_FONT_SIZE, measured.lines(MIN_FONT_SIZE, max_width)


def _place(lines: list[list[_Char]], size: float, top: float, bold: bool) -> tuple[list[PlacedLine], float]:
    """Centre `lines` under `top`; (the placed lines, the block's bottom)."""
    placed = []
    baseline = top - size
    for logical in lines:
        chars = _visual_order(logical, bold)
        width = _Text.width(chars, size)
        placed.append(PlacedLine(_runs(chars), size, (PAGE_WIDTH - width) / 2, baseline, width))
        baseline -= size * LEADING
    return placed, top - len(lines) * size * LEADING


@dataclass(frozen=True)
class _Block:
    text: str
    bold: bool
    size: float
    min_single_size: float
    max_height: float
    gap_before: float  # from the previous block's bottom to this block's top


def layout(cert: Certificate, verify_url: str) -> list[tuple[PlacedLine, bool]]:
    """Every line of the certificate where it goes, with whether it is bold (the PDF draws exactly these)."""
    middle = [  # the name and title may take several lines; the blocks below them move down
        _Block("This certifies that", False, 16, 16, 20, 0),
        _Block(cert.student_name, True, 28, 20, 80, 12),
        _Block("has completed the course", False, 16, 16, 20, 12),
        _Block(cert.course_title, True, 22, 16, 100, 4),
    ]
    placed: list[tuple[PlacedLine, bool]] = []

    def add(block: _Block, top: float) -> float:
        size, lines = fit_text(
            block.text,
            bold=block.bold,
            size=block.size,
            min_single_size=block.min_single_size,
            max_height=block.max_height,
        )
        block_lines, bottom = _place(lines, size, top, block.bold)
        placed.extend((line, block.bold) for line in block_lines)
        return bottom

    add(_Block("Certificate of Completion", True, 34, 20, 45, 0), PAGE_HEIGHT - 96)
    bottom = PAGE_HEIGHT - 174.0
    for block in middle:
        bottom = add(block, bottom - block.gap_before)
    footer = [
        _Block(f"Issued {cert.issued_at:%d %B %Y} - verification code {cert.code}", False, 12, 6, 15, 0),
        _Block(f"Verify at {verify_url}", False, 12, 6, 15, 0),
    ]
    for block, top in zip(footer, (122.0, 102.0), strict=True):
        add(block, top)
    return placed


def render_pdf(cert: Certificate, verify_url: str) -> bytes:
    """A one-page landscape certificate (reportlab), its fonts embedded (subsets)."""
    from reportlab.pdfgen import canvas

    lines = layout(cert, verify_url)
    buf = io.BytesIO()
    with _render_lock:
        pdf = canvas.Canvas(buf, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), initialFontName=SANS)  # no Helvetica at all
        pdf.setTitle(f"Certificate {cert.code}")
        pdf.setLineWidth(3)
        pdf.rect(FRAME, FRAME, PAGE_WIDTH - 2 * FRAME, PAGE_HEIGHT - 2 * FRAME)
        for line, bold in lines:
            pdf.saveState()  # the text render mode and line width of a faux-bold run end with its line
            text = pdf.beginText(line.x, line.y)
            for run in line.runs:
                text.setFont(run.font, line.size)
                # The CJK font has one weight: a bold line strokes its outline too (a thin, even "faux bold").
                faux_bold = bold and run.font == CJK
                if faux_bold:
                    pdf.setLineWidth(line.size * 0.03)
                text.setTextRenderMode(2 if faux_bold else 0)
                text.textOut(run.text)
            pdf.drawText(text)
            pdf.restoreState()
        pdf.showPage()
        pdf.save()
    return buf.getvalue()


def pdf_filename(code: str) -> str:
    """The PDF's file name wherever it is handed out: the download and the e-mail's attachment."""
    return f"certificate-{code}.pdf"


async def store_pdf(*, uow: UnitOfWork, files: Any, certificate_id: uuid.UUID, base_url: str) -> str:
    """Render and store the PDF under a key derived from the certificate (a retry overwrites the same key)."""
    cert = await uow.session.get(Certificate, certificate_id, with_for_update=True)
    if cert is None:
        raise NotFound("certificate not found", code="certificate_not_found")
    key = f"certificates/{cert.id}.pdf"
    if cert.pdf_key == key:
        return key
    if cert.withdrawn_at is not None:  # its student's account was erased: no document names them
        return ""
    await _put_pdf(files, cert, base_url)
    await uow.commit()
    return key


async def _put_pdf(files: Any, cert: Certificate, base_url: str) -> None:
    """Render the certificate as it stands and store it under its key (a retry or a re-issue overwrites it)."""
    key = f"certificates/{cert.id}.pdf"
    pdf = await asyncio.to_thread(render_pdf, cert, f"{base_url}/certificates/verify/{cert.code}")  # CPU: off the loop
    await files.put(key, pdf, "application/pdf")
    cert.pdf_key = key


async def notify(*, uow: UnitOfWork, certificate_id: uuid.UUID, base_url: str) -> uuid.UUID | None:
    """The in-app notification and e-mail of an issued certificate: where anyone verifies it (the PDF's link), and
    the PDF attached under the name its download has (`certificate-<code>.pdf`). None, and nothing sent, for a
    certificate revoked meanwhile: its row is locked as `revoke` locks it, so one of the two goes first (explore19
    F1: "Your certificate … is attached" went out, PDF and all, after an admin had revoked it)."""
    cert = await uow.session.get(Certificate, certificate_id, with_for_update=True)
    if cert is None:
        raise NotFound("certificate not found", code="certificate_not_found")
    if cert.revoked_at is not None:
        log.info("certificate %s was revoked before its notice: none sent", cert.id)
        return None
    if cert.withdrawn_at is not None:
        log.info("certificate %s was withdrawn (its account erased) before its notice: none sent", cert.id)
        return None
    verify_url = f"{base_url}/certificates/verify/{cert.code}"
    notification_id = await create_notification(
        uow.session,
        user_id=cert.student_id,
        kind="certificate.issued",
        title=f"Your certificate for {cert.course_title}",
        body=(
            f"Congratulations {cert.student_name}! You completed {cert.course_title}. "
            # Read in the app too, where nothing is attached (explore65 F14): where the PDF is, said for both.
            f"Your certificate (a PDF) is in your certificates and attached to this notice's e-mail; anyone can "
            f"verify it with the code {cert.code} at {verify_url}"
        ),
        dedupe_key=f"certificate:{cert.id}",
        data={
            "certificate_id": str(cert.id),
            "code": cert.code,
            "verify_url": verify_url,
            "attachment_filename": pdf_filename(cert.code),
        },
        email=True,
        attachment_key=cert.pdf_key,
    )
    await uow.commit()
    return notification_id


async def revoke(*, uow: UnitOfWork, principal: Principal, certificate: uuid.UUID | str, reason: str) -> Certificate:
    """An admin revokes a certificate (issued by mistake, misconduct): the public check answers `revoked` from now on
    and the student is told why (notification `certificate.revoked`, e-mailed at the request's commit: `api/emails.py`).
    `certificate`: its id, or its code (a valid code, as `verify` takes it). Idempotent: a revoked certificate is
    answered as it is, its first reason kept. Not undone; the completion's enrollment is marked
    (`completion_revoked_at`), so the student may enroll again and a new attempt's completion earns a new
    certificate."""
    if not principal.is_admin:
        raise Forbidden("only an admin may revoke a certificate", code="admin_only")
    # By id, or by the code a report quotes (read off the PDF or the verify page, which show no id: explore28 F5).
    cert = None
    try:
        cert = await uow.session.get(Certificate, uuid.UUID(str(certificate)), with_for_update=True)
    except ValueError:
        if re.match(CODE_PATTERN, str(certificate)):
            cert = await uow.session.scalar(
                select(Certificate).where(Certificate.code == canonical_code(str(certificate))).with_for_update()
            )
    if cert is None:
        raise NotFound("certificate not found", code="certificate_not_found")
    if cert.revoked_at is None:
        now = utcnow()
        cert.revoked_at, cert.revoked_reason, cert.revoked_by = now, reason, principal.user_id
        retake = await _free_the_completion(uow, principal, cert, reason, now)
        said = reason.rstrip()
        again = " You may enroll in the course again to earn a new certificate." if retake else ""
        await create_notification(
            uow.session,
            user_id=cert.student_id,
            kind="certificate.revoked",
            # Its code in the subject: a revocation's e-mail can arrive beside the next certificate's, same course
            # (explore56 F1: "Your certificate for X was revoked" after "Your certificate for X", the new one).
            title=f"Your certificate {cert.code} for {cert.course_title} was revoked",
            body=(
                f"Your certificate {cert.code} for {cert.course_title} was revoked. The reason given: {said}"
                f"{'' if said.endswith(('.', '!', '?', '…')) else '.'}{again}"
            ),
            dedupe_key=f"certificate-revoked:{cert.id}",
            data={"certificate_id": str(cert.id), "code": cert.code},
        )
        await uow.commit()
    return cert


async def _free_the_completion(
    uow: UnitOfWork, principal: Principal, cert: Certificate, reason: str, now: datetime
) -> bool:
    """The revoked certificate's completion no longer holds the student's place nor meets a prerequisite: they may
    take the course again (explore36 F3: a certificate issued in error could never be earned again). Its seat goes
    back to the course, to the head of its waitlist first, as a drop's does (explore39 F2: the revoked completion
    kept it, so the retake took a second seat or was refused as full), and the enrollment's history says who revoked
    it and why (F5). The completion itself and its analytics stand: it happened. Returns whether the course is live,
    i.e. whether the student can enroll again now. Locks: the enrollment, then the course, as a drop takes them."""
    e = await uow.session.get(Enrollment, cert.enrollment_id, with_for_update=True)
    if e is None or e.status != "completed" or e.completion_revoked_at is not None:
        return False
    e.completion_revoked_at, e.updated_at = now, now
    uow.session.add(history_entry(e, "completed", "completed", principal, revoked_history(reason), at=now))
    course = await uow.session.get(Course, e.course_id, with_for_update=True)
    if course is None:
        return False
    await give_back_seat(uow, course, now)
    return course_rules.is_live(course.status, course.content_version)


async def get_certificate(
    *, uow: UnitOfWork, principal: Principal, certificate_id: uuid.UUID, teaching: bool = False
) -> Certificate:
    """A certificate for its student and admins; with `teaching`, for its course's instructor too (who lists the
    course's certificates, and was answered 404 opening one: explore30 F10). Anyone else 404."""
    cert = await uow.session.get(Certificate, certificate_id)
    allowed = cert is not None and (principal.is_admin or cert.student_id == principal.user_id)
    if cert is not None and not allowed and teaching:
        course = await uow.session.get(Course, cert.course_id)
        allowed = course is not None and course_rules.teaches(principal, course.instructor_id)
    if cert is None or not allowed:
        raise NotFound("certificate not found", code="certificate_not_found")
    return cert


async def withdraw(*, uow: UnitOfWork, principal: Principal, files: Any, certificate_id: uuid.UUID) -> Certificate:
    """Take a certificate out of the public check at its holder's request (explore67 F6: revoking it was the only way,
    and the check then showed the name under "Revoked certificate"): the check answers `withdrawn` and nothing else,
    its PDF is deleted. The student or an admin; the course's instructor 403, anyone else 404. Not undone (a new
    completion earns a new certificate); the completion stands. Idempotent."""
    cert = await _holders(uow, principal, certificate_id, "withdraws")
    if cert.withdrawn_at is None:
        if cert.pdf_key:
            await files.delete(cert.pdf_key)  # before the commit: the PDF prints the name (services/erasure.py)
        cert.pdf_key = None
        cert.withdrawn_at = utcnow()
        if principal.user_id != cert.student_id:  # an admin for the student: recorded (explore71 F3)
            from smartcourse.services.accounts import record_change

            record_change(uow, cert.student_id, principal.user_id, {"certificate_withdrawn": cert.code})
        await uow.commit()
    return cert


async def _holders(uow: UnitOfWork, principal: Principal, certificate_id: uuid.UUID, does: str) -> Certificate:
    """The certificate, row-locked, for what only its student or an admin `does` to it: the course's instructor 403
    `not_certificate_student`, anyone else 404."""
    cert = await uow.session.get(Certificate, certificate_id, with_for_update=True)
    if cert is not None and not (principal.is_admin or cert.student_id == principal.user_id):
        course = await uow.session.get(Course, cert.course_id)
        if course is not None and course_rules.teaches(principal, course.instructor_id):
            raise Forbidden(f"only the student or an admin {does} a certificate", code="not_certificate_student")
        cert = None
    if cert is None:
        raise NotFound("certificate not found", code="certificate_not_found")
    return cert


async def reissue(
    *, uow: UnitOfWork, principal: Principal, files: Any, certificate_id: uuid.UUID, base_url: str
) -> Certificate:
    """Re-issue a certificate under its holder's name as their account has it now (explore67 F6: a misspelt name,
    corrected on the account, stayed on the certificate; withdrawing it was the only way out). Same code, same
    verification link: the public check shows the new name and when it was re-issued; the PDF is rendered again in
    this request. The student or an admin (recorded for the student, as a withdrawal is); the course's instructor 403,
    anyone else 404. A revoked or withdrawn certificate 409. Under the same name: answered as it is (idempotent)."""
    cert = await _holders(uow, principal, certificate_id, "re-issues")
    if cert.revoked_at is not None:
        raise Conflict("this certificate was revoked: it is not re-issued", code="certificate_revoked")
    if cert.withdrawn_at is not None:
        raise Conflict("this certificate was withdrawn: it is not re-issued", code="certificate_withdrawn")
    name = await uow.session.scalar(select(User.full_name).where(User.id == cert.student_id))
    if name is None or name == cert.student_name:
        return cert
    before = cert.student_name
    cert.student_name, cert.reissued_at = name, utcnow()
    await _put_pdf(files, cert, base_url)  # the same key: a failed commit leaves the retry to render it again
    if principal.user_id != cert.student_id:
        from smartcourse.services.accounts import record_change

        record_change(uow, cert.student_id, principal.user_id, {"certificate_reissued": cert.code, "name": before})
    await uow.commit()
    return cert


# SC-XXXX-XXXX-XXXX-XXXX in base32 (A-Z, 2-7); dashes optional when typed.
_CODE = re.compile(r"^(?:SC-?)?([A-Z2-7]{4})-?([A-Z2-7]{4})-?([A-Z2-7]{4})-?([A-Z2-7]{4})$")


def canonical_code(code: str) -> str:
    """The stored form of a typed code, or 422 `invalid_certificate_code` (never a database round trip)."""
    match = _CODE.match(normalize_code(code))
    if match is None:
        raise Invalid(
            "a certificate code looks like SC-XXXX-XXXX-XXXX-XXXX (letters A-Z and digits 2-7; 0, 1 and 8 are read "
            "as O, I and B)",
            code="invalid_certificate_code",
        )
    return "SC-" + "-".join(match.groups())


async def verify(*, uow: UnitOfWork, code: str) -> Certificate | None:
    return await uow.session.scalar(select(Certificate).where(Certificate.code == canonical_code(code)))


async def course_is_live(*, uow: UnitOfWork, cert: Certificate) -> bool:
    """Whether the certificate's course is live (its `GET /courses/{id}` answers anyone): the public check links it
    only then (explore62 F7, explore63 F7: the link of an archived course's certificate answered 404)."""
    course = await uow.session.get(Course, cert.course_id)
    return course is not None and course_rules.is_live(course.status, course.content_version)


async def my_certificates(
    *, uow: UnitOfWork, principal: Principal, page: int, page_size: int
) -> tuple[list[Certificate], int]:
    """One page of the caller's certificates, newest first (ties by id), and how many they have in all."""
    return await _page(uow, [Certificate.student_id == principal.user_id], page, page_size)


async def _page(uow: UnitOfWork, where: list[Any], page: int, page_size: int) -> tuple[list[Certificate], int]:
    """One page of the certificates `where` selects, newest first (ties by id), and how many there are in all."""
    total = await uow.session.scalar(select(func.count()).select_from(Certificate).where(*where)) or 0
    rows = await uow.session.scalars(
        select(Certificate)
        .where(*where)
        .order_by(Certificate.issued_at.desc(), Certificate.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(rows), total


async def course_certificates(
    *,
    uow: UnitOfWork,
    principal: Principal,
    course_id: uuid.UUID,
    revoked: bool | None,
    page: int,
    page_size: int,
    updated_since: datetime | None = None,
) -> tuple[list[Certificate], int]:
    """One page of the certificates a course has issued, newest first (ties by id), and how many in all: for its
    instructor and admins (anyone else: what `GET /courses/{id}` answers them, 404 or 403). `revoked` keeps only the
    revoked (true) or the valid (false) ones; `updated_since` those issued, revoked, withdrawn or re-issued at or after
    that moment (a registrar's or an HR system's "what changed since my last run": explore68 F4)."""
    course = await load_course(uow, course_id)
    await ensure_course_owner(uow, principal, course)
    where: list[Any] = [Certificate.course_id == course_id]
    if updated_since is not None:
        since = in_utc(updated_since, name="updated_since", code="validation_error")
        # GREATEST skips nulls: the latest of the moments a certificate changed.
        changed = func.greatest(
            Certificate.issued_at, Certificate.revoked_at, Certificate.withdrawn_at, Certificate.reissued_at
        )
        where.append(changed >= since)
    if revoked is not None:
        # false: those in force, neither revoked nor withdrawn (explore69 F10: withdrawn ones were listed as valid).
        in_force = (Certificate.revoked_at.is_(None), Certificate.withdrawn_at.is_(None))
        where.extend([Certificate.revoked_at.is_not(None)] if revoked else in_force)
    return await _page(uow, where, page, page_size)


async def for_enrollment(*, uow: UnitOfWork, enrollment_id: uuid.UUID) -> Certificate | None:
    return await uow.session.scalar(select(Certificate).where(Certificate.enrollment_id == enrollment_id))


async def request_for_enrollment(
    *, uow: UnitOfWork, principal: Principal, enrollment_id: uuid.UUID
) -> tuple[Certificate, bool]:
    """The enrollment's certificate, issued now if it is complete and the workflow has not issued it yet.

    (certificate, created). 403 for the course's instructor, 404 for anyone else's enrollment, 409
    `enrollment_not_completed` before completion.
    """
    e = await uow.session.get(Enrollment, enrollment_id)
    if e is not None and not (principal.is_admin or e.student_id == principal.user_id):
        # The course's instructor reads the enrollment (and its certificate, on it): 404 said nothing of the rule
        # (explore35 F5); anyone else learns nothing.
        if await teaches_course(uow, principal, e.course_id):
            raise Forbidden("only the student or an admin requests a certificate", code="not_enrollment_student")
        e = None
    if e is None:
        raise NotFound("enrollment not found", code="enrollment_not_found")
    existing = await for_enrollment(uow=uow, enrollment_id=enrollment_id)
    if existing is not None:
        return existing, False
    if e.status != "completed":
        # A dropped enrollment never will be: "not complete yet" read as if it still could (explore77 F7).
        message = (
            "the enrollment was dropped (or left the waitlist) before completing the course: no certificate; a new "
            "enrollment can earn one"
            if e.status == "dropped"
            else "the course is not complete yet; no certificate"
        )
        raise Conflict(message, code="enrollment_not_completed", details={"status": e.status})
    # Created only if this request inserted it: several at once each answered 201 for one certificate (explore19 F5).
    cert_id, created = await issue_once(uow=uow, enrollment_id=enrollment_id)
    cert = await uow.session.get(Certificate, cert_id)
    assert cert is not None
    return cert, created
