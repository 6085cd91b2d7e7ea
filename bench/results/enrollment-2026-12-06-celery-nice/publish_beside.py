"""During a bench P2 run: an instructor publishes a 200-page PDF course; print the publish's timing."""
import asyncio, re, sys, time, uuid
from pathlib import Path
import httpx
sys.path.insert(0, "/work/main/bench"); sys.path.insert(0, "/work/main")
from publish import textbook_pdf

async def main() -> None:
    log = Path(sys.argv[1])
    api = None
    while api is None:
        m = re.search(r"API (http://127\.0\.0\.1:\d+)", log.read_text()) if log.exists() else None
        api = m.group(1) if m else None
        await asyncio.sleep(1)
    while "steady:" not in log.read_text():
        await asyncio.sleep(1)
    await asyncio.sleep(15)  # into the steady run
    pdf = textbook_pdf(200)
    async with httpx.AsyncClient(base_url=api, timeout=60) as c:
        email = f"f3-{uuid.uuid4().hex[:8]}@example.com"
        r = await c.post("/auth/register", json={"email": email, "password": "a-long-password-1", "full_name": "F3", "role": "instructor"})
        print("register", r.status_code, flush=True)
        r = await c.post("/auth/login", json={"email": email, "password": "a-long-password-1"})
        h = {"authorization": f"Bearer {r.json()['access_token']}"}
        course = (await c.post("/courses", json={"title": "F3 load", "description": "d", "category": "science"}, headers=h)).json()
        mod = (await c.post(f"/courses/{course['id']}/modules", json={"title": "M"}, headers=h)).json()
        await c.post(f"/courses/{course['id']}/modules/{mod['id']}/lessons", json={"title": "L", "type": "text", "content": "Cells and energy."}, headers=h)
        r = await c.post(f"/courses/{course['id']}/materials", files={"file": ("book.pdf", pdf, "application/pdf")}, headers=h)
        print("upload", r.status_code, flush=True)
        t0 = time.monotonic()
        r = await c.post(f"/courses/{course['id']}/publish", headers=h)
        wid = r.json()["workflow_id"]
        print("publish", r.status_code, wid, flush=True)
        last = None
        while True:
            w = (await c.get(f"/workflows/{wid}", headers=h)).json()
            state = (w["status"], [(s["name"], s["status"]) for s in w["steps"] if s["status"] == "running"])
            if state != last:
                print(f"{time.monotonic() - t0:6.1f}s", state, w.get("error"), flush=True)
                last = state
            if w["status"] not in ("running", "not_started", "unavailable"):
                break
            await asyncio.sleep(1)

asyncio.run(main())
