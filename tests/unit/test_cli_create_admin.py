"""`smartcourse create-admin` holds the most powerful account to a registration's rules, before touching an engine."""

from __future__ import annotations

import argparse

import pytest

from smartcourse import cli


@pytest.mark.parametrize(
    ("email", "password", "full_name", "refused"),
    [
        ("short@example.com", "short", "Admin", "--password"),
        ("notanemail", "a-strong-password", "Admin", "--email"),
        ("", "", "Admin", "--email"),
        ("ok@example.com", "a-strong-password", "   ", "--full-name"),
    ],
)
def test_an_account_a_registration_would_refuse_is_refused(
    email: str,
    password: str,
    full_name: str,
    refused: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_engines() -> None:
        raise AssertionError("an engine was touched for an account refused anyway")

    monkeypatch.setattr("smartcourse.bootstrap.get_container", no_engines)
    # `cmd_create_admin`, not `main`: main leaves by `os._exit` (temporalio's exit crash, sdk-python#300).
    code = cli.cmd_create_admin(argparse.Namespace(email=email, password=password, full_name=full_name))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {refused}: "), err
