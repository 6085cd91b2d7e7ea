"""GET /recommendations computed at 10k students x 500 courses, beside a bare popular-courses SELECT (measures).

    .venv/bin/python bench/recommendations.py [--students 10000] [--courses 500] [--queries 300] [--json FILE]

Starts an embedded PostgreSQL in a temporary data dir, migrates, inserts a synthetic platform with SQL (skewed
popularity: course index = floor(N * u^2); 0-6 enrollments per student, 60 % of them completed; 20 % of the
courses with one prerequisite; 10 % with a capacity, half of those full; 20 content neighbours per course;
co-enrollment pairs and popularity derived from the enrollments as the consumer would have kept them), then
times `services.recommendations.compute_recommendations` (the uncached path, k = 10) for random students and,
in the same run, the baseline: `SELECT ... FROM course_popularity JOIN courses ORDER BY admissions DESC LIMIT 10`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SEED_SQL = [
    # one instructor, N courses, M students
    """INSERT INTO users (id, email, password_hash, full_name, role)
       VALUES ('00000000-0000-0000-0000-000000000001', 'bench-instructor@example.com', 'x', 'I', 'instructor')""",
    """INSERT INTO courses (id, instructor_id, title, description, category, tags, status, content_version,
                            index_version, index_status, capacity, waitlist_enabled, seats_taken, published_at)
       SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'Course ' || i, 'D', 'cat' || (i % 12),
              '{}', 'published', 1, 1, 'ready',
              CASE WHEN i % 10 = 0 THEN 20 END, false, CASE WHEN i % 20 = 0 THEN 20 ELSE 0 END,
              now() - (i || ' minutes')::interval
       FROM generate_series(1, :courses) AS i""",
    """CREATE TEMP TABLE bench_courses AS
       SELECT id, row_number() OVER (ORDER BY title) - 1 AS n FROM courses""",
    """INSERT INTO users (id, email, password_hash, full_name, role)
       SELECT gen_random_uuid(), 'bench-s' || i || '@example.com', 'x', 'S', 'student'
       FROM generate_series(1, :students) AS i""",
    # 0-6 enrollments per student, skewed towards the first courses
    """INSERT INTO enrollments (id, student_id, course_id, status, attempt, admitted_at, activated_at, completed_at,
                                created_at, updated_at)
       SELECT gen_random_uuid(), student_id, course_id,
              CASE WHEN random() < 0.6 THEN 'completed' ELSE 'active' END, 1, t, t, NULL, t, t
       FROM (
         SELECT DISTINCT ON (x.student_id, c.id) x.student_id, c.id AS course_id, x.t
         FROM (
           SELECT u.id AS student_id, floor(:courses * power(random(), 2))::int AS n,
                  now() - (random() * 300 || ' days')::interval AS t
           FROM users u CROSS JOIN LATERAL generate_series(1, (random() * 6)::int + 0 * length(u.email)) AS g
           WHERE u.role = 'student'
         ) x JOIN bench_courses c ON c.n = x.n
       ) x""",
    "UPDATE enrollments SET completed_at = admitted_at + interval '10 days' WHERE status = 'completed'",
    # prerequisites: 20 % of courses need an earlier (more popular) one
    """INSERT INTO course_prerequisites (course_id, prerequisite_id)
       SELECT a.id, b.id FROM bench_courses a JOIN bench_courses b ON b.n = a.n / 3
       WHERE a.n % 5 = 1 AND a.n <> b.n""",
    # 20 content neighbours per course
    """INSERT INTO course_neighbours (course_id, neighbour_id, similarity)
       SELECT DISTINCT ON (a.id, b.id) a.id, b.id, 0.2 + random() * 0.7
       FROM bench_courses a CROSS JOIN LATERAL generate_series(1, 20) g
       JOIN bench_courses b ON b.n = (a.n + g * 7 + a.n * g) % :courses
       WHERE a.id <> b.id""",
    # what the consumer keeps, derived in bulk
    """INSERT INTO course_popularity (course_id, admissions, completions)
       SELECT course_id, count(*), count(*) FILTER (WHERE status = 'completed') FROM enrollments GROUP BY course_id""",
    """INSERT INTO course_pairs (course_id, other_id, co_admitted, co_completed)
       SELECT a.course_id, b.course_id, count(*),
              count(*) FILTER (WHERE a.status = 'completed' AND b.status = 'completed')
       FROM enrollments a JOIN enrollments b ON a.student_id = b.student_id AND a.course_id <> b.course_id
       GROUP BY a.course_id, b.course_id""",
    "ANALYZE",
]

BASELINE_SQL = """SELECT c.id, c.title, p.admissions FROM course_popularity p JOIN courses c ON c.id = p.course_id
                  WHERE c.status = 'published' ORDER BY p.admissions DESC LIMIT 10"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from smartcourse import config
    from smartcourse.bootstrap import embedded_engines
    from smartcourse.db import make_engine
    from smartcourse.migrations import upgrade_head
    from smartcourse.services.recommendations import compute_recommendations

    data_dir = Path(tempfile.mkdtemp(prefix="bench-recs-"))
    os.environ["SMARTCOURSE_DATA_DIR"] = str(data_dir)
    os.environ["SMARTCOURSE_ENV"] = "test"
    os.environ.pop("DATABASE_URL", None)
    config.get_settings.cache_clear()
    eng = embedded_engines(config.get_settings())
    try:
        url = eng.postgres_url()
        await asyncio.to_thread(upgrade_head, url)
        engine = make_engine(url, pool_size=2)
        sm = async_sessionmaker(engine, expire_on_commit=False)
        t0 = time.perf_counter()
        async with sm() as s, s.begin():
            for sql in SEED_SQL:
                params = {
                    k: v for k, v in {"courses": args.courses, "students": args.students}.items() if f":{k}" in sql
                }
                await s.execute(text(sql), params)
        seed_s = time.perf_counter() - t0
        async with sm() as s:
            counts = {
                t: int(await s.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
                for t in (
                    "courses",
                    "users",
                    "enrollments",
                    "course_pairs",
                    "course_neighbours",
                    "course_prerequisites",
                )
            }
            students = [r[0] for r in (await s.execute(text("SELECT id FROM users WHERE role = 'student'"))).all()]
        rng = random.Random(7)
        sample = [rng.choice(students) for _ in range(args.queries)] + [uuid.uuid4() for _ in range(args.queries // 10)]
        rec_ms: list[float] = []
        base_ms: list[float] = []
        returned: list[int] = []
        async with sm() as s:  # warm up both paths
            for sid in sample[:5]:
                await compute_recommendations(s, student_id=sid, k=10)
                await s.execute(text(BASELINE_SQL))
        for sid in sample:
            async with sm() as s:
                t = time.perf_counter()
                res = await compute_recommendations(s, student_id=sid, k=10)
                rec_ms.append((time.perf_counter() - t) * 1000)
                returned.append(len(res.items))
            async with sm() as s:
                t = time.perf_counter()
                (await s.execute(text(BASELINE_SQL))).all()
                base_ms.append((time.perf_counter() - t) * 1000)
        await engine.dispose()
    finally:
        eng.stop()

    def summary(v: list[float]) -> dict[str, float]:
        return {"p50_ms": round(pct(v, 50), 2), "p95_ms": round(pct(v, 95), 2), "mean_ms": round(statistics.mean(v), 2)}

    return {
        "students": args.students,
        "courses": args.courses,
        "rows": counts,
        "seed_seconds": round(seed_s, 1),
        "queries": len(sample),
        "items_returned_min": min(returned),
        "recommendations": summary(rec_ms),
        "baseline_popular_select": summary(base_ms),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--students", type=int, default=10_000)
    ap.add_argument("--courses", type=int, default=500)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    report = asyncio.run(run(args))
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
