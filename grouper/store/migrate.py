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

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

from grouper.store.engine import WRITE

__all__ = ["HEAD", "MIGRATIONS_DIR", "SchemaRefused", "current_revision", "head_revision", "upgrade"]


class SchemaRefused(RuntimeError):
    """A database this code does not migrate, left untouched; the message reads after its name
    ("<database> is at schema revision ...")."""

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


def _revision_and_tables(engine: Engine) -> tuple[str | None, list[str]]:
    """The schema revision (``None`` without ``alembic_version``) and the database's tables,
    read in one transaction: a store another process is creating is seen whole or not at all."""
    with engine.connect() as connection, connection.begin():
        tables = sorted(inspect(connection).get_table_names())
        if "alembic_version" not in tables:
            return None, tables
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar(), tables


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision; ``None`` for an empty database."""
    return _revision_and_tables(engine)[0]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (default: the newest) in one write transaction.

    Raises
    ------
    SchemaRefused
        When the database is at a revision this code does not know (written by a newer
        grouper), holds tables but is not a grouper store (another program's database), or
        needs an upgrade but cannot be written: it is left untouched.
    """
    target = HEAD if revision == "head" else revision
    current, tables = _revision_and_tables(engine)
    if current == target:
        return
    if current is None and tables:
        # Creating grouper's tables among another program's would change its file for a
        # command that only meant to read (grouper show --db notes.sqlite).
        raise SchemaRefused(f"is a database but not a grouper store (its tables: {', '.join(tables)}); nothing was changed")
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _config()
    known = {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise SchemaRefused(
            f"is at schema revision {current!r}, which this version of grouper does not know "
            f"(it knows up to {HEAD!r}): a store written by a newer grouper (upgrade grouper to open it), "
            "or not a grouper store"
        )
    try:
        with engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
    except OperationalError as exc:
        if current is None or "readonly" not in str(exc.orig).replace("read-only", "readonly"):
            raise
        raise SchemaRefused(
            f"is at schema revision {current!r} and needs an upgrade to {target!r}, but it is read-only for "
            f"this user ({exc.orig}); nothing was changed. Make it writable (the file, its folder and its "
            "-wal and -shm files), or open a writable copy"
        ) from None
