"""Structured (JSON) logging for every process, one line per record, each carrying the trace it was logged in.

A line: `time`, `level`, `process` (api, worker, relay, consumers, celery, ...), `logger`, `msg`, `trace_id` and
`span_id` (when logged inside a span), then whatever the call passed in `extra=` (e.g. the API's request line:
method, route, status, duration_ms, user_id); with an exception, its `cause` (`Type: message`, and its root cause)
and `exc`, the traceback, once a minute per place it comes from (`exc_seen_at` on the lines in between).
SMARTCOURSE_LOG_FORMAT=text gives plain lines instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_configured = False
_process = os.environ.get("SMARTCOURSE_PROCESS", "")

#: Attributes every LogRecord has: everything else on a record came from `extra=` and is written out.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "trace_id", "span_id", "taskName"}


def set_process_name(name: str) -> None:
    """The `process` field of this process's log lines (set by `telemetry.configure_telemetry`)."""
    global _process
    if not _process or _process == "unknown":
        _process = name


def _ids_of_current_span() -> tuple[str | None, str | None]:
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


_base_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stamp each record with the span it was created in (formatting may happen later, elsewhere)."""
    record = _base_factory(*args, **kwargs)
    record.trace_id, record.span_id = _ids_of_current_span()
    return record


#: Fields of other libraries' records that say nothing a line does not: temporalio's core lines carry their entry
#: object (`<builtins.BufferedLogEntry object at 0x...>`), whose fields the message already ends with.
_DROPPED = frozenset({"temporal_log"})

#: A traceback is written once in this many seconds per place it was logged from and error raised there; the lines
#: in between have the `cause` and `exc_seen_at`, the time of the line that has it (explore55 F9: a 5 kB traceback
#: per request while Redis was away, the cause at its very end).
TRACEBACK_EVERY_SECONDS = 60.0


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception of `exc`'s chain (what `raise ... from` and handling-while-handling link)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    return exc


def describe_error(exc: BaseException) -> str:
    """`Type: message` of the exception and, when another caused it, of its root cause too."""
    said = f"{type(exc).__name__}: {exc}".rstrip(": ")
    cause = root_cause(exc)
    if cause is not exc:
        said += f" (caused by {type(cause).__name__}: {cause})".replace(": )", ")")
    return said[:500]


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._tracebacks: dict[tuple[str, Any, str, str], tuple[float, str]] = {}

    def _traceback_said(self, record: logging.LogRecord, exc: BaseException, when: str) -> str | None:
        """When this traceback (same logger, call, error type and place) was last written, within the window."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        place = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""
        key = (record.name, record.msg, type(exc).__qualname__, place)
        last = self._tracebacks.get(key)
        if last is not None and record.created - last[0] < TRACEBACK_EVERY_SECONDS:
            return last[1]
        if len(self._tracebacks) > 1000:
            self._tracebacks.clear()
        self._tracebacks[key] = (record.created, when)
        return None

    def format(self, record: logging.LogRecord) -> str:
        trace_id = getattr(record, "trace_id", None)
        span_id = getattr(record, "span_id", None)
        if trace_id is None:
            trace_id, span_id = _ids_of_current_span()
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "process": _process or "unknown",
            # Which one of a kind: two API processes (explore40 F10: a fault of one could not be told from the logs).
            "pid": record.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if trace_id:
            out["trace_id"] = trace_id
            out["span_id"] = span_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_") and key not in _DROPPED:
                out[key] = value
        if record.name.startswith("celery") and isinstance(out.get("data"), dict):
            # Celery's task lines carry the task's arguments: an address (the password-reset task's), a person's
            # data. The task's name and id say which run it was (explore55 F9).
            out["data"] = {k: v for k, v in out["data"].items() if k not in ("args", "kwargs")}
        if record.exc_info:
            exc = record.exc_info[1]
            if exc is None:
                out["exc"] = self.formatException(record.exc_info)
            else:
                out["cause"] = describe_error(exc)
                said_at = self._traceback_said(record, exc, out["time"])
                if said_at is None:
                    out["exc"] = self.formatException(record.exc_info)
                else:
                    out["exc_seen_at"] = said_at
        return json.dumps(out, default=str)


def install_record_factory() -> None:
    """Stamp every record with the current trace and span ids (idempotent)."""
    if logging.getLogRecordFactory() is _base_factory:
        logging.setLogRecordFactory(_record_factory)


def configure_logging() -> None:
    global _configured
    if _configured:
        return
    _configured = True
    install_record_factory()
    logging.captureWarnings(True)  # Python warnings become log lines (JSON, with the process) instead of raw text
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("SMARTCOURSE_LOG_FORMAT", "json") == "json":
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(os.environ.get("SMARTCOURSE_LOG_LEVEL", "INFO").upper())
    # httpx says every request at info: each `/health` probe of the model server was a line per API process
    # (explore55 F9), and openai's client (httpx2) each model call (explore58 F9). Failures reach us as exceptions.
    for chatty in ("httpx", "httpx2"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


class FailedRounds:
    """A loop's rounds failing in a row (an outage: the database away), said once with the traceback, then a line per
    round, then when it is over: a traceback every round (77 in 40 s: explore38 F3, explore40 F12) buried the rest.
    `failed` is how many in a row so far (the caller's backoff reads it)."""

    def __init__(self, logger: logging.Logger, rounds: str, resumed: str) -> None:
        self.logger, self.rounds, self.resumed = logger, rounds, resumed
        self.failed = 0

    def failure(self, exc: BaseException) -> None:
        self.failed += 1
        if self.failed == 1:
            self.logger.error("%s failed", self.rounds, exc_info=exc)
        else:
            self.logger.warning("%s failed again (%d in a row): %s", self.rounds, self.failed, str(exc)[:300])

    def success(self) -> None:
        if self.failed:
            self.logger.warning("%s resumed after %d failed rounds", self.resumed, self.failed)
        self.failed = 0
