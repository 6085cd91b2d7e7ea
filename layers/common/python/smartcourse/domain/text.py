"""Text as a student types it, made comparable with the indexed text (`content.extract` normalises the content the
same way: NFKC, no control or format characters)."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

#: The characters of Chinese and Japanese words (scripts written without spaces between words), as a regular
#: expression's bracket contents that Python's `re` and PostgreSQL's regular expressions both read: the ideographic
#: iteration and closing marks and number zero (々〆〇), hiragana, katakana with its prolonged sound mark (not the
#: middle dot ・, which separates words), the CJK ideographs (unified, extension A, compatibility) and the ideographs
#: of the supplementary planes (extensions B-H). Korean is not among them: it is written with spaces between words.
#: Migration 0023 has a copy of it (a migration does not change with the code); `tests/integration` checks they agree.
CJK_CHARACTERS = (
    r"\u3005-\u3007\u3041-\u3096\u309d-\u309f\u30a1-\u30fa\u30fc-\u30ff"
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{CJK_CHARACTERS}]+")


def as_indexed(text: str) -> str:
    """`text` in NFKC (full-width letters become ASCII, ligatures letters) without control or format characters (a
    zero-width space, a soft hyphen, a BOM: invisible, but each split a word for the tokenizers), line breaks and
    tabs as spaces. "cor\\u200bals" was refused by the assistant and found nothing in search (explore23 F5)."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(" " if ch in "\n\r\t" else ch for ch in text if ch in "\n\r\t" or unicodedata.category(ch)[0] != "C")


def _bigrams(run: re.Match[str]) -> str:
    chars = run.group()
    grams = chars if len(chars) == 1 else " ".join(chars[i : i + 2] for i in range(len(chars) - 1))
    return f" {grams} "


def cjk_bigrams(text: str) -> str:
    """`text` with each run of Chinese or Japanese characters (`CJK_CHARACTERS`) replaced by its overlapping
    character bigrams, spaced apart and from the text around them ("冰碛是冰川" → " 冰碛 碛是 是冰 冰川 "; a lone
    character stays itself); anything else is left exactly as it is. The full-text indexes take a run of CJK
    characters between punctuation for one word, so a word inside a sentence could not be found; indexing and
    querying bigrams is what search engines do without a dictionary (Lucene's CJKAnalyzer): "冰碛" finds the sentence
    above, "冰川学" (" 冰川 川学 ") finds "冰川学入门". The Lance columns the keyword search reads and every query go
    through it (`adapters/lance_index.py`); the catalogue's `smartcourse_fold` does the same in SQL (migration
    0023)."""
    return _CJK_RUN.sub(_bigrams, text) if _CJK_RUN.search(text) else text


def _spans(*spans: tuple[int, int]) -> frozenset[str]:
    return frozenset(chr(c) for start, end in spans for c in range(start, end + 1))


#: The marks a word is the same word without, as the catalogue's `smartcourse_fold` drops them (migration 0030 has a
#: copy; `tests/unit/test_assistant.py` checks they agree):
#: Latin, Greek and Cyrillic combining marks, Hebrew points and cantillation, Arabic short vowels (harakat), its other
#: marks and the tatweel. Indic vowel signs are not among them: they are letters of their words.
OPTIONAL_MARKS = _spans(
    (0x0300, 0x036F),
    (0x0483, 0x0489),
    (0x0591, 0x05BD),
    (0x05BF, 0x05BF),
    (0x05C1, 0x05C2),
    (0x05C4, 0x05C5),
    (0x05C7, 0x05C7),
    (0x0610, 0x061A),
    (0x0640, 0x0640),
    (0x064B, 0x065F),
    (0x0670, 0x0670),
    (0x06D6, 0x06DC),
    (0x06DF, 0x06E4),
    (0x06E7, 0x06E8),
    (0x06EA, 0x06ED),
)


def fold_marks(text: str) -> str:
    """`text` without its optional marks (`OPTIONAL_MARKS`: `الفَلَك` → `الفلك`, `Phở` → `Pho`, `Σωκράτης` →
    `Σωκρατης`), the final sigma as the sigma, composed again (NFC); as the catalogue's fold does in SQL."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join("\u03c3" if ch == "\u03c2" else ch for ch in decomposed if ch not in OPTIONAL_MARKS)
    return unicodedata.normalize("NFC", kept)


class Spellings:
    """Words as a search compares them (lower case, `fold_marks`) with the spellings they were written in, counted:
    a suggestion offers the word it found near in the spelling its text uses most ("revoluciones", "Ebro")."""

    def __init__(self, written: Iterable[str]) -> None:
        self.forms: dict[str, Counter[str]] = {}
        for word in written:
            self.forms.setdefault(fold_marks(word.lower()), Counter())[word] += 1

    def __contains__(self, folded: object) -> bool:
        return folded in self.forms

    def count(self, folded: str) -> int:
        return sum(self.forms[folded].values())

    def nearest(self, folded: str, cutoff: float) -> str | None:
        """The compared word nearest `folded` (difflib's ratio at least `cutoff`), or None."""
        near = difflib.get_close_matches(folded, self.forms, n=1, cutoff=cutoff)
        return near[0] if near else None

    def spelt(self, folded: str) -> str:
        """The spelling `folded` is written in most."""
        return self.forms[folded].most_common(1)[0][0]
