"""Alembic migrations, runnable from code (`upgrade_head`) or with `alembic` and the repo's alembic.ini."""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.exc import ProgrammingError

HERE = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


class MigrationRefused(RuntimeError):
    """The database is in a state no migration of this release should touch; the message says what to do."""


class DatabaseNewerThanCode(MigrationRefused):
    """The database is at a migration this release does not have: a newer release upgraded it."""


class DatabaseNotRecorded(MigrationRefused):
    """The database has tables a migration creates, but Alembic's record says that migration has not run."""


def upgrade_head(database_url: str) -> list[str]:
    """Upgrade to this release's latest migration; the migrations applied ("0026 (E-mails waiting ...)"), none when
    it was there already. A database a newer release has upgraded raises `DatabaseNewerThanCode` with what to do, not
    Alembic's 70-line traceback (explore22 F1: an operator rolling back to the previous release got "Can't locate
    revision identified by '0019'" and nothing else)."""
    cfg = alembic_config(database_url)
    try:
        command.upgrade(cfg, "head")
        return list(cfg.attributes.get("applied", []))
    except ProgrammingError as exc:
        if "already exists" not in str(exc.orig):
            raise
        # A table of a migration Alembic has not recorded (an emptied or dropped `alembic_version`, a restore of
        # the tables only): running the migrations again cannot work (explore25 F5: Alembic's traceback).
        raise DatabaseNotRecorded(
            f"the database already has what a migration creates ({str(exc.orig).splitlines()[0].split(': ')[-1]}) "
            "but its alembic_version table does not record that migration: it was emptied or not restored. "
            'Restore the whole backup (docs/operations.md, "Upgrades and rollbacks"); if the tables are known to '
            "be at this release's latest migration, record it with `smartcourse migrate --stamp-head` and migrate again"
        ) from None
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
