"""The notification feed over HTTP: the caller's own, newest first, read marks owner-only and idempotent."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Api


async def notify(container: Any, user: dict[str, Any], title: str, **fields: Any) -> uuid.UUID:
    from smartcourse.services.notifications import create_notification

    async with container.uow() as uow:
        nid = await create_notification(
            uow.session,
            user_id=uuid.UUID(user["id"]),
            kind=fields.pop("kind", "enrollment.welcome"),
            title=title,
            body=f"{title}: details",
            dedupe_key=fields.pop("dedupe_key", f"test:{uuid.uuid4()}"),
            email=False,
            **fields,
        )
        await uow.commit()
    return nid


async def test_feed_is_the_callers_own_newest_first(api: Api, container: Any) -> None:
    alice, bob = await api.user(), await api.user()
    ids = [await notify(container, alice, f"n{i}") for i in range(3)]
    await notify(container, bob, "for bob")
    r = await api.client.get("/notifications", headers=alice["headers"])
    assert r.status_code == 200, r.text
    feed = r.json()
    assert [n["id"] for n in feed] == [str(i) for i in reversed(ids)]
    assert feed[0] == {
        "id": str(ids[2]),
        "kind": "enrollment.welcome",
        "title": "n2",
        "body": "n2: details",
        "data": {},
        "created_at": feed[0]["created_at"],
        "read_at": None,
    }
    r = await api.client.get("/notifications?limit=2", headers=alice["headers"])
    assert [n["title"] for n in r.json()] == ["n2", "n1"]
    r = await api.client.get(
        "/notifications", params={"limit": 2, "before": feed[1]["created_at"]}, headers=alice["headers"]
    )
    assert [n["title"] for n in r.json()] == ["n0"]
    assert [n["title"] for n in (await api.client.get("/notifications", headers=bob["headers"])).json()] == ["for bob"]


async def test_unread_ones_are_counted_filtered_and_marked_read_at_once(api: Api, container: Any) -> None:
    """explore60 F12: a client had no unread count for its badge and marked notifications read one by one."""
    alice, bob = await api.user(), await api.user()
    ids = [await notify(container, alice, f"n{i}") for i in range(3)]
    await notify(container, bob, "for bob")
    r = await api.client.post(f"/notifications/{ids[0]}/read", headers=alice["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.get("/notifications", headers=alice["headers"])
    assert r.headers["X-Unread-Count"] == "2", r.headers
    r = await api.client.get("/notifications", params={"unread": True}, headers=alice["headers"])
    assert [n["title"] for n in r.json()] == ["n2", "n1"], r.text
    r = await api.client.post("/notifications/read-all", headers=alice["headers"])
    assert (r.status_code, r.json()) == (200, {"marked": 2}), r.text
    assert (await api.client.post("/notifications/read-all", headers=alice["headers"])).json() == {"marked": 0}
    r = await api.client.get("/notifications", headers=alice["headers"])
    assert r.headers["X-Unread-Count"] == "0" and all(n["read_at"] for n in r.json()), r.text
    first = next(n for n in r.json() if n["id"] == str(ids[0]))
    assert first["read_at"] < r.json()[0]["read_at"]  # the first read time kept
    bobs = await api.client.get("/notifications", headers=bob["headers"])
    assert bobs.headers["X-Unread-Count"] == "1"  # someone else's are left alone
    assert (await api.client.post("/notifications/read-all")).status_code == 401


async def test_limit_bounds_and_authentication(api: Api) -> None:
    user = await api.user()
    for bad in (0, 101, -1):
        r = await api.client.get(f"/notifications?limit={bad}", headers=user["headers"])
        assert r.status_code == 422, bad
    assert (await api.client.get("/notifications?limit=100", headers=user["headers"])).status_code == 200
    r = await api.client.get("/notifications")
    assert r.status_code == 401 and r.json()["code"] == "not_authenticated"


async def test_a_cursor_out_of_the_databases_range_is_the_clients_error(api: Api) -> None:
    """Valid ISO times that cannot be put in UTC (the driver could not encode them). A retry would never succeed,
    so this is a 422 that names the parameter, as /ops's `invalid_since` (not a 503 "database unavailable", nor
    the generic `invalid_input` "cannot be stored" on a read)."""
    user = await api.user()
    for before in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        r = await api.client.get("/notifications", params={"before": before}, headers=user["headers"])
        assert r.status_code == 422 and r.json()["code"] == "invalid_before", r.text
        assert r.json()["message"] == "before is out of range"
    for before in ("9999-12-31T23:59:59", "2000-01-01T00:00:00+14:00"):  # in range: an (empty) page
        r = await api.client.get("/notifications", params={"before": before}, headers=user["headers"])
        assert r.status_code == 200 and r.json() == [], r.text


async def test_mark_read_is_owner_only_and_idempotent(api: Api, container: Any) -> None:
    alice, bob = await api.user(), await api.user()
    nid = await notify(container, alice, "course published")
    r = await api.client.post(f"/notifications/{nid}/read", headers=bob["headers"])
    assert r.status_code == 404 and r.json()["code"] == "notification_not_found"
    r = await api.client.post(f"/notifications/{nid}/read", headers=alice["headers"])
    assert r.status_code == 200, r.text
    first = r.json()["read_at"]
    assert first is not None
    again = await api.client.post(f"/notifications/{nid}/read", headers=alice["headers"])
    assert again.status_code == 200 and again.json()["read_at"] == first
    feed = (await api.client.get("/notifications", headers=alice["headers"])).json()
    assert feed[0]["read_at"] == first
    r = await api.client.post(f"/notifications/{uuid.uuid4()}/read", headers=alice["headers"])
    assert r.status_code == 404 and r.json()["code"] == "notification_not_found"
    assert (await api.client.post(f"/notifications/{nid}/read")).status_code == 401
    assert (await api.client.post("/notifications/not-a-uuid/read", headers=alice["headers"])).status_code == 404


async def test_create_is_idempotent_by_dedupe_key(api: Api, container: Any) -> None:
    from smartcourse.models import Notification

    user = await api.user()
    key = f"enrollment:{uuid.uuid4()}:activated"
    first = await notify(container, user, "welcome", dedupe_key=key, data={"course_id": "c1"})
    second = await notify(container, user, "welcome again", dedupe_key=key)
    assert first == second
    async with container.uow() as uow:
        row = await uow.session.get(Notification, first)
    assert row.title == "welcome" and row.data == {"course_id": "c1"} and row.email_status == "none"
    feed = (await api.client.get("/notifications", headers=user["headers"])).json()
    assert len(feed) == 1


async def test_email_flag_sets_pending_and_records_the_attachment(api: Api, container: Any) -> None:
    from smartcourse.models import Notification
    from smartcourse.services.notifications import create_notification

    user = await api.user()
    async with container.uow() as uow:
        nid = await create_notification(
            uow.session,
            user_id=uuid.UUID(user["id"]),
            kind="certificate.issued",
            title="Your certificate",
            body="Congratulations!",
            dedupe_key=f"certificate:{uuid.uuid4()}",
            data={"code": "ABC"},
            attachment_key="certificates/abc.pdf",
        )
        await uow.commit()
        row = await uow.session.get(Notification, nid)
    assert row.email_status == "pending" and row.email_attempts == 0 and row.emailed_at is None
    assert row.data == {"code": "ABC", "attachment_key": "certificates/abc.pdf"}


async def test_the_next_page_is_linked_and_page_size_names_the_limit(api: Api, container: Any) -> None:
    """docs/api.md: `Link: <?…&before=…>; rel="next"` while older notifications remain (as the other bare-array lists
    link their next page); `page_size` is the other lists' name for `limit`."""
    import re

    alice, bob = await api.user(), await api.user()
    ids = [str(await notify(container, alice, f"n{i}")) for i in range(5)]
    await notify(container, bob, "for bob")
    walked: list[str] = []
    url = "/notifications?page_size=2"
    while True:
        r = await api.client.get(url, headers=alice["headers"])
        assert r.status_code == 200 and 0 < len(r.json()) <= 2, r.text
        walked += [n["id"] for n in r.json()]
        if "link" not in r.headers:
            break
        (ref,) = re.findall(r'^<\?([^>]*)>; rel="next"$', r.headers["link"])
        url = f"/notifications?{ref}"
    assert walked == list(reversed(ids))
    r = await api.client.get("/notifications", params={"limit": 5}, headers=alice["headers"])
    assert len(r.json()) == 5 and "link" not in r.headers  # exactly the rest: no next page
    r = await api.client.get("/notifications", params={"limit": 1, "page_size": 3}, headers=alice["headers"])
    assert len(r.json()) == 3  # page_size taken over limit
    # A generic list client's `page=1` is the first page; a page number past it says how to page (explore79 F3).
    r = await api.client.get("/notifications", params={"page": 1, "page_size": 3}, headers=alice["headers"])
    assert r.status_code == 200 and len(r.json()) == 3, r.text
    r = await api.client.get("/notifications", params={"page": 2}, headers=alice["headers"])
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "page"), r.text
    assert "before=" in r.json()["message"], r.text  # how to page on (explore81 F9)
    for bad in (0, 101):
        r = await api.client.get("/notifications", params={"page_size": bad}, headers=alice["headers"])
        assert (r.status_code, r.json()["code"], r.json()["details"][0]["field"]) == (
            422,
            "validation_error",
            "page_size",
        )


async def test_a_kind_the_api_does_not_declare_is_refused_by_the_database(api: Api, container: Any) -> None:
    """The feed answers `kind` as an enum (`schemas.NotificationKind`); migration 0015's CHECK constraint keeps any
    other kind out of the table, so no row can make the feed fail."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    user = await api.user()
    with pytest.raises(IntegrityError, match="ck_notifications_kind"):
        await notify(container, user, "odd", kind="course.renamed")
    await notify(container, user, "fine", kind="waitlist.released")
    r = await api.client.get("/notifications", headers=user["headers"])
    assert r.status_code == 200 and [n["kind"] for n in r.json()] == ["waitlist.released"], r.text


async def test_a_commit_hands_over_the_emails_its_transaction_wrote_and_a_rollback_none(
    api: Api, container: Any
) -> None:
    """`db.EMAILS_AFTER_COMMIT` (set by the HTTP layer for each request) gets the new notifications with an e-mail
    once their transaction committed: not in-app ones, not a repeat of an existing one, not a rolled-back one."""
    import pytest

    from smartcourse.db import EMAILS_AFTER_COMMIT
    from smartcourse.services.notifications import create_notification

    user = await api.user()
    handed: list[list[uuid.UUID]] = []
    token = EMAILS_AFTER_COMMIT.set(handed.append)

    async def write(uow: Any, key: str, email: bool = True) -> uuid.UUID:
        return await create_notification(
            uow.session,
            user_id=uuid.UUID(user["id"]),
            kind="certificate.revoked",
            title="t",
            body="b",
            dedupe_key=key,
            email=email,
        )

    try:
        keys = [f"test:{uuid.uuid4()}" for _ in range(3)]
        async with container.uow() as uow:
            first = await write(uow, keys[0])
            await write(uow, keys[1], email=False)
            assert handed == []  # not before the commit
            await uow.commit()
        assert handed == [[first]]
        with pytest.raises(RuntimeError):
            async with container.uow() as uow:
                await write(uow, keys[2])
                raise RuntimeError("the request failed")
        async with container.uow() as uow:
            assert await write(uow, keys[0]) == first  # a repeat: the same row, handed over once already
            await uow.commit()
        assert handed == [[first]]
    finally:
        EMAILS_AFTER_COMMIT.reset(token)
