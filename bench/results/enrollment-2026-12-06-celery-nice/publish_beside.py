"""Beside a running `bench/enrollment.py --keep-data` (its output file as the argument): once its steady run has
started, an instructor publishes a course with a 200-page PDF through the same API; prints each step's start."""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # bench/
from publish import textbook_pdf

PASSWORD = "a-long-password-1"


def wait_for_steady_run(log: Path) -> str:
    """The bench's API address, once its steady run has gone 15 s."""
    api = None
    while api is None:
        found = re.search(r"API (http://127\.0\.0\.1:\d+)", log.read_text()) if log.exists() else None
        api = found.group(1) if found else None
        time.sleep(1)
    while "steady:" not in log.read_text():
        time.sleep(1)
    time.sleep(15)
    return api


async def main(api: str) -> None:
    pdf = textbook_pdf(200)
    async with httpx.AsyncClient(base_url=api, timeout=60) as c:
        email = f"f3-{uuid.uuid4().hex[:8]}@example.com"
        user = {"email": email, "password": PASSWORD, "full_name": "F3", "role": "instructor"}
        print("register", (await c.post("/auth/register", json=user)).status_code, flush=True)
        token = (await c.post("/auth/login", json={"email": email, "password": PASSWORD})).json()["access_token"]
        h = {"authorization": f"Bearer {token}"}
        body = {"title": "F3 load", "description": "d", "category": "science"}
        course = (await c.post("/courses", json=body, headers=h)).json()
        module = (await c.post(f"/courses/{course['id']}/modules", json={"title": "M"}, headers=h)).json()
        lesson = {"title": "L", "type": "text", "content": "Cells and energy."}
        await c.post(f"/courses/{course['id']}/modules/{module['id']}/lessons", json=lesson, headers=h)
        files = {"file": ("book.pdf", pdf, "application/pdf")}
        print("upload", (await c.post(f"/courses/{course['id']}/materials", files=files, headers=h)).status_code)
        started = time.monotonic()
        r = await c.post(f"/courses/{course['id']}/publish", headers=h)
        workflow_id = r.json()["workflow_id"]
        print("publish", r.status_code, workflow_id, flush=True)
        last = None
        while True:
            run = (await c.get(f"/workflows/{workflow_id}", headers=h)).json()
            state = (run["status"], [(s["name"], s["status"]) for s in run["steps"] if s["status"] == "running"])
            if state != last:
                print(f"{time.monotonic() - started:6.1f}s", state, run.get("error"), flush=True)
                last = state
            if run["status"] not in ("running", "not_started", "unavailable"):
                break
            await asyncio.sleep(1)


if __name__ == "__main__":
    asyncio.run(main(wait_for_steady_run(Path(sys.argv[1]))))
