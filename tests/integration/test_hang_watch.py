"""`smartcourse run`'s watch for a hung child reads the heartbeats of this host's instances by pid
(`heartbeats.silence_by_pid`, explore40 F11), from the database the processes beat into."""

from __future__ import annotations

import os
import socket
from typing import Any

from sqlalchemy import text


async def test_the_silence_of_each_instance_is_read_by_pid(container: Any, settings: Any) -> None:
    from smartcourse.services.heartbeats import silence_by_pid

    here, elsewhere = f"{socket.gethostname()}:{os.getpid()}", "another-host:4242"
    async with container.uow() as uow:
        for instance, ago in ((here, 100), (elsewhere, 5)):
            await uow.session.execute(
                text(
                    "insert into process_heartbeats (process, instance, started_at, beat_at) "
                    "values ('hang-watch-test', :i, now(), now() - make_interval(secs => :ago))"
                ),
                {"i": instance, "ago": ago},
            )
        await uow.commit()
    try:
        ages = await silence_by_pid(settings.database_url, ["hang-watch-test"])
        assert set(ages) == {os.getpid()} and 99 <= ages[os.getpid()] < 130, ages  # another host's pid is not ours
        assert await silence_by_pid(settings.database_url, ["no-such-process"]) == {}
    finally:
        async with container.uow() as uow:
            await uow.session.execute(text("delete from process_heartbeats where process = 'hang-watch-test'"))
            await uow.commit()
