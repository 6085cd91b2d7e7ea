"""The embedded PostgreSQL fits what `smartcourse run` starts on the host: on a many-core host an API process per
core would otherwise share PostgreSQL's default 100 connections (one each, or past the limit)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcourse.cli import pool_plan, server_connection_limit
from smartcourse.engines import EmbeddedEngines, embedded_max_connections

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _max_connections(engines: EmbeddedEngines) -> int:
    limit = server_connection_limit(engines.postgres_url())
    assert limit is not None
    return limit + 3  # the superusers' reserved connections (server_connection_limit leaves them out)


def test_a_many_core_host_gets_a_server_with_room_for_its_processes(
    pg_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCOURSE_API_WORKERS", "2")
    assert embedded_max_connections() == 100  # this machine's size: PostgreSQL's default, no restart
    monkeypatch.setenv("SMARTCOURSE_API_WORKERS", "16")  # what `run` starts on 16 cores
    wanted = embedded_max_connections()
    assert wanted == 300
    first = EmbeddedEngines(pg_tmp)
    try:
        assert _max_connections(first) == wanted  # raised, with one restart, on the first start
        pools, line = pool_plan(wanted - 3, 16 + 2, others=4, env={})
        assert int(pools["DB_POOL_SIZE"]) >= 5, line  # against 2 + 0 each under the default 100
        again = EmbeddedEngines(pg_tmp)  # another process finds it running: nothing to do
        assert _max_connections(again) == wanted
    finally:
        first.stop()
    monkeypatch.setenv("SMARTCOURSE_API_WORKERS", "2")
    later = EmbeddedEngines(pg_tmp)  # the next start keeps it (ALTER SYSTEM), even where 100 would do
    try:
        assert _max_connections(later) == wanted
    finally:
        later.stop()
