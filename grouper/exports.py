"""Exports: grades and rubric grading as CSV (safe to open in a spreadsheet), the edit log and
training pairs as JSONL.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and some
also after a leading tab or carriage return, so a student who answers ``=HYPERLINK(...)``
could attack whoever opens the grades. Every text cell that starts so (or with the full-width
forms of those signs) is written with a leading single quote, which spreadsheets show as text.
A leading quote of the text itself is doubled, so :func:`read_grades_csv` gives back exactly
what was written. Numbers are written as numbers, and so is text that is just a number
(``-1.5``): a number cannot carry a formula.

Excel reads a CSV as UTF-8 only when it begins with a byte-order mark (:data:`EXCEL_BOM`);
without one an accented name ("Zoë") shows as "ZoÃ«". Other readers (Python's ``csv`` with
``utf-8``, some gradebooks) take the mark for part of the first column's name, so it is added
only when asked for (``grouper export --excel``, the export page's "For Excel"), and
:func:`read_grades_csv` reads files with or without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from grouper.answers import Answer
from grouper.edit_codec import edit_to_dict
from grouper.edits import Edit, QuestionState
from grouper.pairs import TrainingPair
from grouper.rubric import item_label, rubric_text

__all__ = [
    "EXCEL_BOM",
    "GRADE_COLUMNS",
    "GradeRow",
    "grade_rows",
    "neutralise",
    "read_grades_csv",
    "resubmissions",
    "student_of",
    "unneutralise",
    "write_edit_log_jsonl",
    "write_grades_csv",
    "write_grades_by_student_csv",
    "write_pairs_jsonl",
    "write_rubric_csv",
]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NUMERIC_COLUMNS = ("score", "max_score", "group_id", "graded_at_version")
#: Written first in a CSV meant for Excel, so that it reads the file as UTF-8.
EXCEL_BOM = "\ufeff"


def neutralise(value: Any) -> Any:
    """A cell value that no spreadsheet will run as a formula.

    Parameters
    ----------
    value : str, int, float or None
        Numbers and ``None`` pass through unchanged.

    Returns
    -------
    The value; text starting with a formula sign (or a quote) gets a leading ``'``.
    """
    if not isinstance(value, str) or not value:
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    if value.startswith(_FORMULA_START) or value.startswith("'"):
        return "'" + value
    return value


def unneutralise(cell: str) -> str:
    """Inverse of :func:`neutralise` for text read back from a CSV."""
    return cell[1:] if cell.startswith("'") else cell


@dataclass(frozen=True)
class GradeRow:
    """One answer's grade, as exported.

    ``source`` is ``"override"``, ``"group"`` or ``""`` (ungraded); ``graded_by`` and
    ``graded_at_version`` name the edit that gave the grade (a rubric item given other points
    later changes the score, not who chose the items: the repricing is in the edit log, by its
    author); ``max_score`` is the question's
    maximum score (empty when it has none), so that a score reads "out of" something;
    ``rubric_items`` lists the rubric items the grade was given as, each with its points
    (``"names the closed path (+2); wrong units (-0.5)"``) and the point adjustment when there
    is one (``"; adjustment (+1)"``), empty for a bare score; ``checked_by`` names the grader
    who checked the grade and found it right (``grouper.edits.CheckGrades``), empty when nobody
    has checked the grade it has.
    """

    question_id: str
    answer_id: str
    student_id: str
    score: float | None
    max_score: float | None
    comment: str
    rubric_items: str
    source: str
    group_id: int | None
    group_title: str
    graded_by: str
    graded_at_version: int | None
    checked_by: str = ""


GRADE_COLUMNS = tuple(GradeRow.__dataclass_fields__)
#: The columns of grades CSVs written before grade checks: still read (``checked_by`` empty).
_GRADE_COLUMNS_BEFORE_CHECKS = GRADE_COLUMNS[:-1]


def grade_rows(state: QuestionState, answers: Sequence[Answer]) -> list[GradeRow]:
    """Every answer of a question with its effective grade, in import order.

    Parameters
    ----------
    state : QuestionState
    answers : sequence of Answer
        The question's answers (for the student ids).
    """
    rows = []
    for answer in answers:
        if answer.answer_id not in state.positions:
            continue  # a late answer added after this state was read: the next export has it
        grade = state.grade_of(answer.answer_id)
        group_id = state.group_of(answer.answer_id)
        rows.append(
            GradeRow(
                question_id=state.question_id,
                answer_id=answer.answer_id,
                student_id=answer.student_id or "",
                score=None if grade is None else grade.score,
                max_score=state.max_score,
                comment="" if grade is None else grade.comment,
                rubric_items="" if grade is None else rubric_text(state, grade.items, grade.adjustment),
                source=state.grade_source(answer.answer_id) or "",
                group_id=group_id,
                group_title="" if group_id is None else state.groups[group_id].title,
                graded_by="" if grade is None or grade.by is None else grade.by,
                graded_at_version=None if grade is None else grade.version,
                checked_by="" if (check := state.grade_check(answer.answer_id)) is None else check.by,
            )
        )
    return rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        # Sums of points carry binary noise (0.1 + 0.2 is 0.30000000000000004): 12
        # significant digits is every digit a grader types and none of the noise.
        value = float(f"{value:.12g}")
        if value.is_integer() and abs(value) < 1e15:
            return int(value)  # 2.0 is written 2: the same number, and what a grader typed
    return neutralise(value)


def write_grades_csv(rows: Iterable[GradeRow], out: IO[str]) -> int:
    """Write grades, one row per answer; returns the number of rows.

    Columns are :data:`GRADE_COLUMNS`; text cells are neutralised (see :func:`neutralise`).
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(GRADE_COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([_cell(v) for v in asdict(row).values()])
        n += 1
    return n


def write_rubric_csv(state: QuestionState, answers: Sequence[Answer], out: IO[str]) -> int:
    """Write one question's rubric grading: one row per answer, one column per rubric item.

    An item's column is headed ``"<id>: <description> (<points>)"`` and holds 1 where the
    answer's grade has the item and 0 where its grade is given by the rubric without it;
    it is empty where the answer is ungraded or graded by a bare score (the rubric says
    nothing about it). Before the items come the answer's ids, its score, the question's
    maximum and the grade's point adjustment. Text cells are neutralised.

    Parameters
    ----------
    state : QuestionState
    answers : sequence of Answer
        The question's answers (for the student ids), in the order to write them.

    Returns
    -------
    int
        The number of answers written.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    head = ["question_id", "answer_id", "student_id", "score", "max_score", "adjustment"]
    writer.writerow(head + [neutralise(f"{i.item_id}: {item_label(i)}") for i in state.rubric])
    n = 0
    for answer in answers:
        if answer.answer_id not in state.positions:
            continue  # a late answer added after this state was read: the next export has it
        grade = state.grade_of(answer.answer_id)
        by_rubric = grade is not None and bool(grade.items)
        ticks = [(1 if i.item_id in grade.items else 0) if by_rubric else None for i in state.rubric]  # type: ignore[union-attr]
        adjustment = grade.adjustment if by_rubric else None  # type: ignore[union-attr]
        score = None if grade is None else grade.score
        cells = [state.question_id, answer.answer_id, answer.student_id or "", score, state.max_score, adjustment, *ticks]
        writer.writerow([_cell(c) for c in cells])
        n += 1
    return n


def student_of(row: GradeRow) -> str:
    """Whose answer a grade row is, as the grades-by-student file keys it: the student id, or
    ``answer:<question>/<id>`` for an answer without one (it stands for itself: answer ids are
    unique within a question only, so answer 1 of q1 and answer 1 of q2 are not one student).

    In one Unicode form (NFC): ids are stored as written, and "zoë" typed composed in one file
    and decomposed (macOS) in another is one student, who must get one row, not two rows that
    look the same and a gradebook keeps one of."""
    return unicodedata.normalize("NFC", row.student_id) if row.student_id else f"answer:{row.question_id}/{row.answer_id}"


def resubmissions(rows: Iterable[GradeRow]) -> dict[tuple[str, str], list[str]]:
    """The students with several answers to one question (an import takes them: a
    resubmission has its own answer id), which a by-student table cannot show.

    Parameters
    ----------
    rows : iterable of GradeRow

    Returns
    -------
    dict
        ``(student, question id)`` to the answer ids, for each pair with more than one.
    """
    by_pair: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        by_pair.setdefault((student_of(row), row.question_id), []).append(row.answer_id)
    return {pair: ids for pair, ids in by_pair.items() if len(ids) > 1}


def write_grades_by_student_csv(rows: Iterable[GradeRow], out: IO[str]) -> int:
    """Write one row per student: a score column per question and their total.

    Answers without a student id stand for themselves (``answer:<question>/<id>``). A missing or
    ungraded answer is an empty cell and counts 0 in the total. When any question has a
    maximum score, a ``points_possible`` row comes first, as gradebooks (Canvas) expect: each
    question's maximum, and their sum when every question has one.

    Returns
    -------
    int
        The number of students.

    Raises
    ------
    ValueError
        When a student has two answers to one question (a resubmission), naming them: the
        table has one cell for both.
    """
    rows = list(rows)
    twice = resubmissions(rows)
    if twice:
        # One cell per student and question: which of two answers counts is the instructor's
        # call, never a silent pick (the other's grade would be lost).
        (student, question_id), ids = next(iter(twice.items()))
        more = f" (and {len(twice) - 1} more such)" if len(twice) > 1 else ""
        raise ValueError(
            f"student {student} has {len(ids)} answers to question {question_id} ({', '.join(ids)}){more}; "
            "a by-student table has one score per student and question: export the grades per answer "
            "instead (`grouper export grades`)"
        )
    question_ids: list[str] = []
    maxima: dict[str, float | None] = {}
    table: dict[str, dict[str, float | None]] = {}
    for row in rows:
        if row.question_id not in question_ids:
            question_ids.append(row.question_id)
            maxima[row.question_id] = row.max_score
        table.setdefault(student_of(row), {})[row.question_id] = row.score
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["student_id", *(neutralise(q) for q in question_ids), "total"])
    if any(m is not None for m in maxima.values()):
        known = [maxima[q] for q in question_ids]
        total_possible = math.fsum(known) if all(m is not None for m in known) else None  # type: ignore[arg-type]
        writer.writerow(["points_possible", *(_cell(m) for m in known), _cell(total_possible)])
    for student, scores in table.items():
        total = math.fsum(s for s in scores.values() if s is not None)
        writer.writerow([neutralise(student), *(_cell(scores.get(q)) for q in question_ids), _cell(total)])
    return len(table)


def read_grades_csv(source: IO[str]) -> list[GradeRow]:
    """Read back a file written by :func:`write_grades_csv`, with or without :data:`EXCEL_BOM`.

    Raises
    ------
    ValueError
        Naming the row and column of a cell that is not what the column holds.
    """
    text = source.read()
    reader = csv.DictReader(io.StringIO(text.removeprefix(EXCEL_BOM), newline=""))
    header = tuple(reader.fieldnames or ())
    if header not in (GRADE_COLUMNS, _GRADE_COLUMNS_BEFORE_CHECKS):
        raise ValueError(f"grades CSV header is {reader.fieldnames}; expected {list(GRADE_COLUMNS)}")
    rows = []
    for line, record in enumerate(reader, start=2):
        if None in record or None in record.values():  # cells beyond the header's, or a row cut short
            found = len(header) + len(record.get(None) or ()) - sum(v is None for v in record.values())
            raise ValueError(f"grades CSV row {line}: {found} cells, but the header has {len(header)} columns")
        values: dict[str, Any] = {}
        for column in header:
            cell = record[column]
            if column in _NUMERIC_COLUMNS:
                if cell == "":
                    values[column] = None
                    continue
                try:
                    number = float(cell)
                except ValueError:
                    raise ValueError(f"grades CSV row {line}, column {column!r}: {cell!r} is not a number") from None
                whole = column not in ("score", "max_score")
                if not math.isfinite(number) or (whole and not number.is_integer()):
                    # No grade is infinite or "nan" (the store refuses them), no id a fraction.
                    kind = "a whole number" if whole else "a finite number"
                    raise ValueError(f"grades CSV row {line}, column {column!r}: {cell!r} is not {kind}")
                values[column] = int(number) if whole else number
            else:
                values[column] = unneutralise(cell)
        rows.append(GradeRow(**values))
    return rows


def write_edit_log_jsonl(edits: Iterable[Edit], out: IO[str]) -> int:
    """Write the edit log, one JSON object per edit (see :func:`grouper.edit_codec.edit_to_dict`)."""
    n = 0
    for edit in edits:
        out.write(json.dumps(edit_to_dict(edit), ensure_ascii=False) + "\n")
        n += 1
    return n


def write_pairs_jsonl(pairs: Iterable[TrainingPair], out: IO[str]) -> int:
    """Write training pairs, one JSON object per pair (``TrainingPair.to_dict``), each with the
    edit and author behind it."""
    n = 0
    for pair in pairs:
        out.write(json.dumps(pair.to_dict(), ensure_ascii=False) + "\n")
        n += 1
    return n
