"""Log lines on-call can read in an outage (explore55 F9): the cause of an error on the line, a traceback once a
minute per place (not one per request), no object reprs of other libraries' records, no line per HTTP probe."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from smartcourse.logging import TRACEBACK_EVERY_SECONDS, JsonFormatter, configure_logging, describe_error


def _failing_store() -> None:
    try:
        raise TimeoutError("Timeout reading from /var/redis/redis.sock")
    except TimeoutError as exc:
        raise ConnectionError("the limit store did not answer") from exc


def _record(created: float, msg: str = "rate limit store unavailable; allowing %s") -> logging.LogRecord:
    try:
        _failing_store()
    except ConnectionError:
        info = sys.exc_info()
        record = logging.LogRecord("smartcourse.ratelimit", logging.WARNING, __file__, 1, msg, ("login",), info)
    record.created = created
    return record


def test_an_error_line_says_its_cause_and_its_traceback_once_a_minute() -> None:
    formatter = JsonFormatter()
    first = json.loads(formatter.format(_record(1000.0)))
    cause = "ConnectionError: the limit store did not answer (caused by TimeoutError: Timeout reading from "
    assert first["cause"].startswith(cause), first
    assert "Traceback" in first["exc"] and "exc_seen_at" not in first
    again = json.loads(formatter.format(_record(1030.0)))
    assert again["cause"] == first["cause"] and "exc" not in again and again["exc_seen_at"] == first["time"], again
    other = json.loads(formatter.format(_record(1030.0, "catalogue cache unavailable (%s)")))  # another call
    assert "Traceback" in other["exc"], other
    later = json.loads(formatter.format(_record(1000.0 + TRACEBACK_EVERY_SECONDS + 1)))
    assert "Traceback" in later["exc"], later


def test_the_cause_of_an_error_without_a_chain_is_the_error() -> None:
    assert describe_error(ValueError("bad")) == "ValueError: bad"
    assert describe_error(TimeoutError()) == "TimeoutError"


def test_temporal_core_lines_carry_no_object_repr() -> None:
    record = logging.LogRecord("temporalio.bridge", logging.WARNING, "(sdk-core)", 0, "poll failed {}", (), None)
    record.temporal_log = object()  # what temporalio's log forwarding attaches
    line = json.loads(JsonFormatter().format(record))
    assert "temporal_log" not in line and " object at 0x" not in json.dumps(line)


def test_httpx_request_lines_are_not_logged_at_info(monkeypatch: Any) -> None:
    import smartcourse.logging as module

    monkeypatch.setattr(module, "_configured", False)
    configure_logging()
    for chatty in ("httpx", "httpx2"):  # openai's client uses the second (explore58 F9)
        assert not logging.getLogger(chatty).isEnabledFor(logging.INFO)
        assert logging.getLogger(chatty).isEnabledFor(logging.WARNING)
