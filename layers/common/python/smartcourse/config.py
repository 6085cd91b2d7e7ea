"""Settings read from the environment; an unset engine URL means "use the embedded engine"."""

from __future__ import annotations

import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from smartcourse.adapters.secrets_manager import SecretsManagerSettingsSource

# Secrets that were published in this repository at some point: refused everywhere.
KNOWN_SECRETS = frozenset(
    {
        "dev-only-insecure-secret-change-me-0123456789",
        "dev-only-compose-secret-change-me-0123456789",
    }
)
_WEAK_MARKERS = ("change-me", "changeme", "dev-only", "insecure", "secret", "password")
MIN_SECRET_CHARS = 32
MIN_SECRET_BITS = 128
DEV_SECRET_FILE = "jwt_secret"
#: Secret files this process created (so `smartcourse run` can say it generated one).
created_secret_files: set[Path] = set()
#: Data directories this process made to hold such a file (a one-off command removes them again when left empty).
created_secret_dirs: set[Path] = set()


def api_workers() -> int:
    """API processes of `smartcourse run`: SMARTCOURSE_API_WORKERS, else one per usable core."""
    raw = os.environ.get("SMARTCOURSE_API_WORKERS", "").strip()
    if raw:
        return max(1, int(raw))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1)


def estimated_entropy_bits(secret: str) -> float:
    """Shannon estimate of a string's entropy (length times bits per character); underestimates random strings."""
    if not secret:
        return 0.0
    n = len(secret)
    per_char = -sum(c / n * math.log2(c / n) for c in Counter(secret).values())
    return per_char * n


def secret_problem(secret: str) -> str | None:
    """Why `secret` cannot sign production tokens, or None when it can."""
    if secret in KNOWN_SECRETS:
        return "is a published example secret"
    if len(secret) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    if any(marker in secret.lower() for marker in _WEAK_MARKERS):
        return "looks like a placeholder"
    if estimated_entropy_bits(secret) < MIN_SECRET_BITS:
        return f"has less than {MIN_SECRET_BITS} bits of entropy"
    return None


def dev_secret(data_dir: Path) -> tuple[str, bool]:
    """The data directory's own random signing secret, created (mode 0600) on first use; (secret, created)."""
    path = data_dir / DEV_SECRET_FILE
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    if not data_dir.exists():
        created_secret_dirs.add(data_dir.resolve())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = data_dir / f".{DEV_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(tmp, path)  # atomic and exclusive: two first starts agree on one secret
        created = True
        created_secret_files.add(path.resolve())
    except FileExistsError:
        created = False
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip(), created


_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})


def default_public_base_url(environ: Mapping[str, str] | None = None) -> str:
    """The base of public links when PUBLIC_BASE_URL is unset: http://HOST:PORT, the address `smartcourse run` and
    `smartcourse serve` listen on when given no --host/--port (HOST 127.0.0.1, PORT 8000 by default; a wildcard
    HOST such as 0.0.0.0 names no address a reader can use, so the loopback one stands for it)."""
    env = os.environ if environ is None else environ
    host = env.get("HOST", "").strip()
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    port = env.get("PORT", "").strip()
    return f"http://{host}:{port if port.isdigit() else '8000'}"


#: DB_STATEMENT_TIMEOUT of the API processes when the environment sets none (`smartcourse serve`, the SAM template):
#: seconds a request may wait on one database statement before it answers 503 (a stalled server) instead of hanging.
#: Giving up the connection then waits about as long again (`db.make_engine`): a request answers within ~10 s.
API_DB_STATEMENT_TIMEOUT = 5.0

#: CORS for the configured origins, the same in the app's middleware (`api.app.install_security`) and at the API
#: Gateway (the SAM template: an HTTP API answers CORS itself and ignores the functions' headers). Exposed: Link and
#: X-Total-Count (api/paging.py), Location (api/created.py), X-Trace-Id (api/edge.py), Retry-After,
#: Idempotent-Replayed (api/idempotency.py).
CORS_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS")
#: Allowed besides: a browser's trace context (OpenTelemetry's fetch instrumentation adds `traceparent` to every
#: request), and what common client stacks send (`X-Requested-With`, `Cache-Control`): refused at the preflight, every
#: request of such a client failed (explore78 F9).
CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-None-Match",
    "traceparent",
    "tracestate",
    "X-Requested-With",
    "Cache-Control",
)
CORS_EXPOSE_HEADERS = (
    "Retry-After",
    "X-Total-Count",
    "X-Unread-Count",
    "Link",
    "Location",
    "X-Trace-Id",
    "ETag",
    "X-Interaction-Id",
    "X-Conversation-Id",
    "Idempotent-Replayed",
    "Content-Disposition",
    "RateLimit-Policy",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)
CORS_MAX_AGE = 600

#: Each process's main database pool unless DB_POOL_SIZE / DB_MAX_OVERFLOW say otherwise (`smartcourse run` sizes
#: them to the server: `cli.pool_plan`).
DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW = 10, 20

#: How long a Redis client of the API (the container's, the rate limiter's) waits to connect, then for each reply.
#: redis-py before 6 waits for ever by default: a hung Redis would hold every request that asks it (a login asks it
#: up to four times) instead of failing open.
REDIS_TIMEOUT_SECONDS = 5.0


def redis_retry() -> Any:
    """What a Redis client of the API does with a command whose connection was found dropped: once more, on a new
    connection, at once. redis-py's pooled connections retry nothing by default, so a connection the server closed
    while the process was idle (a Redis restart or failover, or a Lambda container frozen between invocations)
    failed its next command: a login let through without its rate limit (explore33 F3). A timeout is not retried:
    a hung Redis still costs a call REDIS_TIMEOUT_SECONDS."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError

    return Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))


class Settings(BaseSettings):
    """Every knob of SmartCourse; see README "Pointing at external engines"."""

    # A refused value is not echoed in the error: a JWT_SECRET a few characters too short, or a DATABASE_URL with its
    # password, went whole into the traceback and the logs (explore16 F2).
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # After the environment and .env: SMARTCOURSE_SECRETS_ARN's secret fills what they leave unset (how the
        # deployed functions get JWT_SECRET, DATABASE_URL, REDIS_URL: see docs/operations.md "Deploy to AWS").
        secrets_manager = SecretsManagerSettingsSource(settings_cls)
        return init_settings, env_settings, dotenv_settings, secrets_manager, file_secret_settings

    environment: str = Field(default="development", alias="SMARTCOURSE_ENV")
    data_dir: Path = Field(default=Path("var"), alias="SMARTCOURSE_DATA_DIR")

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    # Connections of each process's main pool: kept open, and allowed beyond them under a burst. Every process has
    # one (the document store's is at most 5 + 5 more): their sum must stay under the server's max_connections.
    db_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1, alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(default=DEFAULT_MAX_OVERFLOW, ge=0, alias="DB_MAX_OVERFLOW")
    # The longest one database statement (or a new connection) may keep a caller waiting: past it the statement is
    # abandoned and the request answers 503 instead of hanging while PostgreSQL is stalled (frozen, a full disk, a
    # network cut that keeps sockets open). Unset or 0: no limit, for the worker's long steps. `smartcourse serve` sets
    # API_DB_STATEMENT_TIMEOUT seconds for the API processes unless told otherwise, and the SAM template does for the
    # functions.
    db_statement_timeout: float | None = Field(default=None, ge=0, alias="DB_STATEMENT_TIMEOUT")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    mongodb_url: str | None = Field(default=None, alias="MONGODB_URL")
    mongodb_database: str = Field(default="smartcourse", alias="MONGODB_DATABASE")
    temporal_address: str | None = Field(default=None, alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", alias="TEMPORAL_NAMESPACE")
    temporal_task_queue: str = Field(default="smartcourse", alias="TEMPORAL_TASK_QUEUE")
    # A Temporal frontend behind TLS (Temporal Cloud, a self-hosted one with TLS), and its API key (Temporal Cloud;
    # sent as a bearer token, TLS implied). Plaintext by default, as the dev server and the stack's run.
    temporal_tls: bool = Field(default=False, alias="TEMPORAL_TLS")
    temporal_api_key: str = Field(default="", alias="TEMPORAL_API_KEY", repr=False)
    kafka_bootstrap_servers: str | None = Field(default=None, alias="KAFKA_BOOTSTRAP_SERVERS")
    # How the relay, the consumers and the topic set-up connect to Kafka: an MSK listener with SASL/SCRAM is
    # SASL_SSL + SCRAM-SHA-512 (port 9096), its TLS listener SSL (9094). MSK's IAM listener needs an OAUTHBEARER
    # token signer, which these processes do not have (docs/operations.md).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512", alias="KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str = Field(default="", alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: str = Field(default="", alias="KAFKA_SASL_PASSWORD", repr=False)
    schema_registry_url: str | None = Field(default=None, alias="SCHEMA_REGISTRY_URL")
    # Prefix of every Kafka topic, consumer group and registry subject: environments (or tests) sharing a cluster.
    events_namespace: str = Field(default="", alias="EVENTS_NAMESPACE")
    celery_broker_url: str | None = Field(default=None, alias="CELERY_BROKER_URL")
    celery_result_backend: str | None = Field(default=None, alias="CELERY_RESULT_BACKEND")
    celery_queue: str = Field(default="smartcourse", alias="CELERY_QUEUE")
    celery_max_retries: int = Field(default=8, alias="CELERY_MAX_RETRIES")
    #: The e-mail tasks' retries (backoff 1 s, 2 s, ... capped at 600 s, full jitter): 24 span 57-110 min, so a mail
    #: relay down for about an hour holds e-mails and does not fail them (explore55 F1: 8 retries gave up after 4.5
    #: minutes, and each e-mail then waited for an admin's replay).
    email_max_retries: int = Field(default=24, ge=0, alias="EMAIL_MAX_RETRIES")
    # Redis broker only: an unacked task comes back after this long (must exceed the longest task).
    celery_visibility_timeout: int = Field(default=3600, alias="CELERY_VISIBILITY_TIMEOUT")
    # The e-mail sweeper (Celery beat) runs this often and enqueues again the e-mails never attempted for this long
    # (their enqueue was lost with a killed worker): the longest such an e-mail waits is about twice this.
    email_sweep_seconds: float = Field(default=60.0, gt=0, alias="EMAIL_SWEEP_SECONDS")
    s3_endpoint_url: str | None = Field(default=None, alias="S3_ENDPOINT_URL")
    s3_bucket: str | None = Field(default=None, alias="S3_BUCKET")
    s3_region: str = Field(default="us-east-1", alias="AWS_DEFAULT_REGION")
    smtp_host: str | None = Field(default=None, alias="SMTP_HOST")
    smtp_port: int = Field(default=1025, alias="SMTP_PORT")
    mail_from: str = Field(default="SmartCourse <no-reply@smartcourse.local>", alias="MAIL_FROM")

    # Unset in development/test: a random secret kept in <data_dir>/jwt_secret. Required elsewhere.
    jwt_secret: str = Field(default="", alias="JWT_SECRET", repr=False)
    jwt_issuer: str = Field(default="smartcourse", alias="JWT_ISSUER")
    # At least a minute: 0 or less made every token born expired, nobody could log in (explore58 F7).
    access_token_minutes: int = Field(default=15, ge=1, alias="ACCESS_TOKEN_MINUTES")
    # Who makes instructor accounts: `open`, anyone registering as one (the default, a platform open to authors);
    # `admins`, only an admin, by changing a registered account's role (a university whose certificates must name
    # only instructors it vetted: explore59 F2). Registering as a student is open either way.
    instructor_registration: Literal["open", "admins"] = Field(default="open", alias="INSTRUCTOR_REGISTRATION")
    # `admins`: an account's name is changed by an admin only (an academy whose certificates carry the HR name:
    # explore68 F7, a student renamed themselves "Chief Executive Officer" for the certificate and back).
    name_changes: Literal["anyone", "admins"] = Field(default="anyone", alias="NAME_CHANGES")
    refresh_token_days: int = Field(default=14, ge=1, alias="REFRESH_TOKEN_DAYS")
    # A spent refresh token presented again this soon after its rotation is a client's retry (the rotation's answer
    # was lost on the way: a phone between networks), answered with a new pair of the same login, not taken as theft
    # (explore68 F8: a retried refresh ended the login). 0: every reuse is theft.
    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=300, alias="REFRESH_REUSE_GRACE_SECONDS")
    # How long a login lasts however often it refreshes: its last refresh token expires this long after the login
    # (explore82 F2: a refresh every 14 days kept a session, a thief's too, for ever). REFRESH_TOKEN_DAYS still ends a
    # login left unused for that long.
    session_max_days: int = Field(default=90, ge=1, alias="SESSION_MAX_DAYS")

    # Where links that leave the API point (certificate verify_url, in the JSON and the PDF): PUBLIC_BASE_URL,
    # else this machine's server on HOST/PORT as `smartcourse run` and `serve` read them (default_public_base_url).
    public_base_url: str = Field(default_factory=lambda: default_public_base_url(), alias="PUBLIC_BASE_URL")
    # A path prefix the gateway puts before every route and the app must strip (Lambda behind an HTTP API stage
    # with a name: its requests arrive as /<stage>/health; `smartcourse template` sets it to "/${Stage}").
    # Stripped only from paths that start with it; unset or "/": none.
    api_base_path: str = Field(default="", alias="API_BASE_PATH")
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1, alias="MAX_UPLOAD_BYTES")
    # Any other request body (JSON): refused with 413 request_too_large past this, before it is read and parsed.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, alias="MAX_BODY_BYTES")
    rate_limit_per_minute: int = Field(default=600, alias="RATE_LIMIT_PER_MINUTE")
    # Limits in `limits` notation ("10/minute;100/hour"); per client IP and per account (see docs/security.md).
    login_rate_limit_ip: str = Field(default="30/minute;300/hour", alias="LOGIN_RATE_LIMIT_IP")
    login_rate_limit_account: str = Field(default="10/minute;60/hour", alias="LOGIN_RATE_LIMIT_ACCOUNT")
    register_rate_limit_ip: str = Field(default="10/minute;50/hour", alias="REGISTER_RATE_LIMIT_IP")
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto the API believes (uvicorn's list: addresses, CIDRs or
    # "*"). Unset: none, and a client's address is the connection's peer, so no client picks its own address for
    # the per-address limits above.
    forwarded_allow_ips: str | None = Field(default=None, alias="FORWARDED_ALLOW_IPS")
    # Consecutive wrong passwords allowed before an account locks for base·2^(n-free) seconds (capped).
    login_free_failures: int = Field(default=5, ge=1, alias="LOGIN_FREE_FAILURES")
    login_backoff_base_seconds: int = Field(default=2, ge=1, alias="LOGIN_BACKOFF_BASE_SECONDS")
    login_backoff_max_seconds: int = Field(default=900, ge=1, alias="LOGIN_BACKOFF_MAX_SECONDS")
    # A successful login hands the client a device token for the account, valid this long: presented with a later
    # login it puts that login under a back-off and a per-account window of that device's own, so wrong passwords
    # sent by others (which lock the account for unknown devices) do not lock its owner out (docs/security.md).
    login_device_token_days: int = Field(default=180, ge=1, alias="LOGIN_DEVICE_TOKEN_DAYS")
    # Forgotten passwords (POST /auth/password-reset): how long the e-mailed token is valid, how often one may be
    # asked for (per client address, and per account so nobody's mailbox is flooded), and the front end's page the
    # e-mail links to ("{token}" replaced; unset: the e-mail gives the token to paste into the app).
    password_reset_minutes: int = Field(default=30, ge=1, le=1440, alias="PASSWORD_RESET_MINUTES")
    # How long the link of an invitation (an account an admin made without a password: POST /users) stays good.
    invitation_days: int = Field(default=7, ge=1, le=60, alias="INVITATION_DAYS")
    # A sign-up is e-mailed a link proving the address is its owner's (explore82 F1: anyone could register as anyone).
    # `optional`: the account works before (its `email_verified_at` says whether it was proved); `required`: a
    # student enrolls, and an instructor makes or publishes a course, only once it is (403 `email_not_verified`);
    # `off`: no e-mail at sign-up (the owner may still ask for one). The test environment's default is `off`.
    email_verification: Literal["off", "optional", "required"] = Field(default="optional", alias="EMAIL_VERIFICATION")
    email_verification_days: int = Field(default=7, ge=1, le=60, alias="EMAIL_VERIFICATION_DAYS")
    # The front end's page the sign-up's e-mail links to ("{token}" replaced); unset: the e-mail gives the code to
    # paste into the app (POST /auth/verify-email).
    email_verification_url: str | None = Field(default=None, alias="EMAIL_VERIFICATION_URL")
    password_reset_rate_limit_ip: str = Field(default="5/minute;30/hour", alias="PASSWORD_RESET_RATE_LIMIT_IP")
    # Per address asked for *and* client address: three anonymous requests from elsewhere no longer spend the owner's
    # resets for an hour (explore30 F2); the address's mailbox is capped across all clients by the second.
    password_reset_rate_limit_account: str = Field(default="3/hour", alias="PASSWORD_RESET_RATE_LIMIT_ACCOUNT")
    password_reset_rate_limit_account_all: str = Field(default="10/hour", alias="PASSWORD_RESET_RATE_LIMIT_ACCOUNT_ALL")
    password_reset_url: str | None = Field(default=None, alias="PASSWORD_RESET_URL")
    # Argon2 hashes/verifications running at once (each uses ~64 MiB and a core for ~50 ms), off the event loop.
    password_hash_concurrency: int = Field(default=2, ge=1, alias="PASSWORD_HASH_CONCURRENCY")
    # Argon2id's cost (pwdlib's recommended: 3 passes over 64 MiB, 4 lanes). A stored hash keeps the cost it was made
    # with, so changing these affects new hashes only. Outside development at least OWASP's minimum (19 MiB, 2 passes);
    # the test environment defaults to 1 pass over 8 MiB (the suite's registrations and logins: 70 s of make test).
    password_hash_time_cost: int = Field(default=3, ge=1, le=20, alias="PASSWORD_HASH_TIME_COST")
    password_hash_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024, alias="PASSWORD_HASH_MEMORY_KIB")
    password_hash_parallelism: int = Field(default=4, ge=1, le=64, alias="PASSWORD_HASH_PARALLELISM")
    # Quiz attempts per student and quiz, and the wait between two attempts (0 = none).
    quiz_max_attempts: int = Field(default=5, ge=1, alias="QUIZ_MAX_ATTEMPTS")
    quiz_cooldown_seconds: int = Field(default=30, ge=0, alias="QUIZ_COOLDOWN_SECONDS")
    # Browser origins allowed to call the API (comma-separated, e.g. https://app.example.com); none by default.
    cors_origins: str = Field(default="", alias="CORS_ORIGINS")
    # Continue the trace of a caller's W3C `traceparent`: only behind a gateway of ours that sets it (else anyone
    # could put their requests into another request's trace); by default the API starts a trace of its own and keeps
    # the caller's header as the server span's `smartcourse.caller_traceparent`.
    trust_traceparent: bool = Field(default=False, alias="TRUST_TRACEPARENT")
    # Production: /metrics, /docs, /openapi.json and the detailed /health need an admin token or this token.
    metrics_token: str | None = Field(default=None, alias="METRICS_TOKEN", repr=False)

    # --- content index and embeddings (unset EMBEDDINGS_BASE_URL: the local ONNX MiniLM) ---
    # LanceDB location: a local directory (default: <data_dir>/index) or s3://bucket/prefix.
    index_uri: str | None = Field(default=None, alias="INDEX_URI")
    embeddings_base_url: str | None = Field(default=None, alias="EMBEDDINGS_BASE_URL")
    embeddings_model: str = Field(default="text-embedding-3-small", alias="EMBEDDINGS_MODEL")
    embeddings_api_key: str | None = Field(default=None, alias="EMBEDDINGS_API_KEY")
    embeddings_batch_size: int = Field(default=32, alias="EMBEDDINGS_BATCH_SIZE")
    chunk_tokens: int = Field(default=200, ge=16, alias="CHUNK_TOKENS")
    chunk_overlap_tokens: int = Field(default=40, ge=0, alias="CHUNK_OVERLAP_TOKENS")

    # --- the assistant's chat model (unset LLM_BASE_URL: the embedded llama.cpp server) ---
    llm_base_url: str | None = Field(default=None, alias="LLM_BASE_URL")
    llm_model: str = Field(default="SmolLM2-135M-Instruct", alias="LLM_MODEL")
    llm_api_key: str | None = Field(default=None, alias="LLM_API_KEY")
    # How long a request to the chat model may wait (to connect, then between two pieces of its answer). Below the
    # function's own timeout in Lambda (the template sets 20 s of 30), so a hung model ends as the app's
    # `assistant_failed` with its interaction recorded, not a bare gateway 503 (explore33 F5).
    llm_timeout_seconds: float = Field(default=60.0, alias="LLM_TIMEOUT_SECONDS", gt=0)
    # --- the assistant's guards (issue #13; see docs/assistant.md) ---
    assistant_quota_per_minute: int = Field(default=10, alias="ASSISTANT_QUOTA_PER_MINUTE")
    assistant_quota_per_day: int = Field(default=200, alias="ASSISTANT_QUOTA_PER_DAY")
    assistant_max_concurrent: int = Field(default=4, alias="ASSISTANT_MAX_CONCURRENT")
    #: Generations one user may run at once, across the API's processes (Redis); then 429 `ai_concurrency_exceeded`.
    assistant_max_concurrent_per_user: int = Field(default=2, ge=1, alias="ASSISTANT_MAX_CONCURRENT_PER_USER")
    assistant_queue_wait_seconds: float = Field(default=2.0, alias="ASSISTANT_QUEUE_WAIT_SECONDS")
    assistant_relevance_floor: float = Field(default=0.3, alias="ASSISTANT_RELEVANCE_FLOOR")
    assistant_max_tokens: int = Field(default=256, alias="ASSISTANT_MAX_TOKENS")
    assistant_history_days: int = Field(default=30, alias="ASSISTANT_HISTORY_DAYS")

    # --- retention of the rows that only pile up (services/retention.py; docs/operations.md "Retention") ---
    outbox_retention_days: float = Field(default=7, gt=0, alias="OUTBOX_RETENTION_DAYS")
    processed_events_retention_days: float = Field(default=30, gt=0, alias="PROCESSED_EVENTS_RETENTION_DAYS")
    # How long an `Idempotency-Key` of a creating request answers the same (api/idempotency.py), then it is purged.
    idempotency_key_hours: int = Field(default=24, ge=1, le=24 * 30, alias="IDEMPOTENCY_KEY_HOURS")

    # A publish step (extract, chunk, embed, index) on a worker that died is retried elsewhere after this long
    # without a heartbeat; the step beats four times per period.
    publish_heartbeat_seconds: float = Field(default=20.0, ge=2, le=600, alias="PUBLISH_HEARTBEAT_SECONDS")

    # --- launch day (issue #7; docs/architecture.md "Launch day") ---
    # The workflow dispatcher: pending enrollments with a started workflow at most, starts per round, at once.
    dispatch_max_in_flight: int = Field(default=64, ge=1, alias="SMARTCOURSE_DISPATCH_MAX_IN_FLIGHT")
    dispatch_batch: int = Field(default=100, ge=1, alias="SMARTCOURSE_DISPATCH_BATCH")
    dispatch_concurrency: int = Field(default=16, ge=1, alias="SMARTCOURSE_DISPATCH_CONCURRENCY")
    dispatch_start_timeout_seconds: float = Field(default=10.0, gt=0, alias="SMARTCOURSE_DISPATCH_START_TIMEOUT")
    # The Temporal worker's slots: workflow tasks and local activities (the enrollment set-up, one database
    # connection each) it runs at once (workflows/worker.py: keep the two equal). 32 against 16: 4 % less CPU per
    # enrollment and a 4 % faster drain in three undisturbed ABBA pairs (docs/benchmarks.md, "Twenty-second pass").
    worker_max_workflow_tasks: int = Field(default=32, ge=2, le=512, alias="SMARTCOURSE_WORKER_MAX_WORKFLOW_TASKS")
    worker_max_local_activities: int = Field(default=32, ge=1, le=512, alias="SMARTCOURSE_WORKER_MAX_LOCAL_ACTIVITIES")
    # New admissions answer 503 `overloaded` while this many are admitted and not yet active (0: no ceiling).
    admission_backlog_limit: int = Field(default=50_000, ge=0, alias="SMARTCOURSE_ADMISSION_BACKLOG_LIMIT")
    admission_backlog_check_seconds: float = Field(default=1.0, ge=0, alias="SMARTCOURSE_ADMISSION_BACKLOG_CHECK")
    admission_retry_after_seconds: int = Field(default=5, ge=1, alias="SMARTCOURSE_ADMISSION_RETRY_AFTER")
    # Admissions to one course holding a database connection at once, per process (the rest wait in memory).
    admissions_per_course: int = Field(default=4, ge=1, alias="SMARTCOURSE_ADMISSIONS_PER_COURSE")
    # Requests one API process serves at once; more answer 503 `overloaded` at once (0: no limit).
    api_max_in_flight: int = Field(default=256, ge=0, alias="SMARTCOURSE_API_MAX_IN_FLIGHT")
    # A request body that sends nothing for this long is answered 408 `request_timeout` and its connection closed
    # (a slow client; explore10 F1). A request counts in flight once its body has arrived, never while it trickles.
    api_body_timeout: float = Field(default=30.0, gt=0, alias="SMARTCOURSE_API_BODY_TIMEOUT")
    # ... and the whole body gets that long plus one second per this many bytes received (mod_reqtimeout's MinRate):
    # a body trickled one byte every 20 s is answered 408 too (explore12 F5). 0: only the idle timeout.
    api_body_min_rate: float = Field(default=500.0, ge=0, alias="SMARTCOURSE_API_BODY_MIN_RATE")
    # The drain yields the CPU to the requests: the worker, relay, consumers and Celery raise their nice value by
    # this much at start (0: leave it); a burst is admitted at full speed and drained with what is left.
    background_nice: int = Field(default=10, ge=0, le=19, alias="SMARTCOURSE_BACKGROUND_NICE")
    # Anonymous catalogue reads are answered from each API process's memory while the catalogue generation, re-read
    # at most this often (seconds), has not moved (api/edge_cache.py; 0: off).
    edge_cache_seconds: float = Field(default=0.5, ge=0, le=60, alias="SMARTCOURSE_EDGE_CACHE_SECONDS")
    # Background liveness on /health (services/heartbeats.py): the processes expected to beat (comma-separated:
    # worker, relay, consumers, celery; empty: none; unset: every process that has beaten), and how old a beat may be.
    background_processes: str | None = Field(default=None, alias="SMARTCOURSE_BACKGROUND_PROCESSES")
    heartbeat_stale_seconds: float = Field(default=60.0, gt=0, alias="SMARTCOURSE_HEARTBEAT_STALE_SECONDS")
    #: `smartcourse run` kills (to restart) a background child silent this long while the database answers; 0: never.
    hang_seconds: float = Field(default=180.0, ge=0, alias="SMARTCOURSE_HANG_SECONDS")

    @property
    def is_development(self) -> bool:
        return self.environment in {"development", "test"}

    @property
    def is_production(self) -> bool:
        return not self.is_development

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @field_validator(
        "login_rate_limit_ip",
        "login_rate_limit_account",
        "register_rate_limit_ip",
        "password_reset_rate_limit_ip",
        "password_reset_rate_limit_account",
        "password_reset_rate_limit_account_all",
    )
    @classmethod
    def _a_rate_limit(cls, value: str) -> str:
        # Read at start, not at each request: "30/min" was taken, and the limiter, failing open on the error it took
        # for a store outage, limited nothing (explore84 F2).
        from limits import parse_many

        try:
            if not parse_many(value):
                raise ValueError("no limit in it")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate limit such as 30/minute or 30/minute;300/hour ({exc})") from None
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url_without_trailing_slash(cls, value: str) -> str:
        # links are base + "/certificates/...": "https://example.org/" must not give "//"; an empty one is unset
        value = value.strip().rstrip("/") or default_public_base_url()
        if not re.match(r"^https?://[^\s/?#]+(?:/[^\s?#]*)?$", value):
            # It goes into every certificate's verify link (explore58 F7: taken as it was).
            raise ValueError(f"PUBLIC_BASE_URL {value!r} is not an http(s) address, e.g. https://learn.example.org")
        return value

    @model_validator(mode="after")
    def _overlap_within_a_chunk(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            # Every publish failed after minutes of retries (explore58 F7).
            raise ValueError(
                f"CHUNK_OVERLAP_TOKENS ({self.chunk_overlap_tokens}) must be below CHUNK_TOKENS ({self.chunk_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _require_a_strong_secret(self) -> Settings:
        if self.jwt_secret in KNOWN_SECRETS:
            raise ValueError("JWT_SECRET is a published example secret; generate one: openssl rand -hex 32")
        if self.is_development:
            if not self.jwt_secret:
                self.jwt_secret = dev_secret(self.data_dir)[0]
            return self
        if self.password_hash_memory_kib < OWASP_ARGON2_MEMORY_KIB or self.password_hash_time_cost < 2:
            raise ValueError(
                f"PASSWORD_HASH_MEMORY_KIB {self.password_hash_memory_kib} / PASSWORD_HASH_TIME_COST "
                f"{self.password_hash_time_cost} are below OWASP's Argon2id minimum outside development "
                f"({OWASP_ARGON2_MEMORY_KIB} KiB, 2 passes); leave them unset for 65536 KiB and 3"
            )
        if not self.jwt_secret:
            raise ValueError("JWT_SECRET must be set outside development (e.g. openssl rand -hex 32)")
        problem = secret_problem(self.jwt_secret)
        if problem:
            raise ValueError(f"JWT_SECRET {problem}; use a random value such as `openssl rand -hex 32`")
        return self

    @model_validator(mode="after")
    def _argon2_memory_fits_its_lanes(self) -> Settings:
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError("PASSWORD_HASH_MEMORY_KIB must be at least 8 KiB per lane (PASSWORD_HASH_PARALLELISM)")
        return self

    @model_validator(mode="after")
    def _relax_ip_limits_in_tests(self) -> Settings:
        # The test suite sends every request from one address; per-account limits and lockouts still apply.
        if self.environment == "test":
            for name in ("login_rate_limit_ip", "register_rate_limit_ip"):
                if name not in self.model_fields_set:
                    setattr(self, name, "100000/minute")
            if "quiz_cooldown_seconds" not in self.model_fields_set:
                self.quiz_cooldown_seconds = 0
            for name, cheap in (("password_hash_time_cost", 1), ("password_hash_memory_kib", 8192)):
                if name not in self.model_fields_set:
                    setattr(self, name, cheap)
            if "password_hash_parallelism" not in self.model_fields_set:
                self.password_hash_parallelism = 1
            if "email_verification" not in self.model_fields_set:  # the suite's thousands of sign-ups send no mail
                self.email_verification = "off"
        return self

    @property
    def uses_s3(self) -> bool:
        return bool(self.s3_bucket)

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def resolved_index_uri(self) -> str:
        return self.index_uri or str(self.data_dir / "index")


#: OWASP's Password Storage Cheat Sheet: Argon2id with at least 19 MiB and 2 iterations.
OWASP_ARGON2_MEMORY_KIB = 19456


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (environment is read once)."""
    return Settings()
