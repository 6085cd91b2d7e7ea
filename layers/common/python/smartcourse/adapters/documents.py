"""Document store port, with a PostgreSQL JSONB adapter (embedded) and a MongoDB adapter."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from smartcourse.models import Document, utcnow
from smartcourse.ports import Doc, DocumentStore

__all__ = ["Doc", "DocumentStore", "MongoDocumentStore", "PostgresDocumentStore"]


class PostgresDocumentStore:
    """Documents as JSONB rows: a real, queryable store when no MongoDB is configured.

    Give it an engine of its own (`owns_engine=True`, as the container does): services read and write documents
    while their unit of work holds a connection of the main pool, so documents drawn from that same pool would
    make each such request hold two connections at once and deadlock the pool under load. Every method here
    holds one connection of its pool for one statement and waits for nothing else meanwhile, so this pool
    always drains."""

    def __init__(self, engine: AsyncEngine, *, owns_engine: bool = False) -> None:
        self._engine = engine
        self._owns_engine = owns_engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        async with self._engine.connect() as conn:
            row = await conn.scalar(
                select(Document.body).where(Document.collection == collection, Document.id == doc_id)
            )
        return dict(row) if row is not None else None

    async def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Doc]:
        if not doc_ids:
            return {}
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(Document.id, Document.body).where(Document.collection == collection, Document.id.in_(doc_ids))
            )
            return {r.id: dict(r.body) for r in rows}

    async def put(self, collection: str, doc_id: str, doc: Doc) -> None:
        stmt = insert(Document).values(collection=collection, id=doc_id, body=doc, updated_at=utcnow())
        stmt = stmt.on_conflict_do_update(
            index_elements=[Document.collection, Document.id],
            set_={"body": stmt.excluded.body, "updated_at": stmt.excluded.updated_at},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def delete(self, collection: str, doc_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(Document).where(Document.collection == collection, Document.id == doc_id)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def find(self, collection: str, where: Doc) -> list[Doc]:
        async with self._engine.connect() as conn:
            rows = await conn.scalars(
                select(Document.body)
                .where(Document.collection == collection, Document.body.contains(where))
                .order_by(Document.updated_at)
            )
            return [dict(r) for r in rows]

    async def close(self) -> None:
        if self._owns_engine:
            await self._engine.dispose()


class MongoDocumentStore:
    """Documents in MongoDB through PyMongo's async client (Motor's successor)."""

    def __init__(self, url: str, database: str) -> None:
        from pymongo import AsyncMongoClient

        self._client: Any = AsyncMongoClient(url, tz_aware=True, uuidRepresentation="standard")
        self._db = self._client[database]

    async def get(self, collection: str, doc_id: str) -> Doc | None:
        doc = await self._db[collection].find_one({"_id": doc_id})
        if doc is None:
            return None
        doc.pop("_id", None)
        return dict(doc)

    async def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Doc]:
        out: dict[str, Doc] = {}
        async for doc in self._db[collection].find({"_id": {"$in": doc_ids}}):
            key = doc.pop("_id")
            out[key] = dict(doc)
        return out

    async def put(self, collection: str, doc_id: str, doc: Doc) -> None:
        await self._db[collection].replace_one({"_id": doc_id}, dict(doc), upsert=True)

    async def delete(self, collection: str, doc_id: str) -> bool:
        result = await self._db[collection].delete_one({"_id": doc_id})
        return bool(result.deleted_count)

    async def find(self, collection: str, where: Doc) -> list[Doc]:
        out = []
        async for doc in self._db[collection].find(where).sort("_id"):
            doc.pop("_id", None)
            out.append(dict(doc))
        return out

    async def ping(self) -> None:
        await self._db.command("ping")

    async def close(self) -> None:
        await self._client.close()
