"""`Idempotency-Key` on the creating `POST`s: a course, a module, a lesson, a material upload (docs/api.md,
"Retrying a request"). A client whose answer was lost sends the request again with the same key and gets the answer
the first one got, not a second course.

How it stays exactly once: the request claims its key in the handler's transaction (an insert into
`idempotent_requests`, migration 0036), the service runs with its commit held (`UnitOfWork.held`: its commit only
flushes), the answer is written into the claim, and one commit writes the resource, the key and the answer together:
a crash leaves neither. A second request with the key waits on the claim's row until the first commits (PostgreSQL's
`ON CONFLICT` waits for the other transaction), then answers the stored status, body and `Location` with
`Idempotent-Replayed: true`; if the first failed, its claim went with its rollback and the second one runs. The same
key with another request (another path, another body) is 409 `idempotency_key_reused`. A key is kept
`IDEMPOTENCY_KEY_HOURS` (24 by default), then it may name a new request (services/retention.py purges the rows).

Enrolments and quiz submissions keep their own keys on the rows they make (services/enrollment.py, progress.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from smartcourse.db import UnitOfWork
from smartcourse.errors import Conflict
from smartcourse.models import IdempotentRequest
from smartcourse.security import Principal

#: The header as a handler's parameter (the format `POST /enrollments` and quiz submissions take too).
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="names this request (up to 200 printable ASCII characters, one per intent): sent again (a retry "
        "whose answer was lost), the answer the first one got, with `Idempotent-Replayed: true`, and nothing made "
        "twice; the same key with another path or body, 409 `idempotency_key_reused`",
    ),
]

#: On an answer that repeats the one a key got (the header Stripe and the IETF draft's implementations use).
REPLAYED = "Idempotent-Replayed"

#: The header as the OpenAPI document declares it on the 201 of a route taking a key.
REPLAYED_HEADER: dict[str, Any] = {
    REPLAYED: {
        "description": "`true` on an answer repeating the one this request's Idempotency-Key got (docs/api.md, "
        '"Retrying a request"); absent otherwise',
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def fingerprint(payload: Any) -> str:
    """The sha256 of a request's body (a pydantic model, JSON-like data, or bytes) as the key's record keeps it."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    raw = payload if isinstance(payload, bytes) else json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Claim:
    """A key claimed by this request (`earlier` None: run it, then `answer`), or the answer a request with it got."""

    uow: UnitOfWork
    principal_id: uuid.UUID
    key: str | None
    earlier: IdempotentRequest | None = None

    def replay(self) -> JSONResponse:
        """The earlier request's answer again."""
        row = self.earlier
        assert row is not None and row.status is not None
        headers = {REPLAYED: "true"}
        if row.location:
            headers["Location"] = row.location
        return JSONResponse(row.body, status_code=row.status, headers=headers)

    async def answer(self, status: int, body: BaseModel, response: Response | None = None) -> None:
        """Record the answer with the key and commit the service's held changes with it (without a key: nothing,
        the service committed)."""
        if self.key is None:
            return
        location = response.headers.get("location") if response is not None else None
        recorded = await self.uow.session.execute(
            update(IdempotentRequest)
            .where(IdempotentRequest.principal_id == self.principal_id, IdempotentRequest.key == self.key)
            .values(status=status, body=body.model_dump(mode="json"), location=location)
        )
        if getattr(recorded, "rowcount", 1) != 1:
            # The claim went with a transaction something ended early: commit nothing rather than a resource
            # without its key (a retry would make it again).
            raise RuntimeError(f"the Idempotency-Key claim of {self.principal_id} was lost before its answer")
        self.uow.held = False
        await self.uow.commit()


async def claim(
    uow: UnitOfWork, principal: Principal, key: str | None, route: str, payload: Any, *, keep_hours: int
) -> Claim:
    """Claim `key` for this request (`route`: its method and path; `payload`: its body), holding the service's commit
    until `Claim.answer`; or find the answer a request with it got (`Claim.earlier`). 409 `idempotency_key_reused`
    when the key named another request."""
    if key is None:
        return Claim(uow, principal.user_id, None)
    digest = fingerprint(payload)
    now = datetime.now(UTC)
    claimed = await uow.session.scalar(
        insert(IdempotentRequest)
        .values(principal_id=principal.user_id, key=key, route=route, fingerprint=digest, created_at=now)
        .on_conflict_do_update(
            index_elements=[IdempotentRequest.principal_id, IdempotentRequest.key],
            # A key past its time names a new request (the row may not be purged yet).
            set_={
                "route": route,
                "fingerprint": digest,
                "status": None,
                "body": None,
                "location": None,
                "created_at": now,
            },
            where=IdempotentRequest.created_at < now - timedelta(hours=keep_hours),
        )
        .returning(IdempotentRequest.key)
    )
    if claimed is not None:
        uow.held = True
        return Claim(uow, principal.user_id, key)
    row = await uow.session.scalar(
        select(IdempotentRequest)
        .where(IdempotentRequest.principal_id == principal.user_id, IdempotentRequest.key == key)
        .execution_options(populate_existing=True)
    )
    assert row is not None  # the insert conflicted with it, committed (ON CONFLICT waited), and kept until purged
    if row.route != route or row.fingerprint != digest:
        raise Conflict(
            "this Idempotency-Key was used for another request",
            code="idempotency_key_reused",
            # What the key made, where it has a URL (explore79 F10: the route alone named nothing new).
            details={"route": row.route, "location": row.location},
        )
    if row.status is None:  # never: the answer commits with the claim (kept for a row written another way)
        raise Conflict("the request with this Idempotency-Key has no answer", code="idempotency_key_reused")
    return Claim(uow, principal.user_id, key, earlier=row)
