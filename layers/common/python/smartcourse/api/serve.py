"""The local HTTP server of several API processes, each with its own listening socket (SO_REUSEPORT).

uvicorn's `--workers` binds one socket in its supervisor and every process accepts from it. asyncio (and uvloop)
accept every pending connection at once when the socket turns readable, so whichever process wakes first takes a
whole burst of keep-alive connections and keeps them: measured on 2 cores with 16 clients, one API process ran at
82 % of a core and the other at 0-8 % (docs/benchmarks.md, "Ninth pass"). Here each process listens on a socket of
its own, bound to the same address with SO_REUSEPORT, and the kernel spreads new connections over them by a hash of
the connection's addresses. The supervisor keeps its socket bound but never listens on it: it holds the port
between process restarts and gives the processes the address. uvicorn's supervisor (health pings, restarts, the
TTIN/TTOU signals) is kept, with its pings waited for in slices (`Supervisor`); the server each process runs is
ours (`ReusePortServer`).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess

logger = logging.getLogger("uvicorn.error")

_INET = (socket.AF_INET, socket.AF_INET6)


def bind_shared_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT, not listening (the supervisor's)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def own_listener(shared: socket.socket) -> socket.socket:
    """A socket of this process's own on the address of `shared` (SO_REUSEPORT set on both); `shared` itself when
    it is not a TCP socket with SO_REUSEPORT (a Unix socket, or one bound without it: nothing to spread)."""
    if shared.family not in _INET or not shared.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
        return shared
    own = socket.socket(shared.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    own.bind(shared.getsockname())
    shared.close()  # this process's copy; the supervisor's stays bound
    return own


class ReusePortServer(uvicorn.Server):
    """uvicorn's server, listening on a socket of its own instead of the supervisor's (`own_listener`)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if sockets is not None:
            sockets = [own_listener(s) for s in sockets]
        await super().startup(sockets)


class ReusePortProcess(multiprocess.Process):
    """uvicorn's API process (health pings and all), running `ReusePortServer`."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = ReusePortServer(config=self.config)
        return self._server


#: How long the supervisor waits on a ping before it looks for an exited process to replace, then waits again.
PING_SLICE_SECONDS = 0.5


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, replacing a process that exited while it waits on another's ping. uvicorn pings its
    processes in turn, each for up to the health-check timeout (`cli.HEALTHCHECK_SECONDS`, 30 s): one still starting
    answers only once its imports are done, one starved or stopped not at all, and a process that exited meanwhile
    waited for its replacement up to 30 s, the API on one process (explore38 F8: 29 s; putting the exited first at
    each round still left the one that died during a round's ping behind it). Here a ping is waited for in slices of
    `PING_SLICE_SECONDS`, and between them any process that has exited is replaced; the rest is uvicorn's (a process
    that does not answer within the timeout is killed and replaced, one that failed at start-up stops everything)."""

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return  # exiting: no need to keep the processes alive
        self._replace_exited()
        for process in list(self.processes):
            if self.should_exit.is_set():
                return
            if process in self.processes and not self._answers(process) and process in self.processes:
                self._replace(self.processes.index(process))

    def _replace_exited(self) -> None:
        for idx, process in enumerate(self.processes):
            if not process.process.is_alive() and not self.should_exit.is_set():
                self._replace(idx)

    def _answers(self, process: multiprocess.Process) -> bool:
        """uvicorn's `Process.is_alive(timeout)`, waited for in slices, replacing exited processes in between."""
        if not process.process.is_alive():
            return False
        deadline = time.monotonic() + self.config.timeout_worker_healthcheck
        try:
            process.parent_conn.send(b"ping")
            while not process.parent_conn.poll(max(0.0, min(PING_SLICE_SECONDS, deadline - time.monotonic()))):
                if time.monotonic() >= deadline or not process.process.is_alive():
                    return False
                if self.should_exit.is_set():
                    return True
                self._replace_exited()
            process.parent_conn.recv()
        except (OSError, EOFError, pickle.UnpicklingError):
            return False
        return True

    def _replace(self, idx: int) -> None:
        """uvicorn's replacement of one process (`Multiprocess.keep_subprocess_alive`'s loop body)."""
        process = self.processes[idx]
        process.kill()  # hung, or already gone
        process.join()
        if process.exitcode == STARTUP_FAILURE:
            # The app, TLS or the socket is broken: every restart would fail the same way.
            logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
            self.should_exit.set()
            return
        forget_metrics(process.pid)
        if self.should_exit.is_set():
            return
        logger.info(f"Child process [{process.pid}] died")
        replacement = multiprocess.Process(self.config, self.sockets)  # ours while `serve` runs
        replacement.start()
        self.processes[idx] = replacement


def forget_metrics(pid: int | None) -> None:
    """Drop a dead API process's live gauges from the shared multiprocess metrics (`mark_process_dead`): its last
    `engine_up` 0 kept `SmartCourseEngineDown` firing after the engine was back, and `build_info` counted it as a
    process (explore84 F1)."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess as metrics_files

        metrics_files.mark_process_dead(pid)


def serve(config: uvicorn.Config) -> None:
    """Run `config`: one process in this one, or `config.workers` processes under uvicorn's supervisor, each with
    its own listening socket (the app must then be an import string, as for `uvicorn --workers`)."""
    if config.workers <= 1:
        uvicorn.Server(config).run()
        return
    sock = bind_shared_port(config.host, config.port)
    # uvicorn's supervisor creates its processes from the module's `Process`: ours, in this (supervisor) process.
    original: Any = multiprocess.Process
    multiprocess.Process = ReusePortProcess  # type: ignore[misc]
    try:
        Supervisor(config, sockets=[sock]).run()
    finally:
        multiprocess.Process = original  # type: ignore[misc]
        sock.close()
