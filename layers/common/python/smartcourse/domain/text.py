"""Text as a student types it, made comparable with the indexed text (`content.extract` normalises the content the
same way: NFKC, no control or format characters)."""

from __future__ import annotations

import unicodedata


def as_indexed(text: str) -> str:
    """`text` in NFKC (full-width letters become ASCII, ligatures letters) without control or format characters (a
    zero-width space, a soft hyphen, a BOM: invisible, but each split a word for the tokenizers), line breaks and
    tabs as spaces. "cor\\u200bals" was refused by the assistant and found nothing in search (explore23 F5)."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(" " if ch in "\n\r\t" else ch for ch in text if ch in "\n\r\t" or unicodedata.category(ch)[0] != "C")
