"""Signing secrets (issue #9.1) and the single-instance lock / private data directory of `smartcourse run` (#9.7)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import jwt
import pytest

from smartcourse.config import KNOWN_SECRETS, Settings, secret_problem
from smartcourse.errors import Unauthorized
from smartcourse.security import decode_access_token

OLD_DEV_SECRET = "dev-only-insecure-secret-change-me-0123456789"
COMPOSE_SECRET = "dev-only-compose-secret-change-me-0123456789"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "secret",
    [
        "x",
        "s" * 40,
        "ab" * 32,
        "password123password123password12",
        "please-change-me-in-production-0123456789",
        OLD_DEV_SECRET,
        COMPOSE_SECRET,
    ],
)
def test_production_refuses_weak_and_published_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="JWT_SECRET"):
        Settings(SMARTCOURSE_ENV="production", JWT_SECRET=secret)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "secret",
    [secrets.token_hex(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)],
    ids=["hex-32", "urlsafe-32", "urlsafe-64"],  # the same ids in every run (xdist's workers collect alike)
)
def test_production_accepts_random_secrets(secret: str) -> None:
    assert secret_problem(secret) is None
    assert Settings(SMARTCOURSE_ENV="production", JWT_SECRET=secret).jwt_secret == secret  # type: ignore[call-arg]


def test_published_secrets_are_refused_even_in_development(tmp_path: Path) -> None:
    assert {OLD_DEV_SECRET, COMPOSE_SECRET} <= KNOWN_SECRETS
    for secret in (OLD_DEV_SECRET, COMPOSE_SECRET):
        with pytest.raises(ValueError, match="published"):
            Settings(SMARTCOURSE_ENV="development", SMARTCOURSE_DATA_DIR=tmp_path, JWT_SECRET=secret)  # type: ignore[call-arg]


def test_development_generates_a_private_random_secret_per_data_dir(tmp_path: Path) -> None:
    a = Settings(SMARTCOURSE_ENV="development", SMARTCOURSE_DATA_DIR=tmp_path / "a", JWT_SECRET="")  # type: ignore[call-arg]
    again = Settings(SMARTCOURSE_ENV="development", SMARTCOURSE_DATA_DIR=tmp_path / "a", JWT_SECRET="")  # type: ignore[call-arg]
    b = Settings(SMARTCOURSE_ENV="development", SMARTCOURSE_DATA_DIR=tmp_path / "b", JWT_SECRET="")  # type: ignore[call-arg]
    assert a.jwt_secret == again.jwt_secret != b.jwt_secret
    assert secret_problem(a.jwt_secret) is None
    path = tmp_path / "a" / "jwt_secret"
    assert path.stat().st_mode & 0o777 == 0o600
    # An admin token forged with the formerly public development secret is refused.
    forged = jwt.encode(
        {"sub": str(uuid.uuid4()), "role": "admin", "iss": a.jwt_issuer, "exp": 9999999999, "typ": "access"},
        OLD_DEV_SECRET,
    )
    with pytest.raises(Unauthorized):
        decode_access_token(a, forged)


def test_compose_no_longer_ships_a_fixed_secret() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert COMPOSE_SECRET not in text and "JWT_SECRET: ${JWT_SECRET:-}" in text


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"JWT_SECRET", "DATABASE_URL"}}
    env.update({"SMARTCOURSE_DATA_DIR": str(data_dir), "SMARTCOURSE_ENV": "development"})
    return env


def test_a_second_run_on_the_same_data_dir_refuses(tmp_path: Path) -> None:
    from smartcourse.cli import lock_data_dir

    held = lock_data_dir(tmp_path)
    assert (tmp_path / "smartcourse.lock").stat().st_mode & 0o777 == 0o600  # explore8 F16: it was 0644
    tmp_path.chmod(0o711)  # as `run` as root leaves it for its PostgreSQL's user (engines.parents_kept_closed)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "smartcourse.cli", "run"],
            env=_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        held.close()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "another `smartcourse run`" in proc.stderr and str(os.getpid()) in proc.stderr
    assert "starting engines" not in proc.stdout
    # The refused start left the directory as it was: made 0700, it would lock the running PostgreSQL out of its data.
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o711"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "0o700"),  # made here
        (0o700, "0o700"),
        # Others could pass through (the engine stack's PostgreSQL runs as `postgres` under var/stack): they still
        # can, and no one else can list it (explore24 F1: 0700 locked the stack's PostgreSQL out of its data).
        (0o755, "0o711"),
        (0o750, "0o710"),
    ],
)
def test_run_makes_the_data_dir_private(tmp_path: Path, before: int | None, after: str) -> None:
    data = tmp_path / "data"
    if before is not None:
        data.mkdir()
        data.chmod(before)
    code = (
        "import sys; from pathlib import Path; from smartcourse.cli import make_private;"
        "d = Path(sys.argv[1]); make_private(d); (d / 'files').mkdir(); (d / 'files' / 'x').write_text('x');"
        "print(oct(d.stat().st_mode & 0o777), oct((d / 'files').stat().st_mode & 0o777),"
        " oct((d / 'files' / 'x').stat().st_mode & 0o777))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True, text=True, check=True).stdout
    assert out.split() == [after, "0o700", "0o600"]


def test_the_directories_pgserver_opens_are_closed_again_but_for_passing_through(tmp_path: Path) -> None:
    from smartcourse.engines import parents_kept_closed

    home, data = tmp_path / "home", tmp_path / "home" / "data"
    data.mkdir(parents=True)
    home.chmod(0o700)
    data.chmod(0o700)
    (data / "postgres").mkdir(mode=0o700)
    above = tmp_path.stat().st_mode
    with parents_kept_closed(data / "postgres"):
        # What pgserver does as root, so that its `pgserver` user reaches the data: g+rx,o+rx on every parent.
        for d in (data, home):
            d.chmod(d.stat().st_mode | 0o055)
    assert (oct(data.stat().st_mode & 0o777), oct(home.stat().st_mode & 0o777)) == ("0o711", "0o711")
    assert (data / "postgres").stat().st_mode & 0o777 == 0o700  # PostgreSQL's own: never touched
    assert tmp_path.stat().st_mode == above  # not opened by the block: left as it was
