"""The relay and the dispatcher say an outage with `logging.FailedRounds`: the traceback once, then a line per failed
round, then that it resumed (explore38 F3, explore40 F12: a traceback at `error` every round while PostgreSQL was
away). Tested on a logger of its own: patching the dispatcher's module would reach the product that the xdist lane
runs in this same process (its dispatcher failed with the test's error, and the test read its lines)."""

from __future__ import annotations

import logging
from typing import Any

from smartcourse.logging import FailedRounds


def test_an_outage_is_one_traceback_then_a_line_per_round_then_resumed(caplog: Any) -> None:
    logger = logging.getLogger("tests.failed_rounds")
    caplog.set_level(logging.INFO, logger=logger.name)
    outage = FailedRounds(logger, "dispatch round", "workflow dispatcher")
    outage.success()  # nothing failed: nothing said
    assert caplog.records == []
    for _ in range(3):
        try:
            raise ConnectionRefusedError("database away")
        except ConnectionRefusedError as exc:
            outage.failure(exc)
    assert outage.failed == 3
    outage.success()
    assert outage.failed == 0
    lines = [(r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert lines == [
        ("ERROR", "dispatch round failed", True),
        ("WARNING", "dispatch round failed again (2 in a row): database away", False),
        ("WARNING", "dispatch round failed again (3 in a row): database away", False),
        ("WARNING", "workflow dispatcher resumed after 3 failed rounds", False),
    ]
