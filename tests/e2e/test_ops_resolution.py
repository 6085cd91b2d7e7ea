"""Failures an admin has dealt with stop counting: a dead letter discarded with a reason, a failed task whose dead
letter was replayed, a failed run superseded by a later success of the same subject (docs/operations.md)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, update

from tests.conftest import Api


async def _issues(api: Api, admin: dict[str, Any]) -> dict[str, int]:
    r = await api.client.get("/analytics/dashboard", headers=admin["headers"])
    assert r.status_code == 200, r.text
    return dict(r.json()["workflow_issues"])


async def _pending_ids(api: Api, admin: dict[str, Any], status: str = "pending") -> dict[str, dict[str, Any]]:
    r = await api.client.get("/ops/dead-letters", params={"status": status, "limit": 200}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    return {i["id"]: i for i in r.json()["items"]}


async def test_a_dead_letter_that_cannot_be_replayed_is_discarded_with_a_reason(api: Api, container: Any) -> None:
    from smartcourse.event_consumer import dead_letter
    from smartcourse.metrics import DatabaseState
    from smartcourse.models import DeadLetter

    admin = await api.admin(container)
    admin_id = (await api.client.get("/auth/me", headers=admin["headers"])).json()["id"]
    student = await api.user()
    before = await _issues(api, admin)
    poison, foreign, replayed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await dead_letter(container.sessionmaker, "analytics", "t", {"event_id": str(poison), "raw": "AAEC"}, "poison")
    envelope = {"event_id": str(foreign), "event_type": "user.registered", "schema_version": 1, "data": {}}
    await dead_letter(container.sessionmaker, "gone-consumer", "t", envelope, "boom")
    await dead_letter(container.sessionmaker, "analytics", "t", {**envelope, "event_id": str(replayed)}, "boom")
    try:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(
                update(DeadLetter).where(DeadLetter.event_id == replayed).values(replayed_at=DeadLetter.created_at)
            )
        listed = await _pending_ids(api, admin)
        by_event = {i["event_id"]: i for i in listed.values()}
        assert str(replayed) not in by_event
        raw, gone = by_event[str(poison)], by_event[str(foreign)]
        # Neither can be replayed here: raw bytes, and a consumer this deployment does not run.
        assert raw["replayable"] is False and gone["replayable"] is False
        assert (await _issues(api, admin))["dead_letters"] == before["dead_letters"] + 2
        r = await api.client.post(f"/ops/dead-letters/{gone['id']}/replay", headers=admin["headers"])
        assert r.status_code == 409 and r.json()["code"] == "unknown_consumer"

        url = f"/ops/dead-letters/{gone['id']}/discard"
        assert (await api.client.post(url, json={"reason": "x"})).status_code == 401
        r = await api.client.post(url, json={"reason": "x"}, headers=student["headers"])
        assert r.status_code == 403 and r.json()["code"] == "admin_only"
        r = await api.client.post(url, json={"reason": "   "}, headers=admin["headers"])
        assert r.status_code == 422
        r = await api.client.post(
            f"/ops/dead-letters/{uuid.uuid4()}/discard", json={"reason": "x"}, headers=admin["headers"]
        )
        assert r.status_code == 404 and r.json()["code"] == "dead_letter_not_found"

        first = await api.client.post(url, json={"reason": " consumer retired in v2 "}, headers=admin["headers"])
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["discarded_now"] is True and body["status"] == "discarded"
        assert body["discarded_by"] == admin_id and body["discard_reason"] == "consumer retired in v2"
        again = (await api.client.post(url, json={"reason": "another"}, headers=admin["headers"])).json()
        assert again["discarded_now"] is False and again["discarded_at"] == body["discarded_at"]
        assert again["discard_reason"] == "consumer retired in v2"
        r = await api.client.post(
            f"/ops/dead-letters/{raw['id']}/discard", json={"reason": "poison bytes"}, headers=admin["headers"]
        )
        assert r.status_code == 200, r.text
        # A discarded one is not replayed; a replayed one is not discarded.
        r = await api.client.post(f"/ops/dead-letters/{gone['id']}/replay", headers=admin["headers"])
        assert r.status_code == 409 and r.json()["code"] == "dead_letter_discarded"
        done = next(i for i in (await _pending_ids(api, admin, "replayed")).values() if i["event_id"] == str(replayed))
        r = await api.client.post(
            f"/ops/dead-letters/{done['id']}/discard", json={"reason": "x"}, headers=admin["headers"]
        )
        assert r.status_code == 409 and r.json()["code"] == "dead_letter_replayed"

        # No longer pending anywhere: the list, the dashboard, the worker's gauge; listed as discarded.
        pending = await _pending_ids(api, admin)
        assert gone["id"] not in pending and raw["id"] not in pending
        assert (await _issues(api, admin))["dead_letters"] == before["dead_letters"]
        discarded = await _pending_ids(api, admin, "discarded")
        assert discarded[gone["id"]]["discard_reason"] == "consumer retired in v2"
        assert discarded[gone["id"]]["discarded_by"] == admin_id and discarded[gone["id"]]["replayable"] is False
        assert gone["id"] in await _pending_ids(api, admin, "all")
        state = DatabaseState()
        await state.refresh(container.sessionmaker)
        assert state.snapshot is not None and "gone-consumer" not in state.snapshot.dead_letters
    finally:
        async with container.sessionmaker() as session, session.begin():
            await session.execute(delete(DeadLetter).where(DeadLetter.event_id.in_((poison, foreign, replayed))))
