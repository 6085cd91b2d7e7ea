"""Alembic migrations, runnable from code (`upgrade_head`) or with `alembic` and the repo's alembic.ini."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


class DatabaseNewerThanCode(RuntimeError):
    """The database is at a migration this release does not have: a newer release upgraded it."""


def upgrade_head(database_url: str) -> None:
    """Upgrade to this release's latest migration. A database a newer release has upgraded raises
    `DatabaseNewerThanCode` with what to do, not Alembic's 70-line traceback (explore22 F1: an operator rolling back
    to the previous release got "Can't locate revision identified by '0019'" and nothing else)."""
    cfg = alembic_config(database_url)
    try:
        command.upgrade(cfg, "head")
    except CommandError as exc:
        unknown = re.search(r"Can't locate revision identified by '([^']+)'", str(exc))
        if not unknown:
            raise
        head = ScriptDirectory.from_config(cfg).get_current_head()
        raise DatabaseNewerThanCode(
            f"the database is at migration {unknown.group(1)}, which this release does not have (its latest is "
            f"{head}): a newer SmartCourse upgraded it. Run that release again, or restore the backup taken before "
            'the upgrade (docs/operations.md, "Upgrades and rollbacks"); do not downgrade it by hand'
        ) from None
