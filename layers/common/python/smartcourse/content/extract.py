"""Text out of published lessons and uploaded materials, as sections that remember where they came from."""

from __future__ import annotations

import html
import io
import logging
import re
import time
import unicodedata
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from smartcourse.domain.materials import MAX_PDF_PAGES as DOMAIN_MAX_PDF_PAGES
from smartcourse.errors import DomainError

log = logging.getLogger(__name__)

SourceType = Literal["lesson", "material"]

#: Hard bounds: extraction must finish, whatever the upload looks like.
MAX_BYTES = 50 * 1024 * 1024
MAX_PDF_PAGES = DOMAIN_MAX_PDF_PAGES
TIME_BUDGET_S = 120.0
#: Headings that start a new section (deeper ones stay inside their section's text).
SPLIT_LEVELS = 4

_HTML_CRUFT = ["nav", "footer", "script", "style", "form", "noscript", "svg", "template", "iframe"]
#: Dropped unless inside an article, main or section: a page's header and its sidebar (`aside`) are clutter; within
#: the content an `aside` is a call-out a reader sees ("Note: ..."), which was dropped with the sidebars
#: (explore31 F6).
_HTML_OUTSIDE_CONTENT = ("header", "aside")
#: A page's header (its site name, its menu) is clutter; an article's or a section's own header holds its title and
#: lead paragraph (explore17 F1: `<article><header><h1>…</h1><p class="lead">…` lost both).
_HTML_CONTENT = ("article", "main", "section")
#: Elements a reader never sees (the `hidden` attribute, `aria-hidden="true"`): dropped with what they hold.
_HIDING_STYLES = ("display:none", "display: none", "visibility:hidden", "visibility: hidden")
#: Elements a reader never sees: `hidden`, `aria-hidden`, and an inline style that hides them (explore7 F11: the text
#: of a `display:none` block was indexed, where an injection likes to hide).
_HTML_HIDDEN = ", ".join(
    [
        "[hidden]",
        '[aria-hidden="true" i]',
        *(f'[style*="{rule}" i]' for rule in _HIDING_STYLES),
    ]
)
_HTML_HEADINGS = {f"h{n}": n for n in range(1, SPLIT_LEVELS + 1)}
_HTML_BLOCKS = {
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "main", "pre", "blockquote",
    "dd", "dt", "dl", "h5", "h6", "figcaption", "figure", "hr", "caption", "aside", "header", "details", "summary",
}  # fmt: skip
_BY_SUFFIX = {
    ".pdf": "application/pdf",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".srt": "application/x-subrip",
    ".vtt": "text/vtt",
}
#: Transcripts: read as prose (`clean_transcript`), without cue numbers, timings or styling.
_TRANSCRIPTS = frozenset({"application/x-subrip", "text/vtt"})


@dataclass
class Section:
    """A run of text under one heading (or on one page) of one lesson or material."""

    source_type: SourceType
    source_id: str
    title: str
    location: str  # "page 3" or "Module > Lesson > Heading"
    text: str
    heading_path: list[str] | None = None
    page: int | None = None


class ExtractionError(DomainError):
    """A material whose text cannot be extracted; `reason` is a stable code.

    Codes: `encrypted_pdf`, `no_text` (image-only or empty), `unreadable` (broken file),
    `unsupported_type`, `too_large` (over the byte, page or time bound).
    """

    status_code = 422

    def __init__(self, filename: str, reason: str, message: str | None = None) -> None:
        self.filename = filename
        self.reason = reason
        text = message or reason.replace("_", " ")
        super().__init__(f"{filename}: {text}", code=reason, details={"filename": filename, "reason": reason})


# --- text helpers ------------------------------------------------------------------------------------------


def normalise_text(text: str) -> str:
    """NFKC, no control characters, spaces collapsed inside lines, at most one blank line in a row."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_VTT_TIMING = re.compile(r"^\s*(\d{1,2}:)?\d{1,2}:\d{2}[.,]\d{1,3}\s*-->")
#: Cue markup: WebVTT's tags, with classes too (`<c.yellow>`, `<v.loud Bob>`), its timestamps, and what SRT files
#: carry (`<font color=...>`, SSA overrides such as `{\an8}`); explore52 N3: "yellow", "font" and "an8" were indexed.
_VTT_TAG = re.compile(
    r"</?(?:v|c|i|b|u|lang|ruby|rt|font)(?:[.\s][^>]*)?>|<\d{1,2}:\d{2}[^>]*>|\{\\[^{}]*\}", re.IGNORECASE
)


#: A WebVTT block that is no cue (a comment, a style sheet, a region): its first line is the word alone or followed by
#: a space or tab. Only a block's first line, only in WebVTT (SRT has no such blocks): a cue reading "NOTE: the exam
#: covers..." or an all-caps "REGIONAL CLIMATE..." was dropped with the rest of its cue (explore51 F1).
_VTT_NON_CUE = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t]|$)")


def clean_transcript(text: str) -> str:
    """A transcript as prose: WebVTT/SRT headers, comment/style/region blocks, cue numbers and identifiers, timings
    and voice tags removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # old Macs' line ends too (explore54 N4)
    lines = text.split("\n")
    if not any(_VTT_TIMING.match(line) for line in lines):  # prose: its markup goes all the same
        return normalise_text(html.unescape(_VTT_TAG.sub("", text)))
    out: list[str] = []
    skip_block = False
    webvtt = lines[0].lstrip("\ufeff").strip().startswith("WEBVTT")
    block_start = True
    for i, line in enumerate(lines):
        stripped = line.strip()
        if i == 0 and webvtt:
            skip_block = True
            continue
        if not stripped:
            skip_block, block_start = False, True
            continue
        first, block_start = block_start, False
        if skip_block or (webvtt and first and _VTT_NON_CUE.match(stripped)):
            skip_block = True
            continue
        if _VTT_TIMING.match(stripped):
            continue
        if first and i + 1 < len(lines) and _VTT_TIMING.match(lines[i + 1].strip()):
            continue  # the cue's number (SRT) or identifier (WebVTT) before its timing line
        out.append(html.unescape(_VTT_TAG.sub("", stripped)))  # `&amp;`, `&lt;`: WebVTT escapes cue text
    return normalise_text(" ".join(out))


#: A static-site generator's metadata block at the very start of a Markdown file (YAML between `---` lines, TOML
#: between `+++`): not text. Read as Markdown it was a rule and a paragraph, indexed as a chunk whose text is `---`
#: and found by unrelated searches (explore17 F10).
_FRONT_MATTER = re.compile(
    r"\A\ufeff?(?:---[ \t]*\n.*?\n(?:---|\.\.\.)|\+\+\+[ \t]*\n.*?\n\+\+\+)[ \t]*(?:\n|\Z)", re.S
)


#: A line of front matter: `key: value` (YAML), `key = value` (TOML), a list item, an indented continuation, a
#: comment or a table header. A block with any other line is prose between two rules, and stays.
_FRONT_MATTER_LINE = re.compile(r"^(?:[\w.\"'-]+\s*[:=].*|\s+\S.*|\s*-\s.*|\s*#.*|\[[^\]]+\]\s*|\s*)$")


#: A key static-site generators put in front matter: a block holds one at least (a callout between two rules,
#: "Warning: …", has the shape of a `key: value` line too).
_FRONT_MATTER_KEY = re.compile(
    r"^\s*[\"']?(?:title|date|author|authors|tags|categories|category|layout|description|draft|slug|weight|summary|"
    r"lang|language|permalink|keywords|subtitle|id|sidebar_label|sidebar_position|toc|aliases|lastmod|publishDate|"
    r"type|params|nav_order|parent|order)[\"']?\s*[:=]",
    re.I,
)


def _without_front_matter(text: str) -> str:
    found = _FRONT_MATTER.match(text)
    if found is None:
        return text
    inside = found.group().strip().split("\n")[1:-1]
    if not all(_FRONT_MATTER_LINE.match(line) for line in inside) or not any(
        _FRONT_MATTER_KEY.match(line) for line in inside
    ):
        return text  # prose between two rules ("Warning: check the tide table first": explore21 F7) stays
    return text[found.end() :]


#: Inline emphasis: `**strong**`, `__strong__`, `*em*`, `_em_` around text that starts and ends with a non-space,
#: not inside a word (`snake_case_name`, `2*3*4` stay), and never a list's `* ` bullet.
_STRONG = re.compile(r"(?<![\w*_])(\*\*|__)(?=\S)(.+?)(?<=\S)\1(?![\w*_])")
_EM = re.compile(r"(?<![\w*_])([*_])(?=[^\s*_])([^\n]+?)(?<=[^\s*_])\1(?![\w*_])")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def _without_emphasis(lines: list[str]) -> list[str]:
    """The lines with Markdown's inline emphasis marks removed, the text they mark kept: a quote or a search hit is
    shown as plain text, and "The **snowball method** pays off…" reached the student with its asterisks (explore75
    F9). Code spans and fenced code blocks are left as written; so is everything else of the Markdown (lists, tables,
    links), which reads as text."""
    out: list[str] = []
    fenced = ""
    for line in lines:
        fence = _FENCE.match(line)
        if fence and (not fenced or fence.group(1) == fenced):
            fenced = "" if fenced else fence.group(1)
            out.append(line)
            continue
        if fenced or ("*" not in line and "_" not in line):
            out.append(line)
            continue
        pieces, at = [], 0
        for code in _CODE_SPAN.finditer(line):
            pieces += [_plain(line[at : code.start()]), code.group()]
            at = code.end()
        out.append("".join([*pieces, _plain(line[at:])]))
    return out


#: Markdown's escaped marks (`\*not emphasis\*`): shown as the marks themselves, never taken for emphasis.
_ESCAPED = {"\\*": "\ue010", "\\_": "\ue011"}


def _plain(text: str) -> str:
    for escaped, kept in _ESCAPED.items():
        text = text.replace(escaped, kept)
    for _ in range(3):  # nested: ***both***, **a *b* c**
        text = _EM.sub(r"\2", _STRONG.sub(r"\2", text))
    # As a Markdown reader shows them: the mark, without its backslash (explore76 F3: "\not emphasis\").
    return text.replace("\ue010", "*").replace("\ue011", "_")


def markdown_sections(text: str) -> list[tuple[list[str], str]]:
    """(heading path, body) per h1-h4 of a Markdown text; the source text of each body is kept as written, but for
    its inline emphasis marks (`_without_emphasis`).

    Headings are found by markdown-it-py, so a `# comment` inside a fenced code block is not one.
    """
    from markdown_it import MarkdownIt

    source = _without_front_matter(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = source.split("\n")
    tokens = MarkdownIt("commonmark").parse(source)
    # Raw HTML blocks are read as an HTML page is: a comment, a script, a hidden element is not what a reader sees
    # (explore31 F6: `<!-- note -->` in a handout was searchable course content, quotable by the assistant). Their
    # lines keep their places, so the headings' line numbers still hold.
    for tok in tokens:
        if tok.type == "html_block" and tok.map:
            first, after = tok.map
            # As content (an `aside` here is a call-out, not a page's sidebar).
            visible = "\n".join(body for _, body in _html_sections(f"<article>{tok.content}</article>"))
            lines[first:after] = [visible, *([""] * (after - first - 1))]
        elif tok.type == "inline" and tok.map:  # a comment inside a paragraph
            for child in tok.children or []:
                if child.type == "html_inline" and child.content.startswith("<!--"):
                    first, after = tok.map
                    lines[first:after] = "\n".join(lines[first:after]).replace(child.content, "", 1).split("\n")
    cuts: list[tuple[int, int, int, str]] = []  # (first line, line after, level, title)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and tok.map and int(tok.tag[1]) <= SPLIT_LEVELS:
            inline = tokens[i + 1]
            title = "".join(c.content for c in inline.children or [] if c.type in {"text", "code_inline"})
            cuts.append((tok.map[0], tok.map[1], int(tok.tag[1]), normalise_text(title or inline.content)))
    out: list[tuple[list[str], str]] = []
    stack: list[tuple[int, str]] = []
    start = 0
    path: list[str] = []
    lines = _without_emphasis(lines)
    for first, after, level, title in [*cuts, (len(lines), len(lines), 0, "")]:
        body = normalise_text("\n".join(lines[start:first]))
        if body:
            out.append((path, body))
        if level == 0:
            break
        stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
        path = [t for _, t in stack if t]
        start = after
    return out


# --- lessons -----------------------------------------------------------------------------------------------


def sections_from_snapshot(snapshot: dict[str, Any]) -> list[Section]:
    """Every searchable text of a published version: lesson bodies by heading, transcripts, quiz prompts.

    Quiz options and answers are never extracted: the assistant must not be able to give them away.
    """
    out: list[Section] = []
    for module in snapshot.get("modules") or []:
        module_title = str(module.get("title") or "").strip()
        for lesson in module.get("lessons") or []:
            lesson_id = str(lesson["id"])
            lesson_title = str(lesson.get("title") or "").strip()
            base = [t for t in (module_title, lesson_title) if t]

            def add(path: list[str], text: str, *, _id: str = lesson_id, _title: str = lesson_title) -> None:
                if text:
                    out.append(Section("lesson", _id, _title, " > ".join(path), text, heading_path=path))

            kind = lesson.get("type")
            if kind == "text" and lesson.get("content"):
                for headings, body in markdown_sections(str(lesson["content"])):
                    if headings and headings[0].casefold() == lesson_title.casefold():
                        # A lesson that opens with its own title as a heading: "Shore > Zonation > Zonation > Upper
                        # shore" read twice in every location, and the model copied it (explore17 F11).
                        headings = headings[1:]
                    add([*base, *headings], body)
            elif kind == "video" and lesson.get("transcript"):
                add([*base, "Transcript"], clean_transcript(str(lesson["transcript"])))
            elif kind == "quiz" and lesson.get("questions"):
                prompts = [normalise_text(str(q.get("prompt") or "")) for q in lesson["questions"]]
                add([*base, "Quiz"], "\n".join(f"Question {n}. {p}" for n, p in enumerate(prompts, 1) if p))
    return out


# --- materials ---------------------------------------------------------------------------------------------


def _looks_like_cues(text: str) -> bool:
    """A plain text that is a transcript: at least two SRT/WebVTT timing lines (`00:00:01,000 --> 00:00:04,000`)."""
    found = 0
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _VTT_TIMING.match(line):
            found += 1
            if found == 2:
                return True
    return False


def _kind(filename: str, content_type: str) -> str | None:
    ct = content_type.split(";", 1)[0].strip().lower()
    if ct in {"application/pdf", "text/html", "text/markdown", "text/plain", "text/x-markdown", *_TRANSCRIPTS}:
        return {"text/x-markdown": "text/markdown"}.get(ct, ct)
    if ct in {"", "application/octet-stream"}:
        return _BY_SUFFIX.get(PurePath(filename).suffix.lower())
    return None


def extract_material(
    data: bytes,
    *,
    filename: str,
    content_type: str,
    source_id: str,
    title: str,
    max_bytes: int = MAX_BYTES,
    max_pages: int = MAX_PDF_PAGES,
    time_budget_s: float = TIME_BUDGET_S,
    notes: list[str] | None = None,
) -> list[Section]:
    """The sections of one uploaded material (PDF per page; HTML and Markdown per heading; text and transcripts whole).

    Raises ExtractionError with a stable reason; never returns an empty list. `notes` (when given) gets what was left
    out of a file otherwise read: "page 1 of 2 could not be read" (a damaged page of a PDF), "page 2 of 3 could be
    read only in part" (one of its content streams damaged, another read).
    """
    kind = _kind(filename, content_type)
    if kind is None:
        raise ExtractionError(filename, "unsupported_type", f"cannot extract text from {content_type or 'unknown'}")
    if len(data) > max_bytes:
        raise ExtractionError(filename, "too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit")
    if kind == "application/pdf":
        sections = _pdf_sections(data, filename, source_id, title, max_pages, time_budget_s, notes)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ExtractionError(filename, "unreadable", "text files must be UTF-8") from exc
        if "\x00" in text:
            raise ExtractionError(filename, "unreadable", "text files must not contain NUL bytes")
        if kind == "text/html":
            parts = _html_sections(text)
        elif kind == "text/markdown":
            parts = markdown_sections(text)
        elif kind in _TRANSCRIPTS or _looks_like_cues(text):  # a transcript saved as .txt too (explore57 F9)
            parts = [([], clean_transcript(text))]
        else:
            parts = [([], normalise_text(text))]
        sections = [
            Section("material", source_id, title, " > ".join(path) or title, body, heading_path=path)
            for path, body in parts
            if body
        ]
    if not sections:
        raise ExtractionError(filename, "no_text", "no extractable text (an image-only or empty document?)")
    return sections


class _PdfComplaints(logging.Handler):
    """What pypdf logged while one page was read: a content stream it cannot decode is a warning, not an exception,
    and the page comes out empty (explore51 F4: a damaged page was left out of the index without a word)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.undecoded = False  # a stream could not be decoded (pypdf.filters: its text is lost)

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.undecoded = self.undecoded or record.name == "pypdf.filters"

    def clear(self) -> None:
        self.messages.clear()
        self.undecoded = False


def _pdf_sections(
    data: bytes,
    filename: str,
    source_id: str,
    title: str,
    max_pages: int,
    time_budget_s: float,
    notes: list[str] | None = None,
) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError
    from pypdf.generic import DictionaryObject, NullObject

    deadline = time.monotonic() + time_budget_s
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):  # an owner-password-only PDF opens with ""
            raise ExtractionError(filename, "encrypted_pdf", "the PDF is password-protected")
        # pypdf (strict=False) goes looking for a catalog when /Root is broken; we refuse such a file.
        if not isinstance(reader.trailer.get("/Root", NullObject()).get_object(), DictionaryObject):
            raise ExtractionError(filename, "unreadable", "the PDF's /Root is not a dictionary")
        count = len(reader.pages)  # pypdf detects page-tree cycles here (PdfReadError)
        if count > max_pages:
            raise ExtractionError(filename, "too_large", f"{count} pages is over the {max_pages}-page limit")
        out: list[Section] = []
        damaged: list[int] = []
        partly: list[int] = []
        complaints, pypdf_log = _PdfComplaints(), logging.getLogger("pypdf")
        level = pypdf_log.level
        if not pypdf_log.isEnabledFor(logging.WARNING):  # SMARTCOURSE_LOG_LEVEL=ERROR must not hide a damaged page
            pypdf_log.setLevel(logging.WARNING)
        pypdf_log.addHandler(complaints)
        try:
            for n in range(count):
                if time.monotonic() > deadline:
                    raise ExtractionError(filename, "too_large", f"text extraction took over {time_budget_s:g}s")
                complaints.clear()
                text = normalise_text(reader.pages[n].extract_text() or "")
                if text:
                    out.append(Section("material", source_id, title, f"page {n + 1}", text, page=n + 1))
                    if complaints.undecoded:  # another of its content streams read, this one lost (explore54 N3)
                        partly.append(n + 1)
                        log.info("PDF %s page %d was read in part: %s", filename, n + 1, complaints.messages[0])
                elif complaints.messages:  # empty because it could not be read, not a blank or image-only page
                    damaged.append(n + 1)
                    log.info("PDF %s page %d could not be read: %s", filename, n + 1, complaints.messages[0])
        finally:
            pypdf_log.removeHandler(complaints)
            pypdf_log.setLevel(level)
        if damaged and not out:
            raise ExtractionError(filename, "unreadable", "no page of the PDF could be read")
        if notes is not None:
            for listed, said in ((damaged, "could not be read"), (partly, "could be read only in part")):
                if listed:
                    more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
                    pages = ", ".join(str(n) for n in listed[:20]) + more
                    notes.append(f"page{'s' if len(listed) > 1 else ''} {pages} of {count} {said}")
        return out
    except ExtractionError:
        raise
    except FileNotDecryptedError as exc:
        raise ExtractionError(filename, "encrypted_pdf", "the PDF is password-protected") from exc
    except NotImplementedError as exc:  # an encryption algorithm pypdf cannot open
        raise ExtractionError(filename, "encrypted_pdf", f"unsupported PDF encryption: {exc}") from exc
    except Exception as exc:  # pypdf raises many types (and RecursionError) on malformed input
        log.info("unreadable PDF %s: %r", filename, exc)
        raise ExtractionError(filename, "unreadable", f"the PDF could not be read ({type(exc).__name__})") from exc


def _inside(node: Any, tags: tuple[str, ...]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _table_text(table: Any) -> str:
    """An HTML table as a Markdown one: a row per line, its cells between `|`, a rule under a header row of `th`
    cells. A row is then quoted whole, with its header, as a Markdown table's is (explore17 F6: each cell was a line
    of its own, so "Port Quillan" and "+37" were never quoted together). A nested table's text stays in its cell."""
    lines: list[str] = []
    caption = table.css_first("caption")
    if caption is not None and (title := normalise_text(caption.text(deep=True, separator=" "))):
        lines.append(title)
    rows = [row for row in table.css("tr") if _owner_table(row) == table.mem_id]
    for i, row in enumerate(rows):
        cells = [cell for cell in row.iter() if cell.tag in ("td", "th")]
        if not cells:
            continue
        texts = [re.sub(r"\s+", " ", cell.text(deep=True, separator=" ")).strip().replace("|", "\\|") for cell in cells]
        lines.append("| " + " | ".join(texts) + " |")
        if i == 0 and all(cell.tag == "th" for cell in cells):
            lines.append("|" + "|".join(" --- " for _ in cells) + "|")
    return "\n".join(lines)


def _owner_table(row: Any) -> int | None:
    """The `mem_id` of the table a row belongs to (selectolax makes a new wrapper per access: ids, not objects)."""
    parent = row.parent
    while parent is not None and parent.tag != "table":
        parent = parent.parent
    return None if parent is None else int(parent.mem_id)


def _html_sections(html: str) -> list[tuple[list[str], str]]:
    """(heading path, text) per h1-h4 of the page's main content; navigation, scripts, forms and hidden elements
    dropped."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    tree.strip_tags(_HTML_CRUFT)
    for frame in tree.css(", ".join(_HTML_OUTSIDE_CONTENT)):
        if not _inside(frame, _HTML_CONTENT):
            frame.decompose()
    # In one pass, the last first: a nested hidden element goes before the one that holds it. One `css_first` per
    # element rescanned the page from the top each time: 16,000 of them after as many visible ones took 24 s, and
    # grew with the square (explore27 F1).
    for hidden in reversed(tree.css(_HTML_HIDDEN)):
        hidden.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
    if root is None:
        return []
    out: list[tuple[list[str], str]] = []
    stack: list[tuple[int, str]] = []
    path: list[str] = []
    buf: list[str] = []
    heading_ids: set[int] = set()  # nodes already written (a heading's, a table's)

    def flush() -> None:
        body = normalise_text("".join(buf))
        if body:
            out.append((path, body))
        buf.clear()

    for node in root.traverse(include_text=True):
        tag = node.tag
        if tag in _HTML_HEADINGS:
            flush()
            level = _HTML_HEADINGS[tag]
            title = normalise_text(node.text(deep=True, separator=" "))
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            path = [t for _, t in stack if t]
            heading_ids.update(n.mem_id for n in node.traverse(include_text=True))
        elif tag == "table" and node.mem_id not in heading_ids:
            heading_ids.update(n.mem_id for n in node.traverse(include_text=True))
            buf.append("\n" + _table_text(node) + "\n")
        elif tag == "-text":
            if node.mem_id not in heading_ids:
                prev = node.prev
                if prev is not None and prev.tag in _HTML_BLOCKS:  # text after a closed block: a new line
                    buf.append("\n")
                buf.append(re.sub(r"\s+", " ", node.text_content or ""))
        elif tag in _HTML_BLOCKS and node.mem_id not in heading_ids:
            buf.append("\n")
    flush()
    return out
