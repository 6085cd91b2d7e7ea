"""The Lambda shape of a consumer: an MSK event in, effects applied once, partial batch failures out."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from smartcourse.cli import LambdaContext
from smartcourse.entrypoints.msk import msk_handler
from smartcourse.event_consumer import Consumer
from smartcourse.models import DeadLetter
from tests.conftest import REPO

SAMPLE = REPO / "events" / "samples" / "msk_course_published.json"


async def _record_publication(session: AsyncSession, envelope: dict[str, Any]) -> None:
    if envelope["data"].get("title") == "explode":
        raise ConnectionRefusedError("downstream is down")  # transient: Lambda redelivers it
    if envelope["data"].get("title") == "yesterday":
        raise ValueError("Invalid isoformat string: 'yesterday'")  # the record's own: fails every time
    await session.execute(
        text(
            "INSERT INTO test_msk_effects (course_id, event_id, applied) VALUES (:c, :e, 1) "
            "ON CONFLICT (course_id, event_id) DO UPDATE SET applied = test_msk_effects.applied + 1"
        ),
        {"c": envelope["data"]["course_id"], "e": envelope["event_id"]},
    )


def _record(base: dict[str, Any], offset: int, value: bytes) -> dict[str, Any]:
    record = copy.deepcopy(base)
    record["offset"] = offset
    record["value"] = base64.b64encode(value).decode()
    return record


def _envelope(sample_record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(base64.b64decode(sample_record["value"]))
    envelope["event_id"] = str(uuid.uuid4())
    envelope["data"] = {**envelope["data"], **changes}
    return envelope


async def _effects(container: Any, course_id: str) -> dict[str, int]:
    async with container.sessionmaker() as session:
        rows = await session.execute(
            text("SELECT event_id, applied FROM test_msk_effects WHERE course_id = :c"), {"c": course_id}
        )
        return {str(event_id): applied for event_id, applied in rows}


async def test_msk_handler_applies_the_sample_once_and_reports_failures(container: Any) -> None:
    async with container.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "CREATE TABLE IF NOT EXISTS test_msk_effects ("
                "course_id uuid, event_id uuid, applied int NOT NULL, PRIMARY KEY (course_id, event_id))"
            )
        )
    shipped = json.loads(SAMPLE.read_text())
    (shipped_record,) = shipped["records"]["smartcourse.courses-0"]
    sample_envelope = json.loads(base64.b64decode(shipped_record["value"]))
    course_id = sample_envelope["data"]["course_id"]
    async with container.sessionmaker() as session, session.begin():  # this test owns the sample's rows
        await session.execute(text("DELETE FROM test_msk_effects WHERE course_id = :c"), {"c": course_id})

    name = f"test-msk-{uuid.uuid4().hex[:8]}"
    handler = msk_handler(Consumer(name, {"course.published": _record_publication}))
    context = LambdaContext("course-published-consumer")

    # As shipped, the sample says it is one (`data.sample`): checked, never applied (docs/analytics.md, invoke).
    assert sample_envelope["data"]["sample"] is True
    assert await asyncio.to_thread(handler, shipped, context) == {"batchItemFailures": []}
    assert await _effects(container, course_id) == {}

    # The same event as a real one (no sample marker).
    sample_envelope["data"].pop("sample")
    sample_record = _record(shipped_record, shipped_record["offset"], json.dumps(sample_envelope).encode())
    event = copy.deepcopy(shipped)
    event["records"]["smartcourse.courses-0"] = [sample_record]

    # The sample as Lambda delivers it, run through the real handler (its own event loop, as in Lambda).
    assert await asyncio.to_thread(handler, event, context) == {"batchItemFailures": []}
    assert await _effects(container, course_id) == {sample_envelope["event_id"]: 1}

    # Lambda redelivers the same batch (at-least-once): the effect is not applied again.
    assert await asyncio.to_thread(handler, event, context) == {"batchItemFailures": []}
    assert await _effects(container, course_id) == {sample_envelope["event_id"]: 1}

    # A mixed batch: poison records are dead-lettered (not retried); an effect failing for a passing cause (the
    # database away) is reported with everything after it in its partition, so order survives the retry; one that
    # fails every time is dead-lettered after its attempts and its partition goes on (explore33 F1: reported, it was
    # redelivered for ever, holding back the partition), as is a record PostgreSQL's JSONB cannot hold (F2).
    contract_breaker = _envelope(sample_record, version=0)
    failing = _envelope(sample_record, title="explode")
    after_failure = _envelope(sample_record, title="fine")
    other_partition = _envelope(sample_record, title="also fine")
    doomed = _envelope(sample_record, title="yesterday")
    after_doomed = _envelope(sample_record, title="after it")
    nul = _envelope(sample_record, version=0, title="nul \u0000 inside")
    batch = copy.deepcopy(event)
    batch["records"] = {
        "smartcourse.courses-0": [
            _record(sample_record, 16, b"definitely not an envelope"),
            _record(sample_record, 17, json.dumps(contract_breaker).encode()),
            _record(sample_record, 18, json.dumps(failing).encode()),
            _record(sample_record, 19, json.dumps(after_failure).encode()),
        ],
        "smartcourse.courses-1": [
            {**_record(sample_record, 3, json.dumps(other_partition).encode()), "partition": 1},
            {**_record(sample_record, 4, json.dumps(doomed).encode()), "partition": 1},
            {**_record(sample_record, 5, json.dumps(nul).encode()), "partition": 1},
            {**_record(sample_record, 6, json.dumps(after_doomed).encode()), "partition": 1},
        ],
    }
    result = await asyncio.to_thread(handler, batch, context)
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": {"partition": "smartcourse.courses-0", "offset": 18}},
            {"itemIdentifier": {"partition": "smartcourse.courses-0", "offset": 19}},
        ]
    }
    assert await _effects(container, course_id) == {
        sample_envelope["event_id"]: 1,
        other_partition["event_id"]: 1,
        after_doomed["event_id"]: 1,
    }
    async with container.sessionmaker() as session:
        letters = (await session.execute(select(DeadLetter).where(DeadLetter.consumer == name))).scalars().all()
    assert len(letters) == 4
    by_error = {letter.error.split(":")[1].strip(): letter for letter in letters}
    assert by_error.keys() == {
        "course.published v1 breaks its contract at data/version",
        "value is not JSON",
        "ValueError",
    }
    assert {letter.error for letter in letters if "4 times" in letter.error} == {
        "failed 4 times: ValueError: Invalid isoformat string: 'yesterday'"
    }
    [kept_nul] = [letter for letter in letters if letter.payload.get("source", {}).get("offset") == 5]
    assert json.loads(base64.b64decode(kept_nul.payload["raw_base64"]))["data"]["title"] == "nul \u0000 inside"
    assert [letter.payload for letter in letters if "4 times" in letter.error] == [doomed]
    assert by_error["value is not JSON"].payload["source"] == {
        "topic": "smartcourse.courses",
        "partition": 0,
        "offset": 16,
    }


async def _record_transaction(session: AsyncSession, envelope: dict[str, Any]) -> None:
    if envelope["data"].get("title") == "explode":
        raise ConnectionRefusedError("downstream is down")
    await session.execute(
        text("INSERT INTO test_msk_batches (event_id, txid) VALUES (:e, txid_current())"), {"e": envelope["event_id"]}
    )


async def test_a_partitions_records_are_applied_in_one_transaction_and_one_by_one_after_a_failure(
    container: Any,
) -> None:
    async with container.sessionmaker() as session, session.begin():
        await session.execute(
            text("CREATE TABLE IF NOT EXISTS test_msk_batches (event_id uuid PRIMARY KEY, txid bigint NOT NULL)")
        )
    shipped = json.loads(SAMPLE.read_text())
    (shipped_record,) = shipped["records"]["smartcourse.courses-0"]
    real = json.loads(base64.b64decode(shipped_record["value"]))
    real["data"].pop("sample")
    base = _record(shipped_record, 0, json.dumps(real).encode())
    handler = msk_handler(Consumer(f"test-msk-{uuid.uuid4().hex[:8]}", {"course.published": _record_transaction}))
    context = LambdaContext("course-published-consumer")

    async def applied(envelopes: list[dict[str, Any]]) -> dict[str, int]:
        async with container.sessionmaker() as session:
            rows = await session.execute(
                text("SELECT event_id, txid FROM test_msk_batches WHERE event_id = ANY(:ids)"),
                {"ids": [uuid.UUID(e["event_id"]) for e in envelopes]},
            )
            return {str(event_id): txid for event_id, txid in rows}

    five = [_envelope(base, title=f"lesson {i}") for i in range(5)]
    event = copy.deepcopy(shipped)
    event["records"] = {
        "smartcourse.courses-0": [_record(base, 40 + i, json.dumps(e).encode()) for i, e in enumerate(five)]
    }
    assert await asyncio.to_thread(handler, event, context) == {"batchItemFailures": []}
    txids = await applied(five)
    assert txids.keys() == {e["event_id"] for e in five}
    assert len(set(txids.values())) == 1  # one transaction for the partition's five records

    # The third of four fails: the shared transaction rolls back, the first two are then kept one by one and the
    # failing one is reported with the one after it.
    four = [_envelope(base, title="a"), _envelope(base, title="b"), _envelope(base, title="explode"), _envelope(base)]
    event["records"] = {
        "smartcourse.courses-0": [_record(base, 50 + i, json.dumps(e).encode()) for i, e in enumerate(four)]
    }
    assert await asyncio.to_thread(handler, event, context) == {
        "batchItemFailures": [
            {"itemIdentifier": {"partition": "smartcourse.courses-0", "offset": 52}},
            {"itemIdentifier": {"partition": "smartcourse.courses-0", "offset": 53}},
        ]
    }
    kept = await applied(four)
    assert kept.keys() == {four[0]["event_id"], four[1]["event_id"]}
    assert len(set(kept.values())) == 2  # one transaction each after the failure
