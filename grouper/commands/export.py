"""``grouper export``: grades and rubric grading (CSV), the edit log (JSONL) and training pairs (JSONL).

Output goes to standard output, or with ``-o FILE`` to a file that appears only once complete
(written beside it, then renamed), so a half-written export never exists::

    grouper export grades --db grades.sqlite -o grades.csv
    grouper export grades-by-student -o totals.csv
    grouper export grades --excel -o grades.csv    # begins with a byte-order mark, for Excel
    grouper export rubric -q q1 -o q1-rubric.csv
    grouper export log -q q1
    grouper export pairs --author ta1 --since 2026-05-01 -o pairs.jsonl
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from grouper.commands._store_options import add_db_option, open_store, plain, reports_busy
from grouper.exports import (
    EXCEL_BOM,
    grade_rows,
    write_edit_log_jsonl,
    write_grades_by_student_csv,
    write_grades_csv,
    write_pairs_jsonl,
    write_rubric_csv,
)
from grouper.feedback import PairFilter, PairSettings, course_questions, training_pairs
from grouper.store import Store, database_files, is_sqlite_database, sqlite_file


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time; use ISO 8601, e.g. 2026-05-01 or 2026-05-01T14:00") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _question_ids(store: Store, wanted: list[str] | None) -> list[str]:
    stored = store.question_ids()
    if not wanted:
        return stored
    by_form = {unicodedata.normalize("NFC", q): q for q in stored}
    found = []
    for q in wanted:
        if q not in stored and unicodedata.normalize("NFC", q) not in by_form:
            store.question(q)  # an unknown question is an error (naming the known), not an empty export
        # As stored: "Übung" typed composed and decomposed is one question, exported once.
        found.append(q if q in stored else by_form[unicodedata.normalize("NFC", q)])
    return list(dict.fromkeys(found))  # a question named twice is exported once


_CSV_KINDS = ("grades", "grades-by-student", "rubric")


def _write(args: argparse.Namespace, render) -> int:
    mark = EXCEL_BOM if args.excel else ""
    if args.output is None or args.output == "-":
        if sys.stdout is None:  # started with standard output closed (>&-)
            raise ValueError("standard output is closed; write the export to a file with -o FILE")
        # A reader that stops early (| head) ends in cli.main's exit 141, as for every
        # command: a pipeline can tell that the export was cut short.
        sys.stdout.write(mark)
        return render(sys.stdout)
    target = Path(args.output)
    if target.exists() and not target.is_file() and not target.is_dir():
        # A pipe or a terminal (-o /dev/stdout): written as it is, never replaced.
        buffer = io.StringIO(newline="")
        buffer.write(mark)
        n = render(buffer)
        with target.open("w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
        return n
    if target.is_symlink():
        # Written through the link, to the file it names: replacing the link itself would
        # leave the shared file as it was.
        target = target.resolve()
    _refuse_to_overwrite_a_store(target, sqlite_file(args.db))
    buffer = io.StringIO(newline="")
    buffer.write(mark)
    n = render(buffer)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    except OSError as exc:
        raise ValueError(f"-o {args.output}: cannot write in the folder {target.parent}: {exc.strerror}") from None
    try:
        # mkstemp makes the file private (0600); an export is as readable as any file the
        # user writes (the umask's mode), or keeps the mode of the file it replaces.
        os.fchmod(fd, target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"wrote {n} {args.what_written} to {target}", file=sys.stderr)
    return n


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _refuse_to_overwrite_a_store(target: Path, store: Path | None) -> None:
    """An export never replaces a database: ``-o grades.sqlite`` for ``-o grades.csv`` would
    lose every grade and the whole edit log."""
    if target.is_dir():
        raise ValueError(f"-o {target} is a folder; name a file, e.g. -o {target / 'grades.csv'}")
    if not target.parent.is_dir():  # said before the export is built, in the words the user typed
        raise ValueError(f"-o {target}: the folder {target.parent} does not exist; create it first")
    if store is not None and target.resolve() in database_files(store):
        raise ValueError(f"-o {target} is the store itself (--db); name another file")
    if target.is_file() and is_sqlite_database(target):  # (a pipe is never read: it would wait)
        raise ValueError(f"-o {target} is a SQLite database; an export does not replace one: name another file")


def _say_what_is_ungraded(question_id: str, rows, by_student: bool) -> None:
    """Say on standard error how many answers have no grade yet: their cells are empty (and
    count 0 in a by-student total), which a gradebook would otherwise take as final."""
    ungraded = sum(1 for r in rows if r.score is None)
    if ungraded:
        zero = "; the by-student totals count them as 0" if by_student else ""
        print(
            f"grouper: note: question {question_id}: {ungraded} of {len(rows)} answer(s) not graded yet "
            f"(empty score cells{zero}); see `grouper show -q {question_id}`",
            file=sys.stderr,
        )


def _warn_of_conflicts(question_id: str, state, answers) -> None:
    """Say on standard error when answers are graded unlike most of their identical answers:
    the export goes ahead (the grades are the graders' to decide), but not silently."""
    from grouper.grade_check import grade_conflicts

    conflicts = grade_conflicts(state, answers)
    if conflicts:
        shown = ", ".join(plain(a, 24) for a in list(conflicts)[:5]) + (" ..." if len(conflicts) > 5 else "")
        print(
            f"grouper: warning: question {question_id}: {len(conflicts)} answer(s) graded unlike most of their "
            f"identical answers ({shown}); see `grouper check -q {question_id}`",
            file=sys.stderr,
        )


@reports_busy
def _cmd_export(args: argparse.Namespace) -> int:
    if args.excel and args.kind not in _CSV_KINDS:
        # JSON Lines are UTF-8 without a mark; a reader would take one for broken JSON.
        raise ValueError(f"--excel is for the CSV exports ({', '.join(_CSV_KINDS)}); {args.kind} is JSON Lines, always plain UTF-8")
    if args.kind != "pairs":
        # They filter the edits pairs come from; ignored here, `grades --author ta1` would
        # look like ta1's grades and be everyone's.
        given = [name for name, value in (("--author", args.author), ("--since", args.since), ("--until", args.until),
                                          ("--edit-kind", args.kind_filter)) if value]
        if given:
            raise ValueError(f"{', '.join(given)} filter(s) the edits of `export pairs`; `export {args.kind}` takes none")
    store = open_store(args)
    try:
        qids = _question_ids(store, args.question)
        if args.course:
            qids = course_questions(store, args.course, within=qids)
        if args.kind in ("grades", "grades-by-student"):
            rows = []
            for q in qids:
                state, answers = store.state(q), store.answers(q)
                question_rows = grade_rows(state, answers)
                rows.extend(question_rows)
                _say_what_is_ungraded(q, question_rows, by_student=args.kind == "grades-by-student")
                _warn_of_conflicts(q, state, answers)
            writer = write_grades_csv if args.kind == "grades" else write_grades_by_student_csv
            args.what_written = "rows" if args.kind == "grades" else "students"
            _write(args, lambda out: writer(rows, out))
        elif args.kind == "rubric":
            if len(qids) != 1:
                raise ValueError(
                    f"a rubric export is one question's (its items are its columns); name one with -q "
                    f"(the store has {len(qids)}: {', '.join(qids[:5])}{' ...' if len(qids) > 5 else ''})"
                )
            state, answers = store.state(qids[0]), store.answers(qids[0])
            if not state.rubric:
                raise ValueError(f"question {qids[0]} has no rubric; give it one with `grouper edit -q {qids[0]} ... rubric`")
            args.what_written = "rows"
            _write(args, lambda out: write_rubric_csv(state, answers, out))
        elif args.kind == "log":
            edits = [e for q in qids for e in store.edits(q)]
            args.what_written = "edits"
            _write(args, lambda out: write_edit_log_jsonl(edits, out))
        else:
            select = PairFilter(
                question_ids=frozenset(qids),
                authors=frozenset(args.author) if args.author else None,
                since=args.since,
                until=args.until,
                kinds=frozenset(args.kind_filter) if args.kind_filter else None,
            )
            settings = PairSettings(max_pairs_per_edit=args.max_pairs_per_edit or None, seed=args.seed)
            pairs = training_pairs(store, select=select, settings=settings)
            filtered = args.author or args.since or args.until or args.kind_filter
            if not pairs and filtered:
                print("grouper: no edit matches the filters given (author, time, kind): 0 pairs", file=sys.stderr)
            args.what_written = "pairs"
            _write(args, lambda out: write_pairs_jsonl(pairs, out))
    finally:
        store.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` command."""
    exp = sub.add_parser("export", help="export grades (CSV), the edit log or training pairs (JSONL)")
    exp.add_argument(
        "kind",
        choices=["grades", "grades-by-student", "rubric", "log", "pairs"],
        help="grades: one row per answer; grades-by-student: a column per question; rubric: one question's "
        "answers with a 1/0 column per rubric item; log: every edit; pairs: must-link / cannot-link answer pairs from the edits",
    )
    add_db_option(exp)
    exp.add_argument("--question", "-q", action="append", help="only this question (repeatable; default: all)")
    exp.add_argument("--course", action="append", help="only the questions of this course (repeatable)")
    exp.add_argument("-o", "--output", help="write to this file (default: standard output)")
    exp.add_argument(
        "--excel",
        action="store_true",
        help="begin a CSV with a UTF-8 byte-order mark, so that Excel shows accented text right",
    )
    pairs = exp.add_argument_group("pairs")
    pairs.add_argument("--author", action="append", help="only edits by this author (repeatable)")
    pairs.add_argument("--since", type=_when, help="only edits at or after this time (ISO 8601, UTC unless given)")
    pairs.add_argument("--until", type=_when, help="only edits before this time")
    pairs.add_argument("--edit-kind", dest="kind_filter", action="append", help="only edits of this kind (repeatable)")
    pairs.add_argument(
        "--max-pairs-per-edit", type=int, default=PairSettings.max_pairs_per_edit, help="sample at most this many per edit (0: all)"
    )
    pairs.add_argument("--seed", type=int, default=0, help="seed of that sampling")
    exp.set_defaults(func=_cmd_export)
