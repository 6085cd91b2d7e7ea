"""The launcher sizes every process's pools so that together they fit the server's max_connections."""

from __future__ import annotations

import pytest

from smartcourse.bootstrap import connections_per_process, pool_within
from smartcourse.cli import SPARE_CONNECTIONS, pool_plan


def test_a_process_with_the_default_pools_opens_forty_connections_at_most() -> None:
    # The main pool 10 + 20 overflow, the document store's 5 + 5 (bootstrap.build_container).
    assert connections_per_process(10, 20) == 40
    assert connections_per_process(2, 0) == 4


def test_the_default_pool_is_kept_when_it_fits() -> None:
    assert pool_within(40) == (10, 20)
    assert pool_within(500) == (10, 20)


def test_overflow_goes_first_then_kept_connections_never_below_one() -> None:
    assert pool_within(27) == (10, 7)  # 10 + 7 + 5 + 5
    assert pool_within(20) == (10, 2)  # 10 + 2 + 5 + 2
    assert pool_within(15) == (10, 0)  # 10 + 5: no overflow left
    assert pool_within(8) == (4, 0)
    assert pool_within(0) == (1, 0)


@pytest.mark.parametrize("processes", [1, 2, 3, 5, 9, 17, 21])
def test_every_process_at_its_fullest_fits_the_server(processes: int) -> None:
    limit, others = 97, 4  # the embedded server: 100 less 3 for superusers; Celery's two children
    pools, line = pool_plan(limit, processes, others=others, env={})
    size, overflow = int(pools["DB_POOL_SIZE"]), int(pools["DB_MAX_OVERFLOW"])
    most = processes * connections_per_process(size, overflow) + others
    assert most <= limit - SPARE_CONNECTIONS, (processes, size, overflow)
    assert f"at most {most} of the server's {limit}" in line


def test_two_cores_get_most_of_the_default_pool() -> None:
    # `make run` on 2 cores: two API processes and the worker.
    assert pool_plan(97, 3, others=4, env={})[0] == {"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "7"}
    # A server with room keeps the defaults and says nothing about shrinking.
    pools, line = pool_plan(300, 3, others=4, env={})
    assert pools == {"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "20"}
    assert "under the default" not in line


def test_pools_set_by_the_operator_are_kept_and_checked() -> None:
    pools, line = pool_plan(97, 3, others=4, env={"DB_POOL_SIZE": "10"})
    assert pools == {}
    assert "EXCEEDS" in line  # 3 x 40 + 4
    pools, line = pool_plan(97, 3, others=4, env={"DB_MAX_OVERFLOW": "0"})
    assert pools == {}
    assert "at most 49" in line and "fits" in line


def test_the_settings_read_the_pool_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from smartcourse.config import Settings

    monkeypatch.setenv("DB_POOL_SIZE", "4")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    settings = Settings()
    assert (settings.db_pool_size, settings.db_max_overflow) == (4, 0)


def test_the_api_processes_share_what_the_embedded_model_admits() -> None:
    """explore72 F3: under `run`, 2 API processes admitted 4 asks each, 8 queued behind the embedded model's 2 slots,
    and the queued ones timed out. Together they admit its 2 running + 2 queued; an operator's setting or a model of
    one's own is kept."""
    from types import SimpleNamespace

    from smartcourse.cli import share_the_embedded_model

    embedded = SimpleNamespace(llm_base_url=None, assistant_max_concurrent=4)
    env: dict[str, str] = {}
    share_the_embedded_model(env, embedded, 2)
    assert env["ASSISTANT_MAX_CONCURRENT"] == "2"
    env = {}
    share_the_embedded_model(env, embedded, 3)
    assert env["ASSISTANT_MAX_CONCURRENT"] == "2"  # rounded up: never 0
    for env, settings, processes in (
        ({"ASSISTANT_MAX_CONCURRENT": "6"}, embedded, 2),
        ({}, SimpleNamespace(llm_base_url="http://llm:8000/v1", assistant_max_concurrent=4), 2),
        ({}, SimpleNamespace(llm_base_url=None, assistant_max_concurrent=8), 2),
        ({}, embedded, 1),
    ):
        before = dict(env)
        share_the_embedded_model(env, settings, processes)
        assert env == before, (env, settings, processes)
