"""The baseline of `bench/enrollment.py`: a bare FastAPI + asyncpg endpoint doing one INSERT per request.

It is what an enrollment costs with nothing of SmartCourse around it: no authentication, no checks, no
outbox, no workflow; one pooled connection, one INSERT into a table with a unique (student_id, course_id)
constraint, one JSON answer. Served by uvicorn exactly as `smartcourse serve` serves the product:

    BASELINE_DATABASE_URL=postgresql://user:pw@127.0.0.1:5432/db \\
        python -m uvicorn baseline_app:app --app-dir bench --port 8100 --log-level warning

`BASELINE_DATABASE_URL` (else `DATABASE_URL`) may be a SQLAlchemy URL (`postgresql+asyncpg://...`); the driver
suffix is dropped. The pool is as large as SmartCourse's (SQLAlchemy pool_size 10 + max_overflow 20).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

#: Same ceiling as SmartCourse's engine (smartcourse.db.make_engine: pool_size=10, max_overflow=20).
POOL_MIN, POOL_MAX = 10, 30

DDL = """
CREATE TABLE IF NOT EXISTS bench_baseline (
    id uuid PRIMARY KEY,
    student_id uuid NOT NULL,
    course_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_bench_baseline_student_course UNIQUE (student_id, course_id)
)
"""

INSERT = "INSERT INTO bench_baseline (id, student_id, course_id) VALUES ($1, $2, $3) RETURNING created_at"


def asyncpg_dsn(url: str) -> str:
    """A libpq-style DSN for asyncpg from a SQLAlchemy URL (`postgresql+asyncpg://` -> `postgresql://`)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class EnrollIn(BaseModel):
    student_id: uuid.UUID
    course_id: uuid.UUID


class EnrollOut(BaseModel):
    id: uuid.UUID
    student_id: uuid.UUID
    course_id: uuid.UUID
    created_at: datetime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("BASELINE_DATABASE_URL") or os.environ["DATABASE_URL"]
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=POOL_MIN, max_size=POOL_MAX)
    async with pool.acquire() as conn:
        await conn.execute(DDL)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(title="bench baseline", lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/enroll", status_code=201, response_model=EnrollOut)
async def enroll(body: EnrollIn) -> EnrollOut | JSONResponse:
    """Insert one row; a second enrollment of the same student in the same course is a 409."""
    new_id = uuid.uuid4()
    pool: asyncpg.Pool = app.state.pool
    try:
        created_at = await pool.fetchval(INSERT, new_id, body.student_id, body.course_id)
    except asyncpg.UniqueViolationError:
        return JSONResponse(status_code=409, content={"code": "already_enrolled"})
    return EnrollOut(id=new_id, student_id=body.student_id, course_id=body.course_id, created_at=created_at)
