"""A question's rubric: items with points, grades given as items, and regrading by the rubric.

What graders rely on: a grade given as rubric items is always worth their current points;
changing an item's points regrades everyone who has it, in one logged edit that says whose
grades changed and is undone like any other; and nothing leaves a grade naming an item that
is not in the rubric, or worth points its items no longer have.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_edits import Log  # the log helper of the fold's own tests

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import (
    edit_from_dict,
    edit_to_dict,
    payload_from_dict,
    payload_to_dict,
    state_from_dict,
    state_to_dict,
)
from grouper.edits import (
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    QuestionState,
    RubricItem,
    SetMaxScore,
    SetRubric,
    Undo,
    initial_state,
    replay,
)

IDS = [f"a{i}" for i in range(6)]
RUBRIC = ((1, "names the closed path", 2.0), (2, "says the bulb lights", 1.0), (3, "wrong units", -0.5))


@pytest.fixture
def start() -> QuestionState:
    # group 1: a0 a1 a2, group 2: a3 a4; a5 ungrouped
    labels = np.array([1, 1, 1, 2, 2, UNGROUPED])
    grouping = Grouping(labels, np.ones(6), (Group(1, "one", (0, 1, 2)), Group(2, "two", (3, 4))))
    return initial_state("q", IDS, grouping)


@pytest.fixture
def graded(start) -> Log:
    log = Log(start)
    log.do("ada", SetRubric(RUBRIC))  # 1
    log.do("ben", GradeGroup(1, None, items=(1, 2)))  # 2: 3 points
    log.do("ben", GradeGroup(2, None, items=(2, 3)))  # 3: 0.5 points
    log.do("ben", GradeAnswer("a5", None, "", items=(1,)))  # 4: 2 points
    return log


def test_the_payload_checks_its_items():
    rubric = SetRubric(RUBRIC)
    assert rubric.items[0] == RubricItem(1, "names the closed path", 2.0)
    assert SetRubric(()).items == ()
    for bad, message in [
        (((1, "a", 1), (1, "b", 2)), "item id 1 is given twice"),
        (((1, "a", 1), (2, " A ", 2)), "description 'a' is given twice"),
        (((0, "a", 1),), "rubric item id is an integer >= 1"),
        (((1, "", 1),), "item 1 needs a description"),
        (((1, "a", float("nan")),), "item 1's points must be a finite number"),
        (((1, "a"),), r"an item is \(id, description, points\)"),
        ("abc", "must be a sequence"),
    ]:
        with pytest.raises(ValueError, match=message):
            SetRubric(bad)
    assert GradeGroup(1, None, items=(3, 1)).items == (1, 3)  # a set, in id order
    with pytest.raises(ValueError, match="names a rubric item more than once"):
        GradeGroup(1, None, items=(1, 1))
    with pytest.raises(ValueError, match="a comment needs a score or rubric items"):
        GradeAnswer("a1", None, "nice")
    assert GradeGroup(1, None, "see item", items=(1,)).comment == "see item"


def test_a_grade_of_items_is_worth_their_points(graded):
    state = graded.state
    assert state.rubric == tuple(RubricItem(*i) for i in RUBRIC) and state.rubric_mark.author == "ada"
    assert (state.grade_of("a0").score, state.grade_of("a0").items) == (3.0, (1, 2))
    assert state.grade_of("a3").score == 0.5
    assert state.grade_of("a5").score == 2.0 and state.grade_source("a5") == "override"


def test_grading_by_items_checks_them(graded):
    with pytest.raises(EditRefused, match=r"rubric item\(s\) 9 are not in question q's rubric"):
        graded.do("ben", GradeGroup(1, None, items=(1, 9)))
    with pytest.raises(EditRefused, match=r"score 2 is not the sum of the rubric items' points \(3\)"):
        graded.do("ben", GradeAnswer("a1", 2.0, items=(1, 2)))
    with pytest.raises(EditRefused, match="already has grade 3"):
        graded.do("ben", GradeGroup(1, 3.0, items=(2, 1)))
    # the same score as a bare number is another grade: it no longer follows the rubric
    assert graded.do("ben", GradeGroup(1, 3.0)).groups[1].grade.items == ()


def test_changing_an_items_points_regrades_everyone_who_has_it(graded):
    state = graded.do("ada", SetRubric(((1, "names the closed path", 2.5), *RUBRIC[1:])))
    assert state.grade_of("a0").score == 3.5  # group 1: items 1, 2
    assert state.grade_of("a3").score == 0.5  # group 2 has no item 1: untouched
    assert state.grade_of("a5").score == 2.5  # a5's own grade: item 1
    change = state.last_change
    assert {c.answer_id for c in change.grade_changes} == {"a0", "a1", "a2", "a5"}
    assert change.groups_changed == (1,)
    assert "regraded" in state.groups[1].change and state.groups[1].changed_by == "ada"
    # who chose the items stays on the grade
    assert state.grade_of("a0").by == "ben"
    assert state.rubric_mark.what == "changed (item 'names the closed path' now worth other points)"


def test_rewording_an_item_regrades_nobody(graded):
    state = graded.do("ada", SetRubric(((1, "closed path named", 2.0), *RUBRIC[1:])))
    assert state.last_change.grade_changes == ()
    assert state.rubric_item(1).description == "closed path named"


def test_an_item_in_use_cannot_be_removed(graded):
    with pytest.raises(EditRefused, match=r"rubric item .wrong units. is part of 1 grade \(group 2\); give those groups"):
        graded.do("ada", SetRubric(RUBRIC[:2]))
    graded.do("ben", GradeGroup(2, 1.0))  # group 2 no longer uses item 3
    assert [i.item_id for i in graded.do("ada", SetRubric(RUBRIC[:2])).rubric] == [1, 2]


def test_a_grade_given_against_an_older_rubric_is_refused(graded):
    """Cy saw item 1 worth 2 and ticked it for a0's override; Ada meanwhile made it worth 1.
    The score Cy meant is not the one the item now gives."""
    graded.do("ada", SetRubric(((1, "names the closed path", 1.0), *RUBRIC[1:])))  # 5
    with pytest.raises(EditRefused, match="rubric was changed .* by ada at version 5"):
        graded.do("cy", GradeAnswer("a0", None, items=(1,)), base=4)
    # a bare score needs no look at the rubric
    assert graded.do("cy", GradeAnswer("a0", 1.0), base=4).grade_of("a0").score == 1.0


def test_two_instructors_changing_the_rubric_at_once(graded):
    graded.do("ada", SetRubric(((1, "names the closed path", 1.0), *RUBRIC[1:])))
    with pytest.raises(EditRefused, match="rubric was changed .* by ada at version 5"):
        graded.do("cy", SetRubric(((1, "names the closed path", 3.0), *RUBRIC[1:])), base=4)


def test_regrading_cannot_push_a_grade_past_the_maximum(graded):
    graded.do("ada", SetMaxScore(3))
    with pytest.raises(EditRefused, match="score 4 is above the question's maximum score 3"):
        graded.do("ada", SetRubric(((1, "names the closed path", 3.0), *RUBRIC[1:])))
    with pytest.raises(EditRefused, match="score -0.5 is below 0"):
        graded.do("ada", SetRubric((RUBRIC[0], (2, "says the bulb lights", 0.0), RUBRIC[2])))


def test_undo_of_a_rubric_change_gives_the_old_grades_back(graded):
    before = graded.state
    graded.do("ada", SetRubric(((1, "names the closed path", 2.5), *RUBRIC[1:])))  # 5
    state = graded.do("ada", Undo(5))
    assert state.content() == before.content() and state.rubric == before.rubric
    state = graded.do("ada", Undo(6))  # and undoing the undo regrades again
    assert state.grade_of("a0").score == 3.5 and state.grade_of("a5").score == 2.5
    assert replay(graded.initial, graded.edits) == graded.state


def test_undo_of_a_rubric_change_waits_for_grades_that_depend_on_it(graded):
    graded.do("ada", SetRubric((*RUBRIC, (4, "draws the circuit", 1.0))))  # 5: adds item 4
    graded.do("ben", GradeAnswer("a1", None, items=(1, 4)))  # 6
    with pytest.raises(EditRefused, match=r"answer 'a1' was graded with the rubric by ben at version 6; undo edit 6 first"):
        graded.do("ada", Undo(5))
    graded.do("ben", Undo(6))
    assert graded.do("ada", Undo(5)).rubric == tuple(RubricItem(*i) for i in RUBRIC)


def test_undo_puts_back_a_rubric_grade_at_the_current_points(graded):
    """Ben replaces group 1's item grade by a bare 7; the item is then repriced; undoing
    Ben's edit gives the items back, worth what they are worth now."""
    graded.do("ben", GradeGroup(1, 7.0))  # 5
    graded.do("ada", SetRubric(((1, "names the closed path", 5.0), *RUBRIC[1:])))  # 6: a5 regraded
    state = graded.do("ben", Undo(5))
    assert state.grade_of("a0").items == (1, 2) and state.grade_of("a0").score == 6.0
    assert {c.answer_id: c.after.score for c in state.last_change.grade_changes} == dict.fromkeys(("a0", "a1", "a2"), 6.0)
    assert replay(graded.initial, graded.edits) == graded.state


def test_undo_never_puts_back_an_item_removed_from_the_rubric(graded):
    graded.do("ben", GradeGroup(2, 1.0))  # 5: group 2 off item 3
    graded.do("ada", SetRubric(RUBRIC[:2]))  # 6: item 3 removed
    with pytest.raises(EditRefused, match=r"rubric item\(s\) 3, no longer in the rubric \(ada changed the rubric at version 6"):
        graded.do("ben", Undo(5))


def test_undoing_a_repricing_reprices_grades_an_undo_brought_back_in_between(graded):
    graded.do("ben", GradeGroup(1, 7.0))  # 5: group 1 off the rubric
    graded.do("ada", SetRubric(((1, "names the closed path", 5.0), *RUBRIC[1:])))  # 6: item 1 worth 5
    assert graded.do("ben", Undo(5)).grade_of("a0").score == 6.0  # 7: items (1, 2) back, at today's points
    state = graded.do("ada", Undo(6))  # 8: item 1 worth 2 again
    # The grade is its items' worth under the rubric the undo leaves (it was 6, silently).
    assert state.grade_of("a0").score == 3.0 and state.grade_of("a0").items == (1, 2)
    assert replay(graded.initial, graded.edits) == state
    assert graded.do("ada", Undo(8)).grade_of("a0").score == 6.0  # and redone, back at 5 points


def test_an_undo_never_leaves_a_grade_naming_an_item_out_of_the_rubric(graded):
    graded.do("ben", GradeGroup(2, 1.0))  # 5: group 2 off items (2, 3)
    graded.do("ada", SetRubric(RUBRIC[:2]))  # 6: item 3, unused now, removed
    graded.do("ada", Undo(6))  # 7: item 3 back
    graded.do("ben", Undo(5))  # 8: group 2 back to items (2, 3)
    with pytest.raises(EditRefused, match="group 2 is graded with rubric item 3, which this would take out of the rubric"):
        graded.do("ada", Undo(7))


def test_moves_and_merges_carry_the_groups_rubric_grade(graded):
    state = graded.do("ben", Move(("a5",), 2))
    assert state.grade_of("a5").score == 2.0  # its own grade wins
    state = graded.do("ben", Merge(2, (1,)))
    assert state.grade_of("a0").items == (2, 3) and state.grade_of("a0").score == 0.5


def test_codec_round_trips_rubrics_graded_items_and_their_undo(graded):
    graded.do("ada", SetRubric(((1, "names the closed path", 2.5), *RUBRIC[1:])))
    graded.do("ada", Undo(5))
    for edit in graded.edits:
        assert edit_from_dict(edit_to_dict(edit)) == edit
    assert state_from_dict(state_to_dict(graded.state)) == graded.state
    # a bare-score grade is recorded as it was before rubrics existed, and such records read
    assert "items" not in payload_to_dict(GradeGroup(1, 2.0))
    assert payload_to_dict(GradeGroup(1, None, items=(2, 1)))["items"] == [1, 2]
    assert payload_from_dict({"kind": "grade", "group_id": 1, "score": 2.0, "comment": ""}) == GradeGroup(1, 2.0)


def test_the_grades_csv_names_each_grades_rubric_items(graded):
    import io

    from grouper.answers import Answer
    from grouper.exports import grade_rows, read_grades_csv, write_grades_csv

    graded.do("ada", SetRubric(((1, "names the closed path", 2.0), (2, "=says the bulb lights", 1.0), RUBRIC[2])))
    answers = [Answer(a, "q", f"text {a}", f"s{a}") for a in IDS]
    rows = {r.answer_id: r for r in grade_rows(graded.state, answers)}
    assert rows["a0"].rubric_items == "names the closed path (+2); =says the bulb lights (+1)"
    assert rows["a3"].rubric_items == "=says the bulb lights (+1); wrong units (-0.5)"
    assert rows["a5"].rubric_items == "names the closed path (+2)"
    buffer = io.StringIO(newline="")
    write_grades_csv(rows.values(), buffer)
    assert "'=says the bulb lights" in buffer.getvalue()  # never a formula, even from a rubric
    back = {r.answer_id: r for r in read_grades_csv(io.StringIO(buffer.getvalue(), newline=""))}
    assert back["a3"].rubric_items == rows["a3"].rubric_items and back["a3"].score == 0.5


def test_a_repriced_grade_is_still_its_graders_in_the_grades_csv(graded):
    # The grader chose the items; the instructor's repricing changed their points, not who graded.
    from grouper.answers import Answer
    from grouper.exports import grade_rows

    graded.do("ada", SetRubric(((1, "names the closed path", 3.0), *RUBRIC[1:])))
    rows = {r.answer_id: r for r in grade_rows(graded.state, [Answer(a, "q", f"text {a}", f"s{a}") for a in IDS])}
    assert rows["a0"].score == 4.0 and rows["a0"].graded_by == "ben" and rows["a5"].score == 3.0
    assert rows["a5"].graded_by == "ben" and rows["a3"].score == 0.5


def test_an_items_id_is_never_given_to_another_item(graded):
    """An undo may bring back a grade naming a removed item: its id must still mean it."""
    graded.do("ben", GradeGroup(2, 1.0))
    graded.do("ada", SetRubric(RUBRIC[:2]))  # item 3 retired
    assert graded.state.next_rubric_item_id() == 4
    with pytest.raises(EditRefused, match=r"item id 3 was 'wrong units' in an earlier rubric; .*next free one is 4"):
        graded.do("ada", SetRubric((*RUBRIC[:2], (3, "draws the circuit", 1.0))))
    graded.do("ada", SetRubric((*RUBRIC[:2], (4, "draws the circuit", 1.0))))
    assert graded.state.next_rubric_item_id() == 5


def test_a_stated_score_matches_its_items_sum_as_typed(start):
    log = Log(start)
    log.do("ada", SetRubric(((1, "a", 0.1), (2, "b", 0.2))))
    assert log.do("ben", GradeGroup(1, 0.3, items=(1, 2))).groups[1].grade.items == (1, 2)


def test_full_marks_by_items_of_decimal_points_are_the_maximum_not_above_it(start):
    log = Log(start)
    log.do("ada", SetMaxScore(0.3))
    log.do("ada", SetRubric(((1, "a", 0.1), (2, "b", 0.2))))
    # fsum(0.1, 0.2) is 0.30000000000000004, which the maximum 0.3 refused as above it.
    assert log.do("ben", GradeGroup(1, None, items=(1, 2))).groups[1].grade.score == 0.3


def test_item_use_counts_answers_by_their_effective_grades(graded):
    from grouper.rubric import item_use

    # group 1 (a0 a1 a2): items 1, 2; group 2 (a3 a4): items 2, 3; a5 on its own: item 1
    assert item_use(graded.state) == {1: 4, 2: 5, 3: 2}
    graded.do("ben", GradeAnswer("a0", 1.0))  # a bare override hides its group's items
    graded.do("ada", SetRubric((*RUBRIC, (4, "draws the circuit", 1.0))))
    assert item_use(graded.state) == {1: 3, 2: 4, 3: 2, 4: 0}


# --------------------------------------------------------------------------- point adjustments


def test_a_point_adjustment_goes_with_items_only():
    assert GradeGroup(1, None, items=(1,), adjustment=-1).adjustment == -1.0
    with pytest.raises(ValueError, match="a point adjustment goes with rubric items"):
        GradeGroup(1, 2.0, adjustment=0.5)
    with pytest.raises(ValueError, match="a point adjustment goes with rubric items"):
        GradeAnswer("a1", None, adjustment=0.5)
    for bad, message in [(float("inf"), "finite number"), (float("nan"), "finite number"), ("1", "number"), (True, "number")]:
        with pytest.raises(ValueError, match=f"grade_answer: adjustment must be a {message}"):
            GradeAnswer("a1", None, items=(1,), adjustment=bad)
    assert GradeAnswer("a1", None, items=(1,), adjustment=np.float32(0.5)).adjustment == 0.5  # numbers as scores are


def test_an_adjusted_grade_is_worth_its_items_and_its_adjustment(graded):
    state = graded.do("ben", GradeAnswer("a1", None, "forgot the units", items=(1, 2), adjustment=-0.5))
    grade = state.grade_of("a1")
    assert (grade.score, grade.items, grade.adjustment) == (2.5, (1, 2), -0.5)
    # a stated score is checked against items and adjustment together
    with pytest.raises(EditRefused, match=r"score 3 is not the sum of the rubric items' points and the adjustment \+0.25 \(3.25\)"):
        graded.do("ben", GradeAnswer("a2", 3.0, items=(1, 2), adjustment=0.25))
    assert graded.do("ben", GradeAnswer("a2", 3.25, items=(1, 2), adjustment=0.25)).grade_of("a2").score == 3.25
    # the same items with another adjustment is another grade; the same grade again is nothing to do
    with pytest.raises(EditRefused, match="already has override 2.5"):
        graded.do("ben", GradeAnswer("a1", None, "forgot the units", items=(1, 2), adjustment=-0.5))
    assert graded.do("ben", GradeAnswer("a1", None, "forgot the units", items=(1, 2))).grade_of("a1").adjustment == 0.0


def test_repricing_keeps_each_grades_adjustment(graded):
    graded.do("ben", GradeGroup(1, None, "good", items=(1, 2), adjustment=1.0))  # 4 points
    state = graded.do("ada", SetRubric(((1, "names the closed path", 2.5), *RUBRIC[1:])))
    assert state.grade_of("a0").score == 4.5 and state.grade_of("a0").adjustment == 1.0
    assert state.grade_of("a5").score == 2.5  # unadjusted grades as before
    assert graded.do("ada", Undo(6)).grade_of("a0").score == 4.0


def test_an_adjustment_counts_against_the_maximum(graded):
    graded.do("ada", SetMaxScore(3.0))
    with pytest.raises(EditRefused, match="score 3.5 is above the question's maximum score 3"):
        graded.do("ben", GradeGroup(1, None, items=(1, 2), adjustment=0.5))
    with pytest.raises(EditRefused, match="score -1.5 is below 0"):
        graded.do("ben", GradeAnswer("a5", None, items=(3,), adjustment=-1.0))


def test_grades_in_use_keep_adjusted_grades_apart(graded):
    from grouper.review import grades_in_use

    graded.do("ben", GradeAnswer("a0", None, items=(1, 2), adjustment=-0.5))
    presets = {(p.items, p.adjustment): p for p in grades_in_use(graded.state)}
    assert presets[((1, 2), -0.5)].score == 2.5 and presets[((1, 2), 0.0)].score == 3.0


def test_codec_and_exports_carry_the_adjustment(graded):
    from grouper.answers import Answer
    from grouper.exports import grade_rows
    from grouper.history import describe

    graded.do("ben", GradeAnswer("a1", None, items=(1,), adjustment=0.5))
    for edit in graded.edits:
        assert edit_from_dict(edit_to_dict(edit)) == edit
    assert state_from_dict(state_to_dict(graded.state)) == graded.state
    assert state_from_dict(state_to_dict(graded.state)).grade_of("a1").adjustment == 0.5
    # records of grades without an adjustment read as they did before adjustments existed
    assert "adjustment" not in payload_to_dict(GradeGroup(1, None, items=(1,)))
    assert payload_to_dict(GradeAnswer("a1", None, items=(1,), adjustment=0.5))["adjustment"] == 0.5
    rows = {r.answer_id: r for r in grade_rows(graded.state, [Answer(a, "q", "t", "") for a in IDS])}
    assert rows["a1"].rubric_items == "names the closed path (+2); adjustment (+0.5)" and rows["a1"].score == 2.5
    assert describe(graded.edits[-1].payload) == "gave answer a1 its own grade: rubric item 1, adjustment +0.5"


def test_a_rubric_is_copied_from_another_question_without_touching_the_targets_grades(graded):
    from grouper.rubric import copy_rubric

    other = Log(initial_state("q2", IDS, Grouping(np.ones(6, dtype=int), np.ones(6), (Group(1, "all", tuple(range(6))),))))
    with pytest.raises(ValueError, match="question q2 has no rubric to copy"):
        copy_rubric(other.state, graded.state)
    other.do("ada", SetRubric(((1, "Names The Closed Path", 5.0), (2, "explains why", 1.0), (3, "draws it", 0.5))))
    other.do("ben", GradeGroup(1, None, items=(1,)))
    graded.do("ben", GradeGroup(2, 1.0))
    graded.do("ada", SetRubric(RUBRIC[:2]))  # item 3 retired in q: its id is never given again
    copied = copy_rubric(other.state, graded.state)
    # q keeps its own items and points; what q lacks comes in with new ids
    assert copied.items == (*SetRubric(RUBRIC[:2]).items, RubricItem(4, "explains why", 1.0), RubricItem(5, "draws it", 0.5))
    state = graded.do("ada", copied)
    assert state.last_change.grade_changes == () and state.grade_of("a0").score == 3.0
    with pytest.raises(ValueError, match="question q already has every item of question q2's rubric"):
        copy_rubric(other.state, state)


# --------------------------------------------------------------------------- suggestions


def _vectors(**directions):
    out = {}
    for answer_id, v in directions.items():
        v = np.asarray(v, dtype=np.float64)
        out[answer_id] = v / np.linalg.norm(v) if np.linalg.norm(v) else v
    return out


def test_a_group_is_offered_the_items_of_the_most_similar_rubric_graded_group(graded):
    from grouper.edits import NEW
    from grouper.review import rubric_suggestion

    state = graded.do("ben", Move(("a5",), NEW))  # group 3: a5 alone, ungraded
    vectors = _vectors(a0=(1, 0, 0), a1=(1, 0.1, 0), a2=(1, 0, 0.1), a3=(0, 1, 0), a4=(0, 1, 0.1), a5=(0.9, 0.2, 0))
    suggestion = rubric_suggestion(state, vectors, 3)
    assert (suggestion.group_id, suggestion.items) == (1, (1, 2)) and 0.95 < suggestion.similarity <= 1
    vectors["a5"] = np.array([0.1, 0.995, 0.0])
    assert rubric_suggestion(state, vectors, 3).group_id == 2  # now nearer group 2, graded (2, 3)
    # too far from every graded group: no guess
    vectors["a5"] = np.array([0.0, 0.0, 1.0])
    assert rubric_suggestion(state, vectors, 3) is None
    # a group graded by a bare score has no items to offer
    state = graded.do("ben", GradeGroup(1, 1.0))
    vectors["a5"] = np.array([1.0, 0.0, 0.0])
    assert rubric_suggestion(state, vectors, 3) is None  # group 2, the only one left, is far
    assert rubric_suggestion(state, {**vectors, "a5": np.zeros(3)}, 3) is None  # a blank group


def test_the_editor_shows_every_digit_of_an_items_points_so_saving_reprices_nothing(start):
    from grouper.rubric import parse_rubric, rubric_lines

    log = Log(start)
    log.do("ada", SetRubric(((1, "a third", 0.3333333), (2, "a lot", 1234567.0))))
    lines = rubric_lines(log.state)
    assert lines == ["1: a third=0.3333333", "2: a lot=1234567"]
    edit = parse_rubric(log.state, [*lines, "new=1"])
    assert edit.items[:2] == log.state.rubric


def test_lines_without_an_id_get_ids_no_other_line_uses(start):
    from grouper.rubric import parse_rubric

    log = Log(start)
    assert [i.item_id for i in parse_rubric(log.state, ["1: a=2", "b=1"]).items] == [1, 2]
    log.do("ada", SetRubric(RUBRIC))
    added = parse_rubric(log.state, [f"{i}: {d}={p}" for i, d, p in RUBRIC] + ["4: draws the circuit=1", "labels the battery=0.5"])
    assert [i.item_id for i in added.items] == [1, 2, 3, 4, 5]
    # Item 3 reworded by id, and its old wording added again as a new item.
    reworded = parse_rubric(log.state, ["1: names the closed path=2", "2: says the bulb lights=1", "3: wrong sign=-0.5", "wrong units=-0.5"])
    assert [(i.item_id, i.description) for i in reworded.items][2:] == [(3, "wrong sign"), (4, "wrong units")]


def test_a_description_that_starts_with_a_ratio_or_a_time_is_not_an_item_id(start):
    # "1:1 mixture" reworded item 1 and regraded its grades; an id is written "1: ", as the editor shows it.
    from grouper.rubric import parse_rubric

    log = Log(start)
    log.do("ada", SetRubric(RUBRIC))
    items = parse_rubric(log.state, [f"{i}: {d}={p}" for i, d, p in RUBRIC] + ["1:1 mixture of H and O=0.5", "10:30 am=1"]).items
    assert [(i.item_id, i.description, i.points) for i in items] == [
        *RUBRIC, (4, "1:1 mixture of H and O", 0.5), (5, "10:30 am", 1.0)
    ]
    for points, shown in (("1e309", "'1e309'"), ("nan", "'nan'"), ("-inf", "'-inf'")):
        with pytest.raises(ValueError, match=f"rubric line 2 'b={points}': {shown} is not a finite number of points"):
            parse_rubric(start, ["a=1", f"b={points}"])


def test_rubric_points_that_sum_beyond_any_score_are_refused_not_crashed(start):
    log = Log(start)
    log.do("ada", SetRubric(((1, "a", 1e308), (2, "b", 1e308))))
    with pytest.raises(EditRefused, match="rubric items 1, 2 sum to more points than any score can hold"):
        log.do("ben", GradeGroup(1, None, items=(1, 2)))
    log.do("ben", GradeGroup(1, None, items=(1,)))
    log.do("ben", GradeAnswer("a0", None, "", items=(2,)))
    log.do("ada", SetRubric(((1, "a", 1.0), (2, "b", 1e308))))
    log.do("ben", GradeGroup(2, None, items=(1, 2)))
    with pytest.raises(EditRefused, match="sum to more points"):  # a repricing that regrades it beyond
        log.do("ada", SetRubric(((1, "a", 1e308), (2, "b", 1e308))))


@pytest.mark.parametrize("twin", ["Wrong units", "wrong  units", "wrong\u00a0units", "wrong units ", "wrong unit\u0073"])
def test_rubric_lines_that_read_alike_are_refused_as_typed(start, twin):
    from grouper.rubric import parse_rubric

    with pytest.raises(ValueError, match="rubric lines 1 and 2 read alike"):
        parse_rubric(start, ["wrong units=-0.5", f"{twin}=-1"])
    with pytest.raises(ValueError, match="read alike"):
        parse_rubric(start, ["caf\u00e9=1", "cafe\u0301=1"])  # composed and decomposed
    # Characters NFKC would fold are other texts: "10³ J" is not "103 J".
    assert len(parse_rubric(start, ["final answer 10\u00b3 J=1", "final answer 103 J=1"]).items) == 2


def test_a_logged_rubric_of_look_alike_descriptions_still_replays(start):
    # Accepted before the typed-rubric check: the log must stay readable.
    log = Log(start)
    log.do("ada", SetRubric(((1, "mass in kg", 1.0), (2, "mass in \u338f", 1.0), (3, "wrong  units", -0.5), (4, "wrong units", -1.0))))
    assert replay(log.initial, log.edits) == log.state


def test_a_repricing_that_lifts_a_grade_above_the_maximum_names_the_grade(graded):
    graded.do("ada", SetMaxScore(3.0))  # 5
    # the grader typed no score: the refusal must say which grade the new points push out
    with pytest.raises(EditRefused, match=r"score 3.5 is above the question's maximum score 3 "
                                          r"\(set by ada at version 5\): group 1 is graded 3.5$"):
        graded.do("ada", SetRubric(((1, "names the closed path", 2.5), *RUBRIC[1:])))
    assert graded.state.grade_of("a0").score == 3.0
