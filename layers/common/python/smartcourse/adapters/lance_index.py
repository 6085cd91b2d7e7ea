"""VectorIndex port on LanceDB: one Lance table per course version, BM25 + cosine + RRF hybrid search."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

# LanceDB's Rust core logs deprecation chatter at WARN on every hybrid query; keep errors only (overridable).
os.environ.setdefault("LANCEDB_LOG", "error")

import numpy as np
import pyarrow as pa

from smartcourse.domain.text import cjk_bigrams, fold_marks
from smartcourse.errors import Unavailable
from smartcourse.ports import Chunk, Hit, SearchMode, VectorIndex

log = logging.getLogger(__name__)

__all__ = ["LanceVectorIndex", "VectorIndex", "s3_storage_options"]

MAX_K = 100
MAX_QUERY_CHARS = 1_000
RRF_K = 60  # the constant of Reciprocal Rank Fusion (Cormack et al.); lancedb's RRFReranker default
TITLE_BOOST = 0.5  # a lesson title is shared by all its chunks: it should help, not dominate the chunk's own text
# How stale an opened table may be: a cached handle looks for a newer table version (another process's
# `delete_source`) on its first read after this many seconds. One manifest check per table per interval.
REFRESH_SECONDS = 5.0
_TABLE = re.compile(r"v(\d+)")
#: The columns the keyword leg searches, as written (`folded`): each chunk's text, title and heading path lower-cased,
#: their Chinese and Japanese runs as character bigrams (`domain.text.cjk_bigrams`: "冰碛" is found inside
#: "冰碛是冰川搬运…", which the tokenizer took for one word; explore31 F2) and the optional marks of every script
#: dropped (`domain.text.fold_marks`: Arabic typed without its short vowels finds the text written with them, as
#: the catalogue's fold does; the tokenizer's own folding is ASCII's only: explore65 F2). Never read back: hits carry
#: the chunk's own fields. The query is folded as the columns of its version are.
_FOLDED_COLUMNS = {"folded_text": "text", "folded_title": "title", "folded_location": "location"}
#: ... the columns of versions written before the marks were folded: bigrams only (the query too).
_KEYWORD_COLUMNS = {"keyword_text": "text", "keyword_title": "title", "keyword_location": "location"}
#: (Versions written before those have their indexes on `text`, `title` and maybe `location` themselves.)
_COMPLETE = "folded_title_idx"  # the index write_version builds last
_COMPLETE_BEFORE = ("keyword_title_idx", "title_idx")  # ... and the ones it built last before
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
_CHUNK_FIELDS = (
    "chunk_id",
    "course_id",
    "version",
    "source_type",
    "source_id",
    "title",
    "location",
    "text",
    "content_hash",
    "ordinal",
)


def s3_storage_options(
    endpoint_url: str | None,
    *,
    region: str = "us-east-1",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
) -> dict[str, str]:
    """Lance storage options for an S3 endpoint (AWS when `endpoint_url` is None, else S3-compatible)."""
    opts = {"aws_region": region}
    if endpoint_url:
        opts["aws_endpoint"] = endpoint_url
        # path-style addressing is object_store's default, which is what moto/MinIO/LocalStack expect
        if endpoint_url.startswith("http://"):
            opts["allow_http"] = "true"
    if access_key_id and secret_access_key:
        opts["aws_access_key_id"] = access_key_id
        opts["aws_secret_access_key"] = secret_access_key
        if session_token:  # a role's temporary keys (Lambda, ECS, an assumed role) are refused without it
            opts["aws_session_token"] = session_token
    return opts


def folded(text: str) -> str:
    """A text as the keyword leg indexes and queries it (`_FOLDED_COLUMNS`): lower case first (Python's, which gives
    an all-caps Greek word its final sigma, `fold_marks` then the sigma: `ΣΩΚΡΆΤΗΣ` is `σωκρατησ` as `Σωκράτης` is),
    CJK runs as bigrams, the optional marks dropped."""
    return fold_marks(cjk_bigrams(text.lower()))


#: The English stop words the keyword index dropped until it kept every word (tantivy's list, as LanceDB's
#: `remove_stop_words` applied it: Snowball's without its negations "no", "nor", "not" and a few more). A version's
#: index now keeps them, so that a course on SQL finds "WHERE", "HAVING", "FROM" (explore72 F3: `?q=HAVING` found
#: nothing), and `keyword_terms` leaves them out of a query unless they are all it has or written in capitals.
STOP_WORDS = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers herself
    it its itself they them their theirs themselves what which who whom this that these those am is are was were be
    been being have has had having do does did doing should a an the and but if or because as until while of at by
    for with about against between into through during before after above below to from up down in out on off over
    under again further then once here there when where why how all any both each few more most other some such only
    own same so than too very can will just should now""".split()
)
_EDGE_PUNCTUATION = "\"'“”\u2018\u2019«»()[]{}<>.,;:!?¿¡…"


def keyword_terms(text: str) -> str:
    """A query's words for the keyword leg: its stop words left out, as the index used to drop them ("what is a
    B-tree" matched every chunk with "is" otherwise), unless the query has nothing else ("where" alone) or one is
    written in capitals in a query that is not all capitals (a keyword: "WHERE vs HAVING", "IT"). A one-letter word
    ("I", "A") is never a keyword."""
    words = text.split()
    shouted = text.upper() == text
    kept = [
        w
        for w in words
        if (core := w.strip(_EDGE_PUNCTUATION)).lower() not in STOP_WORDS
        or (not shouted and len(core) > 1 and core.isupper())
    ]
    return " ".join(kept) if kept else text


def sanitize_query(query: str) -> str:
    """A query as plain words: no control characters (NUL...), bounded length.

    The text goes to a MatchQuery, which tokenizes it like the documents and never parses query syntax,
    so quotes, colons, parentheses, `AND`, `*` are just (dropped) punctuation or words."""
    cleaned = "".join(" " if unicodedata.category(ch) in _CONTROL else ch for ch in query[:MAX_QUERY_CHARS])
    return " ".join(cleaned.split())


class LanceVectorIndex:
    """Chunks + vectors of each course version in its own Lance table: `<uri>/course_<uuid hex>/v<N>.lance`.

    `uri`: a directory, `s3://bucket/prefix` (commits need If-None-Match, which AWS S3, MinIO, R2 and moto have)
    or `s3+ddb://bucket/prefix?ddbTableName=<table>` (commits through DynamoDB, for stores without it).

    A version is written once (replacing whatever a failed attempt left), then read, dropped, or loses the rows of
    one source (`delete_source`, a material deleted from a live course); the live version pointer is kept elsewhere
    (PostgreSQL), so readers never see a version being built. Opened tables are cached; a handle notices a newer
    table version (a deletion made by another process) within `refresh_seconds` (None: never, for tests)."""

    def __init__(
        self,
        uri: str,
        *,
        dimensions: int,
        storage_options: dict[str, str] | None = None,
        vector_index_min_rows: int = 1_000,
        nprobes: int = 20,
        cache_size: int = 128,
        refresh_seconds: float | None = REFRESH_SECONDS,
    ) -> None:
        base, sep, query = uri.partition("?")
        self.uri = base.rstrip("/") + sep + query
        self.dimensions = dimensions
        self.storage_options = dict(storage_options or {})
        self.vector_index_min_rows = vector_index_min_rows
        self.nprobes = nprobes
        self._cache_size = cache_size
        self._refresh = None if refresh_seconds is None else timedelta(seconds=refresh_seconds)
        self._connections: OrderedDict[str, Any] = OrderedDict()
        self._tables: OrderedDict[tuple[str, int], Any] = OrderedDict()
        #: The columns a version's keyword leg searches: the `folded_*` columns (whose queries are `folded` too), the
        #: `keyword_*` ones (queries through `cjk_bigrams`) of a version written before them, or, before those,
        #: `text`, `title` and `location` where it has its index (versions written before that have only `text` and
        #: `title`).
        self._keyword_columns: dict[tuple[str, int], list[str]] = {}
        self.schema = pa.schema(
            [
                pa.field("chunk_id", pa.string(), nullable=False),
                pa.field("course_id", pa.string(), nullable=False),
                pa.field("version", pa.int64(), nullable=False),
                pa.field("source_type", pa.string(), nullable=False),
                pa.field("source_id", pa.string(), nullable=False),
                pa.field("title", pa.string(), nullable=False),
                pa.field("location", pa.string(), nullable=False),
                pa.field("text", pa.string(), nullable=False),
                pa.field("content_hash", pa.string(), nullable=False),
                pa.field("ordinal", pa.int32(), nullable=False),
                pa.field("vector", pa.list_(pa.float32(), dimensions), nullable=False),
                *(pa.field(name, pa.string(), nullable=False) for name in _FOLDED_COLUMNS),
            ]
        )

    # --- layout -----------------------------------------------------------------------------------

    @staticmethod
    def _course_dir(course_id: str) -> str:
        try:
            return f"course_{uuid.UUID(str(course_id)).hex}"
        except ValueError:
            if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", course_id):
                return f"course_{course_id}"
            raise ValueError(f"not a course id: {course_id!r}") from None

    @staticmethod
    def _table_name(version: int) -> str:
        if version < 0:
            raise ValueError(f"version must be >= 0, not {version}")
        return f"v{int(version)}"

    async def _db(self, course_id: str) -> Any:
        import lancedb

        key = self._course_dir(course_id)
        db = self._connections.get(key)
        if db is None:
            base, _, query = self.uri.partition("?")  # s3+ddb://bucket/prefix?ddbTableName=... keeps its query
            db = await lancedb.connect_async(
                f"{base}/{key}" + (f"?{query}" if query else ""),
                storage_options=self.storage_options or None,
                read_consistency_interval=self._refresh,
            )
            self._connections[key] = db
            while len(self._connections) > self._cache_size:
                self._connections.popitem(last=False)
        else:
            self._connections.move_to_end(key)
        return db

    async def _table(self, course_id: str, version: int) -> Any | None:
        """The opened table of a version, or None when there is none. Handles are cached: once written, a version
        changes only by `delete_source`, which a cached handle picks up within `refresh_seconds` (at once through
        this object); a rewrite or drop through this object evicts it."""
        key = (self._course_dir(course_id), version)
        table = self._tables.get(key)
        if table is not None:
            self._tables.move_to_end(key)
            return table
        db = await self._db(course_id)
        try:
            table = await db.open_table(self._table_name(version))
        except ValueError:  # "Table 'v3' was not found"
            return None
        indexes = {index.name for index in await table.list_indices()}
        if "folded_text_idx" in indexes:
            self._keyword_columns[key] = list(_FOLDED_COLUMNS)
        elif "keyword_text_idx" in indexes:
            self._keyword_columns[key] = list(_KEYWORD_COLUMNS)
        else:
            self._keyword_columns[key] = ["text", "title", *(["location"] if "location_idx" in indexes else [])]
        if _COMPLETE not in indexes and not indexes.intersection(_COMPLETE_BEFORE):
            return table  # still being built: never cache a handle that would go on missing its indexes
        self._tables[key] = table
        while len(self._tables) > self._cache_size:
            evicted, _ = self._tables.popitem(last=False)
            self._keyword_columns.pop(evicted, None)
        return table

    def _forget(self, course_id: str, version: int) -> None:
        self._tables.pop((self._course_dir(course_id), version), None)
        self._keyword_columns.pop((self._course_dir(course_id), version), None)

    # --- writes -----------------------------------------------------------------------------------

    def _arrow(
        self, course_id: str, version: int, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
    ) -> pa.Table:
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        for c in chunks:
            if c.course_id != str(course_id) or c.version != version:
                raise ValueError(
                    f"chunk {c.chunk_id} belongs to {c.course_id} v{c.version}, not {course_id} v{version}"
                )
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1) if chunks else np.zeros((0, 0))
        if chunks and matrix.shape[1] != self.dimensions:
            raise ValueError(f"vectors have {matrix.shape[1]} dimensions, the index {self.dimensions}")
        columns: dict[str, Any] = {name: [getattr(c, name) for c in chunks] for name in _CHUNK_FIELDS}
        flat = pa.array(matrix.ravel(), type=pa.float32())
        columns["vector"] = pa.FixedSizeListArray.from_arrays(flat, self.dimensions)
        for name, source in _FOLDED_COLUMNS.items():
            columns[name] = [folded(value) for value in columns[source]]
        return pa.Table.from_pydict(columns, schema=self.schema)

    async def write_version(
        self, course_id: str, version: int, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
    ) -> int:
        """(Re)build one course version: drop what an earlier attempt left, write rows, build the indexes."""
        from lancedb.index import FTS, IvfFlat

        name = self._table_name(version)
        data = await asyncio.to_thread(self._arrow, course_id, version, chunks, vectors)
        db = await self._db(course_id)
        self._forget(course_id, version)
        # Dropping first (not just mode="overwrite") also deletes the data files of a crashed attempt, which
        # no manifest references; "overwrite" then tolerates a concurrent retry re-creating it in between.
        await db.drop_table(name, ignore_missing=True)
        table = await db.create_table(name, data, mode="overwrite")
        if data.num_rows >= self.vector_index_min_rows:
            # IVF_FLAT: exact distances inside the probed partitions (no quantization loss), builds in seconds
            await table.create_index("vector", config=IvfFlat(distance_type="cosine"))
        # Every word kept, stop words too: "WHERE" and "HAVING" are a SQL course's keywords (`keyword_terms` leaves
        # the stop words out of a query that has other words).
        fts = FTS(with_position=False, stem=True, remove_stop_words=False, ascii_folding=True)
        await table.create_index("folded_text", config=fts)
        # The heading path ("Chlorophyll > Accessory pigments"): a Markdown or HTML heading is not in its section's
        # text, and a student searches the section titles they see (explore7 F5).
        await table.create_index("folded_location", config=fts)
        await table.create_index("folded_title", config=fts)  # built last: its presence marks the version complete
        return data.num_rows

    async def drop_version(self, course_id: str, version: int) -> None:
        self._forget(course_id, version)
        db = await self._db(course_id)
        await db.drop_table(self._table_name(version), ignore_missing=True)

    async def delete_source(
        self, course_id: str, version: int, *, source_type: Literal["lesson", "material"], source_id: str
    ) -> int:
        """Remove the rows of one source from one version: a Lance delete (deletion files and a new table version;
        the full-text and vector indexes skip deleted rows, nothing is rebuilt). Idempotent; no table → 0."""
        if source_type not in ("lesson", "material"):
            raise ValueError(f"not a source type: {source_type!r}")
        table = await self._table(course_id, version)
        if table is None:
            return 0
        result = await table.delete(
            f"source_type = {_sql_string(source_type)} AND source_id = {_sql_string(source_id)}"
        )
        return int(result.num_deleted_rows)

    # --- reads ------------------------------------------------------------------------------------

    async def versions(self, course_id: str) -> list[int]:
        db = await self._db(course_id)
        found: list[int] = []
        token: str | None = None
        while True:
            page = await db.list_tables(page_token=token)
            found += [int(m.group(1)) for name in page.tables if (m := _TABLE.fullmatch(name))]
            token = page.page_token
            if not token:
                return sorted(found)

    async def count(self, course_id: str, version: int) -> int:
        table = await self._table(course_id, version)
        return 0 if table is None else int(await table.count_rows())

    async def search(
        self,
        course_id: str,
        version: int,
        *,
        query: str,
        vector: Sequence[float] | None,
        k: int,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]:
        """Top-k chunks of one version; unknown version → []. Scores: vector = cosine similarity, keyword = BM25,
        hybrid = RRF of the two rankings (each hit also carries the similarity and BM25 score it had). Storage
        that cannot be read: `Unavailable` (503 `index_unavailable`)."""
        k = min(int(k), MAX_K)
        text = sanitize_query(query) if mode != "vector" else ""
        qvec = None if vector is None or mode == "keyword" else np.asarray(vector, dtype=np.float32)
        if k <= 0 or (not text and qvec is None):
            return []
        if qvec is not None and qvec.shape != (self.dimensions,):
            raise ValueError(f"query vector has shape {qvec.shape}, the index {self.dimensions} dimensions")
        try:
            return await self._search(course_id, version, text, qvec, k, mode)
        except (OSError, RuntimeError) as exc:
            # Lance's own I/O errors come as RuntimeError("lance error: LanceError(IO) ...") or OSError: the index's
            # storage is unusable (a failed mount, a path replaced), not a bug of the request: 503 with a stable
            # code, and the path in the log (explore40 F3: 500 `internal_error`).
            if isinstance(exc, RuntimeError) and "lance error" not in str(exc).lower():
                raise
            log.error("the content index of course %s v%s could not be read: %s", course_id, version, exc)
            raise Unavailable(
                "the course's content index cannot be read right now; an operator has been told",
                code="index_unavailable",
            ) from exc

    async def _search(
        self, course_id: str, version: int, text: str, qvec: np.ndarray | None, k: int, mode: SearchMode
    ) -> list[Hit]:
        from lancedb.query import FullTextOperator, MultiMatchQuery
        from lancedb.rerankers import RRFReranker

        table = await self._table(course_id, version)
        if table is None:
            return []
        fields = self._keyword_columns.get((self._course_dir(course_id), version), ["text", "title"])
        text = keyword_terms(text)
        if text and fields[0] in _FOLDED_COLUMNS:  # the query folded as the columns are
            text = folded(text)
        elif text and fields[0] in _KEYWORD_COLUMNS:  # the query's CJK runs as bigrams, as the columns have them
            text = cjk_bigrams(text)
        boosts = [1.0, *[TITLE_BOOST] * (len(fields) - 1)]  # the title and the heading path help, never dominate
        fts = MultiMatchQuery(text, fields, boosts=boosts, operator=FullTextOperator.OR) if text else None
        columns = [*_CHUNK_FIELDS]
        if fts is not None and qvec is not None:
            q: Any = (
                table.query()
                .nearest_to_text(fts)
                .nearest_to(qvec)
                .distance_type("cosine")
                .nprobes(self.nprobes)
                .rerank(RRFReranker(K=RRF_K, return_score="all"))
                .select([*columns, "vector"])
            )
        elif qvec is not None:
            q = table.query().nearest_to(qvec).distance_type("cosine").nprobes(self.nprobes).select(columns)
        else:
            q = table.query().nearest_to_text(fts).select([*columns, "_score"])
        result: pa.Table = await q.limit(k).to_arrow()
        return await asyncio.to_thread(self._hits, result, qvec, mode)

    @staticmethod
    def _hits(result: pa.Table, qvec: np.ndarray | None, mode: SearchMode) -> list[Hit]:
        rows = result.to_pylist()
        hits: list[Hit] = []
        for rank, row in enumerate(rows, 1):
            distance, bm25 = row.get("_distance"), row.get("_score")
            similarity = None if distance is None else 1.0 - float(distance)
            if similarity is None and qvec is not None and row.get("vector") is not None:
                # found by keywords only: its similarity is still known, and the assistant's floor needs it
                v = np.asarray(row["vector"], dtype=np.float32)
                similarity = float(v @ qvec / ((np.linalg.norm(v) * np.linalg.norm(qvec)) or 1.0))
            if "_relevance_score" in row:
                score = float(row["_relevance_score"])
            elif mode == "hybrid":  # one leg only (no query text, or no vector): its RRF score alone
                score = 1.0 / (RRF_K + rank)
            else:
                score = similarity if similarity is not None else float(bm25 or 0.0)
            chunk = Chunk(**{name: row[name] for name in _CHUNK_FIELDS})
            keyword = None if bm25 is None else float(bm25)
            hits.append(Hit(chunk=chunk, score=score, vector_score=similarity, keyword_score=keyword))
        return hits


def _sql_string(value: str) -> str:
    """A SQL string literal for a Lance filter: quotes doubled, so a value can never end the literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _check(index: LanceVectorIndex) -> VectorIndex:
    return index  # mypy: the adapter satisfies the port
