"""Event contracts: JSON Schemas in events/schemas/<type>.v<version>.json, checked on produce and consume."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

from smartcourse.errors import Invalid


def schemas_dir() -> Path:
    """SMARTCOURSE_SCHEMAS_DIR, else the repository's events/schemas (found upward from this file)."""
    env = os.environ.get("SMARTCOURSE_SCHEMAS_DIR")
    if env:
        return Path(env)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "events" / "schemas"
        if candidate.is_dir():
            return candidate
    raise RuntimeError("events/schemas not found: set SMARTCOURSE_SCHEMAS_DIR")


def subject(event_type: str) -> str:
    """The schema-registry subject of an event type."""
    return f"smartcourse.{event_type}"


@lru_cache(maxsize=256)
def load_schema(event_type: str, version: int) -> dict[str, Any]:
    path = schemas_dir() / f"{event_type}.v{version}.json"
    if not path.exists():
        raise Invalid(f"no contract for {event_type} v{version}", code="unknown_event_type")
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


@lru_cache(maxsize=256)
def _validator(event_type: str, version: int) -> Draft202012Validator:
    return Draft202012Validator(load_schema(event_type, version))


@lru_cache(maxsize=256)
def _fast_validator(event_type: str, version: int) -> Any:
    """The same contract compiled by jsonschema-rs: ~1 µs per envelope against ~95 µs (an enrollment's events are
    checked seven times between the request and the consumers; docs/benchmarks.md, "Eighth pass"). Formats are
    annotations, as for `Draft202012Validator` by default."""
    return jsonschema_rs.validator_for(load_schema(event_type, version), validate_formats=False)


def validate_event(event_type: str, version: int, envelope: dict[str, Any]) -> None:
    """Raise `Invalid` (event_contract_violation) unless `envelope` meets the contract of `event_type` v`version`.

    The compiled validator answers "valid" fast; anything else (invalid, or a value it does not take) is decided
    by `jsonschema`, whose first error (by path) names the violation, as it always did."""
    try:
        if _fast_validator(event_type, version).is_valid(envelope):
            return
    except (TypeError, ValueError):
        pass
    errors = sorted(_validator(event_type, version).iter_errors(envelope), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise Invalid(
            f"{event_type} v{version} breaks its contract at {where}: {first.message}",
            code="event_contract_violation",
        )


def all_contracts() -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for path in sorted(schemas_dir().glob("*.v*.json")):
        stem = path.name[: -len(".json")]
        event_type, _, ver = stem.rpartition(".v")
        out[(event_type, int(ver))] = json.loads(path.read_text())
    return out
