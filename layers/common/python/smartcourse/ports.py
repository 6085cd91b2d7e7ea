"""The ports: every outside technology the services use, as a typed Protocol (adapters implement them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Doc = dict[str, Any]


class DocumentStore(Protocol):
    """Whole-document reads and writes keyed by (collection, id); writes are idempotent upserts."""

    async def get(self, collection: str, doc_id: str) -> Doc | None: ...
    async def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Doc]: ...
    async def put(self, collection: str, doc_id: str, doc: Doc) -> None: ...
    async def delete(self, collection: str, doc_id: str) -> bool: ...
    async def find(self, collection: str, where: Doc) -> list[Doc]: ...
    async def close(self) -> None: ...


class FileStore(Protocol):
    """Opaque blobs by key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def delete(self, key: str) -> None: ...
    async def presigned_url(self, key: str, filename: str, *, content_type: str | None = None) -> str | None: ...


class WorkflowStarter(Protocol):
    """Starts and inspects workflows by *name*: services never import workflow classes."""

    async def start(self, workflow: str, arg: Any, *, workflow_id: str) -> str:
        """Start `workflow` with id `workflow_id` (REJECT_DUPLICATE); returns its status name
        ("running" when started now, else the existing run's status)."""
        ...

    async def status(self, workflow_id: str) -> str:
        """The run's status name ("running", "completed", "failed", ...), or "not_started" if unknown."""
        ...

    async def steps(self, workflow_id: str, *, completed: bool = False) -> list[dict[str, Any]]:
        """The workflow's steps, [{name, status, ...}]: from its `steps` query (raises if no worker answers in
        time), or, for a `completed` run, from its result when that holds them (no worker replays the run)."""
        ...

    async def cancel(self, workflow_id: str) -> bool:
        """Ask the run to cancel (it cleans up and ends `canceled`); False if it is unknown or already closed."""
        ...


# --- the intelligent half ----------------------------------------------------------------------


class Embedder(Protocol):
    """Text → unit-length vectors. `name` identifies the model (it keys the embedding cache)."""

    name: str
    dimensions: int

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...
    async def embed_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a course version, with where it came from (for citations)."""

    chunk_id: str
    course_id: str
    version: int
    source_type: Literal["lesson", "material"]
    source_id: str
    title: str
    location: str  # "page 3" or "Module 1 > Lesson 2 > Heading"
    text: str
    content_hash: str
    ordinal: int = 0


@dataclass(frozen=True)
class Hit:
    """A search result: the chunk and its fused score (higher is better)."""

    chunk: Chunk
    score: float
    vector_score: float | None = None
    keyword_score: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


SearchMode = Literal["hybrid", "vector", "keyword"]


class VectorIndex(Protocol):
    """Chunks with vectors, per course *version*. A version is written once, then read, dropped, or loses the rows
    of one source (`delete_source`: a material deleted from a live course); nothing else ever changes it."""

    async def write_version(
        self, course_id: str, version: int, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
    ) -> int:
        """(Re)build the index of one course version, replacing anything a failed attempt left. Returns rows."""
        ...

    async def count(self, course_id: str, version: int) -> int: ...

    async def search(
        self,
        course_id: str,
        version: int,
        *,
        query: str,
        vector: Sequence[float] | None,
        k: int,
        mode: SearchMode = "hybrid",
    ) -> list[Hit]: ...

    async def drop_version(self, course_id: str, version: int) -> None: ...

    async def delete_source(
        self, course_id: str, version: int, *, source_type: Literal["lesson", "material"], source_id: str
    ) -> int:
        """Remove every row of one source from one version (idempotent; an unknown version → 0). Returns the rows
        removed. Readers through this object see the change at once, other processes within a bounded delay."""
        ...

    async def versions(self, course_id: str) -> list[int]: ...


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


class OutputTruncated(Exception):
    """The model reached its output limit (`max_tokens`) before it finished a reply that must be whole (JSON)."""

    def __init__(self, max_tokens: int) -> None:
        super().__init__(f"the reply was cut off at the {max_tokens}-token output limit before it was complete")
        self.max_tokens = max_tokens


class ChatModel(Protocol):
    """An instruction-following model behind an OpenAI-compatible API (or a scripted fake in unit tests)."""

    name: str

    async def complete(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> str: ...

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> AsyncIterator[str]: ...
