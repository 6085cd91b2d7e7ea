"""PUBLIC_BASE_URL: unset, the links (certificate verify_url) point where `smartcourse run`/`serve` listen (PORT)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartcourse.config import Settings, default_public_base_url
from smartcourse.models import Certificate
from smartcourse.schemas import CertificatePublic


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"PORT": " 8765 "}, "http://127.0.0.1:8765"),
        ({"PORT": "not-a-port"}, "http://127.0.0.1:8000"),
        ({"HOST": "0.0.0.0", "PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"HOST": "::", "PORT": "9000"}, "http://127.0.0.1:9000"),
        ({"HOST": "localhost"}, "http://localhost:8000"),
        ({"HOST": "192.0.2.7", "PORT": "9000"}, "http://192.0.2.7:9000"),
        ({"HOST": "::1", "PORT": "9000"}, "http://[::1]:9000"),
    ],
)
def test_the_default_base_url_is_where_the_server_listens(env: dict[str, str], expected: str) -> None:
    assert default_public_base_url(env) == expected


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for var in ("PORT", "HOST", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SMARTCOURSE_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env of the repository
    return monkeypatch


def test_settings_follow_port_and_an_explicit_public_base_url_wins(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().public_base_url == "http://127.0.0.1:8000"
    clean_env.setenv("PORT", "9000")  # `PORT=9000 make run`
    settings = Settings()
    assert settings.public_base_url == "http://127.0.0.1:9000"
    c = Certificate(
        id=uuid.uuid4(),
        enrollment_id=uuid.uuid4(),
        course_id=uuid.uuid4(),
        student_name="Ada",
        course_title="Intro",
        code="SC-ABCD-EFGH-JKLM-NPQR",
        issued_at=datetime(2026, 12, 4, tzinfo=UTC),
    )
    assert CertificatePublic.of(c, settings.public_base_url).verify_url.startswith("http://127.0.0.1:9000/")
    clean_env.setenv("PUBLIC_BASE_URL", "https://learn.example.org/")
    assert Settings().public_base_url == "https://learn.example.org"  # no "//certificates"
    clean_env.setenv("PUBLIC_BASE_URL", "")
    assert Settings().public_base_url == "http://127.0.0.1:9000"  # empty is unset
