"""Publish time of a generated N-page course, and the pipeline's embedding throughput beside the raw model.

Brings up the embedded engines in a fresh temporary data dir, runs the Temporal worker in this process (as
`smartcourse worker` does), creates an instructor and a course whose material is an N-page PDF (default 500
pages of ~250 words), publishes it through the HTTP API and times every step from `GET /workflows/{id}`.
In the same run it measures the raw ONNX model on the same chunk texts (session.run in a loop, same batch
size), so the ratio pipeline/raw is fair on a noisy machine.

    .venv/bin/python bench/publish.py [--pages 500] [--raw-sample 256]

Goals (issue "Publishing makes content searchable"): publish ≤ 2 min for 500 pages on 2 cores; embedding
through the pipeline at least 0.8 times the raw model.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "energy cell membrane protein enzyme glucose oxygen carbon plant light water molecule reaction gene "
    "chromosome division nucleus structure function system transport signal receptor pathway balance "
    "temperature pressure volume density force motion wave frequency current voltage resistance circuit "
    "market price demand supply cost revenue profit capital labour policy growth inflation interest rate"
).split()


def textbook_pdf(pages: int, words_per_page: int = 250, seed: int = 7) -> bytes:
    """An N-page text PDF (reportlab canvas: fast enough for 500 pages)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(seed)
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for page in range(1, pages + 1):
        c.setFont("Helvetica-Bold", 14)
        c.drawString(50, 800, f"Chapter {page // 20 + 1}, section {page}")
        c.setFont("Helvetica", 9)
        words = [rng.choice(WORDS) for _ in range(words_per_page)]
        y = 780
        for start in range(0, len(words), 14):
            c.drawString(50, y, " ".join(words[start : start + 14]).capitalize() + ".")
            y -= 12
        c.showPage()
    c.save()
    return buf.getvalue()


async def run(pages: int, raw_sample: int) -> None:
    import httpx

    data_dir = Path(tempfile.mkdtemp(prefix="smartcourse-bench-publish-"))
    os.environ.update(SMARTCOURSE_DATA_DIR=str(data_dir), SMARTCOURSE_ENV="test")
    for var in ("DATABASE_URL", "TEMPORAL_ADDRESS", "MONGODB_URL", "S3_BUCKET", "KAFKA_BOOTSTRAP_SERVERS", "INDEX_URI"):
        os.environ.pop(var, None)
    from smartcourse import config
    from smartcourse.bootstrap import build_container, embedded_engines, set_container

    config.get_settings.cache_clear()
    eng = embedded_engines(config.get_settings())
    os.environ["DATABASE_URL"] = eng.postgres_url()
    os.environ["TEMPORAL_ADDRESS"] = eng.temporal_address()
    os.environ["TEMPORAL_TASK_QUEUE"] = f"bench-{uuid.uuid4().hex[:8]}"
    config.get_settings.cache_clear()
    settings = config.get_settings()
    from smartcourse.migrations import upgrade_head

    await asyncio.to_thread(upgrade_head, settings.database_url or "")
    container = build_container(settings)
    set_container(container)
    from smartcourse.api.local import build_local_app
    from smartcourse.services import accounts
    from workflows.worker import build_worker

    print(f"generating a {pages}-page PDF ...", flush=True)
    t = time.perf_counter()
    pdf = textbook_pdf(pages)
    print(f"  {len(pdf) / 1e6:.1f} MB in {time.perf_counter() - t:.1f}s", flush=True)

    worker = build_worker(await container.temporal(), container)
    app = build_local_app()
    async with worker, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        email, password = f"bench-{uuid.uuid4().hex[:6]}@example.com", "bench-password-1"
        async with container.uow() as uow:
            await accounts.create_admin(uow=uow, email=email, password=password, full_name="Bench")
        token = (await client.post("/auth/login", json={"email": email, "password": password})).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        course = (
            await client.post(
                "/courses", json={"title": "Bench textbook", "description": "x", "category": "bench"}, headers=h
            )
        ).json()
        module = (await client.post(f"/courses/{course['id']}/modules", json={"title": "All"}, headers=h)).json()
        await client.post(
            f"/courses/{course['id']}/modules/{module['id']}/lessons",
            json={"title": "Read the book", "type": "text", "content": "Read the attached textbook."},
            headers=h,
        )
        r = await client.post(
            f"/courses/{course['id']}/materials", files={"file": ("book.pdf", pdf, "application/pdf")}, headers=h
        )
        assert r.status_code == 201, r.text

        started = time.perf_counter()
        r = await client.post(f"/courses/{course['id']}/publish", headers=h)
        assert r.status_code == 202, r.text
        wf_id = r.json()["workflow_id"]
        seen: dict[str, float] = {}
        ended: dict[str, float] = {}
        last_progress = ""
        while True:
            body = (await client.get(f"/workflows/{wf_id}", headers=h)).json()
            now = time.perf_counter() - started
            for s in body["steps"]:
                if s["status"] == "running" and s["name"] not in seen:
                    seen[s["name"]] = now
                if s["status"] in ("completed", "failed") and s["name"] not in ended:
                    ended[s["name"]] = now
                    seen.setdefault(s["name"], now)
                if s["status"] == "running" and s.get("progress"):
                    p = f"{s['name']}: {s['progress']['done']}/{s['progress']['total']}"
                    if p != last_progress:
                        print(f"  [{now:6.1f}s] {p}", flush=True)
                        last_progress = p
            if body["status"] not in ("running", "not_started"):
                break
            await asyncio.sleep(0.5)
        total = time.perf_counter() - started
        print(f"\nworkflow {body['status']} in {total:.1f}s")
        details = {s["name"]: s.get("detail") or {} for s in body["steps"]}
        for s in body["steps"]:
            took = ended.get(s["name"], total) - seen.get(s["name"], total)
            print(f"  {s['name']:<9} {s['status']:<10} ~{took:6.1f}s  {s.get('detail') or ''}"[:160])
        chunks = int(details.get("chunk", {}).get("chunks", 0))
        embed_s = ended.get("embed", total) - seen.get("embed", total)

        # The raw model on the same texts, same batch size, in the same run.
        from smartcourse.adapters.embedders import local_embedder
        from smartcourse.content.chunk import embedding_text
        from smartcourse.services.content_index import load_chunks

        async with container.uow() as uow:
            sample = (await load_chunks(uow, uuid.UUID(course["id"]), 1))[:raw_sample]
        texts = [embedding_text(c) for c in sample]
        raw = local_embedder(container.settings.embeddings_batch_size)
        runtime = raw.runtime()
        runtime.embed(texts[:8])  # warm
        t = time.perf_counter()
        bs = container.settings.embeddings_batch_size
        for i in range(0, len(texts), bs):
            runtime.embed(texts[i : i + bs])
        raw_rate = len(texts) / (time.perf_counter() - t)
        pipe_rate = chunks / embed_s if embed_s > 0 else float("nan")
        print(
            f"\npages={pages} chunks={chunks} publish_total={total:.1f}s (goal ≤ 120s)\n"
            f"embedding: pipeline {pipe_rate:.1f} chunks/s (embed step, incl. cache writes and heartbeats) | "
            f"raw model {raw_rate:.1f} passages/s on {len(texts)} of the same texts | "
            f"ratio {pipe_rate / raw_rate:.2f} (goal ≥ 0.8)"
        )
    set_container(None)
    await container.aclose()
    eng.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--raw-sample", type=int, default=256)
    args = parser.parse_args()
    from smartcourse import aio

    aio.run(run(args.pages, args.raw_sample))  # the loop `smartcourse worker` runs on (uvloop)
    sys.stdout.flush()
    os._exit(0)  # temporalio can abort the interpreter at exit (sdk-python#300)


if __name__ == "__main__":
    main()
