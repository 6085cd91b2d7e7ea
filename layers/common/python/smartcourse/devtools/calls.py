"""Reading calls in source (AST), for the tools that follow what a function reaches: the template's port calls
(`template.port_calls`) and the error codes an endpoint may answer (`error_codes.reachable`)."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from types import ModuleType
from typing import Any


def name_of(node: ast.AST) -> str | None:
    """`files` for `files`, `c.files` and `c.vector_index()`'s `vector_index`; else None."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def callee(call: ast.Call, namespace: Mapping[str, Any]) -> Any:
    """The module-level function a call names in a namespace (a module's or a function's globals): a same-module
    `helper(...)` or `materials.delete_material(...)`; None for a call through an object."""
    return named(call.func, namespace)


def named(node: ast.AST, namespace: Mapping[str, Any]) -> Any:
    """What a name (`helper`) or a module's attribute (`materials.check_pdf`) is in a namespace; None otherwise."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        owner = namespace.get(node.value.id)
        return getattr(owner, node.attr, None) if isinstance(owner, ModuleType) else None
    return None
