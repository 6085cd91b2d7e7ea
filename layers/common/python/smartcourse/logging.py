"""Structured (JSON) logging for every process, one line per record."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("event_id", "workflow_id", "course_id", "consumer"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging() -> None:
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("SMARTCOURSE_LOG_FORMAT", "json") == "json":
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(os.environ.get("SMARTCOURSE_LOG_LEVEL", "INFO").upper())
