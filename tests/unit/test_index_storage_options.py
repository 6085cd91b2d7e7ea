"""The content index's object-store options under role credentials (Lambda, ECS): the session token goes along."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcourse.bootstrap import index_storage_options
from smartcourse.config import Settings


def test_an_s3_index_gets_the_session_token_of_temporary_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    settings = Settings(INDEX_URI="s3://bucket/index", SMARTCOURSE_DATA_DIR=tmp_path)  # type: ignore[call-arg]
    options = index_storage_options(settings) or {}
    assert options["aws_access_key_id"] == "ASIAEXAMPLE"
    assert options["aws_session_token"] == "token"


def test_long_term_keys_need_no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    options = index_storage_options(Settings(INDEX_URI="s3://bucket/index", SMARTCOURSE_DATA_DIR=tmp_path)) or {}  # type: ignore[call-arg]
    assert "aws_session_token" not in options and options["aws_secret_access_key"] == "secret"
