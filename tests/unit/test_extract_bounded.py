"""Extraction in a child process killed at its budget (explore27 F1: one page of a few KB kept a publish in its extract
step for 15 minutes, and a timed-out attempt's thread ran on beside its retries)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time

import pytest

from smartcourse.content.bounded import extract_material_bounded
from smartcourse.content.extract import ExtractionError, extract_material
from tests.fixtures import content as fx


def _extracting() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name == "smartcourse-extract"]


async def test_the_child_gives_what_extraction_in_process_gives() -> None:
    data = fx.pdf_multi_page()
    kwargs = {"filename": "notes.pdf", "content_type": "application/pdf", "source_id": "m1", "title": "Notes"}
    assert await extract_material_bounded(data, **kwargs) == extract_material(data, **kwargs)
    with pytest.raises(ExtractionError) as raised:
        await extract_material_bounded(fx.pdf_encrypted(), **kwargs)
    assert raised.value.reason == "encrypted_pdf" and str(raised.value) == "notes.pdf: the PDF is password-protected"
    with pytest.raises(ExtractionError) as raised:
        await extract_material_bounded(
            b"a\x00b", filename="a: b.txt", content_type="text/plain", source_id="m", title="t"
        )
    assert (raised.value.reason, str(raised.value)) == ("unreadable", "a: b.txt: text files must not contain NUL bytes")
    # What a file otherwise read left out comes back from the child too (explore51 F4).
    notes: list[str] = []
    damaged = fx.pdf_with_damaged_pages((1,))
    sections = await extract_material_bounded(damaged, **kwargs, notes=notes)
    assert [s.page for s in sections] == [2, 3] and notes == ["page 1 of 3 could not be read"]


async def test_a_page_that_takes_longer_than_the_budget_is_stopped_there() -> None:
    data = fx.pdf_one_page_of_operators(100_000)  # a second of pypdf, within one page: no check between pages helps
    assert len(data) < 10_000
    started = time.monotonic()
    extract_material(data, filename="slow.pdf", content_type="application/pdf", source_id="m", title="t")
    assert time.monotonic() - started > 0.4  # twice the budget below, in process: nothing stopped it there
    started = time.monotonic()
    with pytest.raises(ExtractionError) as raised:
        await extract_material_bounded(
            data, filename="slow.pdf", content_type="application/pdf", source_id="m", title="t", time_budget_s=0.2
        )
    assert (raised.value.reason, str(raised.value)) == ("too_large", "slow.pdf: text extraction took over 0.2s")
    assert time.monotonic() - started < 10  # the forkserver's first start included
    assert _extracting() == []  # killed, not left running


async def test_a_cancelled_extraction_stops_its_child() -> None:
    data = fx.pdf_one_page_of_operators(200_000)
    task = asyncio.create_task(
        extract_material_bounded(data, filename="slow.pdf", content_type="application/pdf", source_id="m", title="t")
    )
    deadline = time.monotonic() + 10
    while not _extracting():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _extracting() == []


def test_a_large_text_comes_back_whole_on_the_workers_loop() -> None:
    """The worker runs on uvloop (`smartcourse.aio.run`), whose `add_reader` leaves the pipe non-blocking: the
    thread reading a result larger than the pipe's buffer (64 KiB) got EAGAIN as soon as the child had not written
    the rest yet, and every material with more text than that failed to publish ("[Errno 11] Resource temporarily
    unavailable", 8 attempts; seen with a 200-page PDF under `smartcourse worker`). Tests on asyncio's loop passed."""
    from smartcourse import aio

    text = "".join(f"Paragraph {i}: cells turn glucose and oxygen into energy.\n\n" for i in range(40_000))
    data = text.encode()  # ~2.3 MB of text
    kwargs = {"filename": "book.txt", "content_type": "text/plain", "source_id": "m", "title": "Book"}

    async def both() -> tuple[object, object]:
        return await extract_material_bounded(data, **kwargs), extract_material(data, **kwargs)

    bounded, direct = aio.run(both())
    assert bounded == direct
