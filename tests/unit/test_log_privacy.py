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


def test_the_reset_tasks_rows_keep_fingerprints_of_the_address_not_the_address() -> None:
    """explore67 F4, explore69 F5: the reset task's outcome rows and dead letters (listed to admins) kept every address
    typed into the reset form. They keep a keyed fingerprint, the same for the same address in any case, and an
    error quoting the address (an SMTP refusal does) quotes the fingerprint."""
    from smartcourse import tasks

    name = "accounts.send_password_reset"
    kept = tasks._recorded_args(name, ["Ada@Example.com"], {})
    assert kept["args"][0].startswith("hidden:") and "example" not in str(kept).lower()
    assert tasks._recorded_args(name, [" ada@example.com"], {}) == kept  # one address, one fingerprint
    assert tasks._recorded_args(name, ["bob@example.com"], {}) != kept
    error = "SMTPRecipientsRefused: {'Ada@Example.com': (550, b'no such user')}"
    assert "Ada@Example.com" not in tasks._recorded_error(name, ["Ada@Example.com"], {}, error)
    stored = "550 <josé@exämple.com>: no such user"  # the stored form of what was typed in punycode and capitals
    assert "exämple" not in tasks._recorded_error(name, ["JOSÉ@xn--exmple-cua.com"], {}, stored).lower()
    other = "notifications.send_email"  # other tasks' arguments are ids, kept as they are
    assert tasks._recorded_args(other, ["n-1"], {"x": 1}) == {"args": ["n-1"], "kwargs": {"x": 1}}
    assert tasks._recorded_error(other, ["n-1"], {}, "n-1 failed") == "n-1 failed"
