"""The embedded Temporal dev server's visibility table keeps only the indexes its lists use
(`engines.TEMPORAL_VISIBILITY_INDEXES`): the other 51 were updated at every workflow's start and close and took a
third of the server's CPU per enrollment (docs/benchmarks.md, twenty-eighth pass)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from smartcourse.engines import TEMPORAL_VISIBILITY_INDEXES, lean_temporal_visibility


def _indexes(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "select name from sqlite_master where type = 'index' and tbl_name = 'executions_visibility' "
            "and sql is not null"
        )
        return {name for (name,) in rows}
    finally:
        conn.close()


async def test_the_dev_server_keeps_only_the_indexes_its_lists_use(data_dir: Path, settings: Any) -> None:
    from temporalio.client import Client

    db = data_dir / "temporal" / "temporal.db"
    assert _indexes(db) == TEMPORAL_VISIBILITY_INDEXES
    assert lean_temporal_visibility(db) == []  # done once: nothing left to drop
    assert lean_temporal_visibility(data_dir / "no-such.db") is None
    assert not (data_dir / "no-such.db").exists()
    client = await Client.connect(settings.temporal_address)
    # A list by a kept index and one by a dropped one (a scan) both answer.
    await client.count_workflows("WorkflowType = 'EnrollmentWorkflow'")
    await client.count_workflows("HistoryLength > 0 AND ExecutionStatus = 'Completed'")
