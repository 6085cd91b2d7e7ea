"""explore84 F1: an API process that died kept its live gauges in the shared multiprocess metrics: its last
`engine_up` 0 held `SmartCourseEngineDown` after the engine came back, and `build_info` counted it as a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcourse.api.serve import forget_metrics


def test_a_dead_api_processs_live_gauges_are_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("gauge_livemin_111.db", "gauge_liveall_111.db", "counter_111.db", "gauge_livemin_222.db"):
        (tmp_path / name).write_bytes(b"")
    forget_metrics(111)
    # Its live gauges go; its counters stay (a total counts what the dead process did), as the other's gauges.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_111.db", "gauge_livemin_222.db"]
    forget_metrics(None)  # a process that never started: nothing to drop
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    forget_metrics(222)  # one process, no shared directory: nothing to do
    assert (tmp_path / "gauge_livemin_222.db").exists()
