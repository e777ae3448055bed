"""Bring a database's schema to the newest revision, in place, with Alembic.

The migration scripts ship inside the package (``grouper/store/migrations``) and run
programmatically whenever a store is opened: an older database is upgraded where it lies,
keeping every row. The whole upgrade is one write transaction (SQLite's DDL is
transactional), so two processes opening a fresh file at once cannot both create tables.

Opening an up-to-date database only reads ``alembic_version``; Alembic itself is imported
only when there is something to upgrade (it is a fifth of the store's import time).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from grouper.store.engine import WRITE

__all__ = ["HEAD", "MIGRATIONS_DIR", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: The newest revision in ``migrations/versions``; a test keeps the two in step.
HEAD = "0003"


def _config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema revision among the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; ``None`` for an empty database."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):  # no such table: an empty database
            return None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest) in one write transaction.

    Raises
    ------
    RuntimeError
        When the database is at a revision this code does not know (written by a newer
        grouper): it is left untouched.
    """
    current = current_revision(engine)
    if current == (HEAD if revision == "head" else revision):
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _config()
    known = {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise RuntimeError(
            f"the database is at schema revision {current!r}, which this version of grouper does not know "
            f"(it knows up to {HEAD!r}); upgrade grouper to open it"
        )
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
