"""SMTP sink for development: every received message is kept as an ``.eml`` file in one directory."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailDirHandler", "main", "start_mailsink"]


class MailDirHandler:
    """aiosmtpd handler writing each message to ``<directory>/<timestamp>-<uuid>.eml``.

    The file is written under a hidden ``.tmp`` name and renamed when complete, so a reader that lists
    ``*.eml`` never sees half a message. Two headers are prepended with the SMTP envelope, which the
    message itself may not show (Bcc): ``X-Envelope-From`` and ``X-Envelope-To``.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def save(self, mail_from: str, rcpt_tos: Sequence[str], content: bytes) -> Path:
        """Store one message atomically and return its final path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{uuid.uuid4().hex}.eml"
        header = f"X-Envelope-From: {mail_from}\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n"
        tmp = self.directory / f".{name}.tmp"
        final = self.directory / name
        with open(tmp, "wb") as fh:
            fh.write(header.encode("utf-8"))
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        self.save(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start_mailsink(host: str, port: int, directory: str | os.PathLike[str]) -> Controller:
    """Start the sink in a background thread; returns the running controller (call ``.stop()``).

    ``port=0`` picks a free port; the chosen one is ``controller.port``.
    """
    if port == 0:
        port = _free_port(host)
    else:
        # A port taken by another server fails here at once: aiosmtpd's controller waits its whole `ready_timeout`
        # (10 s) before it says so (the engines then start the sink on another port: `EmbeddedEngines`).
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own socket: a listener only
            probe.bind((host, port))
    controller = Controller(
        MailDirHandler(directory),
        hostname=host,
        port=port,
        ready_timeout=10.0,
        enable_SMTPUTF8=True,
    )
    controller.start()
    return controller


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m smartcourse.devtools.mailsink --host H --port P --dir DIR``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", default="var/mail", help="directory the .eml files go to")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    controller = start_mailsink(args.host, args.port, args.dir)
    print(
        f"mailsink listening on {args.host}:{controller.port}, saving to {Path(args.dir).resolve()}",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
