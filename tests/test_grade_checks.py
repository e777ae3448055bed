"""Grade checks (``CheckGrades``): a grader's logged word that an answer's grade is right.

What graders rely on: a check is attributed and replayable like every edit; it holds only
while the answer still has the grade that was checked (a regrade, a move or a repricing lapses
it, and undoing that change brings it back); it is refused when what the grader saw has
changed since; and it is undone like any other edit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_edits import Log  # the log helper of the fold's own tests

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import edit_from_dict, edit_to_dict, payload_from_dict, state_from_dict, state_to_dict
from grouper.edits import (
    NEW,
    CheckGrades,
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Move,
    QuestionState,
    SetRubric,
    Undo,
    initial_state,
    replay,
)
from grouper.feedback import question_pairs
from grouper.history import describe

IDS = [f"a{i}" for i in range(7)]


@pytest.fixture
def start() -> QuestionState:
    # group 1: a0 a1 a2, group 2: a3 a4; a5 a6 ungrouped
    labels = np.array([1, 1, 1, 2, 2, UNGROUPED, UNGROUPED])
    grouping = Grouping(labels, np.ones(7), (Group(1, "one", (0, 1, 2)), Group(2, "two", (3, 4))))
    return initial_state("q", IDS, grouping)


@pytest.fixture
def graded(start) -> Log:
    log = Log(start)
    log.do("ada", GradeGroup(1, 2.0, "right"))  # 1
    log.do("ada", GradeGroup(2, 0.0))  # 2
    log.do("ada", GradeAnswer("a5", 1.0))  # 3
    return log


def test_a_check_holds_the_grade_that_was_checked_and_says_who(graded):
    before = graded.state.content()
    state = graded.do("ben", CheckGrades(("a1", "a5")))
    check = state.grade_check("a1")
    assert check is not None and check.by == "ben" and check.version == 4
    assert check.grade.score == 2.0 and check.grade.comment == "right"
    assert state.grade_check("a5").grade.score == 1.0
    assert state.grade_check("a0") is None  # not named
    assert state.last_change.grades_checked == ("a1", "a5")
    assert state.last_change.grade_changes == ()  # no grade changes
    assert state.content() == before  # groups and grades are as they were
    assert describe(CheckGrades(("a1",))) == "checked the grade of answer a1: right as given"
    assert describe(CheckGrades(("a1", "a5"))) == "checked the grades of 2 answers (a1, a5): right as given"


def test_a_regrade_lapses_the_check_and_undoing_the_regrade_brings_it_back(graded):
    graded.do("ben", CheckGrades(("a1",)))  # 4
    state = graded.do("ada", GradeGroup(1, 1.0))  # 5
    assert state.grade_check("a1") is None  # checked at 2, graded 1 now
    state = graded.do("ada", Undo(5))
    assert state.grade_check("a1") is not None and state.grade_check("a1").by == "ben"


def test_a_move_or_an_own_grade_lapses_the_check(graded):
    graded.do("ben", CheckGrades(("a0", "a1")))
    state = graded.do("ada", Move(("a0",), 2))
    assert state.grade_check("a0") is None  # graded 0 in group 2 now
    state = graded.do("ada", GradeAnswer("a1", 0.5))
    assert state.grade_check("a1") is None


def test_repricing_a_rubric_item_lapses_a_check_of_a_grade_with_it(start):
    log = Log(start)
    log.do("prof", SetRubric(((1, "names the path", 2.0),)))  # 1
    log.do("ada", GradeGroup(1, None, items=(1,)))  # 2
    log.do("ben", CheckGrades(("a0",)))  # 3
    state = log.do("prof", SetRubric(((1, "names the path", 3.0),)))
    assert state.grade_of("a0").score == 3.0 and state.grade_check("a0") is None


def test_only_graded_known_answers_can_be_checked(graded):
    with pytest.raises(EditRefused, match=r"answer\(s\) 'a6' have no grade to check; grade them first"):
        graded.do("ben", CheckGrades(("a1", "a6")))
    with pytest.raises(EditRefused, match="'zz' is not an answer to question q"):
        graded.do("ben", CheckGrades(("zz",)))
    assert graded.state.grade_checks == {}  # nothing half-applied


def test_a_check_made_on_a_view_from_before_a_regrade_or_a_move_is_refused(graded):
    graded.do("ada", GradeGroup(1, 1.0))  # 4: ben saw version 3, group 1 graded 2
    with pytest.raises(EditRefused, match="group 1 was graded 1 by ada at version 4"):
        graded.do("ben", CheckGrades(("a0",)), base=3)
    graded.do("ada", Move(("a3",), 1))  # 5
    with pytest.raises(EditRefused, match="answer 'a3' was moved"):
        graded.do("ben", CheckGrades(("a3",)), base=4)
    # An answer with its own grade depends on nothing but itself.
    graded.do("ben", CheckGrades(("a5",)), base=3)  # groups changed since, a5 did not


def test_a_check_made_on_a_view_from_before_an_undo_of_the_grade_is_refused(graded):
    graded.do("ada", GradeGroup(1, 1.0))  # 4
    graded.do("ada", Undo(4))  # 5: back to 2 (a grade given at version 1)
    with pytest.raises(EditRefused, match="group 1 was restored by undoing edit 4 by ada at version 5"):
        graded.do("ben", CheckGrades(("a0",)), base=4)  # ben saw 1, not the 2 there now


def test_checking_again_is_nothing_to_do_but_a_new_answer_alongside_is_checked(graded):
    graded.do("ben", CheckGrades(("a0",)))  # 4
    with pytest.raises(EditRefused, match="'a0''s grade 2 was already checked by ben at version 4; nothing to do"):
        graded.do("cy", CheckGrades(("a0",)))
    state = graded.do("cy", CheckGrades(("a0", "a1")))
    assert state.last_change.grades_checked == ("a1",)
    assert state.grade_check("a0").by == "ben"  # the first check stands


def test_a_lapsed_check_can_be_made_again(graded):
    graded.do("ben", CheckGrades(("a0",)))
    graded.do("ada", GradeGroup(1, 1.0))
    state = graded.do("ben", CheckGrades(("a0",)))
    assert state.grade_check("a0").grade.score == 1.0


def test_undo_takes_a_check_back_and_undoing_the_undo_gives_it_back(graded):
    graded.do("ben", CheckGrades(("a0", "a1")))  # 4
    state = graded.do("ben", Undo(4))  # 5
    assert state.grade_checks == {} and state.last_change.grades_checked == ("a0", "a1")
    state = graded.do("ben", Undo(5))
    assert state.grade_check("a0").version == 4 and state.grade_check("a1").by == "ben"


def test_a_check_is_a_change_to_the_answer_for_stale_edits_and_undo_order(graded):
    graded.do("ada", Move(("a6",), 1))  # 4: a6 joins group 1, graded 2
    graded.do("ben", CheckGrades(("a6",)))  # 5
    with pytest.raises(EditRefused, match="answer 'a6' was checked at grade 2 by ben at version 5"):
        graded.do("ada", Move(("a6",), NEW), base=4)
    with pytest.raises(EditRefused, match="edit 4 cannot be undone: answer 'a6' was checked .* undo edit 5 first"):
        graded.do("ada", Undo(4))
    graded.do("ada", Undo(5))
    state = graded.do("ada", Undo(4))
    assert state.location["a6"] is None and state.grade_checks == {}


def test_checks_replay_and_survive_a_snapshot_and_the_json_of_the_log(graded):
    graded.do("ben", CheckGrades(("a0", "a5")))
    graded.do("ada", GradeGroup(1, 1.0))
    graded.do("ada", Undo(5))
    graded.do("ben", Undo(4))
    graded.do("ben", Undo(7))
    state = graded.state
    assert replay(graded.initial, graded.edits) == state
    assert state_from_dict(json.loads(json.dumps(state_to_dict(state)))) == state
    for edit in graded.edits:
        assert edit_from_dict(json.loads(json.dumps(edit_to_dict(edit)))) == edit
    assert state.grade_check("a0") is not None


def test_a_check_payload_refuses_bad_answer_lists():
    with pytest.raises(ValueError, match="check_grades: answer_ids is empty"):
        CheckGrades(())
    with pytest.raises(ValueError, match="names answer 'a1' more than once"):
        CheckGrades(("a1", "a1"))
    with pytest.raises(ValueError, match="check_grades edit has unknown field"):
        payload_from_dict({"kind": "check_grades", "answer_ids": ["a1"], "grade": 2})


def test_a_check_links_the_answer_with_its_groupmates_graded_as_it_is_and_undo_removes_it(graded):
    graded.do("ada", GradeAnswer("a2", 0.0))  # 4: a2 graded apart from group 1
    graded.do("ben", CheckGrades(("a1",)))  # 5
    texts = {a: a for a in IDS}
    pairs = {(p.answer_id_a, p.answer_id_b): p for p in question_pairs(graded.initial, graded.edits, texts)}
    assert pairs[("a0", "a1")].together and pairs[("a0", "a1")].edit_id == 5 and pairs[("a0", "a1")].author == "ben"
    assert not pairs[("a1", "a2")].together and pairs[("a1", "a2")].edit_id == 5
    graded.do("ben", Undo(5))
    pairs = {(p.answer_id_a, p.answer_id_b): p for p in question_pairs(graded.initial, graded.edits, texts)}
    assert pairs[("a0", "a1")].edit_id == 1  # back to what the group's grade said
