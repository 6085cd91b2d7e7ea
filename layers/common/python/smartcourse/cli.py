"""The `smartcourse` command: run the whole product, serve, work, migrate, invoke a function."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import copy
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.parse
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from smartcourse import aio
from smartcourse.config import API_DB_STATEMENT_TIMEOUT, api_workers, default_public_base_url, get_settings
from smartcourse.priority import lower_background_priority
from smartcourse.supervise import CHILDREN_FILE, Children, HangWatch, say_event, stop_left_children

log = logging.getLogger(__name__)


def _migrate(database_url: str) -> list[str]:
    """Migrate, saying each migration applied (explore58 F10: an upgrade that migrated said nothing of it, and
    `migrate` answered "at the latest migration" whether or not it had applied one)."""
    from smartcourse.migrations import upgrade_head

    applied = upgrade_head(database_url)
    for migration in applied:
        print(f"applied migration {migration}", flush=True)
    return applied


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate DATABASE_URL's database, else the embedded one of the data directory, started for it when `run` is
    stopped (an upgrade's step). A data directory with no cluster is refused: run in the wrong directory, migrate
    made a new, empty cluster there and said "database is at the latest migration" (explore47 F2)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from smartcourse.bootstrap import resolve_settings
    from smartcourse.migrations import MigrationRefused

    base = get_settings()
    pgdata = base.data_dir.resolve() / "postgres"
    if not base.database_url and not (pgdata / "PG_VERSION").exists():
        print(
            f"error: no embedded PostgreSQL under {base.data_dir.resolve()}: `smartcourse run` creates and migrates "
            "one; to migrate an existing one, set the SMARTCOURSE_DATA_DIR it runs with (or DATABASE_URL)",
            file=sys.stderr,
        )
        return 1
    settings = resolve_settings(base, need=("db",))
    where = make_url(base.database_url).render_as_string(hide_password=True) if base.database_url else pgdata
    if getattr(args, "stamp_head", False):
        # Record the tables as at this release's latest migration, without running one: the way out of a database
        # whose `alembic_version` was emptied (`DatabaseNotRecorded` says when). With the embedded engines it needed
        # PostgreSQL started by hand and its URL built (explore58 F11).
        from alembic import command

        from smartcourse.migrations import alembic_config

        command.stamp(alembic_config(settings.database_url or ""), "head")
        print(f"recorded {where} as at this release's latest migration (nothing was run)")
        return 0
    try:
        _migrate(settings.database_url or "")
    except MigrationRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, DBAPIError) as exc:  # unreachable, refused, a bad password: one line (explore48 F5)
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: could not migrate {where}: {cause}", file=sys.stderr)
        return 1
    print(f"database is at the latest migration ({where})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from smartcourse.logging import set_process_name

    set_process_name("api")  # uvicorn's supervisor lines ("Child process [..] died") are the API's

    # A request waits on one statement this long at most, then answers 503: a stalled PostgreSQL must not hang every
    # client until its own timeout (the worker's long steps keep no limit). The API processes inherit it.
    # Set in the environment or in `.env` (the settings read both; explore16 F4: `.env`'s value was overridden).
    if not os.environ.get("DB_STATEMENT_TIMEOUT") and get_settings().db_statement_timeout is None:
        os.environ["DB_STATEMENT_TIMEOUT"] = str(API_DB_STATEMENT_TIMEOUT)
        get_settings.cache_clear()

    engines = None
    if args.workers > 1:
        # Several processes answer /metrics in turn: each must show all of them (prometheus_client multiprocess
        # mode, set before anything imports prometheus_client; the workers inherit the directory).
        from smartcourse.metrics_multiprocess import use_multiprocess_dir

        use_multiprocess_dir("api")
        # The API processes are multiprocessing children: they leave by os._exit, without stopping an embedded
        # engine they started. This process starts the ones every request needs and stops them when it ends.
        from smartcourse.bootstrap import embedded_engines, resolve_settings

        resolved = resolve_settings(get_settings(), need=("db", "redis"))
        os.environ["DATABASE_URL"] = resolved.database_url or ""
        os.environ["REDIS_URL"] = resolved.redis_url or ""
        engines = embedded_engines(resolved)
    from smartcourse.api.protocol import JsonErrorsProtocol  # after the metrics' mode is set: it counts errors
    from smartcourse.api.serve import serve

    # Links in certificates name the address served here, --host/--port included (the API processes inherit it).
    os.environ.setdefault("PUBLIC_BASE_URL", default_public_base_url({"HOST": args.host, "PORT": str(args.port)}))
    config = uvicorn.Config(
        "smartcourse.api.local:build_local_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=uvicorn_log_config(),
        log_level=None,  # the levels are log_config's
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        # Forwarded headers only from the proxies named (FORWARDED_ALLOW_IPS); uvicorn would otherwise believe any
        # client on 127.0.0.1, which could then choose its address for the per-address rate limits.
        proxy_headers=get_settings().forwarded_allow_ips is not None,
        forwarded_allow_ips=get_settings().forwarded_allow_ips,
        server_header=False,  # no "server: uvicorn": nothing to fingerprint
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        http=JsonErrorsProtocol,  # a request the server cannot parse is answered in the API's error shape
    )
    try:
        serve(config)  # several processes: each listens on its own socket (api/serve.py)
    except KeyboardInterrupt:
        pass
    if engines is not None:
        engines.stop_orphans()  # one an API process started on first use (Temporal, the chat model)
    return 0


#: How long an idle keep-alive connection stays open. Longer than the idle timeout of what sits in front (60 s on
#: an AWS ALB, a client's pool): whoever closes an idle connection must be the client, else a request sent on it just
#: as the server closes it meets a reset (the client's `ReadError`; behind an ALB, a 502). uvicorn's default is 5 s.
KEEP_ALIVE_SECONDS = 75


#: How long uvicorn's supervisor waits for an API process to answer its health ping before it kills and replaces
#: it. uvicorn's default, 5 s, kills a process that is only starved of CPU in a launch-day burst (with the requests
#: it holds); a process really hung for 30 s is still replaced.
HEALTHCHECK_SECONDS = 30


class SupervisorLog(logging.Filter):
    """uvicorn's supervisor logs a replaced API process ("Child process [pid] died") at INFO, with its startup
    chatter: on the `uvicorn.error` logger, this passes warnings and errors, promotes that line to WARNING (a
    killed process lost the requests it held: an operator must see it) and drops the other INFO lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if record.levelno == logging.INFO and str(record.msg).startswith("Child process") and "died" in str(record.msg):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return False


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging config: its error logger at INFO through `SupervisorLog`, the access log at WARNING
    (requests are logged by the API's own access line); both as JSON lines like every other log line (unless
    SMARTCOURSE_LOG_FORMAT=text), so an exception that escapes the app ("Exception in ASGI application") is one
    line with its traceback in `exc`, not a hundred lines of text."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    if os.environ.get("SMARTCOURSE_LOG_FORMAT", "json") == "json":
        for name in ("default", "access"):
            config["formatters"][name] = {"()": "smartcourse.logging.JsonFormatter"}
    config["filters"] = {"supervisor": {"()": SupervisorLog}}
    config["handlers"]["default"]["filters"] = ["supervisor"]
    config["loggers"]["uvicorn.error"] = {"level": "INFO"}
    config["loggers"]["uvicorn.access"]["level"] = "WARNING"
    return config


def _no_cluster() -> str | None:
    """Why a background command must not start here: no DATABASE_URL and no embedded cluster under the data directory
    (run in the wrong directory, it made a new, empty cluster there and failed every round on its missing tables:
    explore58 F8, as `migrate` did in explore47 F2). None when there is one."""
    base = get_settings()
    if base.database_url or (base.data_dir.resolve() / "postgres" / "PG_VERSION").exists():
        return None
    _forget_created_secret()  # nor a secret there
    return (
        f"error: no embedded PostgreSQL under {base.data_dir.resolve()}: `smartcourse run` creates and migrates one; "
        "start this with the SMARTCOURSE_DATA_DIR it runs with (or DATABASE_URL)"
    )


def cmd_worker(_: argparse.Namespace) -> int:
    from smartcourse.worker import run_worker

    if refused := _no_cluster():
        print(refused, file=sys.stderr)
        return 1
    lower_background_priority()
    aio.run(run_worker())
    return 0


def cmd_relay(_: argparse.Namespace) -> int:
    """Publish the outbox: to Kafka when KAFKA_BOOTSTRAP_SERVERS is set, else to the in-process consumers."""
    from smartcourse.event_pipeline import run_relay_process

    if refused := _no_cluster():
        print(refused, file=sys.stderr)
        return 1
    lower_background_priority()
    aio.run(run_relay_process())
    return 0


def cmd_consumers(_: argparse.Namespace) -> int:
    """Run every registered consumer against Kafka, each as its own consumer group."""
    from smartcourse.event_pipeline import run_consumers_process

    if refused := _no_cluster():
        print(refused, file=sys.stderr)
        return 1
    lower_background_priority()
    aio.run(run_consumers_process())
    return 0


def _admin_password(given: str | None) -> str | None:
    """The new admin's password: `--password` if given (visible to the machine's other users while the command runs,
    and kept in the shell's history), else asked twice at a terminal (not echoed), else the first line of standard
    input (`… < file`, a secret manager's pipe): explore67 F9. None when the two typed at the terminal differ."""
    if given is not None:
        return given
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("Password for the new admin: ")
        return first if getpass.getpass("The same password again: ") == first else None
    return sys.stdin.readline().rstrip("\r\n")


def cmd_create_admin(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from smartcourse.bootstrap import get_container
    from smartcourse.errors import DomainError
    from smartcourse.schemas import RULE_FIELDS, AdminIn
    from smartcourse.services import accounts

    password = _admin_password(args.password)
    if password is None:
        print("error: --password: the two passwords typed differ", file=sys.stderr)
        return 2
    if not password and args.password is None:  # `< /dev/null`, an empty pipe (explore69 F13)
        print(
            "error: --password: no password given (none on the command line, nothing on standard input)",
            file=sys.stderr,
        )
        return 2
    try:  # the rules a registration follows, before any engine is touched (the service checks them again)
        AdminIn(email=args.email, password=password, full_name=args.full_name)
    except ValidationError as exc:
        for err in exc.errors():
            # A rule of the whole model (the password's strength, checked with the address and name) names its
            # field in its context (`schemas.rule_error`): "--password", not "--" (explore62's password check).
            named = str((err.get("ctx") or {}).get(RULE_FIELDS) or "").split(",")[0]
            field = ".".join(str(p) for p in err["loc"]) or named
            print(f"error: --{field.replace('_', '-')}: {err['msg']}", file=sys.stderr)
        return 2

    if refused := _refused_without_database():
        print(refused, file=sys.stderr)
        return 1

    async def go() -> int:
        from sqlalchemy.exc import SQLAlchemyError

        c = await get_container()
        try:
            async with c.uow() as uow:
                user = await accounts.create_admin(
                    uow=uow, email=args.email, password=password, full_name=args.full_name
                )
        except DomainError as exc:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        except (SQLAlchemyError, OSError) as exc:  # unreachable, or not migrated: one line, not a traceback
            cause = getattr(exc, "orig", None) or exc
            if isinstance(cause, OSError):  # never reached: it refused nothing (explore49 N4)
                print(f"error: could not reach the database {_database_named()}: {cause}", file=sys.stderr)
            elif str(getattr(cause, "sqlstate", "")).startswith(("28", "3D")):  # no such role or database (N4)
                print(f"error: could not connect to the database {_database_named()}: {cause}", file=sys.stderr)
            else:
                print(f"error: the database refused the account: {type(cause).__name__}: {cause}", file=sys.stderr)
            return 1
        finally:
            await c.aclose()
        print(json.dumps(user.model_dump(mode="json"), ensure_ascii=False))  # a name as typed (explore65 F15)
        return 0

    return asyncio.run(go())


def cmd_invoke(args: argparse.Namespace) -> int:
    """Call a handler exactly as Lambda would: handler(event, context), print the response."""
    from smartcourse.functions_registry import load_function

    try:  # a name or file mistyped: one line, not a traceback (explore48 F7)
        event = json.loads(Path(args.event).read_text())
        fn = load_function(args.function)
    except (KeyError, OSError, ValueError) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2
    if refused := _refused_without_database():
        print(refused, file=sys.stderr)
        return 1
    result = fn.module.handler(event, LambdaContext(args.function))
    print(json.dumps(result, indent=2))
    return 0


class LambdaContext:
    """The parts of the Lambda context object that handlers and Mangum read."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = "local-invoke"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def cmd_template(args: argparse.Namespace) -> int:
    from smartcourse.devtools.template import render_template

    text = render_template()
    path = Path(args.output)
    try:
        if args.check:
            if not path.exists():  # run outside the repository: "out of date" sent the user to write one there (N4)
                where = "here: run this in the repository, or pass --output" if args.output == "template.yaml" else ""
                print(f"error: no {path} {where}".rstrip(), file=sys.stderr)
                return 1
            if path.read_text() != text:
                print(f"{path} is out of date: run `smartcourse template`", file=sys.stderr)
                return 1
            print(f"{path} matches the function pack")
            return 0
        path.write_text(text)
    except OSError as exc:  # a directory, a path under a file, ...: one line (explore52 N4)
        print(f"error: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from smartcourse.devtools.samples import write_samples

    try:
        written = write_samples(Path(args.directory))
    except OSError as exc:  # a directory under a file, read-only, ...: one line, not a traceback (explore49 N4)
        print(f"error: could not write the samples into {args.directory}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """Print one trace as a tree (process, span, duration, status) from the local span files."""
    from smartcourse import telemetry

    directory = Path(args.dir) if args.dir else telemetry.span_dir()
    jaeger = args.jaeger or os.environ.get("JAEGER_QUERY_URL")
    try:
        spans = {s["span_id"]: s for s in telemetry.read_spans(args.trace_id, directory)}
        if jaeger:
            spans.update({s["span_id"]: s for s in telemetry.fetch_jaeger_spans(args.trace_id, jaeger)})
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: Jaeger at {jaeger} did not answer: {exc}", file=sys.stderr)
        return 2
    if not spans:
        where = f"{directory}" + (f" nor in Jaeger at {jaeger}" if jaeger else "")
        print(
            f"no spans of trace {args.trace_id} in {where} (spans reach the files about a second after they end; "
            "with OTEL_EXPORTER_OTLP_ENDPOINT set they go to the collector: pass --jaeger URL)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        for span in sorted(spans.values(), key=lambda s: float(s.get("start") or 0)):
            print(json.dumps(span))
    else:
        print(telemetry.format_trace(list(spans.values()), args.trace_id))
    return 0


def libpq_uri(database_url: str) -> tuple[str, str | None]:
    """The product's SQLAlchemy URL (`postgresql+asyncpg://...`) as psql takes it, without its password (returned
    apart, for PGPASSWORD); asyncpg's `ssl=` is libpq's `sslmode=`."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    query = dict(url.query)
    if "ssl" in query:
        query["sslmode"] = query.pop("ssl")
    libpq = url.set(drivername="postgresql", query=query)._replace(password=None)  # set() leaves a None alone
    return libpq.render_as_string(hide_password=False), url.password


def with_database(uri: str, psql_args: list[str]) -> tuple[str, list[str]]:
    """psql's `-d NAME` (`-dNAME`, `--dbname NAME`, `--dbname=NAME`) as the database of `uri`, the rest of `uri`
    (the embedded server's socket) kept: psql's own `-d` replaced the whole URI the wrapper passed, host included
    (explore25 F5). A `-d` that is itself a URI or conninfo (`=` in it) is left to psql."""
    rest: list[str] = []
    name: str | None = None
    it = iter(psql_args)
    for arg in it:
        if arg in ("-d", "--dbname"):
            value = next(it, None)
        elif arg.startswith("--dbname="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-d") and not arg.startswith("--"):
            value = arg[2:]
        else:
            rest.append(arg)
            continue
        if value is None or "=" in value or "://" in value:  # psql's to read
            rest.append(arg)
            if value is not None and arg in ("-d", "--dbname"):
                rest.append(value)
            continue
        name = value
    if name is None:
        return uri, list(psql_args)
    parts = urllib.parse.urlsplit(uri)  # the rest of the URI as it was (libpq reads no "+" as a space)
    return parts._replace(path="/" + urllib.parse.quote(name, safe="")).geturl(), rest


def _forget_created_secret() -> None:
    """A one-off command (`ONE_OFF`, when it ends, in `main`) leaves no development JWT secret it created on reading
    the settings: a stray `var/jwt_secret` where it ran would sign the tokens of the next `make run` started there
    (explore47 F8)."""
    from smartcourse.config import created_secret_dirs, created_secret_files

    for path in created_secret_files:
        path.unlink(missing_ok=True)
    created_secret_files.clear()
    for directory in created_secret_dirs:  # made for the secret, and empty now: no stray `var/` (explore52 N4)
        with contextlib.suppress(OSError):
            directory.rmdir()
    created_secret_dirs.clear()


def _no_embedded_database(data_dir: Path) -> str:
    return (
        f"error: no embedded PostgreSQL is running under {data_dir.resolve()}: start `smartcourse run` with the same "
        "SMARTCOURSE_DATA_DIR first (or set DATABASE_URL)"
    )


def _database_named() -> str:
    """The database a command works on, for its messages: DATABASE_URL without its password, else the embedded one."""
    from sqlalchemy.engine import make_url

    settings = get_settings()
    if settings.database_url:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    return f"under {settings.data_dir.resolve() / 'postgres'}"


def _refused_without_database() -> str | None:
    """Why a command that works on the product's database cannot run here: no DATABASE_URL and no embedded server
    running under the data directory. Started by this command, it would be a new, empty (unmigrated) cluster in
    whatever directory the command ran from (explore32 F1: a 150-line traceback and a stray 38 MB cluster)."""
    from smartcourse.engines import running_postgres_uri

    settings = get_settings()
    if settings.database_url:
        return None
    with warnings.catch_warnings():  # importing pgserver warns when XDG_RUNTIME_DIR is unset: noise here
        warnings.simplefilter("ignore")
        running = running_postgres_uri(settings.data_dir)
    return None if running else _no_embedded_database(settings.data_dir)


def cmd_psql(args: argparse.Namespace) -> int:
    """psql on the product's database: DATABASE_URL's, else the embedded PostgreSQL running under the data directory
    (started by `smartcourse run`; this starts none). Arguments after `psql` go to psql (`-c "select 1"`)."""
    from smartcourse.engines import psql_binary, running_postgres_uri

    with warnings.catch_warnings():  # importing pgserver warns when XDG_RUNTIME_DIR is unset: noise here
        warnings.simplefilter("ignore")
        psql = psql_binary()
    settings = get_settings()
    env = dict(os.environ)
    uri: str | None
    if settings.database_url:
        uri, password = libpq_uri(settings.database_url)
        if password:
            env["PGPASSWORD"] = password  # not on the command line, where `ps` shows it
    else:
        uri = running_postgres_uri(settings.data_dir)
    if uri is None:
        print(_no_embedded_database(settings.data_dir), file=sys.stderr)
        return 1
    uri, psql_args = with_database(uri, args.psql_args)
    return subprocess.call([psql, uri, *psql_args], env=env)


def cmd_routes(_: argparse.Namespace) -> int:
    from smartcourse.functions_registry import all_functions

    for fn in all_functions():
        for method, path in fn.routes:
            print(f"{method:7} {path:60} {fn.name}")
    return 0


LOCK_FILE = "smartcourse.lock"


class DataDirBusy(RuntimeError):
    """Another `smartcourse run` holds the data directory."""


def lock_data_dir(data_dir: Path) -> Any:
    """Hold an exclusive lock on the data directory for this process's life (released by the kernel on exit)."""
    import fcntl

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Kept open: the lock lives as long as the file. 0600 like everything else in the directory (the umask of
    # `make_private` comes after the lock).
    fh = open(os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+")
    os.chmod(data_dir / LOCK_FILE, 0o600)  # a lock file left by an earlier version
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        fh.seek(0)
        holder = fh.read().strip() or "unknown"
        fh.close()
        raise DataDirBusy(
            f"another `smartcourse run` (pid {holder}) is using {data_dir.resolve()}; stop it first, "
            "or set SMARTCOURSE_DATA_DIR to another directory"
        ) from exc
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def make_private(data_dir: Path) -> None:
    """Uploaded files, mail and databases are for this user only: dir 0700, and new files 0600 (umask 077).

    A directory that others could already pass through keeps that (0711, never listable): the engine stack keeps
    its servers under `var/stack` and, as root, runs PostgreSQL as the `postgres` user, which 0700 shut out; its
    PostgreSQL could then be neither stopped cleanly nor started again (explore24 F1)."""
    os.umask(0o077)
    existed = data_dir.is_dir()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    passing = stat.S_IMODE(data_dir.stat().st_mode) & (stat.S_IXGRP | stat.S_IXOTH) if existed else 0
    data_dir.chmod(0o700 | passing)


#: The Celery worker of `make run` (and of the tests' `celery_worker` fixture); `--quiet`: no start-up banner (plain
#: text among the JSON log lines). Without gossip and mingle: nothing here uses worker-to-worker events or revokes,
#: and gossip logged an error with a traceback on every broker loss (explore18 F14).
CELERY_WORKER = [
    sys.executable,
    "-m",
    "celery",
    "-A",
    "smartcourse.tasks",
    "--quiet",
    "worker",
    "-l",
    "info",
    "--without-gossip",
    "--without-mingle",
]
#: Connections the launcher leaves free on the server: psql, migrations, the admin tools, a second deployment's
#: start-up. Celery's children take 2 each (`tasks`: a pool of 1 + 1), counted apart.
SPARE_CONNECTIONS = 10
#: How often `run` looks for an embedded engine that died (and starts it again: `EmbeddedEngines.revive`).
ENGINE_CHECK_SECONDS = 5.0


def server_connection_limit(database_url: str) -> int | None:
    """max_connections less the slots reserved (for superusers; PostgreSQL 16's reserved_connections), read from the
    server itself with the product's own driver settings; None when it cannot be read (logged)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    query = text(
        "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
        " - coalesce(current_setting('reserved_connections', true), '0')::int"
    )

    async def read() -> int:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())
        finally:
            await engine.dispose()

    try:
        return asyncio.run(read())
    except Exception as exc:  # a pooler in front, no permission: the pools stay as configured
        log.warning("could not read the database server's max_connections (%s); pools left as configured", exc)
        return None


def pool_plan(limit: int, processes: int, *, others: int, env: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """DB_POOL_SIZE / DB_MAX_OVERFLOW for `processes` processes sharing a server that takes `limit` connections,
    `others` of which go elsewhere (Celery, a benchmark's baseline): the default pools (and the document store's
    5 + 5) when they fit, else smaller ones that do. Nothing when `env` sets them already (then the message says
    whether they fit). Returns (settings for the processes' environment, a line for the operator).
    """
    from smartcourse.bootstrap import connections_per_process, pool_within
    from smartcourse.config import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE

    usable = limit - SPARE_CONNECTIONS
    if env.get("DB_POOL_SIZE") or env.get("DB_MAX_OVERFLOW"):
        size = int(env.get("DB_POOL_SIZE") or DEFAULT_POOL_SIZE)
        overflow = int(env.get("DB_MAX_OVERFLOW") or DEFAULT_MAX_OVERFLOW)
        most = processes * connections_per_process(size, overflow) + others
        verdict = (
            f"fits the server's {limit}"
            if most <= usable
            else f"EXCEEDS the {usable} of the server's {limit} left to us: lower DB_POOL_SIZE / DB_MAX_OVERFLOW "
            "or raise max_connections"
        )
        return {}, f"database connections: at most {most} ({processes} processes with the pools set), {verdict}"
    size, overflow = pool_within(max(2, (usable - others) // max(1, processes)))
    most = processes * connections_per_process(size, overflow) + others
    line = (
        f"database connections: at most {most} of the server's {limit} ({processes} processes, each a pool of "
        f"{size} + {overflow} overflow and its document store's)"
    )
    if (size, overflow) != (DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW):
        line += (
            f"; under the default {DEFAULT_POOL_SIZE} + {DEFAULT_MAX_OVERFLOW} to fit: a larger max_connections "
            "gives larger pools"
        )
    return {"DB_POOL_SIZE": str(size), "DB_MAX_OVERFLOW": str(overflow)}, line


#: What the embedded model admits at once, as the default `ASSISTANT_MAX_CONCURRENT` of one process says it: its 2
#: slots running (`llm_server --parallel 2`) and 2 queued (docs/assistant.md, "Latency").
EMBEDDED_MODEL_ADMITS = 4


def share_the_embedded_model(env: dict[str, str], settings: Any, api_processes: int) -> None:
    """Under `run` with the embedded model, the API processes together admit what it serves (2 running + 2 queued),
    not each of them as much (explore72 F3: 2 processes of 4 each queued 8 asks behind its 2 slots, and the queued ones
    timed out). An `ASSISTANT_MAX_CONCURRENT` of the operator's, or a model of one's own (`LLM_BASE_URL`), is kept."""
    chosen = "ASSISTANT_MAX_CONCURRENT" in env or settings.assistant_max_concurrent != EMBEDDED_MODEL_ADMITS
    if settings.llm_base_url or chosen or api_processes <= 1:
        return
    env["ASSISTANT_MAX_CONCURRENT"] = str(max(1, -(-EMBEDDED_MODEL_ADMITS // api_processes)))


def size_pools(env: dict[str, str], processes: int, *, others: int) -> str | None:
    """Size the pools of `processes` processes started with `env` to the server at env["DATABASE_URL"] (`pool_plan`),
    in `env`; the line for the operator, or None when the server's limit could not be read (pools left as they are).
    `smartcourse run`, the chaos rig and the enrollment bench start their processes this way."""
    limit = server_connection_limit(env["DATABASE_URL"])
    if limit is None:
        return None
    pools, line = pool_plan(limit, processes, others=others, env=env)
    env.update(pools)
    return line


#: Celery's children of `smartcourse run` (--concurrency) and the connections they hold (2 each, `tasks`).
CELERY_CONCURRENCY = 2
CELERY_CONNECTIONS = 2 * CELERY_CONCURRENCY


def pool_processes(processes: dict[str, list[str]]) -> int:
    """How many of `run_processes` hold a container's pools: each API process, the worker, the relay, the consumers
    (Celery's children have their own small pool, `CELERY_CONNECTIONS`)."""
    return sum(api_workers() if name == "api" else 1 for name in processes if name != "celery")


def run_processes(host: str, port: int, *, kafka: bool) -> dict[str, list[str]]:
    """The long-running processes of `smartcourse run` (name -> argv), started with one environment.

    One list: `cmd_run` starts it, and the chaos rig (devtools/chaos.py) starts, kills and restarts the same."""
    exe = [sys.executable, "-m", "smartcourse.cli"]
    procs = {
        # One API process per core (SMARTCOURSE_API_WORKERS): the admission is CPU-bound Python.
        "api": [*exe, "serve", "--host", host, "--port", str(port), "--workers", str(api_workers())],
        "worker": [*exe, "worker"],
        # Celery: email and other background tasks; -B runs the beat schedule (the notification
        # sweeper) inside it, fine for this single worker (production runs one `celery beat`).
        "celery": [*CELERY_WORKER, "--concurrency", str(CELERY_CONCURRENCY), "-B"],
    }
    if kafka:  # the worker relays in-process only without Kafka
        procs["relay"] = [*exe, "relay"]
        procs["consumers"] = [*exe, "consumers"]
    return procs


def side_metrics_ports(env: dict[str, str], kinds: list[str]) -> dict[str, int]:
    """The port each background process of `smartcourse run` serves its /metrics on, set in `env`: the one chosen
    (SMARTCOURSE_METRICS_PORT_<KIND> or SMARTCOURSE_METRICS_PORT), else the kind's default, else, when another
    program holds the default (a second `smartcourse run` on the host), a free port. The default in use was logged
    and skipped, and scrapes of it read the other instance's figures (explore16 F5)."""
    from smartcourse.engines import free_port
    from smartcourse.metrics import DEFAULT_PORTS

    host = env.get("SMARTCOURSE_METRICS_HOST", "127.0.0.1")
    ports: dict[str, int] = {}
    for kind in kinds:
        chosen = env.get(f"SMARTCOURSE_METRICS_PORT_{kind.upper()}") or env.get("SMARTCOURSE_METRICS_PORT")
        if chosen:
            if chosen.strip().isdigit() and int(chosen) > 0:
                ports[kind] = int(chosen)
            continue  # `off`, or 0 (a port the process picks and logs)
        default = DEFAULT_PORTS[kind]
        port = default if _can_listen(host, default) else free_port()
        env[f"SMARTCOURSE_METRICS_PORT_{kind.upper()}"] = str(port)
        ports[kind] = port
    return ports


def write_scrape_targets(env: Mapping[str, str], api_port: int, side_ports: Mapping[str, int]) -> Path | None:
    """With `PROMETHEUS_TARGETS_DIR` (the engine stack's Prometheus: `scripts/stack env`), a file-discovery file of
    this run's metrics addresses, the API's and each side process's, whatever ports they got: the stack scraped the
    default ports only, so a run on other ports showed every target down (explore24 F6). Removed when `run` stops."""
    folder = env.get("PROMETHEUS_TARGETS_DIR")
    if not folder or not Path(folder).is_dir():
        return None
    from smartcourse.metrics import DEFAULT_PORTS

    host = _metrics_host(env)
    stack_defaults = {"api": 8000, **DEFAULT_PORTS}  # the stack's own file lists these on 127.0.0.1 already
    ports = {"api": api_port, **side_ports}
    groups = [
        {"targets": [f"{host}:{port}"], "labels": {"process": kind}}
        for kind, port in ports.items()
        if (host, port) != ("127.0.0.1", stack_defaults.get(kind))
    ]
    if not groups:
        return None
    path = Path(folder) / f"run-{api_port}.json"
    path.write_text(json.dumps(groups, indent=2) + "\n")
    path.chmod(0o644)  # Prometheus runs as its own user
    return path


def _metrics_host(env: Mapping[str, str]) -> str:
    host = env.get("SMARTCOURSE_METRICS_HOST", "127.0.0.1")
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def _can_listen(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _tool(name: str) -> str:
    """A command installed beside this interpreter (the venv's `temporal`, seldom on PATH) by its path, else `name`."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


#: How often `smartcourse run` reads its children's heartbeats for a hung one (`supervise.HangWatch`).
HANG_CHECK_SECONDS = 15.0


def _silence(database_url: str, processes: list[str]) -> dict[int, float] | None:
    """Seconds since each child's newest heartbeat, by pid; None when the database does not answer."""
    from smartcourse.services.heartbeats import silence_by_pid

    try:
        return asyncio.run(silence_by_pid(database_url, processes))
    except Exception:
        return None


def cmd_run(args: argparse.Namespace) -> int:
    """Start the embedded engines (or use the configured ones), migrate, then the API and the worker."""
    from smartcourse.bootstrap import embedded_engines, resolve_settings
    from smartcourse.config import DEV_SECRET_FILE, created_secret_files
    from smartcourse.logging import set_process_name

    set_process_name("run")  # the supervisor's own lines ("api exited with -9 ..."; explore10 F8: "unknown")
    settings = get_settings()
    try:
        lock = lock_data_dir(settings.data_dir)
    except DataDirBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in stop_left_children(settings.data_dir):  # a killed run's API would still hold the port
        print(line, flush=True)
    taken = address_problem(args.host, args.port)
    if taken:
        print(f"error: {taken}", file=sys.stderr)
        lock.close()
        return 1
    # Only once the directory is ours: run as root, the running PostgreSQL of the run that holds it passes through
    # it as another user (0711, `engines.parents_kept_closed`), and a refused second start that made it 0700 took its
    # data away from it at its next checkpoint.
    make_private(settings.data_dir)
    secret_file = (settings.data_dir / DEV_SECRET_FILE).resolve()
    if not os.environ.get("JWT_SECRET") and settings.is_development:
        verb = "generated a new" if secret_file in created_secret_files else "using the"
        print(f"{verb} random token-signing secret in {secret_file} (mode 0600)", flush=True)
    print("starting engines ...", flush=True)
    resolved = resolve_settings(settings, need=("db", "redis", "temporal", "smtp"))
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": resolved.database_url or "",
            "REDIS_URL": resolved.redis_url or "",
            "TEMPORAL_ADDRESS": resolved.temporal_address or "",
            "SMTP_HOST": resolved.smtp_host or "",
            "SMTP_PORT": str(resolved.smtp_port),
            "SMARTCOURSE_DATA_DIR": str(resolved.data_dir.resolve()),
            "JWT_SECRET": resolved.jwt_secret,
        }
    )
    # Links in certificates and e-mails name the address served here, --host/--port included.
    env.setdefault("PUBLIC_BASE_URL", default_public_base_url({"HOST": args.host, "PORT": str(args.port)}))
    from smartcourse.migrations import MigrationRefused

    try:
        _migrate(resolved.database_url or "")
    except MigrationRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        embedded_engines(settings).stop()
        lock.close()
        return 1
    processes = run_processes(args.host, args.port, kafka=bool(settings.kafka_bootstrap_servers))
    # /health expects a heartbeat from each background process started here (services/heartbeats.py).
    env.setdefault("SMARTCOURSE_BACKGROUND_PROCESSES", ",".join(name for name in processes if name != "api"))
    share_the_embedded_model(env, settings, api_workers())
    # Every process has its own pools: together they must fit the server's max_connections (the embedded one: 100),
    # or a burst meets "too many clients" (a 503) in whichever process opens the connection one too many.
    line = size_pools(env, pool_processes(processes), others=CELERY_CONNECTIONS)
    if line:
        print(line, flush=True)
    side_ports = side_metrics_ports(env, [name for name in processes if name != "api"])
    targets = write_scrape_targets(env, args.port, side_ports)
    # Each child in a process group of its own, restarted if it exits while we run, stopped as a group (supervise.py).
    children = Children(processes, env, record=settings.data_dir / CHILDREN_FILE)
    engines = embedded_engines(settings)
    try:
        return _supervise(args, settings, resolved, env, processes, children, engines, side_ports)
    except Exception:
        # Whatever ends the supervision leaves no child behind (explore58 F2: an exception in the loop left the API,
        # the worker and Celery running unparented, and that Celery took the next run's tasks).
        log.exception("smartcourse run failed; stopping everything it started")
        return 1
    finally:
        children.stop_all()
        if targets is not None:
            targets.unlink(missing_ok=True)
        engines.stop()
        engines.stop_orphans()  # one an API process started on first use (the chat model): they leave by os._exit
        lock.close()


def _supervise(
    args: argparse.Namespace,
    settings: Any,
    resolved: Any,
    env: dict[str, str],
    processes: dict[str, Any],
    children: Any,
    engines: Any,
    side_ports: dict[str, int],
) -> int:
    """Start the children, say where everything is, and watch them until a signal asks to stop (`cmd_run`)."""
    from smartcourse.engines import psql_binary, running_postgres_uri

    children.start_all()
    base = f"http://{args.host}:{args.port}"
    temporal, embedded_db = resolved.temporal_address, running_postgres_uri(resolved.data_dir)
    print(
        "\nSmartCourse is starting:\n"
        f"  API        {base}   ({api_workers()} process{'es' if api_workers() != 1 else ''}; "
        f"interactive docs: {base}/docs)\n"
        f"  health     {base}/health     metrics: {base}/metrics\n"
        + (
            "  metrics    "
            + ", ".join(f"{kind} http://{_metrics_host(env)}:{port}/metrics" for kind, port in side_ports.items())
            + "\n"
            if side_ports
            else ""
        )
        + f"  data       {resolved.data_dir.resolve()}  (mail: {resolved.mail_dir.resolve()})\n"
        f"  temporal   {temporal}   (its CLI: {_tool('temporal')} workflow list --address {temporal})\n"
        + (  # the embedded server's: trusts local connections (a configured DATABASE_URL may hold a password)
            f"  psql       {psql_binary()} '{embedded_db}'   (or: smartcourse psql, with this data dir)\n"
            if embedded_db and not settings.database_url
            else ""
        )
        + "Press Ctrl+C to stop.\n",
        flush=True,
    )
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)  # the terminal closed: the children, in sessions of their own, do not see it
    code = 0
    next_engine_check = time.monotonic() + ENGINE_CHECK_SECONDS
    beating = [name for name in processes if name != "api"]
    watch, next_watch = HangWatch(after=resolved.hang_seconds), time.monotonic() + HANG_CHECK_SECONDS
    while not stopping:
        reason = children.check()  # a child that exited is restarted, after a pause; too often, and we stop
        if reason:
            say_event(reason)
            code = 1
            break
        if time.monotonic() >= next_engine_check:  # an embedded engine that died is started again at its address
            for event in engines.revive(resolved.mail_dir):
                say_event(event)
            next_engine_check = time.monotonic() + ENGINE_CHECK_SECONDS
        if watch.after > 0 and time.monotonic() >= next_watch:  # a child alive but silent: hung, killed, restarted
            for name, silent in watch.hung(children, beating, _silence(resolved.database_url or "", beating)):
                children.kill_hung(name, f"has not beaten for {silent:.0f} s while the database answers: hung")
            next_watch = time.monotonic() + HANG_CHECK_SECONDS
        time.sleep(0.5)
    return code


#: Commands that run once and leave: a development JWT secret one of them created on reading the settings is removed
#: when it ends (the product was not running there, or the secret would have existed; explore48 F6: `routes`,
#: `template`, `trace` left a `var/jwt_secret` wherever they ran, which the next `make run` there would sign with).
ONE_OFF = frozenset({"migrate", "create-admin", "invoke", "template", "routes", "psql", "trace", "samples"})


def address_problem(host: str, port: int) -> str | None:
    """Why the API cannot listen on host:port, checked before anything starts; None when it can. The API processes
    bind with SO_REUSEPORT, which lets another SmartCourse on the same port start beside it and take half its
    requests, to another database (explore58 F1); a port in use, out of range or a host that does not resolve was
    said only after the engines had started, by six tracebacks over 50 s of restarts (F5). This bind, without
    SO_REUSEPORT, fails while anything listens there."""
    import socket

    if not 1 <= port <= 65535:
        return f"port {port} is not between 1 and 65535"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        return f"host {host!r} cannot be resolved ({exc.strerror})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no listener
        try:
            probe.bind(address)
        except OSError as exc:
            return (
                f"{host}:{port} is in use or not ours to take ({exc.strerror}): stop what listens there, or start "
                "with another PORT"
            )
    return None


#: Settings read from the environment outside `Settings` (by the CLI, logging, tracing): checked before anything
#: starts, each as a one-line error (explore58 F2, F6: a mistyped level crashed `run`'s supervisor and left its
#: children running; a non-numeric PORT broke every command, `--help` too, with a traceback).
_WHOLE_NUMBERS = {
    "PORT": (1, 65535),
    "SMARTCOURSE_API_WORKERS": (1, 1024),
    "SMARTCOURSE_TRACE_FILE_MAX_BYTES": (1024, None),
}


def environment_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with the environment's settings that `Settings` does not read, one line each."""
    env = os.environ if environ is None else environ
    problems = []
    for name, (low, high) in _WHOLE_NUMBERS.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            problems.append(f"{name}: {raw!r} is not a whole number")
            continue
        if value < low or (high is not None and value > high):
            problems.append(f"{name}: {value} is not between {low} and {high or 'more'}")
    raw = env.get("SMARTCOURSE_TRACE_RETENTION_DAYS", "").strip()
    if raw:
        try:
            days = float(raw)
        except ValueError:
            days = -1.0
        if not days > 0:  # 0 or less removed every trace file at start (explore58 F7)
            problems.append(f"SMARTCOURSE_TRACE_RETENTION_DAYS: {raw!r} is not a number of days above 0")
    level = env.get("SMARTCOURSE_LOG_LEVEL", "").strip()
    if level and level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append(f"SMARTCOURSE_LOG_LEVEL: {level!r} is none of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    fmt = env.get("SMARTCOURSE_LOG_FORMAT", "").strip()
    if fmt and fmt not in ("json", "text"):  # anything else meant text, without a word (explore58 F7)
        problems.append(f"SMARTCOURSE_LOG_FORMAT: {fmt!r} is neither json nor text")
    return problems


def main(argv: list[str] | None = None) -> int:
    problems = environment_problems()
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="smartcourse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start everything: engines, API, worker")
    run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    run.set_defaults(fn=cmd_run)
    serve = sub.add_parser("serve", help="serve every HTTP function behind one local router")
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SMARTCOURSE_API_WORKERS", "1") or "1"),
        help="API processes (SMARTCOURSE_API_WORKERS; 1; `smartcourse run` starts one per core)",
    )
    serve.set_defaults(fn=cmd_serve)
    sub.add_parser("worker", help="run the Temporal worker and the outbox relay").set_defaults(fn=cmd_worker)
    sub.add_parser("relay", help="publish the outbox (to Kafka when configured)").set_defaults(fn=cmd_relay)
    sub.add_parser("consumers", help="run every event consumer against Kafka").set_defaults(fn=cmd_consumers)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument(
        "--stamp-head",
        action="store_true",
        help="record the database as at the latest migration without running one (its tables are known to be)",
    )
    migrate.set_defaults(fn=cmd_migrate)
    admin = sub.add_parser("create-admin", help="create an admin account")
    admin.add_argument("--email", required=True)
    admin.add_argument(
        "--password",
        help="the account's password; without it, asked at the terminal or read from standard input's first line "
        "(better: a password on the command line is visible to the machine's other users and kept in the history)",
    )
    admin.add_argument("--full-name", default="Administrator")
    admin.set_defaults(fn=cmd_create_admin)
    inv = sub.add_parser("invoke", help="call one function's handler with a Lambda event file")
    inv.add_argument("function")
    inv.add_argument("--event", required=True)
    inv.set_defaults(fn=cmd_invoke)
    tpl = sub.add_parser("template", help="write template.yaml from the function pack")
    tpl.add_argument("--output", default="template.yaml")
    tpl.add_argument("--check", action="store_true", help="fail if template.yaml is out of date")
    tpl.set_defaults(fn=cmd_template)
    sub.add_parser("routes", help="list every HTTP route and its function").set_defaults(fn=cmd_routes)
    sub.add_parser(
        "psql",
        help="psql on the database (the embedded one of the data dir, else DATABASE_URL's); psql's arguments follow",
    ).set_defaults(fn=cmd_psql)
    trc = sub.add_parser("trace", help="print a trace (from X-Trace-Id or an error's trace_id) as a tree")
    trc.add_argument("trace_id", help="32 hex digits, or a traceparent value")
    trc.add_argument("--dir", help="span files directory (default: $SMARTCOURSE_DATA_DIR/traces)")
    trc.add_argument("--json", action="store_true", help="print the spans as JSON lines instead")
    trc.add_argument("--jaeger", help="also read a Jaeger query API, e.g. http://127.0.0.1:16686 ($JAEGER_QUERY_URL)")
    trc.set_defaults(fn=cmd_trace)
    smp = sub.add_parser("samples", help="write an API Gateway sample event per HTTP function")
    smp.add_argument("--directory", default="events/samples")
    smp.set_defaults(fn=cmd_samples)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "psql":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.psql_args = extra[1:] if extra[:1] == ["--"] else extra
    try:
        code: int = args.fn(args)
        sys.stdout.flush()
    except ArgumentError as exc:  # a malformed DATABASE_URL, or an unknown driver (explore49 N3): one line, no value
        why = f"names a driver that is not installed ({exc})" if isinstance(exc, NoSuchModuleError) else "is malformed"
        print(f"error: DATABASE_URL {why}", file=sys.stderr)
        code = 2
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # A refused setting (a JWT_SECRET too short, a malformed URL): what is wrong, in a line each, not a traceback
        # (explore16 F7), and never the value (Settings hides it: F2).
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            print(f"error: {where + ': ' if where else ''}{message}", file=sys.stderr)
        code = 2
    except BrokenPipeError:
        # The reader left (`smartcourse trace ... --json | head`): stop quietly, as Python's docs advise (the rest of
        # the output goes nowhere instead of a traceback at exit).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    finally:
        if args.command in ONE_OFF:
            _forget_created_secret()
    # temporalio's core can abort the interpreter at exit (sdk-python#300): leave without finalizers.
    atexit._run_exitfuncs()  # what os._exit would skip: stopping the embedded engines we started
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
