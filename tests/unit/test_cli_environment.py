"""What `smartcourse` refuses before it starts anything, in one line each (explore58 F1, F2, F5, F6, F7)."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from smartcourse.cli import address_problem, environment_problems, main
from smartcourse.config import Settings


def test_settings_read_outside_settings_are_checked_first() -> None:
    assert environment_problems({}) == []
    fine = {"PORT": "8000", "SMARTCOURSE_LOG_LEVEL": "debug", "SMARTCOURSE_LOG_FORMAT": "text"}
    assert environment_problems(fine) == []
    found = environment_problems(
        {
            "PORT": "eighty",
            "SMARTCOURSE_API_WORKERS": "0",
            "SMARTCOURSE_TRACE_FILE_MAX_BYTES": "abc",
            "SMARTCOURSE_TRACE_RETENTION_DAYS": "-1",
            "SMARTCOURSE_LOG_LEVEL": "VERBOSE",
            "SMARTCOURSE_LOG_FORMAT": "yaml",
        }
    )
    assert found == [
        "PORT: 'eighty' is not a whole number",
        "SMARTCOURSE_API_WORKERS: 0 is not between 1 and 1024",
        "SMARTCOURSE_TRACE_FILE_MAX_BYTES: 'abc' is not a whole number",
        "SMARTCOURSE_TRACE_RETENTION_DAYS: '-1' is not a number of days above 0",
        "SMARTCOURSE_LOG_LEVEL: 'VERBOSE' is none of DEBUG, INFO, WARNING, ERROR, CRITICAL",
        "SMARTCOURSE_LOG_FORMAT: 'yaml' is neither json nor text",
    ]


def test_a_bad_setting_stops_every_command_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-numeric PORT broke every command, `--help` too, with a traceback (explore58 F6)."""
    monkeypatch.setenv("PORT", "eighty")
    assert main(["routes"]) == 2
    assert capsys.readouterr().err == "error: PORT: 'eighty' is not a whole number\n"


def test_an_address_another_server_listens_on_is_refused() -> None:
    """The API binds with SO_REUSEPORT: a second SmartCourse on the same port started beside the first and took half
    its requests, to another database (explore58 F1)."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as another SmartCourse's API binds
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        said = address_problem("127.0.0.1", port)
        assert said is not None and said.startswith(f"127.0.0.1:{port} is in use"), said
    assert address_problem("127.0.0.1", port) is None  # free again
    assert address_problem("127.0.0.1", 70000) == "port 70000 is not between 1 and 65535"


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"ACCESS_TOKEN_MINUTES": "-5"}, "ACCESS_TOKEN_MINUTES"),
        ({"CHUNK_TOKENS": "100", "CHUNK_OVERLAP_TOKENS": "120"}, "CHUNK_OVERLAP_TOKENS (120) must be below"),
        ({"PUBLIC_BASE_URL": "learn example org"}, "PUBLIC_BASE_URL 'learn example org' is not an http(s) address"),
        # explore84 F2: taken, and the limiter, failing open on the parse error, limited nothing.
        ({"LOGIN_RATE_LIMIT_IP": "30/min"}, "'30/min' is not a rate limit such as 30/minute"),
        ({"PASSWORD_RESET_RATE_LIMIT_ACCOUNT": "lots"}, "'lots' is not a rate limit"),
    ],
)
def test_settings_that_would_break_the_product_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], said: str
) -> None:
    """Taken without a word (explore58 F7): every token born expired, every publish failing after minutes of
    retries, certificates linking to a non-address."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=said.replace("(", r"\(").replace(")", r"\)")):
        Settings()
