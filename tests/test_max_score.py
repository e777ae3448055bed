"""A question's maximum score: set in the log, enforced on every grade, undone like any edit.

A grade outside [0, maximum] is the wrong grade the product must never apply silently (a typo
of 50 for 5.0, a grade given against an old maximum): the fold refuses it and says why.
"""

from __future__ import annotations

import numpy as np
import pytest

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import STATE_FORMAT, edit_from_dict, edit_to_dict, state_from_dict, state_to_dict
from grouper.edits import (
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    QuestionState,
    SetMaxScore,
    Undo,
    initial_state,
    replay,
)
from test_edits import Log  # the log helper of the fold's own tests

IDS = [f"a{i}" for i in range(6)]


@pytest.fixture
def start() -> QuestionState:
    # group 1: a0 a1 a2, group 2: a3 a4; a5 ungrouped
    labels = np.array([1, 1, 1, 2, 2, UNGROUPED])
    grouping = Grouping(labels, np.ones(6), (Group(1, "one", (0, 1, 2)), Group(2, "two", (3, 4))))
    return initial_state("q", IDS, grouping)


def test_the_payload_checks_its_value():
    assert SetMaxScore(5).max_score == 5.0
    assert SetMaxScore(None).max_score is None
    for bad in (0, -1, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError, match="max_score"):
            SetMaxScore(bad)


def test_without_a_maximum_any_finite_score_is_taken(start):
    log = Log(start)
    assert log.do("ada", GradeGroup(1, 50.0)).groups[1].grade.score == 50.0
    assert log.state.max_score is None


def test_grades_must_lie_between_zero_and_the_maximum(start):
    log = Log(start)
    log.do("ada", SetMaxScore(5))
    assert (log.state.max_score, log.state.max_score_mark.author) == (5.0, "ada")
    with pytest.raises(EditRefused, match=r"score 50 is above the question's maximum score 5 \(set by ada at version 1\)"):
        log.do("ben", GradeGroup(1, 50.0))
    with pytest.raises(EditRefused, match="score -1 is below 0"):
        log.do("ben", GradeAnswer("a5", -1.0))
    log.do("ben", GradeGroup(1, 5.0))
    log.do("ben", GradeAnswer("a5", 0.0))
    assert log.state.grade_of("a0").score == 5.0 and log.state.grade_of("a5").score == 0.0


def test_a_grade_given_against_an_older_maximum_is_refused(start):
    """Ben saw "out of 10" and gives 5 (half marks); Ada meanwhile made the question out of 5,
    where 5 is full marks. Ben's grade fits the new range but means something else now."""
    log = Log(start)
    log.do("ada", SetMaxScore(10))
    log.do("ben", GradeGroup(2, 3.0))
    log.do("ada", SetMaxScore(5), base=1)
    with pytest.raises(EditRefused, match="maximum score was changed to 5 by ada at version 3"):
        log.do("ben", GradeGroup(1, 5.0), base=2)
    log.do("ben", GradeGroup(1, 2.5), base=3)  # having seen the change
    # clearing a grade needs no look at the maximum
    assert log.do("ben", GradeGroup(2, None), base=2).groups[2].grade is None


def test_the_maximum_cannot_go_below_a_grade_given(start):
    log = Log(start)
    log.do("ada", SetMaxScore(10))
    log.do("ben", GradeGroup(1, 8.0))
    log.do("ben", GradeAnswer("a3", 7.0))
    with pytest.raises(EditRefused, match=r"group 1 is graded 8.*answer 'a3' has its own grade 7.*above the new maximum score 5"):
        log.do("ada", SetMaxScore(5))
    assert log.do("ada", SetMaxScore(8)).max_score == 8.0
    with pytest.raises(EditRefused, match="already 8"):
        log.do("ada", SetMaxScore(8))


def test_two_instructors_setting_the_maximum_at_once(start):
    log = Log(start)
    log.do("ada", SetMaxScore(10))
    with pytest.raises(EditRefused, match="maximum score was set to 10 by ada at version 1"):
        log.do("cy", SetMaxScore(4), base=0)


def test_removing_the_maximum(start):
    log = Log(start)
    log.do("ada", SetMaxScore(5))
    assert log.do("ada", SetMaxScore(None)).max_score is None
    log.do("ben", GradeGroup(1, 50.0))
    with pytest.raises(EditRefused, match="no maximum score to remove"):
        log.do("ada", SetMaxScore(None))


def test_undo_restores_the_maximum_it_replaced(start):
    log = Log(start)
    log.do("ada", SetMaxScore(10))
    log.do("ada", SetMaxScore(5))
    assert log.do("ada", Undo(2)).max_score == 10.0
    assert log.do("ada", Undo(3)).max_score == 5.0  # undoing the undo sets it again
    assert log.do("ada", Undo(4)).max_score == 10.0
    assert log.do("ada", Undo(1)).max_score is None
    assert replay(log.initial, log.edits) == log.state


def test_undo_of_a_maximum_set_later_again_is_refused(start):
    log = Log(start)
    log.do("ada", SetMaxScore(10))
    log.do("cy", SetMaxScore(5))
    with pytest.raises(EditRefused, match="set to 5 by cy at version 2; undo edit 2 first"):
        log.do("ada", Undo(1))


def test_undo_never_brings_back_a_grade_above_the_maximum(start):
    log = Log(start)
    log.do("ben", GradeGroup(1, 8.0))
    log.do("ben", GradeGroup(1, None))
    log.do("ada", SetMaxScore(5))
    # (the grade was given with no maximum, so it is refused before its score is looked at)
    with pytest.raises(EditRefused, match="earlier grade 8 was given out of no maximum, and the maximum was changed to 5"):
        log.do("ben", Undo(2))
    # nor an undo of the maximum that would leave a grade above the old one
    log2 = Log(start)
    log2.do("ada", SetMaxScore(5))
    log2.do("ada", SetMaxScore(10))
    log2.do("ben", GradeGroup(1, 8.0))
    with pytest.raises(EditRefused, match="group 1 was graded 8 out of 10 by ben at version 3; undo edit 3 first"):
        log2.do("ada", Undo(2))


def test_merging_and_moving_need_no_look_at_the_maximum(start):
    log = Log(start)
    log.do("ada", SetMaxScore(5))
    log.do("ben", Merge(1, (2,)), base=0)
    assert log.state.groups[1].members == ("a0", "a1", "a2", "a3", "a4")


def test_codec_round_trips_the_maximum_its_mark_and_undo_record(start):
    log = Log(start)
    log.do("ada", SetMaxScore(5.5))
    log.do("ada", SetMaxScore(None))
    log.do("ada", Undo(2))
    for edit in log.edits:
        assert edit_from_dict(edit_to_dict(edit)) == edit
    assert state_from_dict(state_to_dict(log.state)) == log.state
    # a snapshot of the format before question attributes is not read (the store rebuilds it)
    old = state_to_dict(start) | {"format": 1}
    with pytest.raises(ValueError, match=f"state format 1 is not the supported format {STATE_FORMAT}"):
        state_from_dict(old)


def test_undoing_what_leaves_a_grade_as_it_is_needs_no_look_at_the_maximum(start):
    """Group 1 was graded 4 out of 10, then the maximum became 5 (the grade fits): undoing a
    later rename gives the grade back unchanged, so it is allowed."""
    log = Log(start)
    log.do("ada", SetMaxScore(10))
    log.do("ben", GradeGroup(1, 4.0))
    log.do("ada", SetMaxScore(5))
    from grouper.edits import Rename

    log.do("ben", Rename(1, "Canberra!"))
    assert log.do("ben", Undo(4)).groups[1].grade.score == 4.0


def test_an_undo_gives_back_a_grade_as_it_stood_under_a_later_maximum(start):
    """4 given out of 10, the maximum raised to 20 while it stood, then cleared: the grade stood
    as 4 out of 20 just before the clear, so undoing the clear gives back just that."""
    log = Log(start)
    log.do("ada", SetMaxScore(10))  # v1
    log.do("ben", GradeGroup(1, 4.0))  # v2: 4 of 10
    log.do("ada", SetMaxScore(20))  # v3: the grade stands, now out of 20
    log.do("ben", GradeGroup(1, None))  # v4
    state = log.do("ben", Undo(4))
    assert state.groups[1].grade.score == 4.0 and state.max_score == 20.0
    assert replay(log.initial, log.edits) == log.state


def test_a_check_of_grades_seen_under_another_maximum_is_refused(start):
    from grouper.edits import CheckGrades

    log = Log(start)
    log.do("ada", SetMaxScore(10))  # v1
    log.do("ben", GradeAnswer("a5", 4.0))  # v2: 4 of 10
    log.do("ada", SetMaxScore(5))  # v3
    # ben looked at "4 of 10" at version 2; "4 of 5" is another grade he has not looked at
    with pytest.raises(EditRefused, match="the question's maximum score was changed to 5 by ada at version 3"):
        log.do("ben", CheckGrades(("a5",)), base=2)
    assert log.state.grade_check("a5") is None
    assert log.do("ben", CheckGrades(("a5",))).grade_check("a5") is not None  # seen as it is now


def test_the_advice_of_a_refused_undo_never_goes_round_in_a_circle(start):
    """Undoing the maximum's change waits on the grade given under it; undoing that grade gives
    back the one it replaced, which stood under the same maximum, so it goes through and the
    advice leads somewhere (it used to answer "undo edit 3 first", and edit 3 "undo edit 4")."""
    log = Log(start)
    log.do("ada", SetMaxScore(10))  # v1
    log.do("ben", GradeGroup(1, 4.0))  # v2: 4 of 10
    log.do("ada", SetMaxScore(5))  # v3: 4 still fits
    log.do("ben", GradeGroup(1, 3.0))  # v4: 3 of 5
    with pytest.raises(EditRefused, match="group 1 was graded 3 out of 5 by ben at version 4; undo edit 4 first"):
        log.do("ada", Undo(3))
    assert log.do("ben", Undo(4)).groups[1].grade.score == 4.0  # 4, as it stood out of 5
    state = log.do("ada", Undo(3))  # and now the maximum can go back
    assert state.max_score == 10.0 and state.groups[1].grade.score == 4.0
    assert replay(log.initial, log.edits) == log.state
