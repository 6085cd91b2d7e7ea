"""`smartcourse.celery_pool`: Celery's prefork pool registers with the event loop again after a broker reconnect while
a pool process that exited is not replaced yet (the real pool and event loop of Celery and kombu; two processes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.concurrency import asynpool
from kombu.asynchronous import Hub

from smartcourse.celery_pool import AsynPool


@pytest.fixture
def pools() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for pool in made:
        pool.terminate()


def _exited_then_reconnected(pool_class: type, pools: list[Any]) -> tuple[Any, Hub]:
    pool = pool_class(processes=2, threads=False)
    pools.append(pool)
    hub = Hub()
    pool.register_with_event_loop(hub)
    # What `_event_process_exit` does when a pool process exits (a task terminated on a connection loss, a kill)...
    pool._untrack_child_process(pool._pool[0], hub)
    return pool, hub


def test_registering_again_skips_a_process_that_exited(pools: list[Any]) -> None:
    pool, hub = _exited_then_reconnected(AsynPool, pools)
    # ... and what the consumer does after a broker reconnect, before the pool's upkeep replaced the process.
    pool.register_with_event_loop(hub)
    exited, alive = pool._pool
    assert exited._sentinel_poll is None
    assert alive._sentinel_poll in hub.readers  # the other process is still watched
    hub.close()


def test_celerys_own_pool_still_stops_there(pools: list[Any]) -> None:
    """The bug the subclass works around (celery 5.7 with kombu 5.7). When this fails, Celery fixed it: the subclass
    and `worker_pool` in `tasks.celery_config` can go."""
    pool, hub = _exited_then_reconnected(asynpool.AsynPool, pools)
    with pytest.raises(ValueError, match="file descriptor is None"):
        pool.register_with_event_loop(hub)
    hub.close()
