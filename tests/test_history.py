"""A question's history (grouper.history): every edit in words, who made it, and its undo."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import (
    NEW,
    AddAnswers,
    CheckGrades,
    Confirm,
    Delete,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    Rename,
    SetMaxScore,
    SetReferences,
    Split,
    Undo,
    initial_state,
)
from grouper.history import describe, history
from test_edits import Log

IDS = [f"a{i}" for i in range(8)]


@pytest.fixture
def log() -> Log:
    labels = np.array([1, 1, 1, 2, 2, 3, 3, UNGROUPED])
    groups = (Group(1, "one", (0, 1, 2)), Group(2, "two", (3, 4)), Group(3, "three", (5, 6)))
    return Log(initial_state("q", IDS, Grouping(labels, np.ones(8), groups)))


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (Confirm(2), "confirmed group 2"),
        (Merge(1, (2, 3)), "merged groups 2, 3 into group 1"),
        (Split(1, (("a0",), ("a1", "a2"))), "split group 1 into 2 parts"),
        (Move(("a0",), None), "moved answer a0 to the ungrouped answers"),
        (Move(("a0", "a1", "a2", "a3", "a4", "a5", "a6"), 2), "moved 7 answers (a0, a1, a2, a3, a4 and 2 more) to group 2"),
        (Move(("a7",), NEW, title="odd"), "moved answer a7 to a new group titled 'odd'"),
        (Delete(3), "deleted group 3"),
        (Rename(1, "Canberra"), "renamed group 1 to 'Canberra'"),
        (GradeGroup(1, 1.5, "good"), "graded group 1: 1.5 (good)"),
        (GradeGroup(1, None), "cleared the grade of group 1"),
        (GradeAnswer("a7", 0.0), "gave answer a7 its own grade: 0"),
        (GradeAnswer("a7", None), "cleared the own grade of answer a7"),
        (AddAnswers(("l1", "l2"), (1, None)), "added 2 late answers (l1, l2)"),
        (SetMaxScore(5), "set the maximum score to 5"),
        (SetMaxScore(None), "removed the maximum score"),
        (SetReferences(("x", "y")), "set 2 reference answers"),
        (SetReferences(()), "removed the reference answers"),
        (CheckGrades(("a1", "a2")), "checked the grades of 2 answers (a1, a2): right as given"),
        (Undo(4), "undid edit 4"),
    ],
)
def test_every_kind_of_edit_is_said_in_words(payload, words):
    assert describe(payload) == words


def test_history_lists_each_edit_with_its_author_and_whether_it_still_stands(log):
    log.do("ada", Confirm(1))
    log.do("ben", GradeGroup(2, 1.0))
    log.do("ada", Undo(1))
    rows = history(log.edits, log.state)
    assert [(r.edit_id, r.author, r.kind, r.summary) for r in rows] == [
        (3, "ada", "undo", "undid edit 1"),
        (2, "ben", "grade", "graded group 2: 1"),
        (1, "ada", "confirm", "confirmed group 1"),
    ]
    assert [r.undone_by for r in rows] == [None, None, 3]
    assert all(isinstance(r.at, datetime) and r.at.tzinfo == timezone.utc for r in rows)


def test_history_filters_by_author_and_kind_and_undoing_an_undo_restores_standing(log):
    log.do("ada", Confirm(1))
    log.do("ben", Undo(1))
    log.do("ada", Undo(2))
    assert history(log.edits, log.state)[-1].undone_by is None  # confirm 1 stands again
    assert [r.edit_id for r in history(log.edits, log.state, authors={"ben"})] == [2]
    assert [r.edit_id for r in history(log.edits, log.state, kinds={"confirm"})] == [1]
