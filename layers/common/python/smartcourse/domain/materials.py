"""Which uploads are accepted: PDF, Markdown, plain text, HTML and SRT/WebVTT transcripts, recognised by content, not
by name alone."""

from __future__ import annotations

from pathlib import PurePath

from smartcourse.errors import Invalid, UnsupportedMedia

_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    # A lecture's captions (explore57 F9: refused; renamed .txt, indexed with their cue numbers and timings).
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
}
ACCEPTED = "PDF, Markdown, plain text, HTML, SRT/WebVTT transcripts"
MAX_FILENAME_CHARS = 200
#: In UTF-8: the name is a path component of the local file store (255 bytes on Linux file systems) and part of an
#: S3 key (1,024 bytes with the course's and material's ids).
MAX_FILENAME_BYTES = 240
MAX_SUFFIX_CHARS = 16  # a longer "suffix" is part of the name, not a file type


#: A multipart part without a filename reaches the handler as a text field, not a file: curl's `-F 'file=<x.pdf'`,
#: or httpx and requests given an empty name. Answered as a file without a name is (`invalid_filename`).
NO_FILE_PART = (
    "the upload needs a file name: send the file as a multipart file part with one "
    '(Content-Disposition: form-data; name="file"; filename="notes.pdf")'
)


def safe_filename(name: str | None) -> str:
    """The upload's base name, printable, without quotes or separators, at most 200 characters. A longer name is
    shortened before its suffix, which is kept: the type is read from it (`notes….txt` stays a text file)."""
    # Browsers send `"`, CR and LF of a name percent-encoded (the WHATWG multipart rule): undone, then cleaned as sent.
    for encoded, char in (("%22", '"'), ("%0D", "\r"), ("%0A", "\n")):
        name = (name or "").replace(encoded, char)
    base = PurePath((name or "").replace("\\", "/")).name.strip()
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"/\\')
    if len(cleaned) > MAX_FILENAME_CHARS or len(cleaned.encode()) > MAX_FILENAME_BYTES:
        stem, dot, ext = cleaned.rpartition(".")
        suffix = dot + ext if stem and len(ext) < MAX_SUFFIX_CHARS else ""
        cleaned = cleaned[: MAX_FILENAME_CHARS - len(suffix)]
        # Whole characters off the end until the name fits in bytes too: a file system's name is at most 255 bytes,
        # and 63 emoji (252 bytes) and a suffix were "File name too long", answered 503 (explore27 F2).
        while len((cleaned + suffix).encode()) > MAX_FILENAME_BYTES:
            cleaned = cleaned[:-1]
        cleaned += suffix
    if not cleaned or cleaned in {".", ".."}:
        raise Invalid("the upload needs a file name", code="invalid_filename")
    return cleaned


def detect_content_type(filename: str, data: bytes) -> str:
    """The accepted media type of `data`, named by the file's suffix and confirmed by its content.

    415 `unsupported_media_type`: a suffix of no accepted type, or text that is not UTF-8 (or holds NUL bytes).
    422 `invalid_pdf`: a `.pdf` that does not start with `%PDF-`; the structure of one that does is checked by
    `services.materials.validate_pdf` (pypdf, in a thread, bounded), which refuses it with the same code."""
    suffix = PurePath(filename).suffix.lower()
    if not suffix and filename.startswith(".") and filename.count(".") == 1:
        suffix = filename.lower()  # a file named just ".txt": its name is its type
    expected = _BY_SUFFIX.get(suffix)
    if expected is None:
        raise UnsupportedMedia(
            f"unsupported file type {suffix or '(none)'}; accepted: {ACCEPTED}",
            details={"accepted": sorted(set(_BY_SUFFIX))},
        )
    if expected == "application/pdf":
        if not data.startswith(b"%PDF-"):
            raise Invalid("the file is not a valid PDF: it does not start with %PDF-", code="invalid_pdf")
        return expected
    if data.startswith(b"%PDF-"):  # explore31 F9: refused as "text files must be UTF-8", which hid the cause
        raise UnsupportedMedia(f"the file is a PDF named {suffix}: rename it .pdf and upload it again")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsupportedMedia(f"{suffix} files must be UTF-8 text; accepted: {ACCEPTED}") from exc
    if b"\x00" in data:
        raise UnsupportedMedia("text files must not contain NUL bytes")
    return expected


#: The pages of a PDF a course's search reads (`content.extract`), and so the most an upload may have
#: (`services.materials.check_pdf`): one limit at both ends (explore19: uploads took 5,000, publishing skipped
#: anything over 2,000).
MAX_PDF_PAGES = 2000


def attachment_disposition(filename: str) -> str:
    """`Content-Disposition` of a download: an attachment, its name as RFC 6266 gives it (`filename*`, UTF-8,
    percent-encoded) after a plain `filename` for clients that only read that one (non-ASCII letters as `_`)."""
    from urllib.parse import quote

    name = filename or "download"
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def mib(n: int) -> str:
    """A limit as configured: "20 MiB", or its bytes when it is no whole number of MiB."""
    return f"{n / 1048576:g} MiB" if n % 1048576 == 0 else f"{n} bytes"


def size_said(n: int) -> str:
    """A size as a person reads it: "23.50 MiB (24641536 bytes)", "812 bytes"."""
    return f"{n / 1048576:.2f} MiB ({n} bytes)" if n >= 1048576 else f"{n} bytes"


def file_too_large(max_upload: int, size: int | None = None, what: str = "the file") -> str:
    """The one wording of a file past `MAX_UPLOAD_BYTES`, from the upload's own check (`what`: the file, its size)
    or from the edge (the upload, the request's length, its framing included; None when sent chunked): explore81
    F12, two wordings for one limit, neither saying the file's size."""
    said = f"{what} is {size_said(size)}" if size is not None else f"{what} is larger"
    return f"a file may be at most {mib(max_upload)} (MAX_UPLOAD_BYTES, {max_upload} bytes): {said}"
