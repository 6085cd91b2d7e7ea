"""The composition root: builds every adapter from settings, once per process (and event loop)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from smartcourse.adapters.documents import DocumentStore, MongoDocumentStore, PostgresDocumentStore
from smartcourse.adapters.files import FileStore, LocalFileStore, S3FileStore
from smartcourse.adapters.temporal import TemporalWorkflowStarter
from smartcourse.config import (
    DEFAULT_MAX_OVERFLOW,
    DEFAULT_POOL_SIZE,
    REDIS_TIMEOUT_SECONDS,
    Settings,
    get_settings,
    redis_retry,
)
from smartcourse.db import UnitOfWork, make_engine
from smartcourse.engines import EmbeddedEngines
from smartcourse.errors import Unavailable
from smartcourse.ports import WorkflowStarter

log = logging.getLogger(__name__)

_embedded: dict[Path, EmbeddedEngines] = {}


def embedded_engines(settings: Settings) -> EmbeddedEngines:
    """The process's handle on the embedded engines of `settings.data_dir` it started (stopped at exit). One per data
    directory: a process asking for two (the test suite's, after a test built a container of the default settings)
    used to get the first one's for both, and so another database than its settings named."""
    key = Path(settings.data_dir).resolve()
    engines = _embedded.get(key)
    if engines is None:
        engines = _embedded[key] = EmbeddedEngines(settings.data_dir)
        atexit.register(engines.stop)
    return engines


def resolve_settings(settings: Settings, *, need: tuple[str, ...] = ("db",)) -> Settings:
    """Fill in the URL of every unset engine in `need` by starting its embedded server."""
    updates: dict[str, Any] = {}
    eng = embedded_engines(settings)
    if "db" in need and not settings.database_url:
        updates["database_url"] = eng.postgres_url()
    if "redis" in need and not settings.redis_url:
        updates["redis_url"] = eng.redis_url()
    if "temporal" in need and not settings.temporal_address:
        updates["temporal_address"] = eng.temporal_address()
    if "smtp" in need and not settings.smtp_host:
        host, port = eng.smtp_address(settings.mail_dir)
        updates["smtp_host"], updates["smtp_port"] = host, port
    if "llm" in need and not settings.llm_base_url:
        updates["llm_base_url"] = eng.llm_base_url()
    return settings.model_copy(update=updates) if updates else settings


@dataclass
class Container:
    """Everything a handler, activity or consumer needs, built from one Settings."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    documents: DocumentStore
    files: FileStore
    loop: asyncio.AbstractEventLoop
    _temporal: Any = field(default=None, repr=False)
    _redis: Any = field(default=None, repr=False)
    _chat: Any = field(default=None, repr=False)
    #: `_chat` is the embedded model server this container found or started (not LLM_BASE_URL, not a test's fake).
    _chat_embedded: bool = field(default=False, repr=False)
    _embedded_llm_url: str | None = field(default=None, repr=False)
    _embedder: Any = field(default=None, repr=False)
    _vector_index: Any = field(default=None, repr=False)
    _workflow_starter: Any = field(default=None, repr=False)
    _temporal_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessionmaker)

    async def temporal(self) -> Any:
        """The Temporal client, connected on first use."""
        async with self._temporal_lock:
            if self._temporal is None:
                from temporalio.client import Client
                from temporalio.contrib.opentelemetry import TracingInterceptor

                from smartcourse import telemetry
                from smartcourse.adapters.temporal_converter import data_converter

                forward_temporal_core_logs()
                settings = self.settings
                if not settings.temporal_address:
                    settings = resolve_settings(settings, need=("temporal",))
                    self.settings = settings
                try:
                    self._temporal = await Client.connect(
                        settings.temporal_address or "",
                        namespace=settings.temporal_namespace,
                        # Temporal Cloud: TLS and an API key (an API key implies TLS).
                        tls=settings.temporal_tls or bool(settings.temporal_api_key),
                        api_key=settings.temporal_api_key or None,
                        data_converter=data_converter,
                        # Workflows started here, and the workflows and activities of workers built on this
                        # client, continue the caller's trace (the worker inherits client interceptors).
                        interceptors=[TracingInterceptor(telemetry.tracer())],
                    )
                except Exception as exc:  # connection failures come in several types
                    raise Unavailable(
                        f"workflow engine unreachable at {settings.temporal_address}",
                        code="workflow_engine_unavailable",
                    ) from exc
            return self._temporal

    def chat_model(self) -> Any:
        """The assistant's ChatModel (langchain-openai against LLM_BASE_URL, else the embedded llama.cpp server)."""
        if self._chat is not None and self._chat_embedded:
            self._follow_embedded_llm()
        if self._chat is None:
            from smartcourse.adapters.chat import OpenAIChatModel

            if not self.settings.llm_base_url:
                # A span of its own: the first ask starts the embedded model, seconds a trace showed as a gap
                # (explore55 F11).
                from smartcourse import telemetry

                with telemetry.tracer().start_as_current_span("embedded model"):
                    self.settings = resolve_settings(self.settings, need=("llm",))
                self._embedded_llm_url = self.settings.llm_base_url
            self._chat_embedded = self._embedded_llm_url is not None and (
                self.settings.llm_base_url == self._embedded_llm_url
            )
            self._chat = OpenAIChatModel.from_settings(self.settings)
        return self._chat

    def _follow_embedded_llm(self) -> None:
        """The embedded model server this process uses has exited (killed, out of memory): take the one another
        process started since, or start it again (explore40 F1: the API process that had started it kept asking the
        dead address, every other ask answered 503, until the whole product restarted). One read of its pid file
        while it runs."""
        from smartcourse import telemetry
        from smartcourse.adapters.chat import OpenAIChatModel

        old = self.settings.llm_base_url
        if embedded_engines(self.settings).llm_running_address() == old:
            return
        with telemetry.tracer().start_as_current_span("embedded model"):
            url = embedded_engines(self.settings).llm_base_url()
        log.warning("the embedded chat model at %s has exited; the assistant now asks the one at %s", old, url)
        self.settings = self.settings.model_copy(update={"llm_base_url": url})
        self._embedded_llm_url = url
        self._chat = OpenAIChatModel.from_settings(self.settings)

    def embedded_llm(self) -> tuple[str | None, bool] | None:
        """The embedded chat model as `/health` probes it from any API process, whether or not this one has asked it
        yet (`EmbeddedEngines.llm_state`: its address while it runs, whether it has exited); None when the assistant
        asks an endpoint of the operator's (LLM_BASE_URL) or a test's model. explore41 N2: each API process said only
        what it had itself used, so `/health` answered `ok` or `llm: down` by the process it reached."""
        if self._chat is not None and not self._chat_embedded:
            return None
        if self.settings.llm_base_url and not self._chat_embedded:
            return None
        return embedded_engines(self.settings).llm_state()

    def use_chat_model(self, model: Any) -> None:
        """Install a ChatModel (tests pass a scripted fake of the port)."""
        self._chat = model
        self._chat_embedded = False

    def embedder(self) -> Any:
        """The Embedder (local ONNX MiniLM, or EMBEDDINGS_BASE_URL), behind the PostgreSQL embedding cache."""
        if self._embedder is None:
            from smartcourse.adapters.embedders import CachedEmbedder, PostgresEmbeddingCache, build_embedder

            self._embedder = CachedEmbedder(build_embedder(self.settings), PostgresEmbeddingCache(self.sessionmaker))
        return self._embedder

    def use_embedder(self, embedder: Any) -> None:
        """Install an Embedder (tests inject failures or count calls through it)."""
        self._embedder = embedder

    def vector_index(self) -> Any:
        """The VectorIndex: LanceDB under INDEX_URI (a directory under the data dir, or s3://...)."""
        if self._vector_index is None:
            from smartcourse.adapters.lance_index import LanceVectorIndex

            self._vector_index = LanceVectorIndex(
                self.settings.resolved_index_uri,
                dimensions=self.embedder().dimensions,
                storage_options=index_storage_options(self.settings),
            )
        return self._vector_index

    def use_vector_index(self, index: Any) -> None:
        self._vector_index = index

    async def invalidate_course_cache(self, course_id: Any) -> None:
        """Drop cached catalogue pages and this course's cached views (after publish, update, archive)."""
        from smartcourse.services import catalog_cache

        await catalog_cache.invalidate(self, course_id)

    def workflow_starter(self) -> WorkflowStarter:
        """The WorkflowStarter port (Temporal): services start workflows by name through it."""
        if self._workflow_starter is None:
            self._workflow_starter = TemporalWorkflowStarter(
                self.temporal, task_queue=self.settings.temporal_task_queue
            )
        return self._workflow_starter

    def use_workflow_starter(self, starter: Any) -> None:
        """Install a WorkflowStarter (tests pass a fake of the port)."""
        self._workflow_starter = starter

    def messaging_probes(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """Probes (for /health) of the messaging engines this deployment is configured with: Kafka (a metadata
        request, with the relay's security settings), its schema registry (GET /subjects), and Celery's broker when
        it is not the Redis probed already (a connection, in a thread: kombu is synchronous). Kafka and RabbitMQ down
        left /health `ok` with every process `up` (explore24 F3, F4)."""
        s = self.settings
        probes: dict[str, Callable[[], Awaitable[None]]] = {}
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            # Deployed, the API functions do not talk to these (MSK invokes the consumers; its IAM listener needs a
            # token signer they lack): CloudWatch watches them, not /health.
            return probes
        if s.kafka_bootstrap_servers:

            async def kafka() -> None:
                from aiokafka.client import AIOKafkaClient

                from smartcourse.entrypoints.kafka import connection_options

                client = AIOKafkaClient(
                    bootstrap_servers=s.kafka_bootstrap_servers, request_timeout_ms=2500, **connection_options(s)
                )
                try:
                    await client.bootstrap()
                finally:
                    await client.close()

            probes["kafka"] = kafka
        if s.schema_registry_url:

            async def schema_registry() -> None:
                import httpx

                async with httpx.AsyncClient(timeout=2.5) as http:
                    (await http.get(f"{(s.schema_registry_url or '').rstrip('/')}/subjects")).raise_for_status()

            probes["schema_registry"] = schema_registry
        if s.celery_broker_url:

            def connect() -> None:
                from kombu import Connection

                with Connection(s.celery_broker_url, connect_timeout=2.5) as conn:
                    conn.connect()

            async def broker() -> None:
                await asyncio.to_thread(connect)

            probes["broker"] = broker
        return probes

    def redis(self) -> Any:
        """An asyncio Redis client (redis-py): a command waits at most REDIS_TIMEOUT_SECONDS to connect, to read."""
        if self._redis is None:
            import redis.asyncio as aioredis

            if not self.settings.redis_url:
                self.settings = resolve_settings(self.settings, need=("redis",))
            self._redis = aioredis.from_url(
                self.settings.redis_url or "",
                decode_responses=True,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                retry=redis_retry(),
            )
        return self._redis

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        await self.documents.close()
        await self.engine.dispose()


def index_storage_options(settings: Settings) -> dict[str, str] | None:
    """Object-store options for an s3:// index: the same endpoint and credentials as the file store."""
    import os

    if not settings.resolved_index_uri.startswith("s3"):
        return None
    from smartcourse.adapters.lance_index import s3_storage_options

    return s3_storage_options(
        settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=os.environ.get("AWS_ACCESS_KEY_ID"),
        secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        session_token=os.environ.get("AWS_SESSION_TOKEN"),
    )


def build_file_store(settings: Settings) -> FileStore:
    """S3 when a bucket is configured, else the local directory (shared by the API and the Celery tasks)."""
    if settings.uses_s3:
        return S3FileStore(settings.s3_bucket or "", settings.s3_endpoint_url, settings.s3_region)
    return LocalFileStore(settings.files_dir)


#: The JSONB document store's own pool, per process (one statement per checkout: it needs few connections).
DOCUMENT_POOL_SIZE, DOCUMENT_POOL_OVERFLOW = 5, 5


_core_logs_forwarded = False


def forward_temporal_core_logs() -> None:
    """temporalio's Rust core logs through Python's logging, as JSON lines like the rest of the process's, at the
    levels it uses by default (warnings of the core, errors of the rest). It printed coloured text lines to stderr,
    with no process name or trace: 144 of them in a minute of Temporal outage, half the log (explore18 F6). Set
    before the process's first client; once per process."""
    global _core_logs_forwarded
    if _core_logs_forwarded:
        return
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=logging_config)), error_if_already_set=False)
    _core_logs_forwarded = True


def connections_per_process(pool_size: int, max_overflow: int) -> int:
    """The most connections one process opens: its main pool, full, and its document store's (`build_container`)."""
    return pool_size + max_overflow + min(pool_size, DOCUMENT_POOL_SIZE) + min(max_overflow, DOCUMENT_POOL_OVERFLOW)


def pool_within(
    allowance: int, *, pool_size: int = DEFAULT_POOL_SIZE, max_overflow: int = DEFAULT_MAX_OVERFLOW
) -> tuple[int, int]:
    """The main pool (size, overflow) of a process allowed `allowance` connections: the given one if it fits, else
    less overflow first, then fewer kept connections; never under one kept connection and no overflow."""
    while connections_per_process(pool_size, max_overflow) > allowance and (max_overflow > 0 or pool_size > 1):
        if max_overflow > 0:
            max_overflow -= 1
        else:
            pool_size -= 1
    return pool_size, max_overflow


def build_container(
    settings: Settings, *, pool_size: int | None = None, max_overflow: int | None = None, pool_timeout: float = 30.0
) -> Container:
    """The container; the pool arguments size the main engine (the document store's pool is at most as large),
    else the settings do (DB_POOL_SIZE, DB_MAX_OVERFLOW)."""
    pool_size = settings.db_pool_size if pool_size is None else pool_size
    max_overflow = settings.db_max_overflow if max_overflow is None else max_overflow
    settings = resolve_settings(settings, need=("db",))
    url = settings.database_url or ""
    timeout = settings.db_statement_timeout or None  # 0: no limit
    engine = make_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout, statement_timeout=timeout
    )
    documents: DocumentStore
    if settings.mongodb_url:
        documents = MongoDocumentStore(settings.mongodb_url, settings.mongodb_database)
    else:
        # Its own pool, never the main engine's: a request holding a unit-of-work connection that waited for a
        # second one from the same pool stalled the whole API once concurrency exceeded the pool (issue #7).
        doc_engine = make_engine(
            url,
            pool_size=min(pool_size, DOCUMENT_POOL_SIZE),
            max_overflow=min(max_overflow, DOCUMENT_POOL_OVERFLOW),
            pool_timeout=pool_timeout,
            application_name="smartcourse-documents",
            statement_timeout=timeout,
        )
        documents = PostgresDocumentStore(doc_engine, owns_engine=True)
    return Container(
        settings=settings,
        engine=engine,
        sessionmaker=async_sessionmaker(engine, expire_on_commit=False),
        documents=documents,
        files=build_file_store(settings),
        loop=asyncio.get_running_loop(),
    )


_container: Container | None = None


async def get_container() -> Container:
    """The process-wide container; rebuilt if the event loop changed (Mangum runs one per call)."""
    global _container
    loop = asyncio.get_running_loop()
    if _container is None or _container.loop is not loop or loop.is_closed():
        _container = build_container(get_settings())
    return _container


def set_container(container: Container | None) -> None:
    """Install a container (tests and the worker build their own)."""
    global _container
    _container = container
