"""A question's rubric as graders write and read it: one line per item.

The fold (:mod:`grouper.edits`) holds the rubric as :class:`~grouper.edits.RubricItem` values
and regrades by it; this module turns the text an instructor types (in the UI's editor or on
the command line) into a :class:`~grouper.edits.SetRubric`, and items back into text. A line
is ``DESCRIPTION=POINTS``, optionally ``ID: DESCRIPTION=POINTS``::

    1: names the closed path=2
    2: says the bulb lights=1
    wrong units=-0.5

An item keeps its id when the line names it, or when its description is a current item's (so
new points reprice that item, and its grades follow); any other line is a new item with a
fresh id. The editor shows each item with its id, so rewording an item keeps it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

from grouper.edits import QuestionState, RubricItem, SetRubric, rubric_key

__all__ = ["copy_rubric", "item_label", "item_use", "parse_rubric", "rubric_lines", "rubric_text"]

_WRITTEN_ID = re.compile(r"\s*(\d+):\s+(\S.*)", re.DOTALL)


def parse_rubric(state: QuestionState, lines: Iterable[str]) -> SetRubric:
    """The edit that makes ``lines`` the question's whole rubric.

    Parameters
    ----------
    state : QuestionState
        The question as the instructor saw it (for the ids of its current items).
    lines : iterable of str
        One item per line; blank lines are skipped.

    Returns
    -------
    SetRubric

    Raises
    ------
    ValueError
        Naming the line (1-based, counting only non-blank lines) that is not an item.
    """
    by_text = {rubric_key(i.description): i.item_id for i in state.rubric}
    parsed: list[tuple[int | None, str, float]] = []
    for n, line in enumerate((raw.strip() for raw in lines if raw.strip()), start=1):
        text, sep, points = line.rpartition("=")
        if not sep or not text.strip():
            raise ValueError(f"rubric line {n} {line!r} is not DESCRIPTION=POINTS (e.g. 'names the closed path=2')")
        try:
            value = float(points)
        except ValueError:
            raise ValueError(f"rubric line {n} {line!r}: {points.strip()!r} is not a number of points") from None
        if not math.isfinite(value):
            raise ValueError(f"rubric line {n} {line!r}: {points.strip()!r} is not a finite number of points")
        # "ID: " as rubric_lines writes it, a space after the colon: "1:1 mixture" and
        # "10:30 am" are descriptions, not item 1 and item 10.
        written = _WRITTEN_ID.match(text)
        if written:
            parsed.append((int(written.group(1)), written.group(2).strip(), value))
        else:
            parsed.append((None, text.strip(), value))
    # Ids written in the text are the instructor's; a line without one keeps the id of the
    # current item it names (unless another line took that id), else gets a new one that no
    # line uses ("4: new=1" and "another=1" are items 4 and 5, not 4 twice).
    keys = [rubric_key(description) for _, description, _ in parsed]
    for n, key in enumerate(keys, start=1):
        if keys.index(key) + 1 != n:
            raise ValueError(
                f"rubric lines {keys.index(key) + 1} and {n} read alike ({parsed[n - 1][1]!r}): graders could "
                "not tell the items apart; word them differently"
            )
    written = {item_id for item_id, _, _ in parsed if item_id is not None}
    next_id = max([state.next_rubric_item_id(), *(i + 1 for i in written)])
    items = []
    for item_id, description, value in parsed:
        if item_id is None:
            item_id = by_text.get(rubric_key(description))
            if item_id is None or item_id in written:
                item_id, next_id = next_id, next_id + 1
            written.add(item_id)
        items.append((item_id, description, value))
    return SetRubric(tuple(items))


def copy_rubric(source: QuestionState, target: QuestionState) -> SetRubric:
    """The edit that adds to ``target``'s rubric the items of ``source``'s that it lacks.

    For the versions of one exam question, or the same question asked again: the instructor
    writes the rubric once. The target keeps its own items (their ids, descriptions and
    points, so no grade given by them changes); an item of the source whose description
    (ignoring case) the target already has is not added again; the others are added, in the
    source's order, with ids that are new in the target.

    Parameters
    ----------
    source : QuestionState
        The question whose rubric is copied.
    target : QuestionState
        The question that receives the items, as the instructor saw it.

    Returns
    -------
    SetRubric
        The target's whole new rubric.

    Raises
    ------
    ValueError
        When the source has no rubric, or the target already has every item of it.
    """
    if not source.rubric:
        raise ValueError(f"question {source.question_id} has no rubric to copy")
    have = {rubric_key(i.description) for i in target.rubric}
    next_id = target.next_rubric_item_id()
    added = []
    for item in source.rubric:
        if rubric_key(item.description) not in have:
            added.append((next_id, item.description, item.points))
            have.add(rubric_key(item.description))
            next_id += 1
    if not added:
        raise ValueError(f"question {target.question_id} already has every item of question {source.question_id}'s rubric")
    return SetRubric((*target.rubric, *added))


def rubric_lines(state: QuestionState) -> list[str]:
    """The current rubric in the form :func:`parse_rubric` reads, ids included."""
    return [f"{i.item_id}: {i.description}={_points_text(i.points)}" for i in state.rubric]


def _points_text(points: float) -> str:
    # Every digit: the editor shows these lines and saving them must not reprice an item
    # (":g" wrote 0.3333333 as 0.333333 and 1234567 as 1.23457e+06).
    text = repr(float(points))
    return text[:-2] if text.endswith(".0") else text


def item_use(state: QuestionState) -> dict[int, int]:
    """How many answers each rubric item is applied to, by their effective grades.

    Parameters
    ----------
    state : QuestionState

    Returns
    -------
    dict of int to int
        Every item of the rubric (0 when unused): what repricing it would regrade, and how
        common the mistake or merit it names is.
    """
    use = {i.item_id: 0 for i in state.rubric}
    for answer_id in state.positions:
        grade = state.grade_of(answer_id)
        for item in grade.items if grade is not None else ():
            if item in use:
                use[item] += 1
    return use


def item_label(item: RubricItem) -> str:
    """``"names the closed path (+2)"``."""
    return f"{item.description} ({item.points:+g})"


def rubric_text(state: QuestionState, items: Sequence[int], adjustment: float = 0.0) -> str:
    """The rubric items' labels, in rubric order, ``"; "``-separated (for exports and lists),
    then the point adjustment when there is one: ``"names the closed path (+2); adjustment (-0.5)"``.

    Parameters
    ----------
    state : QuestionState
        Whose rubric names the items.
    items : sequence of int
        Rubric item ids (of a grade).
    adjustment : float
        The grade's point adjustment.

    Returns
    -------
    str
    """
    chosen = set(items)
    labels = [item_label(i) for i in state.rubric if i.item_id in chosen]
    if adjustment:
        labels.append(f"adjustment ({adjustment:+g})")
    return "; ".join(labels)
