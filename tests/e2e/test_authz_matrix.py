"""Every route by every kind of caller against the decisions in tests/e2e/authz_matrix.yaml.

A route without a row fails the suite: an authorisation decision is made on purpose, not by omission.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import Api
from tests.e2e.test_enrollment import QUIZ, wait_enrollment

MATRIX = Path(__file__).with_name("authz_matrix.yaml")
ROLES = ("anonymous", "student", "enrolled", "other_instructor", "owner", "admin")
DECISIONS = {"allow", "deny", "public", "skip"}
DENIED = {401, 403, 404}


def load_matrix() -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = yaml.safe_load(MATRIX.read_text())
    for route, row in rows.items():
        who = row.get("who") or {}
        assert set(who) == set(ROLES), f"{MATRIX.name}: {route} needs exactly the callers {ROLES}"
        assert set(who.values()) <= DECISIONS, f"{MATRIX.name}: {route}: decisions are {sorted(DECISIONS)}"
    return rows


def openapi_routes(app: Any) -> set[str]:
    methods = {"get", "post", "put", "patch", "delete"}
    return {f"{m.upper()} {path}" for path, ops in app.openapi()["paths"].items() for m in ops if m in methods}


def test_every_route_has_a_decision_for_every_caller(app: Any) -> None:
    rows = load_matrix()
    routes = openapi_routes(app)
    missing = sorted(routes - set(rows))
    stale = sorted(set(rows) - routes)
    assert not missing, (
        f"routes without an authorisation decision: {missing}. Add a row per route to {MATRIX} with a decision "
        f"(allow / deny / public / skip) for each of {', '.join(ROLES)} - see the header of that file."
    )
    assert not stale, f"rows in {MATRIX} for routes that no longer exist: {stale}; remove or rename them"


@dataclass
class World:
    """One published course of `owner` and one caller of each kind; `enrolled` completed it."""

    users: dict[str, dict[str, Any]]
    params: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)


async def make_users(api: Api, container: Any) -> dict[str, dict[str, Any]]:
    """A caller of each logged-in kind (`World.users`)."""
    owner, other = await api.user("instructor"), await api.user("instructor")
    student, enrolled = await api.user(), await api.user()
    admin = await api.admin(container)
    me = (await api.client.get("/auth/me", headers=admin["headers"])).json()
    admin.update(email=me["email"], id=me["id"])
    return {"student": student, "enrolled": enrolled, "other_instructor": other, "owner": owner, "admin": admin}


async def build_world(api: Api, container: Any, users: dict[str, dict[str, Any]]) -> World:
    owner, enrolled = users["owner"], users["enrolled"]
    course = await api.course(owner, title="Matrix course")
    cid = course["id"]
    module = await api.module(owner, cid)
    text = await api.lesson(owner, cid, module["id"])
    quiz = await api.lesson(owner, cid, module["id"], **QUIZ)
    r = await api.client.post(
        f"/courses/{cid}/materials", files={"file": ("notes.txt", b"notes", "text/plain")}, headers=owner["headers"]
    )
    material = r.json()
    r = await api.client.post(f"/courses/{cid}/publish", headers=owner["headers"])
    workflow_id = r.json()["workflow_id"]
    # Many worlds are built at once, each publishing: on a loaded machine a publish took over the default 30 s.
    assert (await api.wait_workflow(owner, workflow_id, timeout=120))["status"] == "completed"
    eid = (await api.client.post("/enrollments", json={"course_id": cid}, headers=enrolled["headers"])).json()["id"]
    await wait_enrollment(api, enrolled, eid, "active")
    await api.client.post(f"/lessons/{text['id']}/complete", headers=enrolled["headers"])
    answers = [q["answer"] for q in QUIZ["questions"]]
    await api.client.post(f"/quizzes/{quiz['id']}/submit", json={"answers": answers}, headers=enrolled["headers"])
    cert = (await api.client.post(f"/enrollments/{eid}/certificate", headers=enrolled["headers"])).json()
    for _ in range(150):  # the PDF is rendered by the certificate's workflow: its route is checked once it exists
        shown = await api.client.get(f"/certificates/{cert['id']}", headers=enrolled["headers"])
        if shown.json().get("pdf_ready"):
            break
        await asyncio.sleep(0.2)
    assert shown.json().get("pdf_ready"), shown.text
    notification_id = ""
    for _ in range(100):
        page = (await api.client.get("/notifications", headers=enrolled["headers"])).json()
        items = page["items"] if isinstance(page, dict) else page
        if items:
            notification_id = items[0]["id"]
            break
        await asyncio.sleep(0.2)
    assert notification_id, "the enrolled student got no notification"
    params = {
        "course_id": cid,
        "module_id": module["id"],
        "lesson_id": text["id"],
        "quiz": quiz["id"],
        "material_id": material["id"],
        "enrollment_id": eid,
        "certificate_id": cert["id"],
        "code": cert["code"],
        "user_id": enrolled["id"],
        "instructor_id": owner["id"],
        "workflow_id": workflow_id,
        "notification_id": notification_id,
        "interaction_id": str(uuid.uuid4()),
        "quiz_id": str(uuid.uuid4()),
    }
    return World(users=users, params=params)


def _fill(value: Any, subst: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in subst.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [_fill(v, subst) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, subst) for k, v in value.items()}
    return value


async def call(api: Api, world: World, route: str, row: dict[str, Any], role: str) -> int:
    method, template = route.split(" ", 1)
    caller = world.users.get(role) or world.users["student"]
    subst = {**world.params, **{k: world.params[v] for k, v in (row.get("params") or {}).items()}}
    subst.update(nonce=uuid.uuid4().hex[:12], email=caller["email"], refresh_token=caller.get("refresh_token", "none"))
    path = _fill(template, subst)
    headers = {} if role == "anonymous" else dict(caller["headers"])
    body = row.get("body")
    if body is None and route in {"POST /auth/login"}:
        body = {"email": caller["email"], "password": caller.get("password", "admin-pass-123")}
    if body is None and route in {"POST /auth/refresh", "POST /auth/logout"}:
        body = {"refresh_token": "{refresh_token}"}
    kwargs: dict[str, Any] = {"headers": headers, "params": row.get("query")}
    if row.get("upload"):
        kwargs["files"] = {"file": ("matrix.txt", b"matrix", "text/plain")}
    elif body is not None:
        kwargs["json"] = _fill(body, subst)
    r = await api.client.request(method, path, **kwargs)
    return r.status_code


def verdict(decision: str, role: str, status: int) -> str | None:
    if status >= 500:
        return f"server error {status}"
    if decision == "allow" and status in DENIED:
        return f"expected allowed, got {status}"
    if decision == "deny":
        if role == "anonymous" and status != 401:
            return f"expected 401 for anonymous, got {status}"
        if status not in DENIED:
            return f"expected denied (401/403/404), got {status}"
    return None


async def test_authorization_matrix(api: Api, worker: object, container: Any, app: Any) -> None:
    rows = load_matrix()
    routes = openapi_routes(app)
    order = [route for route in sorted(rows, key=lambda r: (r.startswith("DELETE"), r)) if route in routes]

    # A `fresh` world (its own course, enrollment, certificate) per allowed call that destroys something, all built
    # at once: each mostly waits on its workflows. They share one set of callers, apart from the main world's (whose
    # tokens the matrix's own calls, e.g. logout, may revoke): password hashing is the slow part of a world.
    # `fresh: users`: a call that destroys a caller (erasing the account) gets a world with callers of its own too.
    def allowed(r: str) -> int:
        return sum(1 for d in rows[r]["who"].values() if d in {"allow", "public"})

    fresh = sum(allowed(r) for r in order if rows[r].get("fresh") is True)
    own = sum(allowed(r) for r in order if rows[r].get("fresh") == "users")
    main_users, spare_users, *own_users = await asyncio.gather(*(make_users(api, container) for _ in range(2 + own)))
    world, *spares = await asyncio.gather(
        build_world(api, container, main_users), *(build_world(api, container, spare_users) for _ in range(fresh))
    )
    alone = list(await asyncio.gather(*(build_world(api, container, users) for users in own_users)))
    failures: list[str] = []
    for route in order:
        row = rows[route]
        for role in ROLES:
            decision = row["who"][role]
            if decision == "skip":
                continue
            target = world
            if row.get("fresh") and decision in {"allow", "public"}:
                target = alone.pop() if row["fresh"] == "users" else spares.pop()
            status = await call(api, target, route, row, role)
            problem = verdict(decision, role, status)
            if problem:
                failures.append(f"{route} as {role}: {problem}")
    assert not failures, "authorisation matrix mismatches:\n  " + "\n  ".join(failures)
