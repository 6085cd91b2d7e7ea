"""The local HTTP server of several API processes, each with its own listening socket (SO_REUSEPORT).

uvicorn's `--workers` binds one socket in its supervisor and every process accepts from it. asyncio (and uvloop)
accept every pending connection at once when the socket turns readable, so whichever process wakes first takes a
whole burst of keep-alive connections and keeps them: measured on 2 cores with 16 clients, one API process ran at
82 % of a core and the other at 0-8 % (docs/benchmarks.md, "Ninth pass"). Here each process listens on a socket of
its own, bound to the same address with SO_REUSEPORT, and the kernel spreads new connections over them by a hash of
the connection's addresses. The supervisor keeps its socket bound but never listens on it: it holds the port
between process restarts and gives the processes the address. uvicorn's supervisor (health pings, restarts, the
TTIN/TTOU signals) is kept as is; only the server each process runs is ours (`ReusePortServer`).
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

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


class Supervisor(multiprocess.Multiprocess):
    """uvicorn's supervisor, replacing a process that exited before it pings the others. It pings its processes in
    turn, each for up to the health-check timeout (`cli.HEALTHCHECK_SECONDS`, 30 s): one still starting answers only
    once its imports are done, so a dead process after it in the list waited up to 30 s for its replacement, the API
    on one process meanwhile (explore38 F8: 29 s). The exited ones are put first, so they are replaced at once."""

    def keep_subprocess_alive(self) -> None:
        self.processes.sort(key=lambda p: p.process.is_alive())  # the exited (False) first; the order means nothing
        super().keep_subprocess_alive()


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
