"""Catalogue reads at 64 clients (issue #7, P7): `GET /courses?page=` and `GET /courses/{id}` of SmartCourse beside a
bare endpoint returning the same JSON from memory, measured in the same run (measures, asserts nothing).

    .venv/bin/python bench/catalog.py [--stack] [--clients 64] [--seconds 10] [--rounds 2] [--courses 60]
                                      [--workers N] [--json FILE]

What runs:

* engines: the embedded PostgreSQL and Redis in a fresh temporary data dir (reads need nothing else), or with
  `--stack` the engines of `scripts/stack` (skipped with the reason unless `scripts/stack status` is healthy): a
  database of this run's own there (dropped at the end), its Mongo database for the documents when the stack
  has MongoDB, and a Redis database index of its own for the cache;
* the product's API as `smartcourse run` serves it: `python -m smartcourse.cli serve --workers N` (N = the API
  processes `smartcourse run` starts: one per usable core unless SMARTCOURSE_API_WORKERS says otherwise);
* the baseline: this file's `baseline` app under uvicorn with the same N workers, answering `GET /courses` and
  `GET /courses/{id}` with the very bytes SmartCourse answered (fetched once, compared byte for byte), from memory:
  no database, no cache, no authentication. It is the floor of an HTTP read on this machine, in Python.

Setup: `--courses` courses of one instructor (3 modules x 4 text lessons each) written through the services, then
made live directly in the database (their version snapshot as publishing writes it, status published): the bench
measures reads, not publishing. A warm-up pass reads every URL first (so the figures are of a warm cache, the
launch-day steady state; the first read after a publish computes once per API process).

Load: for each read and each client count C, C closed-loop clients (one keep-alive HTTP/1.1 connection each, read
and written directly as wrk does: see `drive`) for `--seconds`, against SmartCourse and then the baseline, repeated
`--rounds` times (alternating, so a busy machine hurts both alike); the reads are spread over every page and every
course. CPU per read is read from /proc for the server's process tree and for PostgreSQL and Redis. The rows: anonymous
`GET /courses?page=` (pages of 20), anonymous `GET /courses/{id}`, and `GET /courses/{id}` with the token of a
student who is not enrolled (one indexed query for the enrollment check; the outline is public, so no account
lookup). Figures go to stdout as Markdown, progress to stderr, `--json FILE` saves them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import _tree  # noqa: F401  (before any smartcourse import: this tree's code, here and in every child)
import httpx
from fastapi import FastAPI, Response

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LOCALHOST = "127.0.0.1"
PAGE_SIZE = 20
#: The Redis database index of a --stack run's cache (the stack's default index is shared with everything else).
STACK_REDIS_DB = 12

# --- the baseline: the same JSON from memory ------------------------------------------------------------------

baseline = FastAPI(title="catalogue baseline")
_bodies: dict[str, Any] = {}


def _load_bodies() -> dict[str, Any]:
    if not _bodies:
        _bodies.update(json.loads(Path(os.environ["CATALOG_BASELINE_BODIES"]).read_text()))
    return _bodies


@baseline.get("/health")
async def _health() -> dict[str, str]:
    return {"status": "ok"}


@baseline.get("/courses")
async def _page(page: int = 1) -> Response:
    body = _load_bodies()["pages"].get(str(page))
    if body is None:
        return Response(status_code=404)
    return Response(content=body.encode(), media_type="application/json")


@baseline.get("/courses/{course_id}")
async def _course(course_id: str) -> Response:
    body = _load_bodies()["courses"].get(course_id)
    if body is None:
        return Response(status_code=404)
    return Response(content=body.encode(), media_type="application/json")


# --- figures --------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    target: str
    read: str
    clients: int
    seconds: float
    requests: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    #: CPU of the answering server's process tree, and of the database and Redis, per answered read (ms)
    cpu_ms: float = float("nan")
    engines_cpu_ms: float = float("nan")
    statuses: dict[str, int] = field(default_factory=dict)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return (ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)) * 1000


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 answer (Content-Length or chunked body) from a keep-alive connection; its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        await reader.readexactly(size + 2)
        if size == 0:
            return status


async def drive(
    base_url: str, paths: list[str], clients: int, seconds: float, headers: dict[str, str]
) -> tuple[list[float], Counter[str], float]:
    """`clients` closed-loop clients reading `paths` round robin for `seconds`: latencies, statuses, elapsed.

    Each client is one keep-alive HTTP/1.1 connection written to and read from directly, as wrk does: httpx as the
    load generator was the bottleneck (on this machine: 764 answers/s against the bare baseline at 8 clients where
    this client gets 5,141/s; 471/s against 6,730/s at 64), so the figures would have measured the client."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or LOCALHOST, parts.port or 80
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    stop_at = time.perf_counter() + seconds

    async def client(i: int) -> None:
        n = i
        while time.perf_counter() < stop_at:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                statuses[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
                continue
            try:
                while time.perf_counter() < stop_at:
                    request = requests[n % len(requests)]
                    n += clients
                    t0 = time.perf_counter()
                    writer.write(request)
                    await writer.drain()
                    status = await _read_answer(reader)
                    statuses[str(status)] += 1
                    if status == 200:
                        latencies.append(time.perf_counter() - t0)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                statuses[type(exc).__name__] += 1
            finally:
                writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, statuses, time.perf_counter() - t0


# --- setup ----------------------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


async def seed(courses: int) -> tuple[list[str], str]:
    """`courses` live courses of one instructor, and the access token of a student enrolled in none of them."""
    from sqlalchemy import update

    from smartcourse.bootstrap import build_container
    from smartcourse.config import get_settings
    from smartcourse.models import Course, User, utcnow
    from smartcourse.schemas import CourseIn, LessonIn, ModuleIn
    from smartcourse.security import Principal, issue_access_token
    from smartcourse.services import courses as authoring
    from smartcourse.services import publishing

    get_settings.cache_clear()
    settings = get_settings()
    c = build_container(settings)
    try:
        teacher, student = uuid.uuid4(), uuid.uuid4()
        async with c.uow() as uow:
            for uid, role in ((teacher, "instructor"), (student, "student")):
                email = f"bench-{role}-{uid.hex[:8]}@example.com"
                uow.session.add(User(id=uid, email=email, password_hash="-", full_name=f"Bench {role}", role=role))
            await uow.commit()
        principal = Principal(user_id=teacher, role="instructor")
        ids: list[str] = []
        levels = ("beginner", "intermediate", "advanced")
        for i in range(courses):
            data = CourseIn(
                title=f"Course {i:03d}: event-driven systems, part {i}",
                description="Outbox, Kafka, Temporal and the rest. " * 4,
                category=("engineering", "data", "design", "business")[i % 4],
                tags=["kafka", "temporal", f"t{i % 7}"],
                level=levels[i % 3],  # type: ignore[arg-type]
            )
            async with c.uow() as uow:
                course = await authoring.create_course(uow=uow, principal=principal, data=data)
            for m in range(3):
                async with c.uow() as uow:
                    module = await authoring.add_module(
                        uow=uow, principal=principal, course_id=course.id, data=ModuleIn(title=f"Module {m + 1}")
                    )
                for n in range(4):
                    lesson = LessonIn(title=f"Lesson {m + 1}.{n + 1}", type="text", content="# Why\n" + "Text. " * 200)
                    async with c.uow() as uow:
                        await authoring.add_lesson(
                            uow=uow,
                            documents=c.documents,
                            principal=principal,
                            course_id=course.id,
                            module_id=module.id,
                            data=lesson,
                        )
            async with c.uow() as uow:
                await publishing.snapshot_version(uow=uow, documents=c.documents, course_id=course.id, version=1)
                await uow.commit()
            async with c.uow() as uow:
                now = utcnow()
                await uow.session.execute(
                    update(Course)
                    .where(Course.id == course.id)
                    .values(status="published", content_version=1, published_at=now, updated_at=now)
                )
                await uow.commit()
            ids.append(str(course.id))
        await c.invalidate_course_cache(None)  # a generation no earlier run has filled
        return ids, issue_access_token(settings, user_id=student, role="student")
    finally:
        await c.aclose()


@dataclass
class Setting:
    name: str
    env: dict[str, str]
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    figures: list[Figures] = field(default_factory=list)
    engine_pids: dict[str, list[int]] = field(default_factory=dict)
    same_json: bool = False
    skipped: str | None = None


def embedded_setting(data_dir: Path) -> Setting:
    from smartcourse.engines import EmbeddedEngines

    eng = EmbeddedEngines(data_dir)
    try:
        env = {"DATABASE_URL": eng.postgres_url(), "REDIS_URL": eng.redis_url()}
    except BaseException:
        eng.stop()
        raise
    from enrollment import pid_from_file

    pids = {
        "postgres": [pid_from_file(data_dir / "postgres" / "postmaster.pid")],
        "redis": [pid_from_file(data_dir / "redis" / "redis.pid")],
    }
    roots = {k: [p for p in v if p] for k, v in pids.items()}
    return Setting("embedded", env, [eng.stop], engine_pids=roots)


def stack_setting(run_id: str) -> Setting:
    from enrollment import stack_engines  # bench/enrollment.py: the stack's engines with a database of this run

    engines = stack_engines(run_id)
    env = dict(engines.env)
    if env.get("REDIS_URL"):
        env["REDIS_URL"] = with_redis_db(env["REDIS_URL"], STACK_REDIS_DB)
    roots = {k: v for k, v in engines.cpu_roots.items() if k in ("postgres", "redis", "mongo (ferretdb)")}
    return Setting("stack", env, list(engines.cleanup), engine_pids=roots)


def api_workers() -> int:
    try:
        from smartcourse.cli import api_workers as product_workers

        return int(product_workers())
    except ImportError:
        return max(1, len(os.sched_getaffinity(0)))


def wait_http(url: str, timeout: float, what: str, children: Any) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        children.ensure_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f}s (logs: {children.log_dir})")
        time.sleep(0.2)


async def fetch_bodies(api: str, ids: list[str], pages: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api, timeout=60) as http:
        out: dict[str, Any] = {"pages": {}, "courses": {}}
        for p in range(1, pages + 1):
            r = await http.get("/courses", params={"page": p, "page_size": PAGE_SIZE})
            r.raise_for_status()
            out["pages"][str(p)] = r.text
        for cid in ids:
            r = await http.get(f"/courses/{cid}")
            r.raise_for_status()
            out["courses"][cid] = r.text
        return out


async def same_answers(api: str, base: str, paths: list[str]) -> bool:
    async with httpx.AsyncClient(timeout=60) as http:
        for path in paths:
            a, b = await http.get(api + path), await http.get(base + path)
            if a.status_code != 200 or a.content != b.content:
                say(f"different answers for {path}: {a.status_code} / {b.status_code}")
                return False
    return True


async def measure(
    setting: Setting, args: argparse.Namespace, servers: dict[str, tuple[str, int]], ids: list[str], token: str
) -> None:
    from enrollment import tree_cpu  # bench/enrollment.py: CPU seconds of process trees, from /proc

    api, base = servers["SmartCourse"][0], servers["baseline"][0]
    roots = {name: [pid] for name, (_, pid) in servers.items()}
    roots["engines"] = [pid for pids in setting.engine_pids.values() for pid in pids]
    pages = (len(ids) + PAGE_SIZE - 1) // PAGE_SIZE
    list_paths = [f"/courses?page={p}&page_size={PAGE_SIZE}" for p in range(1, pages + 1)]
    course_paths = [f"/courses/{cid}" for cid in ids]
    setting.same_json = await same_answers(api, base, list_paths + course_paths)
    reads: list[tuple[str, list[str], dict[str, str]]] = [
        ("GET /courses?page=", list_paths, {}),
        ("GET /courses/{id}", course_paths, {}),
        ("GET /courses/{id} (student token)", course_paths, {"Authorization": f"Bearer {token}"}),
    ]
    for read, paths, headers in reads:
        for url in (api, base):
            await drive(url, paths, 8, 1.0, headers)  # warm every process's connections and caches
        for clients in args.clients:
            runs: dict[str, tuple[list[float], Counter[str], float, float, float]] = {
                "SmartCourse": ([], Counter(), 0.0, 0.0, 0.0),
                "baseline": ([], Counter(), 0.0, 0.0, 0.0),
            }
            for _ in range(args.rounds):
                for target, url in (("SmartCourse", api), ("baseline", base)):
                    before = tree_cpu(roots)
                    lat, st, elapsed = await drive(url, paths, clients, args.seconds, headers)
                    after = tree_cpu(roots)
                    own, engines = after[target] - before[target], after["engines"] - before["engines"]
                    acc = runs[target]
                    runs[target] = (acc[0] + lat, acc[1] + st, acc[2] + elapsed, acc[3] + own, acc[4] + engines)
            for target, (lat, st, elapsed, own, engines) in runs.items():
                fig = Figures(
                    target=target,
                    read=read,
                    clients=clients,
                    seconds=round(elapsed, 1),
                    requests=sum(st.values()),
                    per_second=round(len(lat) / elapsed, 1) if elapsed else 0.0,
                    p50_ms=round(_pct(lat, 50), 1),
                    p95_ms=round(_pct(lat, 95), 1),
                    p99_ms=round(_pct(lat, 99), 1),
                    cpu_ms=round(1000 * own / len(lat), 2) if lat else float("nan"),
                    engines_cpu_ms=round(1000 * engines / len(lat), 2) if lat else float("nan"),
                    statuses=dict(st),
                )
                setting.figures.append(fig)
                say(f"{setting.name}: {asdict(fig)}")


def run_setting(setting: Setting, args: argparse.Namespace, data_dir: Path) -> None:
    from enrollment import Children  # bench/enrollment.py: children in their own sessions, stopped in order

    from smartcourse.engines import free_port
    from smartcourse.migrations import upgrade_head

    children = Children(data_dir / "logs")
    saved = dict(os.environ)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MONGODB_URL")}
        env.update(setting.env)
        env.update({"SMARTCOURSE_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
        os.environ.clear()
        os.environ.update(env)
        upgrade_head(env["DATABASE_URL"])
        t0 = time.monotonic()
        ids, token = asyncio.run(seed(args.courses))
        setting.facts["seeded_s"] = round(time.monotonic() - t0, 1)
        say(f"{setting.name}: {len(ids)} live courses in {setting.facts['seeded_s']} s")
        workers = args.workers or api_workers()
        setting.facts["workers"] = workers
        api_port, base_port = free_port(), free_port()
        exe = [sys.executable, "-m", "smartcourse.cli"]
        serve = [*exe, "serve", "--host", LOCALHOST, "--port", str(api_port), "--workers", str(workers)]
        api_proc = children.start("api", serve, env, data_dir)
        api, base = f"http://{LOCALHOST}:{api_port}", f"http://{LOCALHOST}:{base_port}"
        wait_http(f"{api}/courses", 120, "the API", children)
        bodies = asyncio.run(fetch_bodies(api, ids, (len(ids) + PAGE_SIZE - 1) // PAGE_SIZE))
        bodies_file = data_dir / "baseline-bodies.json"
        bodies_file.write_text(json.dumps(bodies))
        uvicorn = [sys.executable, "-m", "uvicorn", "catalog:baseline", "--app-dir", str(BENCH_DIR)]
        uvicorn += ["--host", LOCALHOST, "--port", str(base_port), "--workers", str(workers), "--log-level", "warning"]
        base_proc = children.start("baseline", uvicorn, {**env, "CATALOG_BASELINE_BODIES": str(bodies_file)}, data_dir)
        wait_http(f"{base}/health", 60, "the baseline", children)
        servers = {"SmartCourse": (api, api_proc.pid), "baseline": (base, base_proc.pid)}
        asyncio.run(measure(setting, args, servers, ids, token))
    finally:
        children.stop()
        os.environ.clear()
        os.environ.update(saved)


# --- report ---------------------------------------------------------------------------------------------------


def render(settings: list[Setting], facts: dict[str, Any]) -> str:
    lines = [
        f"Machine: {facts['cores']} cores, load average {facts['load_before']} before / {facts['load_after']} after "
        f"(1, 5, 15 min); {facts['when']}.",
        "",
    ]
    for s in settings:
        if s.skipped:
            lines += [f"**{s.name}**: skipped: {s.skipped}", ""]
            continue
        lines += [
            f"**{s.name}** ({s.facts.get('workers')} API processes and as many baseline processes; same JSON byte "
            f"for byte: {'yes' if s.same_json else 'NO'})",
            "",
            "| read | clients | SmartCourse req/s | p50 ms | p95 ms | p99 ms | CPU ms/read (API + engines) "
            "| baseline req/s | p50 ms | p95 ms | p99 ms | CPU ms/read | p95 vs baseline | req/s vs baseline "
            "| CPU vs baseline | non-200 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| --- |",
        ]
        product = [f for f in s.figures if f.target == "SmartCourse"]
        for p in product:
            b = next(f for f in s.figures if f.target == "baseline" and f.read == p.read and f.clients == p.clients)
            bad = {k: v for f in (p, b) for k, v in f.statuses.items() if k != "200"}
            lines.append(
                f"| {p.read} | {p.clients} | {p.per_second:.0f} | {p.p50_ms:.1f} | {p.p95_ms:.1f} | {p.p99_ms:.1f} "
                f"| {p.cpu_ms:.2f} + {p.engines_cpu_ms:.2f} "
                f"| {b.per_second:.0f} | {b.p50_ms:.1f} | {b.p95_ms:.1f} | {b.p99_ms:.1f} | {b.cpu_ms:.2f} "
                f"| {p.p95_ms / b.p95_ms:.2f}x | {p.per_second / b.per_second:.2f}x "
                f"| {(p.cpu_ms + p.engines_cpu_ms) / b.cpu_ms:.2f}x | {bad or 'none'} |"
            )
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack", action="store_true", help="also run on the engines of scripts/stack")
    ap.add_argument("--clients", default="64", help="comma-separated client counts (default 64)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating SmartCourse/baseline rounds (default 2)")
    ap.add_argument("--courses", type=int, default=60, help="live courses (default 60, as in the issue)")
    ap.add_argument("--workers", type=int, default=0, help="API and baseline processes (default: as smartcourse run)")
    ap.add_argument("--json", help="also save the figures as JSON to this file")
    args = ap.parse_args(argv)
    args.clients = [int(c) for c in str(args.clients).split(",") if c.strip()]
    return args


def _terminate(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM and SIGINT (also in a background job, where SIGINT starts ignored) stop the run and clean up.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    facts = {
        "cores": len(os.sched_getaffinity(0)),
        "load_before": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    run_id = uuid.uuid4().hex[:8]
    settings: list[Setting] = []
    with tempfile.TemporaryDirectory(prefix="smartcourse-catalog-bench-") as tmp:
        plan: list[tuple[str, Callable[[], Setting]]] = [("embedded", lambda: embedded_setting(Path(tmp) / "embedded"))]
        if args.stack:
            plan.append(("stack", lambda: stack_setting(run_id)))
        for name, make in plan:
            say(f"{name}: starting")
            try:
                setting = make()
            except Exception as exc:  # e.g. the stack is not up: say why, measure the rest
                settings.append(Setting(name, {}, skipped=str(exc).splitlines()[0] if str(exc) else repr(exc)))
                continue
            settings.append(setting)
            try:
                run_setting(setting, args, Path(tmp) / name)
            finally:
                for undo in reversed(setting.cleanup):
                    with contextlib.suppress(Exception):
                        undo()
    facts["load_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(render(settings, facts))
    if args.json:
        out = {"facts": facts, "settings": [asdict(s) | {"cleanup": None} for s in settings]}
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
