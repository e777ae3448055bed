"""Database engines for the store: SQLite tuned for a safe edit log, or any SQLAlchemy URL.

SQLite (the default) is set up so that an acknowledged edit is never lost and concurrent
graders never see "database is locked":

- WAL journal: readers never block the writer, and the writer never blocks readers.
- ``synchronous=FULL``: a commit returns only after the log is on disk, so an edit that was
  acknowledged survives a crash of the process or of the machine.
- Every write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock before
  reading, so two graders' read-check-append sequences are serialised instead of one of them
  failing half-way with SQLITE_BUSY on lock upgrade.
- A busy timeout, and a bounded retry with backoff around whole transactions
  (:func:`run_with_retry`), absorb the waits; past the limit :class:`StoreBusy` says so plainly.

The pysqlite driver's own transaction handling is switched off (``isolation_level=None``) so
that SQLAlchemy's ``begin`` event decides what ``BEGIN`` is emitted.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

__all__ = ["WRITE", "StoreBusy", "is_memory_sqlite", "make_engine", "run_with_retry"]

#: Execution option that makes a connection's transactions ``BEGIN IMMEDIATE`` on SQLite.
WRITE = "grouper_write"

T = TypeVar("T")

_SQLITE_BUSY_CODES = {5, 6, 261, 517}  # BUSY, LOCKED, BUSY_RECOVERY, BUSY_SNAPSHOT


class StoreBusy(RuntimeError):
    """Other writers kept the database busy for longer than the store waits; nothing was written."""


def is_memory_sqlite(url: str) -> bool:
    """True for an in-memory SQLite URL (``sqlite://`` or ``sqlite:///:memory:``)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def make_engine(url: str, *, busy_timeout_s: float = 10.0) -> Engine:
    """An engine for the store.

    Parameters
    ----------
    url : str
        A SQLAlchemy URL: ``sqlite:///path/to/grouper.sqlite``, ``sqlite://`` (in memory, for
        tests and the evaluation oracle), or any other backend such as ``postgresql://...``.
    busy_timeout_s : float
        How long SQLite waits for another writer's lock before reporting busy.

    Returns
    -------
    Engine
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    memory = is_memory_sqlite(url)
    kwargs: dict = {"connect_args": {"timeout": busy_timeout_s, "check_same_thread": False}}
    if memory:
        # One shared connection: every other pool would give each thread its own, empty, database.
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    busy_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's begin event emits BEGIN
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if not memory and _empty_or_versioned(cursor):
                # Not another program's database: WAL is a lasting change to its file, and
                # migrate refuses that database anyway.
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _empty_or_versioned(cursor: sqlite3.Cursor) -> bool:
    """Whether a SQLite database has no tables yet, or has Alembic's version table."""
    cursor.execute("SELECT count(*), coalesce(sum(name = 'alembic_version'), 0) FROM sqlite_master WHERE type = 'table'")
    tables, versioned = cursor.fetchone()
    return tables == 0 or versioned > 0


def _is_busy(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code in _SQLITE_BUSY_CODES
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def run_with_retry(action: Callable[[], T], *, limit_s: float, what: str, retry_on: Callable[[Exception], bool] | None = None) -> T:
    """Run ``action`` (one whole transaction), retrying while the database is busy.

    Parameters
    ----------
    action : callable
        Runs a complete transaction; it is rolled back before any retry, so it can simply run
        again.
    limit_s : float
        Give up after this long.
    what : str
        The operation, for the message of :class:`StoreBusy`.
    retry_on : callable, optional
        Further exceptions that mean "run again" (a lost race on a unique key, say).

    Raises
    ------
    StoreBusy
        When the database stayed busy for ``limit_s`` seconds; nothing was written.
    """
    deadline = time.monotonic() + limit_s
    delay = 0.005
    while True:
        try:
            return action()
        except OperationalError as exc:
            if not _is_busy(exc):
                raise
            failure: Exception = exc
        except Exception as exc:  # noqa: BLE001 - filtered by retry_on
            if retry_on is None or not retry_on(exc):
                raise
            failure = exc
        if time.monotonic() >= deadline:
            raise StoreBusy(
                f"{what}: other graders kept the database busy for {limit_s:g} s; nothing was written, "
                "try again (or raise busy_timeout_s)"
            ) from failure
        # Jittered exponential backoff so that waiting writers do not retry in lockstep.
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)
