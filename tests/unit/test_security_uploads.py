"""Uploaded PDFs are parsed with pypdf, bounded, and hostile structures refused (issue #9.5)."""

from __future__ import annotations

import pytest

from smartcourse.errors import Invalid
from smartcourse.services.materials import check_pdf, download_headers


def build_pdf(objects: dict[int, str], root: str = "1 0 R") -> bytes:
    """A minimal PDF with a correct cross-reference table around the given objects."""
    out = b"%PDF-1.4\n"
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n{objects[num]}\nendobj\n".encode()
    size = max(objects) + 1
    xref = len(out)
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for num in range(1, size):
        out += (f"{offsets[num]:010d} 00000 n \n" if num in offsets else "0000000000 65535 f \n").encode()
    out += f"trailer\n<< /Size {size} /Root {root} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


GOOD = {
    1: "<< /Type /Catalog /Pages 2 0 R >>",
    2: "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    3: "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
}


def test_a_well_formed_pdf_is_accepted() -> None:
    assert check_pdf(build_pdf(GOOD)) == 1


@pytest.mark.parametrize(
    ("objects", "root", "why"),
    [
        ({1: "42"}, "1 0 R", "catalog"),
        (GOOD, "42", "catalog"),
        ({1: "<< /Type /Catalog /Pages 2 0 R >>", 2: "<< /Type /Pages /Kids [2 0 R] /Count 1 >>"}, "1 0 R", "itself"),
        (
            {
                1: "<< /Type /Catalog /Pages 2 0 R >>",
                2: "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                3: "<< /Type /Pages /Kids [2 0 R] /Count 1 >>",
            },
            "1 0 R",
            "itself",
        ),
        ({1: "<< /Type /Catalog /Pages 2 0 R >>", 2: "<< /Type /Pages /Kids 7 /Count 1 >>"}, "1 0 R", "Kids"),
        ({1: "<< /Type /Catalog /Pages 2 0 R >>", 2: "<< /Type /Pages /Kids [] /Count 0 >>"}, "1 0 R", "no pages"),
    ],
)
def test_hostile_structures_are_invalid_pdf(objects: dict[int, str], root: str, why: str) -> None:
    with pytest.raises(Invalid) as info:
        check_pdf(build_pdf(objects, root))
    assert info.value.code == "invalid_pdf" and info.value.status_code == 422
    assert why in info.value.message


def test_garbage_after_the_magic_is_invalid_pdf() -> None:
    with pytest.raises(Invalid, match="valid PDF"):
        check_pdf(b"%PDF-1.7\n" + b"\x00garbage" * 100)


@pytest.mark.parametrize("ctype", ["text/html", "image/svg+xml", "application/xml", "text/javascript"])
def test_active_content_is_served_as_an_opaque_attachment(ctype: str) -> None:
    media, headers = download_headers({"content_type": ctype, "filename": "page.html"})
    assert media == "application/octet-stream"
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_passive_content_keeps_its_type() -> None:
    media, headers = download_headers({"content_type": "application/pdf", "filename": "n.pdf"})
    assert media == "application/pdf" and headers["X-Content-Type-Options"] == "nosniff"


def test_a_password_protected_pdf_is_named_as_such() -> None:
    """explore7 F4: it was refused as "not a valid PDF: pypdf could not read it", as if broken. An owner-password
    PDF (opens without a password) is accepted."""
    from pypdf import PdfReader, PdfWriter

    from tests.fixtures import content as fx

    with pytest.raises(Invalid) as info:
        check_pdf(fx.pdf_encrypted())
    assert info.value.code == "encrypted_pdf" and "password" in info.value.message
    import io

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(fx.pdf_multi_page())).pages:
        writer.add_page(page)
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    assert check_pdf(buf.getvalue()) >= 2
