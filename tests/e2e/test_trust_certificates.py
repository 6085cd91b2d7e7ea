"""Issue #9.5/#9.8: certificate codes are validated before the database; a student can find their certificate."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.conftest import Api
from tests.e2e.test_enrollment import (
    assert_no_drift,
    complete_everything,
    course_with_lessons,
    enroll,
    fast_students,
    seat_state,
    wait_enrollment,
)

Json = dict[str, Any]


async def test_malformed_verification_codes_are_422_not_503(api: Api) -> None:
    for code in ("%00", "SC-%00-AAAA", "x" * 60, "SC-9999-0000-AAAA-AAAA", "'; drop table--"):
        r = await api.client.get(f"/certificates/verify/{code}")
        assert r.status_code == 422, (code, r.text)
        assert r.json()["code"] in {"invalid_certificate_code", "validation_error"}
    r = await api.client.get("/certificates/verify/sc-abcd-efgh-ijkl-mnop")  # well formed, unknown
    assert r.status_code == 200 and r.json() == {"valid": False, "status": "unknown"}


async def test_student_finds_their_certificate(api: Api, worker: object) -> None:
    teacher, student, stranger = await api.user("instructor"), await api.user(), await api.user()
    course, lessons = await course_with_lessons(api, teacher)
    eid = (await enroll(api, student, course["id"])).json()["id"]
    await wait_enrollment(api, student, eid, "active")
    url = f"/enrollments/{eid}/certificate"
    r = await api.client.post(url, headers=student["headers"])
    assert r.status_code == 409 and r.json()["code"] == "enrollment_not_completed"
    assert r.json()["details"] == {"status": "active"} and "not complete yet" in r.json()["message"]
    assert (await api.client.post(url, headers=stranger["headers"])).status_code == 404
    # A dropped enrollment never will be complete: said so (explore77 F7: "not complete yet").
    leaver = await api.user()
    left = (await enroll(api, leaver, course["id"])).json()["id"]
    await wait_enrollment(api, leaver, left, "active")
    assert (await api.client.delete(f"/enrollments/{left}", headers=leaver["headers"])).status_code == 200
    r = await api.client.post(f"/enrollments/{left}/certificate", headers=leaver["headers"])
    assert (r.status_code, r.json()["details"]) == (409, {"status": "dropped"}), r.text
    assert "dropped" in r.json()["message"] and "new enrollment" in r.json()["message"]
    assert (await api.client.get("/certificates/my", headers=student["headers"])).json() == []

    await complete_everything(api, student, lessons)
    # Several at once (a double click): one certificate, and at most the request that issued it says 201 Created
    # (explore19 F5: several did, each with a Location).
    burst = await asyncio.gather(*(api.client.post(url, headers=student["headers"]) for _ in range(5)))
    assert all(b.status_code in (200, 201) for b in burst), [b.text for b in burst]
    assert sum(b.status_code == 201 for b in burst) <= 1 and len({b.json()["id"] for b in burst}) == 1
    r = next((b for b in burst if b.status_code == 201), burst[0])
    cert = r.json()
    if r.status_code == 201:  # issued by this request, not by the workflow before it: Location names it
        assert r.headers["location"] == f"/certificates/{cert['id']}", r.headers
        assert (await api.client.get(r.headers["location"], headers=student["headers"])).json()["id"] == cert["id"]
    else:
        assert "location" not in r.headers
    again = await api.client.post(url, headers=student["headers"])
    assert again.status_code == 200 and again.json()["id"] == cert["id"]  # one certificate per enrollment

    mine = (await api.client.get("/certificates/my", headers=student["headers"])).json()
    assert [c["id"] for c in mine] == [cert["id"]]
    assert (await api.client.get("/certificates/my", headers=stranger["headers"])).json() == []
    detail: dict[str, Any] = {}
    for _ in range(50):
        detail = (await api.client.get(f"/enrollments/{eid}", headers=student["headers"])).json()
        if detail.get("certificate"):
            break
        await asyncio.sleep(0.2)
    assert detail["certificate"]["id"] == cert["id"] and detail["certificate"]["code"] == cert["code"]
    r = await api.client.get(f"/certificates/verify/{cert['code'].lower()}")
    assert r.json()["valid"] is True
    # Read off paper with 0, 1, 8 for O, I, B (base32 has none of those digits: explore36 F5).
    typed = cert["code"].replace("O", "0").replace("I", "1").replace("B", "8")
    r = await api.client.get(f"/certificates/verify/{typed}")
    assert r.status_code == 200 and r.json()["valid"] is True, (typed, r.text)


async def test_a_revoked_certificate_opens_no_course_that_requires_it(api: Api, worker: object, container: Any) -> None:
    """explore29 F2: after an admin revoked a certificate ("exam fraud"), its completion still met the prerequisite
    of the next course. A revoked completion prepares for nothing: the admission and the recommendations agree."""
    teacher, student = await api.user("instructor"), await api.user()
    admin = await api.admin(container)
    cooldown = container.settings.quiz_cooldown_seconds
    first, lessons = await course_with_lessons(api, teacher, capacity=2)
    then = await api.published_course(teacher, title="Next steps", prerequisites=[first["id"]])
    (other,) = await fast_students(container, 1)
    assert (await enroll(api, other, first["id"])).status_code == 201
    eid = (await enroll(api, student, first["id"])).json()["id"]
    await wait_enrollment(api, student, eid, "active")
    await complete_everything(api, student, lessons)
    await wait_enrollment(api, student, eid, "completed")
    recommended = (await api.client.get("/recommendations", headers=student["headers"])).json()
    assert then["id"] in [i["course"]["id"] for i in recommended["items"]], recommended  # the next step
    # The course's instructor, who reads this enrollment, is told the rule, not "not found" (explore35 F5).
    r = await api.client.post(f"/enrollments/{eid}/certificate", headers=teacher["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_enrollment_student"), r.text
    cert = (await api.client.post(f"/enrollments/{eid}/certificate", headers=student["headers"])).json()
    r = await api.client.post(
        f"/certificates/{cert['id']}/revoke", json={"reason": "exam fraud"}, headers=admin["headers"]
    )
    assert r.status_code == 200, r.text
    r = await enroll(api, student, then["id"])
    assert (r.status_code, r.json()["code"]) == (409, "prerequisites_not_met"), r.text
    assert r.json()["details"]["missing"] == [first["id"]], r.text
    recommended = (await api.client.get("/recommendations", headers=student["headers"])).json()
    assert then["id"] not in [i["course"]["id"] for i in recommended["items"]], recommended

    # explore36 F3: the revoked completion no longer holds the student's place, so they may take the course again
    # (enrolling answered the old completion, for good). A new attempt, whose completion earns a new certificate
    # and opens the next course; the revoked completion stays in the record, and analytics agree with it.
    old = (await api.client.get(f"/enrollments/{eid}", headers=student["headers"])).json()
    assert old["status"] == "completed" and old["completion_revoked_at"] is not None, old
    assert old["certificate"]["revoked_reason"] == "exam fraud"
    # Why is for the student and admins; the instructor reads the enrollment, and that it was revoked (explore39 F3).
    seen = (await api.client.get(f"/enrollments/{eid}", headers=teacher["headers"])).json()
    assert seen["certificate"]["revoked_at"] and seen["certificate"]["revoked_reason"] is None, seen
    history = (await api.client.get(f"/enrollments/{eid}/history", headers=student["headers"])).json()
    assert (history[-1]["to_status"], history[-1]["reason"]) == ("completed", "certificate revoked: exam fraud")
    # ... and so does the history: the instructor reads that it was revoked, not why (explore44 F1).
    history = (await api.client.get(f"/enrollments/{eid}/history", headers=teacher["headers"])).json()
    assert (history[-1]["to_status"], history[-1]["reason"]) == ("completed", "certificate revoked"), history
    feed = (await api.client.get("/notifications", headers=student["headers"])).json()
    notice = next(n for n in feed if n["kind"] == "certificate.revoked")
    assert "exam fraud. You may enroll in the course again" in notice["body"], notice
    r = await api.client.post(f"/lessons/{lessons[0]['id']}/complete", headers=student["headers"])
    assert r.status_code == 200, r.text  # a repeat on the revoked completion is answered as before
    # Its seat went back to the course (explore39 F2: kept, the retake of a full course was refused or waitlisted).
    assert (await seat_state(container, first["id"]))[0] == 1
    r = await enroll(api, student, first["id"])
    assert r.status_code == 201, r.text
    retake = r.json()
    assert retake["id"] != eid and retake["attempt"] == 2 and retake["completion_revoked_at"] is None, retake
    again = await enroll(api, student, first["id"])  # and only one new attempt
    assert (again.status_code, again.json()["id"]) == (200, retake["id"]), again.text
    assert (await seat_state(container, first["id"]))[0] == 2
    await wait_enrollment(api, student, retake["id"], "active")
    # The quiz starts afresh: the revoked completion's pass lifts no limit and shows no answers (explore39 F1).
    r = await api.client.post(
        f"/quizzes/{lessons[2]['id']}/submit", json={"answers": [0, 0]}, headers=student["headers"]
    )
    assert r.status_code == 200, r.text
    graded = r.json()
    assert (graded["passed"], graded["attempt"], graded["correct"]) == (False, 1, None), graded
    assert graded["attempts_left"] is not None, graded
    container.settings = container.settings.model_copy(update={"quiz_cooldown_seconds": 0})
    try:
        await complete_everything(api, student, lessons)  # recorded on the retake, not on the revoked completion
    finally:
        container.settings = container.settings.model_copy(update={"quiz_cooldown_seconds": cooldown})
    await wait_enrollment(api, student, retake["id"], "completed")
    renewed = (await api.client.post(f"/enrollments/{retake['id']}/certificate", headers=student["headers"])).json()
    assert renewed["id"] != cert["id"] and renewed["revoked_at"] is None, renewed
    assert (await api.client.get(f"/certificates/verify/{renewed['code']}")).json()["valid"] is True
    assert (await api.client.get(f"/certificates/verify/{cert['code']}")).json()["status"] == "revoked"
    r = await enroll(api, student, then["id"])
    assert r.status_code == 201, r.text
    mine = (await api.client.get("/enrollments/my-courses?status=completed", headers=student["headers"])).json()
    assert sorted(m["attempt"] for m in mine if m["course_id"] == first["id"]) == [1, 2], mine
    await assert_no_drift(
        api,
        container,
        admin,
        (
            "series:completions",
            "series:completion_seconds",
            "counters:course_enrollments",
            "counters:student_live_enrollments",
            "counters:student_current_enrollments",
        ),
    )


async def _certified(api: Api, teacher: Json, student: Json) -> tuple[Json, str, Json]:
    """(a course of `teacher`'s, `student`'s enrollment in it, completed, and its certificate)."""
    course, lessons = await course_with_lessons(api, teacher)
    eid = (await enroll(api, student, course["id"])).json()["id"]
    await wait_enrollment(api, student, eid, "active")
    await complete_everything(api, student, lessons)
    cert = (await api.client.post(f"/enrollments/{eid}/certificate", headers=student["headers"])).json()
    return course, eid, cert


async def test_an_admin_revokes_a_certificate_and_its_check_says_so(api: Api, worker: object, container: Any) -> None:
    """explore8 F5: nothing could revoke a certificate, and a forged code read like a revoked one. An admin revokes
    (with a reason, told to the student); the public check answers `revoked` (never why), a browser gets a page."""
    teacher, student = await api.user("instructor"), await api.user()
    admin = await api.admin(container)
    course, eid, cert = await _certified(api, teacher, student)
    check = f"/certificates/verify/{cert['code']}"
    r = await api.client.get(check, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
    assert "Valid certificate" in r.text and course["title"] in r.text
    # Who stands behind it: the course, its page, its instructor (explore59 F2: a verifier could not tell a
    # university's course from one anyone registered and made five minutes earlier).
    assert f", taught by {teacher['full_name']}, on SmartCourse." in r.text, r.text
    public = (await api.client.get(check)).json()
    assert public["course_id"] == course["id"] and public["instructor_name"] == teacher["full_name"], public
    assert public["course_url"].endswith(f"/courses/{course['id']}"), public
    assert f'<a href="{public["course_url"]}">' in r.text
    # The name as it was at issue: the instructor renaming themselves changes no certificate (explore62 F8).
    r = await api.client.put(
        f"/users/{teacher['id']}", json={"full_name": "Prof. Someone Else"}, headers=teacher["headers"]
    )
    assert r.status_code == 200, r.text
    assert (await api.client.get(check)).json()["instructor_name"] == teacher["full_name"]

    url = f"/certificates/{cert['id']}/revoke"
    r = await api.client.post(url, json={"reason": "misconduct"}, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "admin_only")
    assert (await api.client.post(url, json={"reason": " "}, headers=admin["headers"])).status_code == 422
    # An admin revokes by the code a report quotes, as typed (explore28 F5: neither the PDF nor the check shows the
    # id); a code or a name of no certificate is 404, to a student 403 as any revocation.
    for nothing in ("SC-AAAA-BBBB-CCCC-DDDD", "not-a-certificate"):
        r = await api.client.post(f"/certificates/{nothing}/revoke", json={"reason": "x"}, headers=admin["headers"])
        assert (r.status_code, r.json()["code"]) == (404, "certificate_not_found"), r.text
        r = await api.client.post(f"/certificates/{nothing}/revoke", json={"reason": "x"}, headers=student["headers"])
        assert (r.status_code, r.json()["code"]) == (403, "admin_only"), r.text
    by_code = f"/certificates/{cert['code'].lower()}/revoke"
    r = await api.client.post(by_code, json={"reason": "Issued by mistake"}, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["revoked_at"] and r.json()["revoked_reason"] == "Issued by mistake"
    assert r.json()["id"] == cert["id"]
    again = await api.client.post(url, json={"reason": "another"}, headers=admin["headers"])
    assert (again.json()["revoked_reason"], again.json()["revoked_at"]) == ("Issued by mistake", r.json()["revoked_at"])

    # The certificate workflow's notice, if its step comes after the revocation, is not sent (explore19 F1: "Your
    # certificate is attached" went out, PDF and all, after the revocation).
    from smartcourse.services import certificates

    async with container.uow() as uow:
        assert await certificates.notify(uow=uow, certificate_id=uuid.UUID(cert["id"]), base_url="http://x") is None

    public = (await api.client.get(check)).json()
    assert public["valid"] is False and public["status"] == "revoked" and public["revoked_at"], public
    assert public["course_title"] == course["title"] and "reason" not in str(public)
    page = await api.client.get(check, headers={"Accept": "text/html"})
    assert "Revoked certificate" in page.text and "no longer valid" in page.text
    mine = (await api.client.get(f"/certificates/{cert['id']}", headers=student["headers"])).json()
    assert mine["revoked_reason"] == "Issued by mistake"
    # Its course's instructor opens it from the course's list (explore30 F10: 404), not told why it was revoked.
    taught = await api.client.get(f"/certificates/{cert['id']}", headers=teacher["headers"])
    assert taught.status_code == 200 and taught.json()["revoked_at"] and taught.json()["revoked_reason"] is None
    r = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=teacher["headers"])
    # The student's document: said (explore59 F6: 404 certificate_not_found for the certificate just read).
    assert (r.status_code, r.json()["code"]) == (403, "not_certificate_student"), r.text
    stranger = await api.user("instructor")
    r = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=stranger["headers"])
    assert (r.status_code, r.json()["code"]) == (404, "certificate_not_found"), r.text  # anyone else learns nothing
    # Its PDF is not handed out any more (explore9 F2), but for an admin.
    r = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "certificate_revoked"), r.text
    # One format for every moment, `Z` (explore60 F8: `+00:00` in details beside `Z` in the certificate itself).
    assert r.json()["details"]["revoked_at"] == mine["revoked_at"], (r.text, mine)
    r = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=admin["headers"])
    assert r.status_code in (200, 404), r.text  # the PDF, or still being rendered
    # One moment for each change: the history's and the enrollment's agree (explore68 F11: 3-6 ms apart).
    detail = (await api.client.get(f"/enrollments/{eid}", headers=admin["headers"])).json()
    entries = (await api.client.get(f"/enrollments/{eid}/history", headers=admin["headers"])).json()
    times = {(h["from_status"], h["to_status"]): h["at"] for h in entries}
    assert times[("pending", "active")] == detail["activated_at"], (entries, detail)
    assert times[("active", "completed")] == detail["completed_at"], (entries, detail)
    assert times[("completed", "completed")] == detail["completion_revoked_at"], (entries, detail)
    feed = (await api.client.get("/notifications", headers=student["headers"])).json()
    told = [n for n in feed if n["kind"] == "certificate.revoked"]
    assert len(told) == 1 and "Issued by mistake" in told[0]["body"], feed
    # A forged code is told apart from a revoked one.
    assert (await api.client.get("/certificates/verify/SC-AAAA-BBBB-CCCC-DDDD")).json()["status"] == "unknown"
    # explore9 F3: a code mistyped into a browser gets the page, not JSON; `q=0` means "not HTML".
    mistyped = await api.client.get("/certificates/verify/SC-AAAA-BBBB-CCCC-DDD9", headers={"Accept": "text/html"})
    assert mistyped.status_code == 422 and "Not a SmartCourse certificate" in mistyped.text
    assert mistyped.headers["vary"] == "Accept"
    no_html = await api.client.get(check, headers={"Accept": "text/html;q=0, application/json"})
    assert no_html.headers["content-type"].startswith("application/json") and no_html.headers["vary"] == "Accept"
    # Not for search engines, page or JSON (explore67 F10: a posted link put the student's name in search results).
    malformed = await api.client.get("/certificates/verify/SC-AAAA-BBBB-CCCC-DDD9")  # JSON 422 (explore69 F11)
    assert malformed.status_code == 422, malformed.text
    for answer in (page, mistyped, no_html, malformed):
        assert answer.headers["x-robots-tag"] == "noindex, nofollow", answer.headers
    assert '<meta name="robots" content="noindex, nofollow">' in page.text

    # The course's certificates, for its instructor and admins (explore28: an admin had no list to find one in);
    # why one was revoked only for admins, as the public check never says.
    listed = f"/courses/{course['id']}/certificates"
    for who, reason in ((admin, "Issued by mistake"), (teacher, None)):
        r = await api.client.get(listed, headers=who["headers"])
        assert r.status_code == 200 and r.headers["x-total-count"] == "1", r.text
        [item] = r.json()
        assert (item["id"], item["code"], item["revoked_reason"]) == (cert["id"], cert["code"], reason), item
        assert item["revoked_at"] == public["revoked_at"]
    assert (await api.client.get(listed, params={"revoked": "true"}, headers=teacher["headers"])).json() != []
    assert (await api.client.get(listed, params={"revoked": "false"}, headers=teacher["headers"])).json() == []
    # A filter it does not have is refused, not answered with every certificate (explore68 F5).
    r = await api.client.get(listed, params={"issued_after": "2030-01-01"}, headers=admin["headers"])
    assert (r.status_code, r.json()["details"][0]["field"]) == (422, "query.issued_after"), r.text
    r = await api.client.get(listed, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_course_owner"), r.text


async def test_a_course_with_the_longest_title_enrolls_certifies_removes_and_archives(
    api: Api, worker: object, container: Any
) -> None:
    """explore9: a notification's title is built around the course's (up to 200 characters) and its column held 200,
    so past 167-189 characters the welcome (every enrollment stuck `pending`), the certificate, its revocation, an
    admin's removal and an archive with a waitlist all failed with 422 invalid_input; a drop's 500-character reason
    did too (migration 0018)."""
    teacher, first, second = await api.user("instructor"), await api.user(), await api.user()
    third, fourth = await api.user(), await api.user()
    admin = await api.admin(container)
    title = "Photosynthesis " + "x" * (200 - len("Photosynthesis "))
    course, lessons = await course_with_lessons(api, teacher, title=title, capacity=2, waitlist_enabled=True)
    assert len(course["title"]) == 200
    eid = (await enroll(api, first, course["id"])).json()["id"]
    await wait_enrollment(api, first, eid, "active")
    await complete_everything(api, first, lessons)
    cert = await api.client.post(f"/enrollments/{eid}/certificate", headers=first["headers"])
    assert cert.status_code in (200, 201), cert.text
    other = (await enroll(api, second, course["id"])).json()["id"]
    await wait_enrollment(api, second, other, "active")
    assert (await enroll(api, third, course["id"])).status_code == 202  # waitlisted: the course holds 2
    r = await api.client.delete(f"/enrollments/{other}", params={"reason": "r" * 500}, headers=admin["headers"])
    assert r.status_code == 200, r.text  # the third is promoted; the fourth waits
    assert (await enroll(api, fourth, course["id"])).status_code == 202
    r = await api.client.delete(f"/courses/{course['id']}", headers=teacher["headers"])
    assert r.status_code == 200 and r.json()["status"] == "archived", r.text
    # The check links the course only while it is live (explore62 F7: the link answered 404 once archived).
    public = (await api.client.get(f"/certificates/verify/{cert.json()['code']}")).json()
    assert public["valid"] and public["course_id"] == course["id"] and "course_url" not in public, public
    # Revoked last: its completion gives its seat back (which an archived course gives nobody).
    revoke = f"/certificates/{cert.json()['id']}/revoke"
    r = await api.client.post(revoke, json={"reason": "x"}, headers=admin["headers"])
    assert r.status_code == 200, r.text
    kinds: set[str] = set()
    for who in (first, second, fourth):
        kinds |= {n["kind"] for n in (await api.client.get("/notifications", headers=who["headers"])).json()}
    assert {"enrollment.welcome", "certificate.revoked", "enrollment.removed", "waitlist.released"} <= kinds, kinds


async def test_a_student_withdraws_their_certificate_from_the_public_check(
    api: Api, worker: object, container: Any
) -> None:
    """explore67 F6: revoking was the only way to take a certificate out of the public check, and the check then
    showed the student's name under "Revoked certificate". The holder withdraws it: the check says `withdrawn` and
    nothing else, the PDF is gone, the completion stands."""
    teacher, student = await api.user("instructor"), await api.user()
    course, eid, cert = await _certified(api, teacher, student)
    url = f"/certificates/{cert['id']}/withdraw"
    r = await api.client.post(url, headers=teacher["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_certificate_student"), r.text
    r = await api.client.post(url, headers=(await api.user())["headers"])
    assert (r.status_code, r.json()["code"]) == (404, "certificate_not_found"), r.text
    r = await api.client.post(url, headers=student["headers"])
    assert r.status_code == 200 and r.json()["withdrawn_at"], r.text
    again = await api.client.post(url, headers=student["headers"])
    assert again.json()["withdrawn_at"] == r.json()["withdrawn_at"]  # idempotent
    check = await api.client.get(f"/certificates/verify/{cert['code']}")
    assert check.json() == {"valid": False, "status": "withdrawn"}, check.text
    r = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "certificate_withdrawn"), r.text
    assert (await api.client.get(f"/enrollments/{eid}", headers=student["headers"])).json()["status"] == "completed"
    listed = f"/courses/{course['id']}/certificates"
    in_force = await api.client.get(listed, params={"revoked": "false"}, headers=teacher["headers"])
    assert in_force.json() == [], in_force.text  # not in force (explore69 F10: listed as valid)


async def test_a_certificate_is_reissued_under_the_corrected_name(api: Api, worker: object, container: Any) -> None:
    """explore67 F6: a misspelt name, corrected on the account, stayed on the certificate (withdrawing it was the only
    way out). Re-issued: same code, the check and the PDF carry the corrected name and say when."""
    import io

    import pypdf

    teacher, student, admin = await api.user("instructor"), await api.user(), await api.admin(container)
    _, _, cert = await _certified(api, teacher, student)
    url = f"/certificates/{cert['id']}/reissue"
    r = await api.client.post(url, headers=student["headers"])  # nothing to correct: answered as it is
    assert r.status_code == 200 and r.json()["reissued_at"] is None and r.json()["code"] == cert["code"], r.text
    r = await api.client.put(f"/users/{student['id']}", json={"full_name": "Zoë Quintana"}, headers=student["headers"])
    assert r.status_code == 200, r.text
    r = await api.client.post(url, headers=teacher["headers"])
    assert (r.status_code, r.json()["code"]) == (403, "not_certificate_student"), r.text
    r = await api.client.post(url, headers=(await api.user())["headers"])
    assert (r.status_code, r.json()["code"]) == (404, "certificate_not_found"), r.text
    listed = f"/courses/{cert['course_id']}/certificates"
    r = await api.client.get(listed, headers=teacher["headers"])
    assert [c["id"] for c in r.json()] == [cert["id"]], r.text
    since = r.json()[0]["issued_at"]
    last_run = {"updated_since": datetime.now(UTC).isoformat()}
    assert (await api.client.get(listed, params=last_run, headers=teacher["headers"])).json() == []
    r = await api.client.post(url, headers=student["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["student_name"], body["code"], body["pdf_ready"]) == ("Zoë Quintana", cert["code"], True), body
    assert body["reissued_at"]
    # A registrar's sync asks what changed since its last run (explore68 F4): the re-issue is a change.
    r = await api.client.get(listed, params=last_run, headers=teacher["headers"])
    assert [c["id"] for c in r.json()] == [cert["id"]], r.text
    r = await api.client.get(listed, params={"updated_since": since}, headers=teacher["headers"])
    assert [c["id"] for c in r.json()] == [cert["id"]], r.text
    r = await api.client.get(listed, params={"updated_since": "tomorrow"}, headers=teacher["headers"])
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    check = (await api.client.get(f"/certificates/verify/{cert['code']}")).json()
    assert check["valid"] and check["student_name"] == "Zoë Quintana" and check["reissued_at"], check
    page = await api.client.get(f"/certificates/verify/{cert['code']}", headers={"Accept": "text/html"})
    assert "Zoë Quintana" in page.text and "Re-issued under the holder's corrected name" in page.text, page.text
    pdf = await api.client.get(f"/certificates/{cert['id']}/pdf", headers=student["headers"])
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Quintana" in text and "Zo" in text, text
    # An admin re-issues for the student, recorded in the account's changes; a withdrawn one is not re-issued.
    r = await api.client.put(
        f"/users/{student['id']}", json={"full_name": "Zoë Quintana-Ruiz"}, headers=admin["headers"]
    )
    assert r.status_code == 200, r.text
    r = await api.client.post(url, headers=admin["headers"])
    assert r.status_code == 200 and r.json()["student_name"] == "Zoë Quintana-Ruiz", r.text
    changes = (await api.client.get(f"/users/{student['id']}/changes", headers=admin["headers"])).json()
    assert any(c["change"].get("certificate_reissued") == cert["code"] for c in changes["items"]), changes
    assert (
        await api.client.post(f"/certificates/{cert['id']}/withdraw", headers=student["headers"])
    ).status_code == 200
    r = await api.client.post(url, headers=student["headers"])
    assert (r.status_code, r.json()["code"]) == (409, "certificate_withdrawn"), r.text
