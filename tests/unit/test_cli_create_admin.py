"""`smartcourse create-admin` holds the most powerful account to a registration's rules, before touching an engine."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

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


def test_the_password_is_asked_or_read_from_stdin_not_only_an_argument(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """explore67 F9: `--password` was required, so the most powerful account's password stood in the process list and
    the shell's history. Without it: asked twice at a terminal, else standard input's first line."""
    import getpass
    import io

    def no_engines() -> None:
        raise AssertionError("an engine was touched for an account refused anyway")

    monkeypatch.setattr("smartcourse.bootstrap.get_container", no_engines)
    args = argparse.Namespace(email="ok@example.com", password=None, full_name="Admin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\nignored\n"))
    assert cli.cmd_create_admin(args) == 2  # read from stdin, and held to the rules
    assert capsys.readouterr().err.startswith("error: --password: ")
    assert cli._admin_password(None) == "ignored"  # the next line: one line each time, its newline dropped

    typed = iter(["xylophone-zebra-12", "xylophone-zebra-13"])
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(typed))
    assert cli.cmd_create_admin(args) == 2
    assert capsys.readouterr().err == "error: --password: the two passwords typed differ\n"
    typed = iter(["short", "short"])
    assert cli.cmd_create_admin(args) == 2 and capsys.readouterr().err.startswith("error: --password: ")
    assert cli._admin_password("given") == "given"
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # `< /dev/null` (explore69 F13: "at least 8 characters")
    assert cli.cmd_create_admin(args) == 2
    assert "no password given" in capsys.readouterr().err


def _cli(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`python -m smartcourse.cli <command>` in a process of its own (main leaves by `os._exit`)."""
    return subprocess.run(
        [sys.executable, "-m", "smartcourse.cli", *command],
        cwd=cwd,
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command", [["migrate"], ["create-admin", "--email", "a@example.com", "--password", "xylophone-zebra-12"]]
)
def test_a_refused_setting_is_one_line_without_its_value(command: list[str], tmp_path: Path) -> None:
    """explore16 F2, F7: a JWT_SECRET a few characters short gave a 36-line traceback that ended in the secret."""
    secret = "SuperSecretTail-XYZ987"
    env = {
        **os.environ,
        "SMARTCOURSE_ENV": "production",
        "JWT_SECRET": secret,
        "DATABASE_URL": "postgresql+asyncpg://user:hunter2@db.invalid/smartcourse",
    }
    done = _cli(command, tmp_path, env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: JWT_SECRET is shorter than 32 characters; use a random value such as `openssl rand -hex 32`"
    ]
    assert secret not in done.stderr + done.stdout and "hunter2" not in done.stderr + done.stdout


def test_the_api_statement_timeout_set_in_dotenv_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """explore16 F4: `serve` put its 5 s in the environment whenever the environment had none, over `.env`'s."""
    from smartcourse.config import get_settings

    (tmp_path / ".env").write_text("DB_STATEMENT_TIMEOUT=30\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DB_STATEMENT_TIMEOUT", raising=False)
    started: list[float | None] = []

    def no_server(*args: object, **kwargs: object) -> None:
        started.append(get_settings().db_statement_timeout)

    monkeypatch.setattr("smartcourse.api.serve.serve", no_server)
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:8000")  # serve sets it by default otherwise
    get_settings.cache_clear()
    try:
        cli.cmd_serve(argparse.Namespace(host="127.0.0.1", port=0, workers=1))
    finally:
        get_settings.cache_clear()
    assert started == [30.0]
    assert "DB_STATEMENT_TIMEOUT" not in os.environ


@pytest.mark.parametrize(
    "command",
    [
        ["create-admin", "--email", "a@example.com", "--password", "xylophone-zebra-12"],
        ["invoke", "health", "--event", str(Path(__file__).parents[2] / "events/samples/health.json")],
    ],
)
def test_without_a_running_database_it_says_so_and_starts_none(command: list[str], tmp_path: Path) -> None:
    """explore32 F1: run where `smartcourse run` was not running (another SMARTCOURSE_DATA_DIR), create-admin
    initialised a new, empty cluster there and died on `relation "outbox" does not exist` (150 lines)."""
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"SMARTCOURSE_DATA_DIR": str(data)}
    done = _cli(command, tmp_path, env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: no embedded PostgreSQL is running under {data.resolve()}: start `smartcourse run` with the same "
        "SMARTCOURSE_DATA_DIR first (or set DATABASE_URL)"
    ]
    assert not (data / "postgres").exists()
    assert not (data / "jwt_secret").exists()  # explore47 F8: the refusal left a secret the next run would sign with


def test_migrate_in_a_data_directory_without_a_database_refuses_and_creates_none(tmp_path: Path) -> None:
    """explore47 F2: in the wrong directory, migrate initialised a new, empty cluster there, migrated it and said
    "database is at the latest migration" (an upgrade's step, done on nothing). It still starts an existing one."""
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"SMARTCOURSE_DATA_DIR": str(data)}
    done = _cli(["migrate"], tmp_path, env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: no embedded PostgreSQL under {data.resolve()}: `smartcourse run` creates and migrates one; to "
        "migrate an existing one, set the SMARTCOURSE_DATA_DIR it runs with (or DATABASE_URL)"
    ]
    assert not (data / "postgres").exists() and not (data / "jwt_secret").exists() and done.stdout == ""
    # So are the background processes run on their own (explore58 F8: the worker made a cluster there and failed every
    # round on its missing tables).
    for command in ("worker", "relay"):
        done = _cli([command], tmp_path, env)
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: no embedded PostgreSQL under {data.resolve()}: `smartcourse run` creates and migrates one; start "
            "this with the SMARTCOURSE_DATA_DIR it runs with (or DATABASE_URL)"
        ]
        assert not (data / "postgres").exists() and not (data / "jwt_secret").exists()


def test_one_off_commands_say_a_mistake_in_one_line_and_leave_no_secret(tmp_path: Path) -> None:
    """explore48 F5-F7: an unknown function or event file for `invoke` and an unreachable DATABASE_URL for `migrate`
    were Python tracebacks (133 lines); `routes`, `migrate` and others left a new `var/jwt_secret` where they ran."""
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"SMARTCOURSE_DATA_DIR": str(data)}
    sample = str(Path(__file__).parents[2] / "events/samples/health.json")
    done = _cli(["invoke", "no_such_function", "--event", sample], tmp_path, env)
    assert done.returncode == 2 and done.stderr.startswith("error: no function named 'no_such_function'"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = _cli(["invoke", "health", "--event", str(tmp_path / "missing.json")], tmp_path, env)
    assert done.returncode == 2 and "No such file" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    unreachable = {**env, "DATABASE_URL": "postgresql+asyncpg://user:hunter2@127.0.0.1:1/smartcourse"}
    done = _cli(["migrate"], tmp_path, unreachable)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: could not migrate postgresql+asyncpg://user:***@127.0.0.1:1/smartcourse: ")
    assert "hunter2" not in done.stderr
    for url, said in (
        ("postgresql+asyncpg//user:hunter2@db/x", "error: DATABASE_URL is malformed"),  # explore49 N3: a traceback
        ("nosuchdb://user:hunter2@db/x", "error: DATABASE_URL names a driver that is not installed"),
    ):
        done = _cli(["migrate"], tmp_path, {**env, "DATABASE_URL": url})
        assert done.returncode == 2 and done.stderr.startswith(said), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "hunter2" not in done.stderr
    assert _cli(["routes"], tmp_path, env).returncode == 0
    assert not (data / "jwt_secret").exists()


def test_cli_rough_edges_outside_the_repository_are_one_line(tmp_path: Path) -> None:
    """explore49 N4: `template --check` where there is no template.yaml said "out of date: run `smartcourse
    template`" (which wrote one there); `samples` into a path under a file was a 15-line traceback; create-admin with
    an unreachable database said the database "refused the account"."""
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"SMARTCOURSE_DATA_DIR": str(data)}
    done = _cli(["template", "--check"], tmp_path, env)
    assert done.returncode == 1 and done.stderr.strip().splitlines() == [
        "error: no template.yaml here: run this in the repository, or pass --output"
    ]
    assert not (tmp_path / "template.yaml").exists()
    (tmp_path / "afile").write_text("")
    done = _cli(["samples", "--directory", str(tmp_path / "afile" / "sub")], tmp_path, env)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(f"error: could not write the samples into {tmp_path / 'afile' / 'sub'}: ")
    unreachable = {**env, "DATABASE_URL": "postgresql+asyncpg://user:hunter2@127.0.0.1:1/smartcourse"}
    done = _cli(["create-admin", "--email", "a@example.com", "--password", "xylophone-zebra-12"], tmp_path, unreachable)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(
        "error: could not reach the database postgresql+asyncpg://user:***@127.0.0.1:1/smartcourse: "
    ), done.stderr
    assert "hunter2" not in done.stderr
    # explore52 N4: --output a directory or a path under a file is one line too; a one-off command leaves no empty
    # data directory it made for its (removed) secret.
    for output, check in ((str(tmp_path), ["--check"]), (str(tmp_path / "afile" / "t.yaml"), [])):
        done = _cli(["template", "--output", output, *check], tmp_path, env)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert done.stderr.startswith("error: "), done.stderr
    assert not data.exists()
