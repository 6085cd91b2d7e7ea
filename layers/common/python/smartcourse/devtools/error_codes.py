"""The catalogue of error codes (docs/errors.md), read from the source so that it cannot drift from it.

`python -m smartcourse.devtools.error_codes > docs/errors.md` writes it; `tests/unit/test_error_codes.py` fails
when the file is not what the source says. A code is found where it is raised:

* a `DomainError` subclass called with `code="..."` (or without: the class's own `code`), its status the class's;
* a helper called with `code="..."` that builds one of those classes from its `code` parameter
  (`courses.prerequisites_not_live`), the status that class's;
* `schemas.rule_error("...", ...)`: a model rule the validation handler answers with 422 and that code, and
  `ExtractionError(filename, "...")`, a material's extraction failure (422, or in a publish report);
* the API's handlers answering directly (`_error(422, "validation_error", ...)`), and the HTTP server's protocol
  refusing a request (`_refuse(414, "uri_too_long", ...)`).

A code built at run time (from a variable) is not listed: every code the API answers is a literal somewhere.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any

from smartcourse.devtools.calls import callee, name_of, named

PACKAGE = Path(__file__).resolve().parents[1]
REPO = PACKAGE.parents[3]
ROOTS = (PACKAGE, REPO / "functions", REPO / "workflows")
#: Calls answering with (status, code, ...) directly: the API's handlers (`api/app.py`), and the HTTP server's
#: protocol refusing a request before the app sees it (`api/protocol.py`: 414, 431).
DIRECT = frozenset({"_error", "_refuse"})
#: Calls that take the code as a positional argument: its index, and the status it is answered with.
POSITIONAL = {"rule_error": (0, 422), "ExtractionError": (1, 422)}


def _roots() -> tuple[Path, ...]:
    """Where SmartCourse's code is: the layer's package, and beside it (in a checkout) the functions and workflows."""
    return (PACKAGE, *(root for root in ROOTS[1:] if root.exists()))


def _sources() -> list[Path]:
    return sorted(p for root in ROOTS if root.exists() for p in root.rglob("*.py") if "devtools" not in p.parts)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _literal(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _int(node: ast.expr) -> int | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, int) else None


def _error_classes(trees: dict[Path, ast.Module]) -> dict[str, tuple[int, str]]:
    """Every DomainError subclass in the source: name → (status, default code), through its bases."""
    classes: dict[str, tuple[int | None, str | None, list[str]]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                status = code = None
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name)
                    ):
                        value = stmt.value
                        if stmt.targets[0].id == "status_code":
                            status = _int(value)
                        elif stmt.targets[0].id == "code":
                            code = _literal(value)
                bases = [
                    b.id if isinstance(b, ast.Name) else b.attr
                    for b in node.bases
                    if isinstance(b, ast.Name | ast.Attribute)
                ]
                classes[node.name] = (status, code, bases)

    resolved: dict[str, tuple[int, str]] = {}

    def resolve(name: str, seen: frozenset[str] = frozenset()) -> tuple[int, str] | None:
        if name in resolved:
            return resolved[name]
        if name not in classes or name in seen:
            return None
        status, code, bases = classes[name]
        inherited = None
        if name != "DomainError":
            inherited = next((r for b in bases if (r := resolve(b, seen | {name})) is not None), None)
            if inherited is None:
                return None
        result = (status or (inherited[0] if inherited else 400), code or (inherited[1] if inherited else ""))
        resolved[name] = result
        return result

    for name in classes:
        resolve(name)
    return resolved


def _code_default(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The literal default of a function's `code` parameter (`code: str = "rate_limited"`), if it has one."""
    positional = [*fn.args.posonlyargs, *fn.args.args]
    with_default = [a.arg for a in positional][len(positional) - len(fn.args.defaults) :]
    defaults = dict(zip(with_default, fn.args.defaults, strict=True))
    defaults |= {a.arg: d for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True) if d is not None}
    return _literal(defaults.get("code"))


def _helpers(trees: dict[Path, ast.Module], classes: dict[str, tuple[int, str]]) -> dict[str, tuple[int, str | None]]:
    """Functions that build an error class from their `code` parameter: name → (that class's status, the
    parameter's default code, when a call may leave it out)."""
    found: dict[str, tuple[int, str | None]] = {}
    for tree in trees.values():
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if "code" not in {a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]}:
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and name_of(node) in classes:
                    passed = _keyword(node, "code")
                    if isinstance(passed, ast.Name) and passed.id == "code":
                        found[fn.name] = (classes[name_of(node) or ""][0], _code_default(fn))
    return found


@functools.cache
def _trees() -> dict[Path, ast.Module]:
    """Every source file, parsed once per process."""
    return {p: ast.parse(p.read_text(), str(p)) for p in _sources()}


@functools.cache
def _rules() -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str | None]]]:
    """(the error classes, the helpers that build one from their `code`), from the whole source; once per process."""
    trees = _trees()
    classes = _error_classes(trees)
    return classes, _helpers(trees, classes)


def _raised(
    node: ast.Call, classes: dict[str, tuple[int, str]], helpers: dict[str, tuple[int, str | None]]
) -> tuple[str, int] | None:
    """(code, status) of an error a call builds, if it builds one with a literal code."""
    name = name_of(node)
    code: str | None = None
    status = 0
    if name in POSITIONAL:
        index, status = POSITIONAL[name]
        code = _literal(node.args[index]) if len(node.args) > index else None
    elif name in classes and name != "DomainError":
        status, default = classes[name]
        passed = _keyword(node, "code")  # one passed through from a variable is found where it is written
        code = default if passed is None else _literal(passed)
    elif name in helpers:
        status, fallback = helpers[name]
        passed = _keyword(node, "code")
        code = fallback if passed is None else _literal(passed)
    elif name in DIRECT and len(node.args) >= 2 and isinstance(answered := _int(node.args[0]), int):
        code, status = _literal(node.args[1]), answered
    return (code, status) if code else None


#: Modules whose errors describe a programming error, never a request (an event that breaks its own contract).
INTERNAL = ("event_contracts.py", "adapters/event_codec.py")


@functools.cache
def _own(func: Any, root: bool = False) -> tuple[frozenset[tuple[str, int]], tuple[Any, ...]]:
    """(the errors a function's own body raises, the functions it calls), for SmartCourse's functions only: the
    layer's, and an endpoint (`root`) wherever it is (a Lambda package has its `app.py` beside, not in, the layer)."""
    try:
        source = Path(inspect.getsourcefile(func) or "").resolve()
        ours = root or any(source.is_relative_to(place) for place in _roots())
        if not ours or str(source).endswith(INTERNAL):
            return frozenset(), ()  # a library's errors are not ours to name
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return frozenset(), ()
    classes, helpers = _rules()
    raised: set[tuple[str, int]] = set()
    callees = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if hit := _raised(node, classes, helpers):
                raised.add(hit)
            if inspect.isfunction(called := callee(node, func.__globals__)):
                callees.append(called)
            # A function handed to another to call (`asyncio.to_thread(check_pdf, data)`, `run_in_executor`,
            # `wait_for(f(...))` is a call already): what it raises is answered too (explore13 F4: encrypted_pdf).
            callees += [passed for arg in node.args if inspect.isfunction(passed := named(arg, func.__globals__))]
    return frozenset(raised), tuple(callees)


def reachable(*roots: Any) -> dict[int, set[str]]:
    """status → the codes the code of `roots` (an endpoint and its dependencies) can raise: their own calls and those
    of every SmartCourse function they call, followed from module to module. Calls through objects (a container's
    port, a session) are not followed, and a branch is not weighed: it says what may be answered, not what will."""
    found: dict[int, set[str]] = defaultdict(set)
    seen: set[Any] = set()
    starts = {inspect.unwrap(r) for r in roots}
    todo = list(starts)
    while todo:
        func = inspect.unwrap(todo.pop())
        if func in seen or not inspect.isfunction(func):
            continue
        seen.add(func)
        raised, callees = _own(func, func in starts)
        for code, status in raised:
            found[status].add(code)
        todo.extend(callees)
    return dict(found)


def _dependency_calls(dependant: Any) -> list[Any]:
    out = []
    for sub in dependant.dependencies:
        if sub.call is not None:
            out.append(sub.call)
        out += _dependency_calls(sub)
    return out


#: What the API layer itself answers for any endpoint (its exception handlers and the edge), by status.
@functools.cache
def everywhere() -> dict[int, frozenset[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for code, seen in catalogue().items():
        if seen["where"] & {"api/app.py", "api/edge.py"}:
            for status in seen["status"]:
                out[int(status)].add(code)
    return {status: frozenset(codes) for status, codes in out.items()}


def _model_codes(model: Any, seen: set[Any] | None = None) -> set[tuple[str, int]]:
    """The codes a request model's own rules raise (`rule_error("invalid_lesson", ...)` in its validators, the
    validation handler answers them 422), its nested models' included."""
    seen = set() if seen is None else seen
    if model in seen or not (inspect.isclass(model) and hasattr(model, "model_fields")):
        return set()
    seen.add(model)
    classes, helpers = _rules()
    found: set[tuple[str, int]] = set()
    for cls in model.__mro__:
        if not hasattr(cls, "model_fields") or not (getattr(cls, "__module__", "") or "").startswith("smartcourse"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError, SyntaxError):
            continue
        found |= {
            hit for node in ast.walk(tree) if isinstance(node, ast.Call) and (hit := _raised(node, classes, helpers))
        }
    for field in model.model_fields.values():
        for inner in typing.get_args(field.annotation) or (field.annotation,):
            for nested in typing.get_args(inner) or (inner,):
                found |= _model_codes(nested, seen)
    return found


def for_route(route: Any) -> dict[int, set[str]]:
    """status → the codes an APIRoute may answer: its endpoint's and dependencies' (`reachable`), its request body
    model's rules (`_model_codes`: explore13 F3, a lesson create's `invalid_lesson`), and the API layer's own
    (`everywhere`)."""
    found = reachable(route.endpoint, *_dependency_calls(route.dependant))
    # What the walk cannot see, declared by the function beside its endpoint: codes raised behind a call through
    # an object (the assistant's generation run: explore13 F2, `ai_output_invalid` was named by no operation).
    declared = getattr(inspect.unwrap(route.endpoint), "__globals__", {}).get("RAISED_THROUGH_OBJECTS", {})
    for status, codes in declared.items():
        found.setdefault(int(status), set()).update(codes)
    for param in route.dependant.body_params:
        for code, status in _model_codes(param.field_info.annotation):
            found.setdefault(status, set()).add(code)
    for status, codes in everywhere().items():
        found.setdefault(status, set()).update(codes)
    return found


def catalogue() -> dict[str, dict[str, set[str]]]:
    """code → {"status": {...}, "where": {...}} over the whole source."""
    classes, helpers = _rules()
    trees = _trees()
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"status": set(), "where": set()})

    def add(code: str, status: int, path: Path) -> None:
        if code:
            if path.is_relative_to(PACKAGE):
                where = str(path.relative_to(PACKAGE))
            else:
                relative = path.relative_to(REPO)
                where = str(relative.parent if relative.parts[0] == "functions" else relative)
            out[code]["status"].add(str(status))
            out[code]["where"].add(where)

    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if hit := _raised(node, classes, helpers):
                add(hit[0], hit[1], path)
    for code, status in _framework_codes(trees):
        out[code]["status"].add(str(status))
        out[code]["where"].add(FRAMEWORK)
    return dict(out)


#: Where the codes of the framework's own HTTP errors are named (`api.app._STATUS_CODES`): a 405 for a method the
#: route lacks, a 404 for a path no route has, ... Not every operation's (`everywhere`): each comes from the router or
#: a dependency, not from a handler of ours that any request may reach.
FRAMEWORK = "api/app.py (HTTP errors)"


def _framework_codes(trees: dict[Path, ast.Module]) -> list[tuple[str, int]]:
    """(code, status) of `api/app.py`'s `_STATUS_CODES`: the code an HTTP error of the framework is answered with."""
    tree = trees.get(PACKAGE / "api" / "app.py")
    for node in ast.walk(tree) if tree is not None else ():
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_STATUS_CODES" for t in node.targets):
            found = []
            for key, value in zip(getattr(node.value, "keys", []), getattr(node.value, "values", []), strict=True):
                status, code = (_int(key) if key is not None else None), _literal(value)
                if status and code:
                    found.append((code, status))
            return found
    return []


def render() -> str:
    rows = sorted(catalogue().items(), key=lambda kv: (min(kv[1]["status"]), kv[0]))
    lines = [
        "# Error codes",
        "",
        "<!-- Generated by `python -m smartcourse.devtools.error_codes > docs/errors.md` from the source;",
        "     tests/unit/test_error_codes.py fails when it is out of date. -->",
        "",
        "Every error the API answers is `{code, message, details, trace_id}` with an HTTP status",
        '(docs/architecture.md, "Errors"). `code` is stable: a client branches on it; `message` is for people and',
        "may change. These are every code in the source, with its status and the modules that raise it",
        "(`functions/<name>` is that endpoint's handler; the others are under `layers/common/python/smartcourse/`).",
        "A code listed under several statuses is one condition seen from several places. `details` carries what a",
        "code names (a validation error's `[{field, message, type}]`: at most 50, then one `too_many_errors` entry",
        "counting the rest, and an object with over 50 fields its model does not have is one `too_many_fields`",
        "entry; a body sent to an endpoint that takes none, other than nothing, `{}` or `null`, is one",
        "`body_not_accepted` entry naming the query parameters its keys were meant to be; a conflict's ids);",
        "`Retry-After` comes with 429 and 503. A material's extraction codes (`no_text`,",
        "`encrypted_pdf`, ...) are also the `reason` of the warnings in a course's `publish_report`. An HTTP error of",
        "the framework with a status not listed here is answered with the code `http_error`. The HTTP server",
        "(`api/protocol.py`) answers before any handler runs, with no trace id: a request it cannot parse (an",
        "unknown method, a control character in a header, a malformed `Content-Length`) is 400 `bad_request`, a",
        "request target over 16 KiB 414 `uri_too_long`, headers over 64 KiB or 200 lines 431 `headers_too_large`.",
        "",
        "| code | status | raised in |",
        "| --- | --- | --- |",
    ]
    for code, seen in rows:
        lines.append(f"| `{code}` | {', '.join(sorted(seen['status']))} | {', '.join(sorted(seen['where']))} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
