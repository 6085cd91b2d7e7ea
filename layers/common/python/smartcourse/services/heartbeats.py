"""Background liveness: each background process (the worker with its dispatcher, relay and sweeper; the Kafka relay
and consumers; the Celery worker) renews a row of `process_heartbeats` every few seconds, and `/health` reports each
process with the age of its newest beat: `up`, `stale` (older than SMARTCOURSE_HEARTBEAT_STALE_SECONDS: stopped,
hung, or cut off from the database) or `missing` (expected, never seen).

Which processes are expected: SMARTCOURSE_BACKGROUND_PROCESSES (comma-separated; `smartcourse run` sets it to the
processes it starts; empty: none), else every process that has ever beaten here. A beat is a row in the database
the processes work on, so a process that cannot reach it reads as stale too: it cannot work either. The ages are
read with the database's clock, so hosts' clocks do not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.models import ProcessHeartbeat, iso

log = logging.getLogger(__name__)

#: How often a process beats (well under the default staleness, 60 s: a busy, low-priority process may be late).
HEARTBEAT_SECONDS = 10.0
#: A beat older than this of another instance of the same process is removed by a live instance's beat.
PRUNE_AFTER = timedelta(days=1)


def instance_name() -> str:
    """This process instance: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def _gone_here(instance: str, host: str) -> bool:
    """Whether `instance` (host:pid) was a process of this host that no longer runs."""
    named_host, _, pid = instance.rpartition(":")
    if named_host != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


async def beat(sessionmaker: Any, process: str, instance: str, *, started_at: datetime | None = None) -> datetime:
    """Record that `process` (`instance`) is alive now; remove the day-old rows of its gone instances, and the rows
    of its instances on this host whose process is gone and that last beat before this instance started
    (`started_at`, its first beat's time; None: this is its first beat): a killed worker restarted by
    `smartcourse run` counted as a second live instance until its last beat went stale (explore30 F8). The time
    bound keeps a live instance of another PID namespace with the same host name (containers on the host's
    network) from being taken for a gone one: it beats after this instance started. Returns the beat's time."""
    async with sessionmaker() as session, session.begin():
        now: datetime = await session.scalar(select(func.now()))
        stmt = insert(ProcessHeartbeat).values(process=process, instance=instance, beat_at=now)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[ProcessHeartbeat.process, ProcessHeartbeat.instance], set_={"beat_at": now}
            )
        )
        await session.execute(
            delete(ProcessHeartbeat).where(
                ProcessHeartbeat.process == process, ProcessHeartbeat.beat_at < now - PRUNE_AFTER
            )
        )
        host = instance.rpartition(":")[0]
        others = await session.scalars(
            select(ProcessHeartbeat.instance).where(
                ProcessHeartbeat.process == process,
                ProcessHeartbeat.instance != instance,
                ProcessHeartbeat.beat_at < (started_at or now),
            )
        )
        gone = [other for other in others if _gone_here(other, host)]
        if gone:
            await session.execute(
                delete(ProcessHeartbeat).where(ProcessHeartbeat.process == process, ProcessHeartbeat.instance.in_(gone))
            )
    return now


#: How long the first beat of a process may take (it opens the pool's first connection during start-up).
FIRST_BEAT_TIMEOUT = 60.0


async def run_heartbeat(
    sessionmaker: Any, process: str, *, stop: asyncio.Event, every: float = HEARTBEAT_SECONDS
) -> None:
    """Beat every `every` seconds until `stop` (the first one at once). A failed beat is logged and retried."""
    instance = instance_name()
    started_at: datetime | None = None
    while not stop.is_set():
        # The first beat opens the pool's first connection while the process is still starting (a worker builds and
        # checks its workflows on the same loop): under a busy start it took over 10 s, was cancelled and logged a
        # 91-line traceback, and the process read stale for one more period (explore32 F2). It gets longer.
        timeout = every if started_at else max(every, FIRST_BEAT_TIMEOUT)
        try:
            at = await asyncio.wait_for(beat(sessionmaker, process, instance, started_at=started_at), timeout=timeout)
            started_at = started_at or at
        except TimeoutError:  # a slow database, not a fault in this code: one line
            log.warning("heartbeat of %s not recorded: the database did not answer within %g s", process, timeout)
        except Exception:
            log.warning("heartbeat of %s not recorded", process, exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


@contextlib.asynccontextmanager
async def beating(sessionmaker: Any, process: str, *, every: float = HEARTBEAT_SECONDS) -> AsyncIterator[None]:
    """`run_heartbeat` in the background for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_heartbeat(sessionmaker, process, stop=stop, every=every))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def expected_processes(setting: str | None) -> list[str] | None:
    """SMARTCOURSE_BACKGROUND_PROCESSES as a list (None when unset: every process seen)."""
    if setting is None:
        return None
    return [name.strip() for name in setting.split(",") if name.strip()]


async def liveness(
    session: AsyncSession, *, expected: Collection[str] | None, stale_after: float
) -> dict[str, dict[str, Any]]:
    """Each expected background process: `status` (up, stale, missing), `age_seconds` of its newest beat and
    `instances` (those that beat within `stale_after`). `expected` None: every process that has beaten."""
    age = func.extract("epoch", func.now() - func.max(ProcessHeartbeat.beat_at))
    fresh = func.count().filter(ProcessHeartbeat.beat_at > func.now() - timedelta(seconds=stale_after))
    rows = (
        await session.execute(
            select(ProcessHeartbeat.process, age, fresh, func.max(ProcessHeartbeat.beat_at)).group_by(
                ProcessHeartbeat.process
            )
        )
    ).all()
    seen = {process: (float(seconds), int(live), last) for process, seconds, live, last in rows}
    names = sorted(seen) if expected is None else list(dict.fromkeys(expected))
    report: dict[str, dict[str, Any]] = {}
    for name in names:
        if name not in seen:
            report[name] = {"status": "missing", "error": "no heartbeat recorded: never started here?"}
            continue
        seconds, live, last = seen[name]
        status = "up" if live > 0 and seconds <= stale_after else "stale"
        entry: dict[str, Any] = {"status": status, "age_seconds": round(seconds, 1), "instances": live}
        if status == "stale":
            # A stopped or hung process writes no log line: its metrics port not answering says so (explore55 F12).
            entry["error"] = (
                f"no heartbeat for {seconds:.0f} s: cut off from the database (its log says so), or stopped or hung "
                "(its log is silent and its metrics port does not answer)"
            )
            entry["last_beat_at"] = iso(last)
        report[name] = entry
    return report


async def silence_by_pid(database_url: str, processes: Collection[str]) -> dict[int, float]:
    """Seconds since the newest beat of each instance of `processes` on this host, by pid (`smartcourse run`'s
    watch for a child alive but hung). Raises when the database does not answer: a silence then says nothing."""
    import asyncpg

    host = socket.gethostname()
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=5, command_timeout=5)
    try:
        rows = await conn.fetch(
            "select instance, extract(epoch from now() - beat_at) as age from process_heartbeats "
            "where process = any($1::text[])",
            list(processes),
        )
    finally:
        await conn.close()
    ages: dict[int, float] = {}
    for row in rows:
        where, _, pid = str(row["instance"]).rpartition(":")
        if where == host[: 200 - len(pid) - 1] and pid.isdigit():
            ages[int(pid)] = float(row["age"])
    return ages
