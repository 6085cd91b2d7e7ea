"""Sections into retrievable chunks: structure first (lesson, heading, page), then token-sized pieces with overlap."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from smartcourse.content.extract import Section
from smartcourse.ports import Chunk

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from tokenizers import Tokenizer

MAX_TOKENS = 200
OVERLAP_TOKENS = 40
#: Paragraphs, then lines, then sentences, then words; characters only as a last resort.
_SEPARATORS = [r"\n\n", r"\n", r"(?<=[.!?;:])\s+", r"\s+", ""]
_PAGE = re.compile(r"^page \d+$")


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    from tokenizers import Tokenizer

    from smartcourse.adapters.embedders import minilm_tokenizer_path

    tok = Tokenizer.from_file(str(minilm_tokenizer_path()))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_tokens(text: str) -> int:
    """Word pieces of `text` for the MiniLM tokenizer, without [CLS]/[SEP]."""
    tok = _tokenizer()
    return len(tok.encode(text, add_special_tokens=False).ids)


#: Characters per word piece past which a text is certainly longer than a chunk: not tokenized to find out.
_CHARS_PER_TOKEN_BOUND = 50


def bounded(length: Callable[[str], int], max_tokens: int) -> Callable[[str], int]:
    """`length`, but a text of more than `_CHARS_PER_TOKEN_BOUND` times `max_tokens` characters is measured by its
    characters (far more than `max_tokens` either way) instead of tokenized: the tokenizer holds the GIL for its
    whole call (16 s for a 19 MB text file), and the splitter measures the whole text and each big part before it
    splits them, so the publishing worker's heartbeats and queries stalled past their timeouts."""
    limit = _CHARS_PER_TOKEN_BOUND * max_tokens

    def measured(text: str) -> int:
        return len(text) if len(text) > limit else length(text)

    return measured


def _splitter(max_tokens: int, overlap_tokens: int, length: Callable[[str], int]) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=max_tokens,
        chunk_overlap=overlap_tokens,
        length_function=length,
        strip_whitespace=True,
    )


def context_of(*, source_type: str, title: str, location: str) -> str:
    """The breadcrumb that goes before a chunk's text when it is embedded.

    Lessons: the location already reads "Module > Lesson > Heading". Materials: the material's title,
    then its heading path; a page number says nothing about meaning, so it is left out.
    """
    if source_type == "lesson":
        return location or title
    if not location or location == title or _PAGE.match(location):
        return title
    return f"{title} > {location}"


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for `chunk`: its breadcrumb, a blank line, then its text.

    The breadcrumb puts a short chunk ("Use the aggregate id as the key.") in its context; the
    content hash covers exactly this string, so renaming a lesson re-embeds its chunks.
    """
    context = context_of(source_type=chunk.source_type, title=chunk.title, location=chunk.location)
    return f"{context}\n\n{chunk.text}" if context else chunk.text


def content_hash(text: str) -> str:
    """sha256 of the text after NFKC and whitespace collapsing (formatting-only edits keep the hash)."""
    norm = " ".join(unicodedata.normalize("NFKC", text).split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def chunk_sections(
    sections: Iterable[Section],
    *,
    course_id: str,
    version: int,
    max_tokens: int = MAX_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    count: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Chunks in reading order. A chunk never spans two sections; a long section is split at paragraph,
    line, sentence, then word boundaries into pieces of at most `max_tokens` word pieces that overlap
    by about `overlap_tokens`.

    `chunk_id` is f"{course_id}:v{version}:{source_type}:{source_id}:{n}" (n counts per source) and
    `ordinal` is the position in the returned list: both are stable for the same input.
    """
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and smaller than max_tokens")
    length = bounded(count or lru_cache(maxsize=65536)(count_tokens), max_tokens)
    splitter = _splitter(max_tokens, overlap_tokens, length)
    out: list[Chunk] = []
    per_source: dict[tuple[str, str], int] = {}
    for section in sections:
        text = section.text.strip()
        if not text:
            continue
        pieces = [text] if length(text) <= max_tokens else splitter.split_text(text)
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            key = (section.source_type, section.source_id)
            n = per_source.get(key, 0)
            per_source[key] = n + 1
            context = context_of(source_type=section.source_type, title=section.title, location=section.location)
            out.append(
                Chunk(
                    chunk_id=f"{course_id}:v{version}:{section.source_type}:{section.source_id}:{n}",
                    course_id=course_id,
                    version=version,
                    source_type=section.source_type,
                    source_id=section.source_id,
                    title=section.title,
                    location=section.location,
                    text=piece,
                    content_hash=content_hash(f"{context}\n\n{piece}" if context else piece),
                    ordinal=len(out),
                )
            )
    return out
