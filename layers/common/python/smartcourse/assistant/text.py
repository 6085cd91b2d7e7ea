"""Words and sentences of course text and questions, in any script (no model, no data files).

Words are Unicode (`\\w`): "mitochondries", "Zellwand" and "الميتوكوندريا" are words. Chinese and Japanese are
written without spaces, so a run of Han or kana characters becomes its character bigrams ("线粒体" → "线粒", "粒体"),
the usual unit of CJK keyword matching. Sentences follow the layout of extracted text: a line wrapped by a PDF
continues on the next line, a Markdown table row or heading stands alone, and "E. coli" is not a sentence end."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from smartcourse.domain.text import fold_marks

#: A word: a letter or digit, then letters, digits, `'+#-`, and the vowel signs and viramas of the Indic scripts
#: (U+0900-U+0DFF), which are not `\w` but are letters of their words: `क्रिकेट` was five words, one of them `क`,
#: found everywhere (explore65 F10).
_TOKEN = re.compile(r"[^\W_][\w\u0900-\u0dff'+#-]*")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
#: Chinese and Japanese question words, copulas and particles: a CJK run is cut at them before its bigrams are taken,
#: so "线粒体产生什么" gives the subject's bigrams only, and "线粒体是细胞的…" matches "线粒体" and "细胞" on both
#: sides. Japanese grammar is written in hiragana between the kanji and katakana of the content words: "です", "すか"
#: and "はど" were the subject of every Japanese question, and matched every Japanese passage (explore65 F5: "フランス
#: の首都はどこですか" was answered from a cooking lesson).
_CJK_STOP = re.compile(
    "为什么|是什么|什么|怎么样|怎么|哪些|哪个|如何|请问|一下|[是的了吗呢和与在]"
    "|でしょうか|ですか|ますか|ください|について|とは|なんですか|なぜ|なに|何|どうして|どう|どこ|どれ|だれ|誰|いつ"
    "|です|ます|でした|ました|する|して|した|ある|いる|[はがをにのへとでもかねよや]"
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ed", "es", "s", "ly")


def tokens(text: str) -> list[str]:
    """Lower-cased words without their optional marks (`domain.text.fold_marks`: Arabic short vowels, Hebrew points,
    accents; a word was split at each of them, so `المشتري` typed without them matched nothing of `المُشتَري`:
    explore65 F2); CJK runs as character bigrams (a lone CJK character as itself)."""
    out: list[str] = []
    for token in _TOKEN.findall(fold_marks(text).lower()):
        token = token.strip("'+#-") or token
        if not _CJK.search(token):
            out.append(token)
            continue
        pos = 0
        for run in _CJK.finditer(token):
            if run.start() > pos:
                out.append(token[pos : run.start()])
            for chars in _CJK_STOP.split(run.group()):
                out.extend([chars] if len(chars) == 1 else [chars[i : i + 2] for i in range(len(chars) - 1)])
            pos = run.end()
        if pos < len(token):
            out.append(token[pos:])
    return [t for t in out if t]


def same_text_key(text: str) -> str:
    """What two passages with the same text share, blanks and case aside: the same file uploaded under two names is
    one passage (the assistant's evidence, course search's `also_in`)."""
    return " ".join(text.split()).casefold()


def is_cjk(word: str) -> bool:
    return bool(_CJK.match(word))


def fold(word: str) -> str:
    """A Latin word without its accents ("arête" → "arete"), as the keyword index folds it; a word of another script
    (or with a letter that has no unaccented form, "ß") as it is."""
    if word.isascii():
        return word
    folded = "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))
    return folded if folded.isascii() else word


def stem(word: str) -> str:
    """A light English stemmer, enough to match "commits"/"commit" and "organelles"/"organelle"; accents folded
    first (`fold`): "What's an arete?" was refused by a lesson on the arête, which the keyword search had found
    (explore34 F7)."""
    word = fold(word)
    if is_cjk(word) or not word.isascii():
        return word
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


# --- sentences --------------------------------------------------------------------------------------------------

#: Words whose period does not end a sentence (single letters, "E. coli", are handled apart).
ABBREVIATIONS = frozenset(
    "e.g i.e cf vs approx fig figs eq eqs no nos dr mr mrs ms prof st sr jr vol pp ca al resp dept est".split()
)
_CLOSERS = "'\"\u201d\u2019)\\]"  # quotes and brackets that may follow a sentence's end
_END = re.compile(f"[.!?\u2026\u3002\uff01\uff1f][{_CLOSERS}]*$")
_TABLE = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^\s*(#{1,6}\s+\S|(chapter|section|part|unit|lesson|module|appendix)\s+[\w.]+\s*[:.—-])", re.I)
_LIST_ITEM = re.compile(r"^\s*([-*•]|\d+[.)])\s+")
_SPLIT = re.compile(f"(?<=[.!?\u2026])[{_CLOSERS}]*\\s+|(?<=[\u3002\uff01\uff1f])")  # CJK ends need no space


@dataclass(frozen=True)
class Sentence:
    text: str
    kind: str  # body | heading | table_header | table_row
    header: str = ""  # a table row's header row (its words describe the row's cells)


def _is_heading(line: str, following: str | None) -> bool:
    if _HEADING.match(line):
        return True
    # A short line without end punctuation followed by a capitalised one: a PDF or plain-text heading.
    stripped = line.strip()
    return (
        following is not None
        and len(stripped) < 50
        and not _END.search(stripped)
        and not stripped.endswith((",", ":", ";"))
        and following.strip()[:1].isupper()
    )


def _split_paragraph(paragraph: str) -> list[str]:
    """Sentence ends inside one paragraph: after . ! ? (not after an initial or a known
    abbreviation), and after the CJK full stops."""
    pieces = [p for p in _SPLIT.split(paragraph) if p and p.strip()]
    out: list[str] = []
    for piece in pieces:
        if out:
            last_word = out[-1].rstrip().rsplit(None, 1)[-1] if out[-1].strip() else ""
            bare = last_word.rstrip(".").lower()
            if last_word.endswith(".") and ((len(bare) == 1 and bare.isalpha()) or bare in ABBREVIATIONS):
                out[-1] = f"{out[-1].rstrip()} {piece.strip()}"
                continue
        out.append(piece.strip())
    return out


def sentences(text: str) -> list[Sentence]:
    """The sentences of extracted course text, with the layout taken into account (see the module's docstring)."""
    lines = text.splitlines()
    out: list[Sentence] = []
    header = ""
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.extend(Sentence(s, "body") for s in _split_paragraph(" ".join(paragraph)))
            paragraph.clear()

    for i, raw in enumerate(lines):
        line = raw.strip()
        following = next((x for x in lines[i + 1 :] if x.strip()), None) if i + 1 < len(lines) else None
        if not line:
            flush()
            header = ""
            continue
        next_line = lines[i + 1] if i + 1 < len(lines) else ""
        if _TABLE.match(line) or (line.count("|") >= 2 and _TABLE_RULE.match(next_line)):
            flush()
            if _TABLE_RULE.match(line):
                continue
            if not header and _TABLE_RULE.match(next_line):
                header = line
                out.append(Sentence(line, "table_header"))
            else:
                out.append(Sentence(line, "table_row", header))
            continue
        header = ""
        if not paragraph and _is_heading(line, following):
            out.append(Sentence(line, "heading"))
            continue
        if _LIST_ITEM.match(line):
            flush()
        paragraph.append(line)
        next_raw = lines[i + 1].strip() if i + 1 < len(lines) else ""
        soft_break = (
            next_raw
            and not _END.search(line)
            and not _TABLE.match(next_raw)
            and not _HEADING.match(next_raw)
            and not _LIST_ITEM.match(next_raw)
            and (next_raw[:1].islower() or next_raw[:1].isdigit() or len(line) >= 50)
        )
        if not soft_break:
            flush()
    flush()
    return out or [Sentence(text.strip(), "body")]
