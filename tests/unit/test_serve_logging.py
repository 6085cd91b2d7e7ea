"""`smartcourse serve`: uvicorn's supervisor replacing an API process is logged as a warning, its chatter is not."""

from __future__ import annotations

import json
import logging
import logging.config

import pytest

from smartcourse import cli


@pytest.fixture
def uvicorn_loggers() -> object:
    names = ("uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def _supervisor_lines() -> None:
    log = logging.getLogger("uvicorn.error")  # the supervisor's logger (uvicorn/supervisors/multiprocess.py)
    log.info("Started server process [41]")
    log.info("Waiting for application startup.")
    log.info("Child process [42] died")
    log.warning("Invalid HTTP request received.")
    logging.getLogger("uvicorn.access").info('127.0.0.1:5 - "GET / HTTP/1.1" 200')


def test_a_replaced_api_process_is_a_warning_and_startup_chatter_is_dropped(
    uvicorn_loggers: object, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(cli.uvicorn_log_config())
    _supervisor_lines()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["logger"], line["msg"]) for line in lines] == [
        ("warning", "uvicorn.error", "Child process [42] died"),
        ("warning", "uvicorn.error", "Invalid HTTP request received."),
    ]


def test_text_logs_keep_uvicorns_format(
    uvicorn_loggers: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTCOURSE_LOG_FORMAT", "text")
    logging.config.dictConfig(cli.uvicorn_log_config())
    _supervisor_lines()
    err = capsys.readouterr().err.splitlines()
    assert err == ["WARNING:  Child process [42] died", "WARNING:  Invalid HTTP request received."]


def test_an_exception_escaping_the_app_is_one_json_line(
    uvicorn_loggers: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn logs an exception the app let through ("Exception in ASGI application") on `uvicorn.error`: it was
    a hundred lines of plain text between the JSON lines."""
    logging.config.dictConfig(cli.uvicorn_log_config())
    try:
        raise ConnectionError("redis went away")
    except ConnectionError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application\n")
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["level"] == "error" and record["msg"].startswith("Exception in ASGI application")
    assert "ConnectionError: redis went away" in record["exc"]
