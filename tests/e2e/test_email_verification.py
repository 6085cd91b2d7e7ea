"""explore82 F1: a sign-up worked at once under any address (a "Dean of Medicine" published a course). The sign-up
is e-mailed a code proving the address (`POST /auth/verify-email`); with `EMAIL_VERIFICATION=required` an account
not proved yet enrolls, makes and publishes no course (403 `email_not_verified`); an admin vouches for its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api, read_mail

SUBJECT = "Confirm your SmartCourse e-mail address"


@pytest.fixture(autouse=True)
def _verification(container: Any) -> Iterator[None]:
    """The suite's default is `off` (its thousands of sign-ups send no mail): these tests run it as deployed."""
    original = container.settings
    container.settings = original.model_copy(update={"email_verification": "optional"})
    yield
    container.settings = original


async def confirmation_code(container: Any, to: str, count: int = 1, timeout: float = 30) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [m for m in read_mail(container.settings.mail_dir, to=to) if str(m["Subject"]) == SUBJECT]
        if len(found) >= count:
            body = found[-1].get_body(preferencelist=("plain",)).get_content()
            code = re.search(r"^\s*([\w-]+\.[\w-]+\.[\w-]+)\s*$", body, re.MULTILINE)
            assert code, body
            return code.group(1)
        assert asyncio.get_running_loop().time() < deadline, f"{len(found)} confirmation e-mails to {to}"
        await asyncio.sleep(0.2)


async def test_a_sign_up_proves_its_address_with_the_e_mailed_code(
    api: Api, container: Any, celery_worker: object
) -> None:
    user = await api.user()
    assert user["email_verified_at"] is None
    code = await confirmation_code(container, user["email"])
    assert (await api.client.get("/auth/me", headers={"Authorization": f"Bearer {code}"})).status_code == 401
    r = await api.client.post("/auth/verify-email", json={"token": user["access_token"]})  # no confirmation code
    assert (r.status_code, r.json()["code"]) == (422, "invalid_verification_token"), r.text
    r = await api.client.post("/auth/verify-email", json={"token": f"  {code}\n"})  # pasted with blanks: explore85 F12
    assert r.status_code == 200 and r.json()["email_verified_at"], r.text
    again = await api.client.post("/auth/verify-email", json={"token": code})  # a second click: the same answer
    assert again.status_code == 200 and again.json()["email_verified_at"] == r.json()["email_verified_at"]
    me = await api.client.get("/auth/me", headers=user["headers"])
    assert me.json()["email_verified_at"] == r.json()["email_verified_at"], me.text
    r = await api.client.post("/auth/verify-email/resend", headers=user["headers"])
    assert (r.status_code, r.json()["sent"]) == (200, False), r.text
    assert (await api.client.post("/auth/verify-email/resend")).status_code == 401


async def test_with_verification_required_an_unproved_account_enrolls_and_authors_nothing(
    api: Api, container: Any, celery_worker: object, worker: object
) -> None:
    teacher = await api.user("instructor")
    course = await api.published_course(teacher)  # made before the switch, and an enrollment too
    early = await api.user()
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=early["headers"])
    assert r.status_code == 201, r.text
    draft = await api.course(teacher)
    container.settings = container.settings.model_copy(update={"email_verification": "required"})
    student, author = await api.user(), await api.user("instructor")
    # What was started before the switch goes no further either (explore85 F2: a certificate was earned, a draft
    # edited): the account reads, and changes nothing but itself.
    outline = (await api.client.get(f"/courses/{course['id']}", headers=early["headers"])).json()
    lesson = outline["modules"][0]["lessons"][0]["id"]
    r = await api.client.post(f"/lessons/{lesson}/complete", headers=early["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified"), r.text
    r = await api.client.put(f"/courses/{draft['id']}", json={"title": "Renamed"}, headers=teacher["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified"), r.text
    r = await api.client.put(f"/users/{early['id']}", json={"bio": "still mine"}, headers=early["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified"), r.text
    assert "/auth/verify-email/resend" in r.json()["message"] and "changes nothing but itself" in r.json()["message"]
    body = {"title": "Official Diploma in Medicine", "category": "medicine"}
    r = await api.client.post("/courses", json=body, headers=author["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified"), r.text
    r = await api.client.post(f"/courses/{course['id']}/publish", headers=teacher["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "email_not_verified"), r.text
    # Asked again: a second code, as good as the first; proved, the same token enrolls at once.
    assert (await api.client.post("/auth/verify-email/resend", headers=student["headers"])).status_code == 202
    code = await confirmation_code(container, student["email"], count=2)
    assert (await api.client.post("/auth/verify-email", json={"token": code})).status_code == 200
    r = await api.client.post("/enrollments", json={"course_id": course["id"]}, headers=student["headers"])
    assert r.status_code == 201, r.text
    # An admin's account, and one an admin makes, are vouched for.
    admin = await api.admin(container)
    r = await api.client.post("/courses", json=body, headers=admin["headers"])
    assert r.status_code == 201, r.text
    made = await api.client.post(
        "/users",
        json={"email": f"hr-{course['id'][:8]}@example.com", "full_name": "Hired", "password": "a-long-password-9"},
        headers=admin["headers"],
    )
    assert made.status_code == 201 and made.json()["email_verified_at"], made.text
    # A code for an address the account no longer has is void.
    other = await api.user()
    old_code = await confirmation_code(container, other["email"])
    r = await api.client.put(
        f"/users/{other['id']}", json={"email": f"moved-{other['email']}"}, headers=admin["headers"]
    )
    assert r.status_code == 200 and r.json()["email_verified_at"], r.text  # the admin vouches for the new one
    r = await api.client.post("/auth/verify-email", json={"token": old_code})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_verification_token"), r.text
