"""`extract_material` in a child process that is killed at its time budget.

In a thread, the budget was only checked between PDF pages: one page of 400,000 text operators (an 8 KB upload) kept
a publish in its extract step for 15 minutes, the activity timed out on heartbeats and was retried while the first
attempt's thread ran on (a thread cannot be stopped), and the CPU it took delayed other courses' publishes
(explore27 F1). A child process can be stopped: at the budget the file is skipped as `too_large` and the publish goes
on; a cancelled activity stops its child too.

Children are forked from a forkserver (started once per process, with the parsers imported), not from the worker,
whose threads (Temporal's, the event loop's executor) a plain fork would copy mid-lock.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any

from smartcourse.content.extract import TIME_BUDGET_S, ExtractionError, Section, extract_material

log = logging.getLogger(__name__)

_PRELOAD = ["smartcourse.content.extract", "pypdf", "selectolax.lexbor"]
_context: Any = None


def _mp_context() -> Any:
    global _context
    if _context is None:
        if "forkserver" in multiprocessing.get_all_start_methods():
            _context = multiprocessing.get_context("forkserver")
            _context.set_forkserver_preload(_PRELOAD)
        else:  # pragma: no cover - not Linux
            _context = multiprocessing.get_context("spawn")
    return _context


def _child(conn: Connection, data: bytes, kwargs: dict[str, Any]) -> None:
    try:
        notes: list[str] = []
        sections = extract_material(data, **kwargs, notes=notes)
        conn.send(("ok", [asdict(s) for s in sections], notes))
    except ExtractionError as exc:
        conn.send(("error", exc.reason, str(exc)[len(exc.filename) + 2 :]))  # the text after "<filename>: "
    except BaseException as exc:  # whatever a parser raises, the parent gets a reason, not a hang
        conn.send(("error", "unreadable", f"the file could not be read ({type(exc).__name__})"))
    finally:
        conn.close()


async def extract_material_bounded(
    data: bytes,
    *,
    filename: str,
    content_type: str,
    source_id: str,
    title: str,
    time_budget_s: float = TIME_BUDGET_S,
    notes: list[str] | None = None,
) -> list[Section]:
    """The sections `extract_material` gives, computed in a child process that is killed after `time_budget_s`
    (ExtractionError `too_large`) or when the caller is cancelled. A child that dies (the kernel's OOM killer) is
    `unreadable`. `notes` gets `extract_material`'s notes (what a file otherwise read left out)."""
    kwargs = {
        "filename": filename,
        "content_type": content_type,
        "source_id": source_id,
        "title": title,
        "time_budget_s": time_budget_s,
    }
    ctx = _mp_context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(sender, data, kwargs), daemon=True, name="smartcourse-extract")
    try:
        await asyncio.to_thread(proc.start)  # the forkserver's first start imports the parsers: not on the loop
    except OSError as exc:  # no way to start a process here: bounded between pages only, as before
        receiver.close()
        sender.close()
        log.warning("extraction of %s runs in a thread: no child process could be started (%r)", filename, exc)
        return await asyncio.to_thread(extract_material, data, **kwargs, notes=notes)  # type: ignore[arg-type]
    sender.close()
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(receiver.fileno(), on_readable)
    try:
        try:
            await asyncio.wait_for(readable, time_budget_s)
        except TimeoutError:
            log.warning("extraction of %s stopped after %g s", filename, time_budget_s)
            raise ExtractionError(filename, "too_large", f"text extraction took over {time_budget_s:g}s") from None
        finally:
            loop.remove_reader(receiver.fileno())
        # uvloop's add_reader leaves the descriptor non-blocking: the thread's read of a result larger than the
        # pipe's buffer then failed with EAGAIN whenever the child had not written the rest yet (every material
        # with over 64 KiB of text, under the worker's uvloop). The read below waits for the rest.
        os.set_blocking(receiver.fileno(), True)
        try:
            message = await asyncio.to_thread(receiver.recv)
        except EOFError:
            proc.join(5)
            raise ExtractionError(
                filename, "unreadable", f"text extraction stopped (exit code {proc.exitcode})"
            ) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        receiver.close()
    if message[0] == "ok":
        if notes is not None:
            notes.extend(message[2])
        return [Section(**s) for s in message[1]]
    raise ExtractionError(filename, message[1], message[2])
