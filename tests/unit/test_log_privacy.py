"""What the JSON log lines leave out (explore55 F9: Celery's task lines carried the password-reset task's address)."""

from __future__ import annotations

import json
import logging

from smartcourse.logging import JsonFormatter


def test_celery_task_lines_keep_the_task_not_its_arguments() -> None:
    data = {"id": "t-1", "name": "accounts.send_password_reset", "args": "['s7@example.com']", "kwargs": "{}"}
    record = logging.LogRecord("celery.app.trace", logging.INFO, __file__, 1, "Task %s received", ("x",), None)
    record.data = data
    line = json.loads(JsonFormatter().format(record))
    assert line["data"] == {"id": "t-1", "name": "accounts.send_password_reset"}
    assert "s7@example.com" not in json.dumps(line)
    own = logging.LogRecord("smartcourse.x", logging.INFO, __file__, 1, "hello", (), None)
    own.data = {"args": "kept"}  # our own lines say what they mean to
    assert json.loads(JsonFormatter().format(own))["data"] == {"args": "kept"}
