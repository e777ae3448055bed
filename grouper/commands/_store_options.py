"""Options and helpers shared by the commands that work on a store."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import unicodedata
from collections.abc import Callable

from grouper.store import DEFAULT_DB, Store, StoreBusy, default_url, sqlite_file


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db``: the store's file or URL."""
    parser.add_argument(
        "--db",
        default=None,
        help=f"store: a SQLite file or a SQLAlchemy URL (default: $GROUPER_DB, else ./{DEFAULT_DB})",
    )


def open_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store named by ``--db`` (or its default).

    Parameters
    ----------
    args : argparse.Namespace
    create : bool
        Whether a SQLite file that is not there is created (``grouper import``). Otherwise a
        mistyped ``--db`` is an error: opening it would create an empty store, and an export
        of it would read as a success.

    Raises
    ------
    ValueError
        When the file is not there (and ``create`` is false), or its folder is not there.
    """
    path = sqlite_file(args.db)
    if path is not None and not path.is_file():
        if not create:
            raise ValueError(
                f"no store at {path}; check --db (or $GROUPER_DB), or import answers into it first "
                "with `grouper import FILE --db ...`"
            )
        if not path.parent.is_dir():
            raise ValueError(f"the folder of the store {path} does not exist; create it first, or check --db")
    return Store(default_url(args.db))


def plain(text: str, limit: int = 100) -> str:
    """Student text made safe for a terminal: control characters (escape sequences
    included) shown as code points, and long text shortened."""
    safe = "".join(ch if not unicodedata.category(ch).startswith("C") or ch == " " else f"\\u{ord(ch):04x}" for ch in text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def author_of(args: argparse.Namespace) -> str:
    """The author named by ``--author`` or ``GROUPER_AUTHOR``: every edit is attributed."""
    author = args.author or os.environ.get("GROUPER_AUTHOR")
    if not author or not author.strip():
        raise ValueError("every edit needs an author: give --author NAME (or set GROUPER_AUTHOR)")
    unseen = [ch for ch in author if unicodedata.category(ch).startswith("C")]
    if unseen:
        # A name is shown to every grader (history, refusals): escape sequences and bidi
        # controls in it would act on their terminals, or hide who made an edit.
        raise ValueError(
            f"--author {plain(author, 60)} holds a control or invisible character (U+{ord(unseen[0]):04X}); type the name plainly"
        )
    from grouper.access import validate_display_name

    try:
        # Cleaned as the UI's name form cleans it, so that one person is one author in the
        # log (and a "model:" name, the models' signature, is refused).
        return validate_display_name(author)
    except ValueError as problem:
        raise ValueError(f"--author {plain(author, 60)}: {problem}") from None


def fail(message: str, status: int) -> int:
    print(f"grouper: {message}", file=sys.stderr)
    return status


def reports_busy(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A store command that reports a database kept busy by others as status 1, not a traceback."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except StoreBusy as exc:
            return fail(str(exc), 1)

    return run
