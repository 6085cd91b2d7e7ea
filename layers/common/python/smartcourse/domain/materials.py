"""Which uploads are accepted: PDF, Markdown, plain text and HTML, recognised by content, not by name alone."""

from __future__ import annotations

import io
from pathlib import PurePath

from smartcourse.errors import Invalid, UnsupportedMedia

_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
}


def safe_filename(name: str | None) -> str:
    base = PurePath((name or "").replace("\\", "/")).name.strip()
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"/\\')[:200]
    if not cleaned or cleaned in {".", ".."}:
        raise Invalid("the upload needs a file name", code="invalid_filename")
    return cleaned


def detect_content_type(filename: str, data: bytes) -> str:
    """The accepted media type of `data`, or 415 unsupported_media_type."""
    suffix = PurePath(filename).suffix.lower()
    expected = _BY_SUFFIX.get(suffix)
    if expected is None:
        raise UnsupportedMedia(
            f"unsupported file type {suffix or '(none)'}; accepted: PDF, Markdown, plain text, HTML",
            details={"accepted": sorted(set(_BY_SUFFIX))},
        )
    if expected == "application/pdf":
        if not data.startswith(b"%PDF-"):
            raise UnsupportedMedia("the file is not a PDF")
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            PdfReader(io.BytesIO(data), strict=False).pages  # noqa: B018 - parsing proves it is a PDF
        except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
            raise UnsupportedMedia("the PDF could not be read") from exc
        return expected
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMedia("text files must be UTF-8") from exc
    if b"\x00" in data:
        raise UnsupportedMedia("text files must not contain NUL bytes")
    return expected
