#!/usr/bin/env python3
"""Smoke-test each engine of `scripts/stack up` with its standard client (run with var/stack/venv/bin/python)."""

from __future__ import annotations

import asyncio
import json
import os
import smtplib
import subprocess
import sys
import time
import urllib.request
import uuid
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_DATA = Path(os.environ.get("SMARTCOURSE_DATA_DIR", "var"))
STACK = (_DATA if _DATA.is_absolute() else ROOT / _DATA) / "stack"
HOST = "127.0.0.1"
TAG = uuid.uuid4().hex[:8]


def port(var: str, default: int) -> int:
    return int(os.environ.get(var, str(default)))


async def postgres() -> str:
    import asyncpg

    conn = await asyncpg.connect(
        host=HOST, port=port("STACK_PG_PORT", 5432), user="smartcourse", password="smartcourse", database="smartcourse"
    )
    try:
        await conn.execute(f"CREATE TEMP TABLE t_{TAG} (id int PRIMARY KEY, v text)")
        await conn.execute(f"INSERT INTO t_{TAG} VALUES (1, 'x')")
        assert await conn.fetchval(f"SELECT v FROM t_{TAG} WHERE id = 1") == "x"
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def redis_check() -> str:
    import redis

    client = redis.Redis(host=HOST, port=port("STACK_REDIS_PORT", 6379))
    assert client.ping() is True
    client.set(f"smoke:{TAG}", "1", ex=60)
    assert client.get(f"smoke:{TAG}") == b"1"
    return str(client.info("server")["redis_version"])


def rabbitmq() -> str:
    import pika

    params = pika.URLParameters(f"amqp://guest:guest@{HOST}:{port('STACK_RABBITMQ_PORT', 5672)}/%2F")
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        queue = f"smoke-{TAG}"
        ch.queue_declare(queue, auto_delete=True)
        ch.basic_publish("", queue, b"ping")
        for _ in range(50):
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method:
                assert body == b"ping"
                break
            time.sleep(0.05)
        else:
            raise AssertionError("message not received")
        version = conn._impl.server_properties.get("version", b"?")  # type: ignore[attr-defined]
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        conn.close()


async def kafka() -> str:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = f"{HOST}:{port('STACK_KAFKA_PORT', 9092)}"
    topic = f"smoke-{TAG}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"g-{TAG}", auto_offset_reset="earliest")
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), 30)
        assert msg.value == b"hello"
        partitions = consumer.partitions_for_topic(topic) or set()
    finally:
        await consumer.stop()
    return f"offset {meta.offset}, {len(partitions)} partitions"


def schema_registry() -> str:
    base = f"http://{HOST}:{port('STACK_SCHEMA_REGISTRY_PORT', 8081)}/apis/ccompat/v7"
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}

    def call(method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    avro = {"type": "record", "name": "Smoke", "fields": [{"name": "id", "type": "string"}]}
    jsonschema = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    a = call("POST", f"/subjects/smoke-avro-{TAG}/versions", {"schema": json.dumps(avro)})
    j = call("POST", f"/subjects/smoke-json-{TAG}/versions", {"schemaType": "JSON", "schema": json.dumps(jsonschema)})
    got_a = call("GET", f"/subjects/smoke-avro-{TAG}/versions/latest")
    got_j = call("GET", f"/subjects/smoke-json-{TAG}/versions/latest")
    assert isinstance(got_a, dict) and json.loads(got_a["schema"]) == avro, got_a
    assert isinstance(got_j, dict) and got_j.get("schemaType") == "JSON", got_j
    assert json.loads(got_j["schema"]) == jsonschema
    evolved = {**avro, "fields": [*avro["fields"], {"name": "n", "type": "int", "default": 0}]}
    ok = call("POST", f"/compatibility/subjects/smoke-avro-{TAG}/versions/latest", {"schema": json.dumps(evolved)})
    assert ok == {"is_compatible": True}, ok
    config = call("GET", "/config")
    subjects = call("GET", "/subjects")
    assert isinstance(subjects, list) and f"smoke-avro-{TAG}" in subjects
    return f"ids {a} {j}, config {config}"


async def mongo() -> str:
    from pymongo import AsyncMongoClient
    from pymongo.errors import DuplicateKeyError

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        f"mongodb://{HOST}:{port('STACK_MONGO_PORT', 27017)}/", serverSelectionTimeoutMS=5000
    )
    try:
        coll = client["smoke"][f"c_{TAG}"]
        await coll.create_index("email", unique=True)
        await coll.insert_one({"_id": 1, "email": "a@example.com"})
        try:
            await coll.insert_one({"_id": 2, "email": "a@example.com"})
            raise AssertionError("unique index not enforced")
        except DuplicateKeyError:
            pass
        await coll.update_one({"_id": 1}, {"$set": {"n": 1}})
        await coll.replace_one({"_id": 3}, {"email": "c@example.com"}, upsert=True)
        assert (await coll.find_one({"_id": 1}) or {}).get("n") == 1
        assert await coll.count_documents({}) == 2
        await coll.delete_one({"_id": 3})
        await coll.drop()
        info = await client.server_info()
        return f"ferretdb {info.get('ferretdbVersion', '?')} (mongo {info.get('version')})"
    finally:
        await client.close()


def s3() -> str:
    import boto3

    client = boto3.client(
        "s3", endpoint_url=f"http://{HOST}:{port('STACK_S3_PORT', 9000)}", region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    bucket = os.environ.get("S3_BUCKET", "smartcourse").split(",")[0]
    client.put_object(Bucket=bucket, Key=f"smoke/{TAG}.txt", Body=b"hello")
    body = client.get_object(Bucket=bucket, Key=f"smoke/{TAG}.txt")["Body"].read()
    assert body == b"hello"
    client.delete_object(Bucket=bucket, Key=f"smoke/{TAG}.txt")
    return f"bucket {bucket}"


def smtp() -> str:
    mail_dir = STACK / "mail"
    before = set(mail_dir.glob("*.eml"))
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "smoke@smartcourse.local", "dev@example.com", f"smoke {TAG}"
    msg.set_content("hello")
    with smtplib.SMTP(HOST, port("STACK_SMTP_PORT", 1025), timeout=5) as client:
        assert client.noop()[0] == 250
        client.send_message(msg)
    for _ in range(50):
        new = [p for p in set(mail_dir.glob("*.eml")) - before if f"smoke {TAG}" in p.read_text(errors="replace")]
        if new:
            return new[0].name
        time.sleep(0.1)
    raise AssertionError(f"no .eml in {mail_dir}")


def temporal() -> str:
    cli = STACK / "venv" / "bin" / "temporal"
    address = f"{HOST}:{port('STACK_TEMPORAL_PORT', 7233)}"
    out = subprocess.run([str(cli), "operator", "namespace", "list", "--address", address], capture_output=True,
                         text=True, timeout=30, check=True).stdout  # fmt: skip
    assert "default" in out, out
    return "namespace default listed"


CHECKS = {
    "postgres": lambda: asyncio.run(postgres()),
    "redis": redis_check,
    "rabbitmq": rabbitmq,
    "kafka": lambda: asyncio.run(kafka()),
    "schema-registry": schema_registry,
    "temporal": temporal,
    "mongo": lambda: asyncio.run(mongo()),
    "s3": s3,
    "smtp": smtp,
}


def main() -> int:
    failures = 0
    for name, check in CHECKS.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        try:
            print(f"{name:<16} ok    {check()}", flush=True)
        except Exception as exc:
            failures += 1
            print(f"{name:<16} FAIL  {type(exc).__name__}: {exc}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
