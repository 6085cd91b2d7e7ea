"""File store port, with a local-directory adapter (embedded) and an S3 adapter (boto3)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from smartcourse.domain.materials import attachment_disposition
from smartcourse.errors import NotFound
from smartcourse.ports import FileStore

__all__ = ["FileStore", "LocalFileStore", "S3FileStore"]


#: The store's top-level directories the product writes under (materials, certificates' PDFs, a publish's staged
#: sections): `probe` checks each is one where it exists.
WRITTEN_UNDER = ("courses", "certificates", "publish-staging")


class LocalFileStore:
    """Blobs as files under a directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise NotFound("no such file", code="file_not_found")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:  # a failed write leaves no temp file behind (explore27 F2: one per attempt)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound("no such file", code="file_not_found") from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its directory too once empty (a material's own: explore27 F7)
            if path.parent != self.root.resolve() and not any(path.parent.iterdir()):
                path.parent.rmdir()

    async def probe(self) -> None:
        """A write and its removal, as an upload's would be (`/health`): raises what a write would meet (permissions,
        a full disk, a read-only mount). Not a `FileStore` port method: the S3 store has none (a write would need
        the health function's role to write the bucket)."""
        path = self._path(f"health/probe-{os.getpid()}")
        await asyncio.to_thread(self._write, path, b"")
        path.unlink(missing_ok=True)
        await asyncio.to_thread(self._check_written_under)

    def _check_written_under(self) -> None:
        for top in WRITTEN_UNDER:  # explore40 F8 residue: one replaced by a file failed its writes, the probe said up
            where = self.root / top
            if os.path.lexists(where) and not where.is_dir():
                raise NotADirectoryError(f"the file store's {top}/ is not a directory: {where}")

    async def presigned_url(self, key: str, filename: str, *, content_type: str | None = None) -> str | None:
        return None


class S3FileStore:
    """Blobs in an S3 bucket (AWS, LocalStack, MinIO or moto) through boto3."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str) -> None:
        import boto3

        self.bucket = bucket
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    async def ensure_bucket(self) -> None:
        def _ensure() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except self._client.exceptions.ClientError:
                self._client.create_bucket(Bucket=self.bucket)

        await asyncio.to_thread(_ensure)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self._client.put_object, Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
        )

    async def get(self, key: str) -> bytes:
        def _get() -> bytes:
            try:
                return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore[no-any-return]
            except self._client.exceptions.NoSuchKey as exc:
                raise NotFound("no such file", code="file_not_found") from exc

        return await asyncio.to_thread(_get)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def presigned_url(self, key: str, filename: str, *, content_type: str | None = None) -> str | None:
        """A URL valid for 15 minutes that serves the object as an attachment named `filename` and, when given, as
        `content_type` (the API's own download serves HTML as application/octet-stream: so does this, explore27 F3;
        the stored type would have been served). Non-ASCII names go as RFC 6266's `filename*`."""
        params = {"Bucket": self.bucket, "Key": key, "ResponseContentDisposition": attachment_disposition(filename)}
        if content_type:
            params["ResponseContentType"] = content_type
        return await asyncio.to_thread(  # type: ignore[no-any-return]
            self._client.generate_presigned_url, "get_object", Params=params, ExpiresIn=900
        )
