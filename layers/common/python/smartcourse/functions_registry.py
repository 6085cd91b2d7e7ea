"""Finds and loads the function pack: every `functions/<name>/app.py`, as SAM would."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from fastapi import APIRouter
from fastapi.routing import APIRoute


def functions_dir() -> Path:
    """SMARTCOURSE_FUNCTIONS_DIR, else the repository's functions/ (found upward from this file)."""
    env = os.environ.get("SMARTCOURSE_FUNCTIONS_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "functions"
        if candidate.is_dir() and any(candidate.glob("*/app.py")):
            return candidate
    raise RuntimeError("functions/ not found: set SMARTCOURSE_FUNCTIONS_DIR")


@dataclass(frozen=True)
class Function:
    name: str
    module: ModuleType

    @property
    def router(self) -> APIRouter | None:
        return getattr(self.module, "router", None)

    @property
    def routes(self) -> list[tuple[str, str]]:
        """(METHOD, path) of each HTTP route; empty for event consumers. The path as API Gateway and OpenAPI spell it:
        a route's convertors (`{enrollment_id:uuid}`, which keep `/enrollments/my-courses` from matching the id's
        route locally) are for Starlette's matching only, and never reach `template.yaml`."""
        if self.router is None:
            return []
        return [
            (method, route.path_format)
            for route in self.router.routes
            if isinstance(route, APIRoute)
            for method in sorted(route.methods or ())
        ]


def load_function(name: str) -> Function:
    path = functions_dir() / name / "app.py"
    if not path.is_file():
        raise KeyError(f"no function named {name!r} (looked for {path})")
    spec = importlib.util.spec_from_file_location(f"smartcourse_functions.{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Function(name=name, module=module)


@cache
def all_functions() -> tuple[Function, ...]:
    names = sorted(p.parent.name for p in functions_dir().glob("*/app.py"))
    return tuple(load_function(n) for n in names)
