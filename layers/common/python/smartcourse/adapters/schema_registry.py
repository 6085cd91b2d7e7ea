"""A small async client for the Confluent schema-registry REST API (Confluent, or Apicurio's ccompat API)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from smartcourse.event_contracts import all_contracts, load_schema, subject

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# Apicurio serves the Confluent API under this path; a bare server URL is resolved to it on first use.
APICURIO_CCOMPAT = "/apis/ccompat/v7"
SUBJECT_NOT_FOUND = 40401
SCHEMA_NOT_FOUND = 40403


class RegistryError(RuntimeError):
    """The registry answered with an error (or not at all)."""


class IncompatibleSchema(RegistryError):
    """The registry's compatibility check refused a new version of a subject."""


# Registries check compatibility of draft-07 reliably (Apicurio 3 cannot parse a 2020-12 `$schema` at all), and
# our contracts use only draft-07 keywords: they are registered declaring draft-07. Anything newer is refused.
REGISTRY_DIALECT = "http://json-schema.org/draft-07/schema#"
_NEWER_KEYWORDS = {
    "$defs",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "dependentRequired",
    "dependentSchemas",
    "minContains",
    "maxContains",
}


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_keys(v) for v in node))
    return set()


def registry_form(schema: dict[str, Any]) -> dict[str, Any]:
    """The contract as registered: the same constraints, declared as draft-07."""
    newer = _keys(schema) & _NEWER_KEYWORDS
    if newer:
        raise ValueError(f"contract {schema.get('$id')} uses keywords newer than draft-07: {sorted(newer)}")
    return {**schema, "$schema": REGISTRY_DIALECT}


def canonical(schema: dict[str, Any]) -> str:
    """The schema string we send: stable key order, so a re-registration finds the existing version."""
    return json.dumps(registry_form(schema), sort_keys=True, separators=(",", ":"))


class SchemaRegistry:
    """Registers the event contracts (JSON Schema) and serves schemas by id, caching both directions.

    Subjects follow `event_contracts.subject`: `smartcourse.<event_type>-value` for v1; a breaking v2+ of an
    event type gets its own subject (`smartcourse.<event_type>.v2-value`) because BACKWARD would refuse it.
    `subject_prefix` namespaces every subject (environments, or tests sharing one registry).
    """

    def __init__(
        self,
        url: str,
        *,
        subject_prefix: str = "",
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._base: str | None = None
        self._prefix = subject_prefix
        self._client = client or httpx.AsyncClient(timeout=timeout, headers={"Accept": CONTENT_TYPE})
        self._ids: dict[tuple[str, int], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}
        self._validators: dict[int, Validator] = {}
        self._lock = asyncio.Lock()

    def subject(self, event_type: str, version: int = 1) -> str:
        base = subject(event_type) if version == 1 else f"{subject(event_type)}.v{version}"
        return f"{self._prefix}{base}-value"

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- HTTP ----------------------------------------------------------------------------------

    async def _resolve_base(self) -> str:
        if self._base is None:
            for candidate in (self._url, self._url + APICURIO_CCOMPAT):
                try:
                    r = await self._client.get(f"{candidate}/subjects")
                except httpx.TransportError as exc:
                    raise RegistryError(f"schema registry unreachable at {self._url}: {exc}") from exc
                if r.status_code == 200:
                    self._base = candidate
                    break
            else:
                raise RegistryError(f"no Confluent-compatible schema registry API at {self._url}")
        return self._base

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """One request; transport errors and 5xx are retried briefly, 4xx are returned to the caller."""
        base = await self._resolve_base()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(4),
            wait=wait_exponential(multiplier=0.2, max=2),
            retry=retry_if_exception_type((httpx.TransportError, _ServerError)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    r = await self._client.request(
                        method,
                        f"{base}{path}",
                        content=json.dumps(body) if body is not None else None,
                        headers={"Content-Type": CONTENT_TYPE},
                    )
                    if r.status_code >= 500:
                        raise _ServerError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        except (httpx.TransportError, _ServerError) as exc:
            raise RegistryError(f"schema registry {method} {path} failed: {exc}") from exc
        return r

    @staticmethod
    def _error_code(r: httpx.Response) -> int | None:
        try:
            code = r.json().get("error_code")
        except ValueError:
            return None
        return int(code) if code is not None else None

    @staticmethod
    def _body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"schema": canonical(schema), "schemaType": "JSON"}

    # --- subjects ------------------------------------------------------------------------------

    async def lookup(self, subject_name: str, schema: dict[str, Any]) -> int | None:
        """The id of `schema` if it is already a version of the subject, else None."""
        r = await self._call("POST", f"/subjects/{subject_name}", self._body(schema))
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise RegistryError(f"lookup in {subject_name} failed: {r.status_code} {r.text[:300]}")
        return int(r.json()["id"])

    async def is_compatible(self, subject_name: str, schema: dict[str, Any]) -> bool:
        """The registry's verdict on `schema` as the next version of the subject (a new subject is compatible)."""
        r = await self._call(
            "POST", f"/compatibility/subjects/{subject_name}/versions/latest?verbose=true", self._body(schema)
        )
        if r.status_code == 404 and self._error_code(r) in (SUBJECT_NOT_FOUND, None):
            return True
        if r.status_code != 200:
            raise RegistryError(f"compatibility check of {subject_name} failed: {r.status_code} {r.text[:300]}")
        answer = r.json()
        if not answer.get("is_compatible"):
            log.warning("incompatible schema for %s: %s", subject_name, answer.get("messages"))
        return bool(answer.get("is_compatible"))

    async def set_compatibility(self, subject_name: str, level: str = "BACKWARD") -> None:
        """Pin the subject's compatibility level. Processes starting together (the relay, the consumers) set it
        at the same moment; Apicurio then answers the loser 409 ("A rule named 'COMPATIBILITY' already exists"),
        which is success if the level in place is ours (it was a crash at start-up: the consumers process died)."""
        for _ in range(3):
            r = await self._call("PUT", f"/config/{subject_name}", {"compatibility": level})
            if r.status_code == 200:
                return
            if r.status_code != 409:
                break
            current = await self._call("GET", f"/config/{subject_name}")
            if current.status_code == 200 and current.json().get("compatibilityLevel") == level:
                return
        raise RegistryError(f"setting {level} on {subject_name} failed: {r.status_code} {r.text[:300]}")

    async def register_schema(self, subject_name: str, schema: dict[str, Any]) -> int:
        """Add `schema` to the subject unless it is already there; refuse it if the registry finds it incompatible."""
        existing = await self.lookup(subject_name, schema)
        if existing is not None:
            return existing
        if not await self.is_compatible(subject_name, schema):
            raise IncompatibleSchema(f"{subject_name}: the new schema is not BACKWARD compatible with the latest")
        r = await self._call("POST", f"/subjects/{subject_name}/versions", self._body(schema))
        if r.status_code == 409:
            raise IncompatibleSchema(f"{subject_name}: the registry refused the new schema: {r.text[:300]}")
        if r.status_code != 200:
            raise RegistryError(f"registering {subject_name} failed: {r.status_code} {r.text[:300]}")
        schema_id = int(r.json()["id"])
        # The subject exists only now (some registries refuse config on an unknown subject).
        await self.set_compatibility(subject_name)
        self._schemas.setdefault(schema_id, registry_form(schema))
        return schema_id

    async def register(self, event_type: str, version: int, schema: dict[str, Any] | None = None) -> int:
        """Register one contract (the local one by default) and remember its id."""
        schema = schema if schema is not None else load_schema(event_type, version)
        schema_id = await self.register_schema(self.subject(event_type, version), schema)
        self._ids[(event_type, version)] = schema_id
        return schema_id

    async def register_all(self) -> dict[tuple[str, int], int]:
        """Register every contract of events/schemas/ and pin BACKWARD on each subject; fail on the first refusal."""
        async with self._lock:
            for (event_type, version), schema in sorted(all_contracts().items()):
                schema_id = await self.register(event_type, version, schema)
                await self.set_compatibility(self.subject(event_type, version))
                log.info("contract %s v%d registered as schema %d", event_type, version, schema_id)
            return dict(self._ids)

    def known_id(self, event_type: str, version: int) -> int | None:
        """The id this client registered or resolved for our own contract of (type, version), if it has yet."""
        return self._ids.get((event_type, version))

    async def schema_id(self, event_type: str, version: int) -> int:
        """The id to stamp on an event of this type and version (registering its contract on first use)."""
        cached = self._ids.get((event_type, version))
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._ids.get((event_type, version))
            return cached if cached is not None else await self.register(event_type, version)

    # --- schemas by id -------------------------------------------------------------------------

    async def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema a record was written with; KeyError if the registry does not know the id."""
        cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        r = await self._call("GET", f"/schemas/ids/{schema_id}")
        if r.status_code == 404:
            raise KeyError(schema_id)
        if r.status_code != 200:
            raise RegistryError(f"GET schema {schema_id} failed: {r.status_code} {r.text[:300]}")
        schema: dict[str, Any] = json.loads(r.json()["schema"])
        self._schemas[schema_id] = schema
        return schema

    async def validator(self, schema_id: int) -> Validator:
        found = self._validators.get(schema_id)
        if found is None:
            schema = await self.schema(schema_id)
            found = self._validators[schema_id] = validator_for(schema, default=Draft202012Validator)(schema)
        return found


class _ServerError(Exception):
    """A 5xx answer: worth a retry."""
