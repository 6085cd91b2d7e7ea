"""The content index's directory on the local disk, for `/health`: a module of its own, so that the API's health check
does not import the index's (numpy, pyarrow, lancedb)."""

from __future__ import annotations

import asyncio
import os


def local_directory(uri: str) -> str | None:
    """The directory of an index URI on the local disk (a path or `file://`), None for an object store."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    return None if "://" in uri else uri


async def probe_local(uri: str) -> None:
    """`/health`'s probe of a local index: its directory is one (made if missing, as a first publish would make it) in
    which a publish can write (a directory made and removed). Raises what a publish or a search would meet: the
    directory replaced by a file or unmounted (explore40 F3: searches failed while `/health` said nothing), a
    read-only mount, a full disk, wrong permissions. An index on S3 is not probed (as the file store on S3 is not)."""
    directory = local_directory(uri)
    if directory is None:
        raise ValueError(f"not a local index: {uri}")

    def check() -> None:
        if os.path.lexists(directory) and not os.path.isdir(directory):
            raise NotADirectoryError(f"the index's path is not a directory: {directory}")
        os.makedirs(directory, exist_ok=True)
        probe = os.path.join(directory, f".health-{os.getpid()}")
        os.makedirs(probe, exist_ok=True)
        os.rmdir(probe)

    await asyncio.to_thread(check)
