"""explore8 F6: an admin finds an account through the API (`GET /users`), and an instructor sees who is enrolled in
their course (`GET /courses/{id}/enrollments`), where both needed psql or an enrollment id from elsewhere."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

from tests.conftest import Api
from tests.e2e.test_enrollment import enroll


async def test_an_admin_finds_accounts_by_email_part_of_a_name_or_role(api: Api, container: Any) -> None:
    admin = await api.admin(container)
    marker = uuid.uuid4().hex[:8]
    r = await api.client.post(
        "/auth/register",
        json={
            "email": f"Spammer-{marker}@Example.com",
            "password": "a-long-password",
            "full_name": f"Spam {marker}_x%",
            "role": "student",
        },
    )
    assert r.status_code == 201, r.text
    spammer = r.json()
    found = await api.client.get("/users", params={"email": f"spammer-{marker}@example.COM"}, headers=admin["headers"])
    assert found.status_code == 200 and [u["id"] for u in found.json()["items"]] == [spammer["id"]], found.text
    assert found.json()["total"] == 1 and found.json()["items"][0]["is_active"] is True
    by_part = await api.client.get("/users", params={"q": f"{marker}_x%"}, headers=admin["headers"])  # % and _ literal
    assert [u["id"] for u in by_part.json()["items"]] == [spammer["id"]], by_part.text
    assert (await api.client.get("/users", params={"q": f"{marker}%%"}, headers=admin["headers"])).json()["total"] == 0
    instructors = await api.client.get(
        "/users", params={"role": "instructor", "page_size": 5}, headers=admin["headers"]
    )
    assert all(u["role"] == "instructor" for u in instructors.json()["items"])
    assert (await api.client.get("/users", params={"role": "nobody"}, headers=admin["headers"])).status_code == 422
    # Which accounts were disabled, which erased (explore77 F10: `?is_active=false` was refused, nothing else said it).
    r = await api.client.put(f"/users/{spammer['id']}", json={"is_active": False}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    for state, listed in (("disabled", [spammer["id"]]), ("active", []), ("erased", [])):
        r = await api.client.get("/users", params={"q": marker, "state": state}, headers=admin["headers"])
        assert [u["id"] for u in r.json()["items"]] == listed, (state, r.text)
    # Several states, comma-separated or repeated (explore81 F11: one only, while courses' `status` took several).
    for several in ("active,disabled", ["erased", "disabled"]):
        r = await api.client.get("/users", params={"q": marker, "state": several}, headers=admin["headers"])
        assert [u["id"] for u in r.json()["items"]] == [spammer["id"]], (several, r.text)
    r = await api.client.get("/users", params={"q": marker, "state": "active,gone"}, headers=admin["headers"])
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "query.state"), r.text
    for blank in ({"email": ""}, {"email": "   "}, {"q": ""}, {"q": " "}):  # explore9 F5: not a filter on nothing
        assert (await api.client.get("/users", params=blank, headers=admin["headers"])).status_code == 422, blank
    student = await api.user()
    r = await api.client.get("/users", headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only")
    assert (await api.client.get("/users")).status_code == 401


async def test_an_address_or_name_typed_in_another_unicode_form_is_the_same(api: Api, container: Any) -> None:
    """explore9 F6: "zoë" composed (NFC) and decomposed (NFD, as some keyboards type it) are one address and one
    name, at login and in an admin's search."""
    admin = await api.admin(container)
    marker = uuid.uuid4().hex[:8]
    nfc, nfd = f"zoë-{marker}@example.com", unicodedata.normalize("NFD", f"zoë-{marker}@example.com")
    assert nfc != nfd
    body = {"email": nfd, "password": "a-long-password", "full_name": unicodedata.normalize("NFD", f"Zoë {marker}")}
    r = await api.client.post("/auth/register", json={**body, "role": "student"})
    assert r.status_code == 201, r.text
    zoe = r.json()
    for typed in (nfc, nfd):
        r = await api.client.post("/auth/login", json={"email": typed, "password": "a-long-password"})
        assert r.status_code == 200, (typed, r.text)
        found = await api.client.get("/users", params={"email": typed}, headers=admin["headers"])
        assert [u["id"] for u in found.json()["items"]] == [zoe["id"]], found.text
    for typed in (f"Zoë {marker}", unicodedata.normalize("NFD", f"zoë {marker}")):
        found = await api.client.get("/users", params={"q": typed}, headers=admin["headers"])
        assert [u["id"] for u in found.json()["items"]] == [zoe["id"]], (typed, found.text)
    # A hyphen is a space (explore83 F16: "maria jose" did not find "María-José O'Connor").
    body = {"email": f"mj-{marker}@example.com", "password": "a-long-password", "full_name": f"María-José {marker}"}
    r = await api.client.post("/auth/register", json={**body, "role": "student"})
    assert r.status_code == 201, r.text
    for typed in (
        f"maria jose {marker}",
        f"María-José {marker}",
        "maria-jose",
        "maria\u2011jose",
        f"maria  jose {marker}",
    ):
        found = await api.client.get("/users", params={"q": typed}, headers=admin["headers"])
        assert r.json()["id"] in [u["id"] for u in found.json()["items"]], (typed, found.text)


async def test_an_instructor_sees_who_is_enrolled_in_their_course(api: Api, worker: object) -> None:
    teacher, other = await api.user("instructor"), await api.user("instructor")
    course = await api.published_course(teacher, capacity=1, waitlist_enabled=True)
    first, second, third = await api.user(), await api.user(), await api.user()
    for who in (first, second, third):
        assert (await enroll(api, who, course["id"])).status_code in (201, 202)
    url = f"/courses/{course['id']}/enrollments"
    r = await api.client.get(url, headers=teacher["headers"])
    assert r.status_code == 200 and r.json()["total"] == 3, r.text
    rows = r.json()["items"]
    assert [row["student_id"] for row in rows] == [third["id"], second["id"], first["id"]]  # newest first
    assert [(row["status"], row["position"]) for row in rows] == [
        ("waitlisted", 2),
        ("waitlisted", 1),
        (rows[2]["status"], None),
    ]
    assert rows[2]["status"] in ("pending", "active") and rows[0]["student_name"] and "email" not in rows[0]
    waiting = await api.client.get(url, params={"status": "waitlisted"}, headers=teacher["headers"])
    assert waiting.json()["total"] == 2
    assert (await api.client.get(url, params={"status": "lost"}, headers=teacher["headers"])).status_code == 422
    r = await api.client.get(url, headers=other["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_course_owner")
    r = await api.client.get(url, headers=first["headers"])
    assert r.status_code == 403
