"""Certificate PDFs: names and titles in any script, embedded fonts, every line fitted to the page."""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
import unicodedata
import uuid
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import pypdf
import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from smartcourse.models import Certificate
from smartcourse.services import certificates
from smartcourse.services.certificates import FRAME, MARGIN, PAGE_HEIGHT, PAGE_WIDTH, layout, render_pdf

CODE = "SC-ABCD-EFGH-JKLM-NPQR"
VERIFY = f"http://127.0.0.1:9000/certificates/verify/{CODE}"
TITLE_200 = ("Advanced Distributed Systems: Consensus, Replication and Fault Tolerance in Practice " * 3)[:200]
NAME_200 = ("Maximilian Alexander Konstantin von Hohenzollern-Sigmaringen " * 4)[:200]
# Debian's fonts-wqy-microhei 0.2.0-beta-3.1, /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
WQY_MICROHEI_SHA256 = "2420e8078af796b19a3f6ef13de527a1a91c1e7171eea115926c614ced1009b3"


def cert(name: str, title: str = "Intro to Python") -> Certificate:
    return Certificate(
        id=uuid.uuid4(),
        enrollment_id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        student_name=name,
        course_title=title,
        code=CODE,
        issued_at=datetime(2026, 12, 4, tzinfo=UTC),
    )


def page_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def squeeze(text: str) -> str:
    return "".join(text.split())


def assert_on_the_page(c: Certificate) -> None:
    """Every line, measured again with reportlab, lies between the side margins and inside the frame."""
    lines = layout(c, VERIFY)
    for line, _bold in lines:
        width = sum(stringWidth(run.text, run.font, line.size) for run in line.runs)
        assert width == pytest.approx(line.width)
        assert line.x >= MARGIN - 0.01, line
        assert line.x + width <= PAGE_WIDTH - MARGIN + 0.01, line
        assert FRAME + 20 < line.y < PAGE_HEIGHT - FRAME - line.size, line
    baselines = [line.y for line, _ in lines]
    assert baselines == sorted(baselines, reverse=True)  # top to bottom, in order
    gaps = [(upper, lower) for (upper, _), (lower, _) in itertools.pairwise(lines)]
    for upper, lower in gaps:  # no line runs into the next one
        assert upper.y - lower.y >= lower.size, (upper, lower)


def pdf_text_positions(pdf: bytes) -> list[tuple[float, str]]:
    """(x, text) of every piece of text the PDF draws (the text matrix pypdf reads)."""
    found: list[tuple[float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        if text.strip():
            found.append((tm[4] * cm[0] + cm[4], text))

    pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return found


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("Zoë Ångström-Øberg", "Intro to Python"),
        ("Иван Петрович Сидоров", "Основы программирования"),
        ("Γιώργος Παπαδόπουλος", "Εισαγωγή στην Ελληνική"),
        ("王小明", "机器学习入门"),
        ("山田 太郎", "日本語の授業 カタカナ"),
        ("김민준", "한국어 강좌"),
        ("名前 Zoë Иван", "Mixed 混合 Μικτό Смешанный"),
    ],
)
def test_names_and_titles_come_back_as_written(name: str, title: str) -> None:
    pdf = render_pdf(cert(name, title), VERIFY)
    lines = page_text(pdf).splitlines()
    assert name in lines and title in lines
    assert "Certificate of Completion" in lines and f"Verify at {VERIFY}" in lines
    assert_on_the_page(cert(name, title))


def test_the_fonts_are_embedded_truetype_not_the_standard_latin_1_ones() -> None:
    pdf = render_pdf(cert("王小明 Иван", "Intro"), VERIFY)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    names = set()
    for ref in fonts.values():
        font = ref.get_object()
        names.add(str(font["/BaseFont"]))
        assert "/FontFile2" in font["/FontDescriptor"], font  # an embedded TrueType subset
    assert not any("Helvetica" in n for n in names)
    assert {n.split("+")[-1] for n in names} == {"FiraGO-Bold", "FiraGO-Regular", "WenQuanYiMicroHei-0"}


def test_a_200_character_title_wraps_inside_the_page() -> None:
    c = cert("Ada Lovelace", TITLE_200)
    pdf = render_pdf(c, VERIFY)
    assert squeeze(TITLE_200) in squeeze(page_text(pdf))
    heading = ("Certificate of Completion", c.student_name)
    title_lines = [line for line, bold in layout(c, VERIFY) if bold and line.text not in heading]
    assert len(title_lines) >= 2 and " ".join(line.text for line in title_lines) == TITLE_200.strip()
    assert_on_the_page(c)
    for x, text in pdf_text_positions(pdf):  # the PDF itself agrees: nothing starts left of the margin
        assert MARGIN - 0.01 <= x <= PAGE_WIDTH - MARGIN, (x, text)


@pytest.mark.parametrize(
    ("name", "title"),
    [
        (NAME_200, TITLE_200),
        ("名" * 200, "字" * 200),  # no spaces to break at: CJK breaks between characters
        ("W" * 200, "M" * 200),  # one 200-letter "word": broken anywhere
        ("Ada " + "x" * 150, "Short"),
    ],
)
def test_the_longest_names_and_titles_stay_on_the_page(name: str, title: str) -> None:
    c = cert(name, title)
    pdf = render_pdf(c, VERIFY)
    text = squeeze(page_text(pdf))
    assert squeeze(name) in text and squeeze(title) in text
    assert_on_the_page(c)
    for x, piece in pdf_text_positions(pdf):
        assert MARGIN - 0.01 <= x <= PAGE_WIDTH - MARGIN, (x, piece)


def test_a_name_a_little_too_long_shrinks_before_it_wraps() -> None:
    name = "Bartholomew Alexander Maximilian Fitzgerald-Montgomery Jr."  # 794 pt at 28 pt bold, 722 pt fit
    lines = [line for line, bold in layout(cert(name), VERIFY) if line.text == name]
    assert len(lines) == 1 and 20 <= lines[0].size < 28


def test_short_texts_keep_their_sizes() -> None:
    sizes = {line.text: line.size for line, _ in layout(cert("Ada Lovelace", "Intro to Python"), VERIFY)}
    assert sizes["Certificate of Completion"] == 34 and sizes["Ada Lovelace"] == 28
    assert sizes["Intro to Python"] == 22 and sizes["This certifies that"] == 16


@pytest.mark.parametrize("name", ["محمد علي", "فاطمة الزهراء", "דוד לוי", "مُحَمَّد عَلِيّ"])
def test_right_to_left_names_are_drawn_in_visual_order(name: str) -> None:
    pdf = render_pdf(cert(name), VERIFY)
    # pypdf reads right-to-left text back into logical order only if it was drawn right to left; the Arabic
    # letters come back in their joined presentation forms, which NFKC maps to the letters typed.
    lines = [unicodedata.normalize("NFKC", line) for line in page_text(pdf).splitlines()]
    assert name in lines
    assert_on_the_page(cert(name))


def test_mixed_direction_lines_put_the_parts_in_order_and_mirror_brackets() -> None:
    lines = {line.text for line, _ in layout(cert("דוד (David) לוי", "עברית [מתחילים]"), VERIFY)}
    assert "יול (David) דוד" in lines  # right to left: the first word is drawn rightmost, its letters reversed
    # the closing bracket, drawn leftmost, shows as an opening one (python-bidi alone gives "]םיליחתמ[")
    assert "[םיליחתמ] תירבע" in lines


def test_a_character_no_font_has_does_not_break_the_page() -> None:
    c = cert("Zoë 😀 王", "Intro ✓")
    text = page_text(render_pdf(c, VERIFY))
    assert "Zoë" in text and "王" in text
    assert_on_the_page(c)


def test_control_characters_and_line_breaks_become_spaces() -> None:
    lines = {line.text for line, _ in layout(cert("Ada\n\tLovelace\x00", "A\u2028B"), VERIFY)}
    assert "Ada Lovelace" in lines and "A B" in lines


def test_the_cjk_font_is_debians_wqy_microhei() -> None:
    data = (files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc").read_bytes()
    assert hashlib.sha256(data).hexdigest() == WQY_MICROHEI_SHA256


async def test_store_pdf_renders_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_render(c: Certificate, url: str) -> bytes:
        seen.append(threading.current_thread().name)
        return b"%PDF"

    monkeypatch.setattr(certificates, "render_pdf", fake_render)
    c = cert("Ada")

    class Session:
        async def get(self, *args: object, **kwargs: object) -> Certificate:
            return c

    class Uow:
        session = Session()

        async def commit(self) -> None:
            pass

    class Files:
        async def put(self, key: str, data: bytes, content_type: str) -> None:
            assert data == b"%PDF"

    uow: Any = Uow()
    key = await certificates.store_pdf(uow=uow, files=Files(), certificate_id=c.id, base_url="http://x")
    assert key == f"certificates/{c.id}.pdf" and seen and seen[0] != threading.current_thread().name


def test_the_instructor_reads_that_a_certificate_was_revoked_not_why() -> None:
    """explore44 F1, explore45 F7: only a revocation's entry (completed to completed) loses its reason; a drop whose
    reason a student wrote as "certificate revoked: ..." keeps it."""
    from smartcourse.domain.certificates import history_reason_for_others, revoked_history

    why = revoked_history("exam fraud")
    assert history_reason_for_others("completed", "completed", why) == "certificate revoked"
    assert history_reason_for_others("active", "dropped", why) == why
    assert history_reason_for_others("completed", "completed", "completed") == "completed"
    assert history_reason_for_others("pending", "active", None) is None
