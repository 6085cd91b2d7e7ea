"""`smartcourse serve`: uvicorn's supervisor replacing an API process is logged as a warning, its chatter is not."""

from __future__ import annotations

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


def test_a_replaced_api_process_is_a_warning_and_startup_chatter_is_dropped(
    uvicorn_loggers: object, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(cli.uvicorn_log_config())
    log = logging.getLogger("uvicorn.error")  # the supervisor's logger (uvicorn/supervisors/multiprocess.py)
    log.info("Started server process [41]")
    log.info("Waiting for application startup.")
    log.info("Child process [42] died")
    log.warning("Invalid HTTP request received.")
    logging.getLogger("uvicorn.access").info('127.0.0.1:5 - "GET / HTTP/1.1" 200')
    err = capsys.readouterr().err.splitlines()
    assert err == ["WARNING:  Child process [42] died", "WARNING:  Invalid HTTP request received."]
