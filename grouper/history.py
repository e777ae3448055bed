"""A question's history: every edit of its log in words, who made it, and whether it stands.

The edit log is the record of who did what (``grouper.edits``); this module only reads it, for
the UI's History page and ``grouper history``: an instructor sees which TA merged or graded
what and when, and can undo one edit of anyone's (the fold refuses an undo that later edits
depend on, naming them).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from grouper.access import canonical_author
from grouper.edits import (
    NEW,
    AddAnswers,
    CheckGrades,
    Confirm,
    Delete,
    Edit,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    Payload,
    QuestionState,
    Rename,
    SetMaxScore,
    SetReferences,
    SetRubric,
    Split,
    Undo,
)

__all__ = ["HistoryRow", "describe", "history"]

_NAMED = 5  # answer ids named in a summary before "and N more"


@dataclass(frozen=True)
class HistoryRow:
    """One edit of a question's log, for display.

    Attributes
    ----------
    edit_id : int
    at : datetime
        When it was logged (UTC).
    author : str
    kind : str
    summary : str
        What it did, in words (ids and titles as logged; titles may be student text: show
        them as plain text).
    undone_by : int or None
        The ``Undo`` that reverses it, while it stays reversed.
    """

    edit_id: int
    at: datetime
    author: str
    kind: str
    summary: str
    undone_by: int | None


def _answers(ids: tuple[str, ...], noun: str = "answer") -> str:
    if len(ids) == 1:
        return f"{noun} {ids[0]}"
    named = ", ".join(ids[:_NAMED]) + (f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else "")
    return f"{len(ids)} {noun}s ({named})"


def _grade(score: float | None, comment: str, items: tuple[int, ...] = (), adjustment: float = 0.0) -> str:
    # The payload names item ids; their points may have changed since, so no score is
    # made up for a rubric grade that did not state one.
    shown = "" if score is None else f"{score:g}"
    if items:
        ids = ", ".join(str(i) for i in items)
        adjusted = f", adjustment {adjustment:+g}" if adjustment else ""
        shown = f"rubric item{'' if len(items) == 1 else 's'} {ids}{adjusted}" + (f" = {shown}" if shown else "")
    return shown + (f" ({comment})" if comment else "")


def describe(payload: Payload) -> str:
    """What an edit does, in a short sentence without a subject.

    Parameters
    ----------
    payload : Payload

    Returns
    -------
    str
        For example ``"merged groups 2, 3 into group 1"``.
    """
    p = payload
    if isinstance(p, Confirm):
        return f"confirmed group {p.group_id}"
    if isinstance(p, Merge):
        return f"merged group{'s' if len(p.others) > 1 else ''} {', '.join(map(str, p.others))} into group {p.into}"
    if isinstance(p, Split):
        return f"split group {p.group_id} into {len(p.parts)} parts"
    if isinstance(p, Move):
        if p.to is None:
            where = "the ungrouped answers"
        elif p.to == NEW:
            where = "a new group" + (f" titled {p.title!r}" if p.title else "")
        else:
            where = f"group {p.to}"
        return f"moved {_answers(p.answer_ids)} to {where}"
    if isinstance(p, Delete):
        return f"deleted group {p.group_id}"
    if isinstance(p, Rename):
        return f"renamed group {p.group_id} to {p.title!r}"
    if isinstance(p, GradeGroup):
        if p.clears:
            return f"cleared the grade of group {p.group_id}"
        return f"graded group {p.group_id}: {_grade(p.score, p.comment, p.items, p.adjustment)}"
    if isinstance(p, GradeAnswer):
        if p.clears:
            return f"cleared the own grade of answer {p.answer_id}"
        return f"gave answer {p.answer_id} its own grade: {_grade(p.score, p.comment, p.items, p.adjustment)}"
    if isinstance(p, AddAnswers):
        return f"added {_answers(p.answer_ids, 'late answer')}"
    if isinstance(p, SetMaxScore):
        return "removed the maximum score" if p.max_score is None else f"set the maximum score to {p.max_score:g}"
    if isinstance(p, SetReferences):
        n = len(p.texts)
        return "removed the reference answers" if not n else f"set {n} reference answer{'' if n == 1 else 's'}"
    if isinstance(p, SetRubric):
        n = len(p.items)
        return "removed the rubric" if not n else f"set the rubric ({n} item{'' if n == 1 else 's'})"
    if isinstance(p, CheckGrades):
        what = "grade" if len(p.answer_ids) == 1 else "grades"
        return f"checked the {what} of {_answers(p.answer_ids)}: right as given"
    if isinstance(p, Undo):
        return f"undid edit {p.edit_id}"
    raise TypeError(f"no description for edit payload {type(p).__name__}")


def history(
    edits: Iterable[Edit],
    current: QuestionState,
    *,
    authors: Collection[str] | None = None,
    kinds: Collection[str] | None = None,
) -> list[HistoryRow]:
    """The question's edits, newest first, with whether each still stands.

    Parameters
    ----------
    edits : iterable of Edit
        The question's edits, in log order (``Store.edits``).
    current : QuestionState
        The question's state now (``Store.state``): it says which edits are undone.
    authors, kinds : collection of str, optional
        Keep only the edits of these authors (an address in any case) / of these kinds
        (``"merge"``, ``"grade"``...).

    Returns
    -------
    list of HistoryRow
    """
    wanted = None if authors is None else {canonical_author(a) for a in authors}
    rows = [
        HistoryRow(e.edit_id, e.at, e.author, e.kind, describe(e.payload), current.undone.get(e.edit_id))
        for e in edits
        if (wanted is None or canonical_author(e.author) in wanted) and (kinds is None or e.kind in kinds)
    ]
    return rows[::-1]
