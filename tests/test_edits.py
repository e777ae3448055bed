"""The pure edit fold: each edit's effect, conflicts, grades, undo, replay and the JSON codec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import edit_from_dict, edit_to_dict, payload_from_dict, state_from_dict, state_to_dict
from grouper.edits import (
    CONFIRMED,
    AddAnswers,
    NEW,
    Confirm,
    Delete,
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    QuestionState,
    Rename,
    Split,
    Undo,
    apply,
    auto_split_parts,
    initial_state,
    make_edit,
    replay,
    undo_plan,
)

IDS = [f"a{i}" for i in range(10)]


def _grouping() -> Grouping:
    # group 1: a0 a1 a2 a3, group 2: a4 a5, group 3 (blank): a8 a9; a6 a7 ungrouped
    labels = np.array([1, 1, 1, 1, 2, 2, UNGROUPED, UNGROUPED, 3, 3])
    groups = (
        Group(1, "Canberra", (0, 1, 2, 3)),
        Group(2, "Sydney", (4, 5)),
        Group(3, "(blank)", (8, 9), blank=True),
    )
    return Grouping(labels, np.ones(10), groups)


@pytest.fixture
def start() -> QuestionState:
    return initial_state("q1", IDS, _grouping())


class Log:
    """A question's state with its log, so tests can replay what they did."""

    def __init__(self, state: QuestionState):
        self.initial = state
        self.state = state
        self.edits = []

    def do(self, author, payload, base=None) -> QuestionState:
        edit = make_edit(self.state, author, payload, base_version=base)
        self.state = apply(self.state, edit)
        self.edits.append(edit)
        return self.state


def test_initial_state_follows_the_grouping(start):
    assert start.version == 0
    assert start.groups[1].members == ("a0", "a1", "a2", "a3")
    assert start.groups[3].blank and not start.groups[1].blank
    assert start.ungrouped == ("a6", "a7")
    assert start.next_group_id == 4
    assert start.group_of("a4") == 2 and start.group_of("a6") is None


def test_graded_count_counts_each_answer_with_an_effective_grade_once(start):
    log = Log(start)
    assert log.state.graded_count() == 0
    log.do("ada", GradeGroup(1, 1.0))  # a0..a3
    log.do("ada", GradeAnswer("a1", 0.5))  # already graded by its group: still one answer
    log.do("ada", GradeAnswer("a6", 0.0))  # ungrouped, graded on its own
    state = log.do("ada", GradeAnswer("a4", 1.0))  # in an ungraded group
    assert state.graded_count() == 6
    assert state.graded_count() == sum(state.grade_of(a) is not None for a in state.answer_ids)


def test_initial_state_refuses_a_grouping_of_another_length():
    with pytest.raises(ValueError, match="labels 10 answers but there are 9"):
        initial_state("q1", IDS[:9], _grouping())


def test_each_edit_does_what_it_says(start):
    log = Log(start)
    log.do("ta1", Confirm(1))
    assert log.state.groups[1].status == CONFIRMED
    log.do("ta1", Rename(2, "Sydney (wrong)"))
    assert log.state.groups[2].title == "Sydney (wrong)"
    log.do("ta1", Move(("a6",), 2))
    assert log.state.groups[2].members == ("a4", "a5", "a6") and log.state.ungrouped == ("a7",)
    log.do("ta1", Move(("a0", "a7"), NEW, title=" odd ones "))  # trimmed, as a rename's title
    assert log.state.groups[4].members == ("a0", "a7") and log.state.groups[4].title == "odd ones"
    assert log.state.ungrouped == () and log.state.next_group_id == 5
    log.do("ta1", Split(1, (("a3",), ("a1", "a2"))))
    assert log.state.groups[1].members == ("a3",) and log.state.groups[5].members == ("a1", "a2")
    log.do("ta1", Merge(1, (5, 4)))
    assert log.state.groups[1].members == ("a3", "a1", "a2", "a0", "a7")
    assert 4 not in log.state.groups and 5 not in log.state.groups
    log.do("ta1", Delete(2))
    assert 2 not in log.state.groups and log.state.ungrouped == ("a4", "a5", "a6")
    assert log.state.version == 7
    every = sorted(a for g in log.state.groups.values() for a in g.members) + list(log.state.ungrouped)
    assert sorted(every) == sorted(IDS)


def test_new_groups_never_reuse_an_id(start):
    log = Log(start)
    log.do("ta1", Move(("a6",), NEW))
    log.do("ta1", Delete(4))
    log.do("ta1", Move(("a7",), NEW))
    assert 4 not in log.state.groups and 5 in log.state.groups


def test_untouched_groups_are_shared_not_copied(start):
    after = apply(start, make_edit(start, "ta1", Rename(1, "x")))
    assert after.groups[2] is start.groups[2]
    assert start.groups[1].title == "Canberra"  # the old state is unchanged


def test_a_stale_edit_names_what_changed_and_who(start):
    log = Log(start)
    log.do("ta2", Merge(1, (2,)))
    with pytest.raises(EditRefused) as refused:
        log.do("ta1", Rename(2, "Sydney!"), base=0)
    message = str(refused.value)
    assert "group 2 was merged into group 1 by ta2 at version 1" in message
    assert "you saw version 0" in message
    assert log.state.version == 1  # nothing applied


def test_graders_on_different_groups_do_not_block_each_other(start):
    log = Log(start)
    log.do("ta1", Confirm(1), base=0)
    log.do("ta2", GradeGroup(2, 0.0, "wrong city"), base=0)  # saw version 0 but group 2 did not change
    log.do("ta3", Move(("a6",), None if False else 3), base=0)
    assert log.state.version == 3
    with pytest.raises(EditRefused, match="group 1 was confirmed by ta1 at version 1"):
        log.do("ta2", GradeGroup(1, 1.0), base=0)
    with pytest.raises(EditRefused, match="answer 'a6' was moved to group 3 by ta3 at version 3"):
        log.do("ta2", Move(("a6",), None), base=2)


def test_a_move_out_of_a_group_confirmed_or_graded_since_is_refused(start):
    # ta1 looked at version 0 and moves answers out; meanwhile ta2 confirmed group 1 and
    # graded group 2 with those answers in them: the groups they leave changed under ta1.
    log = Log(start)
    log.do("ta2", Confirm(1), base=0)
    log.do("ta2", GradeGroup(2, 0.0), base=1)
    with pytest.raises(EditRefused, match="group 1 was confirmed by ta2 at version 1"):
        log.do("ta1", Move(("a0",), None), base=0)
    with pytest.raises(EditRefused, match="group 2 was graded 0 by ta2 at version 2"):
        log.do("ta1", Move(("a4",), NEW), base=0)
    assert log.state.version == 2 and log.state.groups[1].members == ("a0", "a1", "a2", "a3")
    # having seen the confirm, ta1 may still disagree with it
    log.do("ta1", Move(("a0",), None), base=2)
    assert log.state.location["a0"] is None


def test_an_edit_that_changes_nothing_is_refused(start):
    log = Log(start)
    log.do("ta1", Confirm(1))
    with pytest.raises(EditRefused, match="already confirmed"):
        log.do("ta1", Confirm(1))
    with pytest.raises(EditRefused, match="already in group 1"):
        log.do("ta1", Move(("a0",), 1))
    with pytest.raises(EditRefused, match="no grade to clear"):
        log.do("ta1", GradeGroup(2, None))


def test_unknown_groups_and_answers_are_refused(start):
    with pytest.raises(EditRefused, match="group 9 does not exist in question q1"):
        apply(start, make_edit(start, "ta1", Confirm(9)))
    with pytest.raises(EditRefused, match="answer 'zz' is not an answer to question q1"):
        apply(start, make_edit(start, "ta1", Move(("zz",), None)))


def test_a_split_must_partition_the_group(start):
    with pytest.raises(EditRefused, match="member\\(s\\) 'a3' of group 1 are in no part"):
        apply(start, make_edit(start, "ta1", Split(1, (("a0",), ("a1", "a2")))))
    with pytest.raises(EditRefused, match="'a4' are not in group 1"):
        apply(start, make_edit(start, "ta1", Split(1, (("a0", "a4"), ("a1", "a2", "a3")))))


def test_a_split_without_titles_numbers_the_parts_within_the_title_limit(start):
    state = apply(start, make_edit(start, "ta1", Split(1, (("a0", "a1"), ("a2",), ("a3",)))))
    assert [g.title for g in state.groups.values() if g.group_id in (1, 4, 5)] == ["Canberra", "Canberra (part 2)", "Canberra (part 3)"]
    long = apply(start, make_edit(start, "ta1", Rename(1, "x" * 200)))
    long = apply(long, make_edit(long, "ta1", Split(1, (("a0", "a1"), ("a2", "a3")))))
    title = long.groups[4].title
    assert len(title) == 200 and title.endswith("x (part 2)")
    Rename(4, title)  # a title a grader could have typed, so a rename back to it is taken


def test_payloads_refuse_bad_values_naming_the_field():
    with pytest.raises(ValueError, match="merge: others is empty"):
        Merge(1, ())
    with pytest.raises(ValueError, match="parts must not overlap"):
        Split(1, (("a",), ("a", "b")))
    with pytest.raises(ValueError, match="grade: score must be a finite number"):
        GradeGroup(1, float("nan"))
    with pytest.raises(ValueError, match="confirm: group_id must be a group id"):
        Confirm(0)
    with pytest.raises(ValueError, match="move: answer_ids names answer 'a' more than once"):
        Move(("a", "a"), None)
    assert Confirm(np.int64(3)).group_id == 3 and type(Confirm(np.int64(3)).group_id) is int


def test_edits_apply_in_sequence_only(start):
    edit = make_edit(start, "ta1", Confirm(1))
    after = apply(start, edit)
    with pytest.raises(ValueError, match="cannot follow version 1"):
        apply(after, edit)
    with pytest.raises(EditRefused, match="base version 5 is ahead"):
        apply(start, make_edit(start, "ta1", Confirm(1), base_version=5))


# --------------------------------------------------------------------------- grades


def test_effective_grade_is_override_else_group_grade(start):
    log = Log(start)
    log.do("ta1", GradeGroup(1, 2.0, "right"))
    assert log.state.grade_of("a0").score == 2.0 and log.state.grade_source("a0") == "group"
    assert len(log.state.last_change.grade_changes) == 4
    log.do("ta1", GradeAnswer("a1", 1.5, "half right"))
    assert log.state.grade_of("a1").score == 1.5 and log.state.grade_source("a1") == "override"
    assert log.state.grade_of("a6") is None and log.state.grade_source("a6") is None


def test_moving_an_answer_changes_its_grade_and_the_state_says_so(start):
    log = Log(start)
    log.do("ta1", GradeGroup(1, 2.0))
    log.do("ta1", GradeGroup(2, 0.0))
    log.do("ta2", Move(("a0", "a1"), None))
    changes = {c.answer_id: c for c in log.state.last_change.grade_changes}
    assert set(changes) == {"a0", "a1"}
    assert changes["a0"].before.score == 2.0 and changes["a0"].after is None
    log.do("ta2", Merge(2, (1,)))  # group 1's members now get group 2's grade
    changes = {c.answer_id: c for c in log.state.last_change.grade_changes}
    assert set(changes) == {"a2", "a3"} and changes["a2"].after.score == 0.0


def test_an_override_travels_with_its_answer(start):
    log = Log(start)
    log.do("ta1", GradeGroup(1, 2.0))
    log.do("ta1", GradeAnswer("a0", 1.0))
    log.do("ta1", Move(("a0",), 2))
    assert log.state.grade_of("a0").score == 1.0
    assert log.state.last_change.grade_changes == ()


# --------------------------------------------------------------------------- undo


def test_undo_restores_what_the_edit_changed(start):
    log = Log(start)
    before = log.do("ta1", GradeGroup(1, 2.0))
    log.do("ta2", Split(1, (("a0", "a1"), ("a2", "a3"))))
    log.do("ta2", Undo(2))
    assert log.state.content() == before.content()
    assert 4 not in log.state.groups and log.state.next_group_id == 5  # id 4 is never reused
    assert log.state.undone == {2: 3}


def test_undo_of_an_undo_reapplies_the_edit(start):
    log = Log(start)
    merged = log.do("ta1", Merge(1, (2,)))
    log.do("ta1", Undo(1))
    log.do("ta1", Undo(2))
    assert log.state.content() == merged.content()
    assert log.state.undone == {2: 3}
    log.do("ta1", Undo(1))  # the re-applied merge can be undone again
    assert log.state.content() == start.content()
    log.do("ta1", Undo(4))  # redo once more (edit 5)
    log.do("ta1", Undo(3))  # undoing the first redo: the merge is undone again, by edit 2
    assert log.state.content() == start.content() and log.state.undone[1] == 2


def test_undo_is_refused_when_a_later_edit_changed_the_same_things(start):
    log = Log(start)
    log.do("ta1", Merge(1, (2,)))
    log.do("ta2", GradeGroup(1, 1.0))
    with pytest.raises(EditRefused, match="group 1 was graded 1 by ta2 at version 2; undo edit 2 first"):
        log.do("ta1", Undo(1))
    log.do("ta2", Undo(2))  # undoing in reverse order works
    log.do("ta1", Undo(1))
    assert log.state.content() == start.content()


def test_undo_twice_and_undo_of_unknown_edits_are_refused(start):
    log = Log(start)
    log.do("ta1", Confirm(1))
    log.do("ta1", Undo(1))
    with pytest.raises(EditRefused, match="edit 1 was already undone by edit 2 \\(ta1\\)"):
        log.do("ta1", Undo(1))
    with pytest.raises(EditRefused, match="edit 7 does not exist"):
        log.do("ta1", Undo(7))


def test_an_author_cannot_undo_an_edit_they_have_not_seen(start):
    log = Log(start)
    log.do("ta1", Confirm(1))
    with pytest.raises(EditRefused, match="group 1 was confirmed by ta1 at version 1 \\(you saw version 0"):
        log.do("ta2", Undo(1), base=0)


# --------------------------------------------------------------------------- replay and codec


def _busy_log(start) -> Log:
    log = Log(start)
    log.do("ta1", Confirm(1))
    log.do("ta2", Move(("a6", "a7"), NEW, title="new"))
    log.do("ta1", GradeGroup(1, 2.0, "ok"))
    log.do("ta2", GradeAnswer("a1", 0.5, "spelling"))
    log.do("ta1", Split(4, (("a7",), ("a6",))))
    log.do("ta2", Merge(2, (4,)))
    log.do("ta1", Undo(6))
    log.do("ta1", Delete(3))
    return log


def test_replay_from_empty_gives_the_same_state(start):
    log = _busy_log(start)
    assert replay(log.initial, log.edits) == log.state
    # and a replay from any intermediate state (a snapshot) too
    middle = replay(log.initial, log.edits[:4])
    assert replay(middle, log.edits[4:]) == log.state


def test_state_and_edits_round_trip_through_json(start):
    log = _busy_log(start)
    text = json.dumps(state_to_dict(log.state))
    assert state_from_dict(json.loads(text)) == log.state
    for edit in log.edits:
        assert edit_from_dict(json.loads(json.dumps(edit_to_dict(edit)))) == edit


def test_decoding_a_bad_payload_names_the_problem():
    with pytest.raises(ValueError, match="unknown edit kind 'explode'"):
        payload_from_dict({"kind": "explode"})
    with pytest.raises(ValueError, match="rename edit has unknown field"):
        payload_from_dict({"kind": "rename", "group_id": 1, "title": "x", "colour": "red"})
    with pytest.raises(ValueError, match="rename edit"):
        payload_from_dict({"kind": "rename", "group_id": 1})


@pytest.mark.parametrize(
    ("data", "said"),
    [
        # a part written as a string is not read as its characters ("a0" is not "a", "0")
        ({"kind": "split", "group_id": 1, "parts": ["a0a1", ["a2"]]}, "split: part must be a sequence"),
        ({"kind": "split", "group_id": 1, "parts": [None, ["a2"]]}, "split: part must be a sequence"),
        ({"kind": "split", "group_id": 1, "parts": 3.9}, "split: parts must be a sequence"),
        ({"kind": "merge", "into": 1, "others": {"2": 1}}, "merge: others must be a sequence"),
        ({"kind": "move", "answer_ids": ["a0"], "to": 2, "title": None}, "move: title must be non-empty text"),
        ({"kind": "rename", "group_id": 1, "title": "Syd\udcffney"}, "rename: title is not valid text: character 4"),
        ({"kind": "grade", "group_id": 1, "score": 1.0, "comment": "\ud800"}, "grade: comment is not valid text"),
        ({"kind": "references", "texts": ["\udcff"]}, "references: a reference answer is not valid text"),
    ],
)
def test_a_damaged_payload_is_refused_naming_the_field(data, said):
    with pytest.raises(ValueError, match=said):
        payload_from_dict(data)


def test_a_damaged_edit_record_is_refused_naming_the_field(start):
    good = edit_to_dict(make_edit(start, "ada", Rename(1, "Capital")))
    assert edit_from_dict(good).payload == Rename(1, "Capital")
    for field, value, said in [
        ("edit_id", 3.9, "edit_id must be a whole number, found 3.9"),  # not edit 3
        ("edit_id", "1", "edit_id must be a whole number"),
        ("base_version", True, "base_version must be a whole number"),
        ("at", 5, "at must be an ISO 8601 time, found 5"),
        ("author", "\udcffada", "edit author is not valid text"),
        ("question_id", None, "question_id must be a non-empty string"),
        ("payload", {"kind": "rename", "group_id": 1, "title": ""}, "edit record 1: rename: title must be non-empty"),
    ]:
        with pytest.raises(ValueError, match=said):
            edit_from_dict({**good, field: value})
    with pytest.raises(ValueError, match="lacks the field 'payload'"):
        edit_from_dict({k: v for k, v in good.items() if k != "payload"})


# --------------------------------------------------------------------------- automatic split


def test_auto_split_parts_are_explicit_and_deterministic(start):
    rng = np.random.default_rng(0)
    vectors = {a: rng.normal(size=8) for a in IDS}
    vectors["a2"] = vectors["a0"] + 0.01
    parts = auto_split_parts(start, 1, 2, vectors, seed=3)
    assert parts == auto_split_parts(start, 1, 2, vectors, seed=3)
    assert sorted(a for p in parts for a in p) == ["a0", "a1", "a2", "a3"]
    assert any({"a0", "a2"} <= set(p) for p in parts)
    after = apply(start, make_edit(start, "ta1", Split(1, parts)))
    assert len(after.groups) == 4


def test_auto_split_refuses_more_parts_than_distinct_answers(start):
    same = {a: np.ones(4) for a in IDS}
    with pytest.raises(ValueError, match="k \\(2\\) must be at most the number of distinct answers in group 1 \\(1\\)"):
        auto_split_parts(start, 1, 2, same)


def test_an_edit_whose_undo_was_itself_reverted_can_be_undone_again(start):
    # 1 grades; 2 undoes 1; 3 undoes 2 (the grade is back); 4 undoes 1 (the grade is gone, as 2
    # left it). Edit 2's result is in place again, so undoing 2 brings the grade back.
    log = Log(start)
    graded = log.do("ta1", GradeGroup(1, 0.0))
    log.do("ta1", Undo(1))
    log.do("ta1", Undo(2))
    log.do("ta2", Undo(1))
    assert log.state.undone == {2: 3, 1: 4}
    log.do("ta1", Undo(2))
    assert log.state.content() == graded.content() and 1 not in log.state.undone
    assert replay(log.initial, log.edits) == log.state


# -- late answers ---------------------------------------------------------------------------


def test_late_answers_join_unreviewed_groups_or_wait_ungrouped_and_replay(start):
    log = Log(start)
    log.do("ta1", Confirm(1))
    after = log.do("system", AddAnswers(("l1", "l2", "l3"), (2, None, 2)))
    assert after.answer_ids[-3:] == ("l1", "l2", "l3")
    assert after.groups[2].members == ("a4", "a5", "l1", "l3")
    assert after.ungrouped == ("a6", "a7", "l2")
    assert after.groups[1].members == ("a0", "a1", "a2", "a3")
    assert after.last_change.answers_added == ("l1", "l2", "l3") and after.last_change.groups_changed == (2,)
    assert after.answer_marks["l2"].what == "added late (ungrouped)"
    assert replay(log.initial, log.edits) == after
    # stored and read back like every other state and edit
    assert state_from_dict(json.loads(json.dumps(state_to_dict(after)))).content() == after.content()
    assert edit_from_dict(edit_to_dict(log.edits[-1])) == log.edits[-1]
    # they are answers like the others from then on
    moved = log.do("ta1", Move(("l2",), 1))
    assert moved.groups[1].members[-1] == "l2" and moved.grade_of("l2") is None
    log.do("ta1", Undo(moved.version))
    assert log.state.location["l2"] is None


def test_late_answers_never_join_a_reviewed_group_nor_repeat_an_id(start):
    log = Log(start)
    log.do("ta1", Confirm(1))
    log.do("ta1", GradeGroup(2, 1.0))
    with pytest.raises(EditRefused, match="group 1 is confirmed: a late answer joins only a group nobody has reviewed"):
        log.do("system", AddAnswers(("l1",), (1,)))
    with pytest.raises(EditRefused, match="group 2 is graded"):
        log.do("system", AddAnswers(("l1",), (2,)))
    with pytest.raises(EditRefused, match="'a3' are already answers to question q1"):
        log.do("system", AddAnswers(("a3", "l1"), (None, None)))
    with pytest.raises(EditRefused, match="group 9 does not exist"):
        log.do("system", AddAnswers(("l1",), (9,)))
    assert log.state.version == 2 and "l1" not in log.state.positions


def test_adding_late_answers_is_never_undone(start):
    log = Log(start)
    added = log.do("system", AddAnswers(("l1",), (None,)))
    with pytest.raises(EditRefused, match="added late answers, which stay once submitted"):
        log.do("ta1", Undo(added.version))


def test_an_undo_blocked_by_late_answers_says_what_to_do_not_which_edit_to_undo(start):
    log = Log(start)
    log.do("ta1", Rename(1, "Canberra (capital)"))  # v1
    log.do("system", AddAnswers(("l1",), (1,)))  # v2: a late answer joins group 1
    with pytest.raises(EditRefused) as refused:
        log.do("ta1", Undo(1))
    message = str(refused.value)
    assert "group 1 was changed (1 late answer added) by system at version 2" in message
    assert "late answers (edit 2) stay once submitted, so make the change by hand instead" in message
    assert "undo edit 2 first" not in message  # edit 2 cannot be undone: no circle
    assert log.state.groups[1].title == "Canberra (capital)"


def test_a_refused_undo_names_every_undo_it_waits_on_in_order(start):
    """The advice is tried on the state before it is given: one message, not one per step."""
    log = Log(start)
    for score in (4.0, 3.0, 2.5, 2.0):  # v1..v4: group 1 regraded three times
        log.do("ben", GradeGroup(1, score))
    with pytest.raises(EditRefused, match=r"graded 2 by ben at version 4; undo edits 4, 3 and 2 first, in that order") as refused:
        log.do("ada", Undo(1))
    assert refused.value.undo_plan == (4, 3, 2)
    for step in refused.value.undo_plan:
        log.do("ada", Undo(step))
    assert log.do("ada", Undo(1)).groups[1].grade is None
    assert replay(log.initial, log.edits) == log.state


def test_after_an_undo_the_advice_names_the_edit_whose_result_stands(start):
    """Undoing edit 3 puts back edit 2's grade; the advice for edit 1 is then to undo edit 2.
    It used to name the undo (edit 4), whose undo only brought edit 3 back, and so on for ever."""
    log = Log(start)
    for score in (4.0, 3.0, 2.0):
        log.do("ben", GradeGroup(1, score))
    log.do("ada", Undo(3))  # v4
    with pytest.raises(EditRefused) as refused:
        log.do("ada", Undo(1))
    message = str(refused.value)
    assert "group 1 was restored by undoing edit 3 by ada at version 4 (it shows edit 2's result); undo edit 2 first" in message
    assert refused.value.undo_plan == (2,)
    log.do("ada", Undo(2))
    assert log.do("ada", Undo(1)).groups[1].grade is None


def test_an_undo_that_waits_on_an_undo_late_answers_block_says_so_at_once(start):
    """Undoing the grade waits on undoing the move, which late answers block: the grader hears
    both at once, instead of advice to undo edit 2 that is then refused."""
    log = Log(start)
    log.do("ben", GradeGroup(1, 4.0))  # v1
    log.do("cy", Move(("a4",), 1))  # v2: group 1 changed after the grade
    log.do("system", AddAnswers(("l1",), (2,)))  # v3: a late answer joins group 2, which the move also changed
    with pytest.raises(EditRefused) as refused:
        log.do("ada", Undo(1))
    message = str(refused.value)
    assert "group 1 was changed (1 answer moved in) by cy at version 2; it needs edit 2 undone first, and edit 2 cannot be undone" in message
    assert message.endswith("late answers (edit 3) stay once submitted, so make the change by hand instead (move, merge, split or rename)")
    assert "undo edit 2 first" not in message and refused.value.undo_plan == ()


def test_undo_plan_says_what_an_undo_waits_on_without_making_it(start):
    log = Log(start)
    log.do("ben", GradeGroup(1, 4.0))  # v1
    log.do("cy", Move(("a4",), 1))  # v2
    assert undo_plan(log.state, 2, "ada") == ()  # goes through now
    assert undo_plan(log.state, 1, "ada") == (2,)
    assert log.state.version == 2  # nothing was applied
    log.do("system", AddAnswers(("l1",), (2,)))  # v3: into group 2, which the move changed
    assert undo_plan(log.state, 1, "ada") is None  # late answers stay: no chain gets there
    assert undo_plan(log.state, 9, "ada") is None  # no such edit


def test_the_undo_plan_goes_through_rubric_and_maximum_changes_and_back_to_the_import(start):
    """Each of these once gave no plan though one exists: a grade whose rubric item a later
    rubric removed, a maximum changed twice (the check named the trial undo, round and round),
    and an item put back to the import by an undo (lineage 0)."""
    from grouper.edits import RubricItem, SetMaxScore, SetRubric

    def planned(log, target, expected):
        with pytest.raises(EditRefused) as refused:
            log.do("ada", Undo(target))
        assert refused.value.undo_plan == expected, str(refused.value)
        for step in expected:
            log.do("ada", Undo(step))
        log.do("ada", Undo(target))
        assert replay(log.initial, log.edits) == log.state
        return str(refused.value)

    log = Log(start)
    log.do("ada", SetRubric((RubricItem(1, "names Canberra", 1.0), RubricItem(2, "spelling", 0.5))))  # v1
    log.do("ben", GradeGroup(1, None, items=(1,)))  # v2
    log.do("ben", GradeGroup(1, 3.0))  # v3
    log.do("ada", SetRubric((RubricItem(2, "spelling", 0.5),)))  # v4: item 1 gone
    message = planned(log, 3, (4,))
    assert "no longer in the rubric (ada changed the rubric at version 4); undo edit 4 first" in message

    log = Log(start)
    log.do("ben", GradeGroup(1, 1.0))  # v1
    log.do("ben", GradeGroup(1, None))  # v2
    log.do("ada", SetMaxScore(5.0))  # v3
    log.do("ada", SetMaxScore(2.0))  # v4
    planned(log, 2, (4, 3))

    log = Log(start)
    log.do("ben", Rename(1, "a"))  # v1
    log.do("ben", Rename(1, "b"))  # v2
    log.do("ada", Undo(2))  # v3
    log.do("ada", Undo(1))  # v4: the import's title again
    log.do("cy", Rename(1, "c"))  # v5
    message = planned(log, 3, (5, 4))  # undoing 3 re-applies edit 2 ("b") over edit 1 ("a")
    assert log.state.groups[1].title == "b"


def test_add_answers_payload_checks_its_fields():
    with pytest.raises(ValueError, match="1 places for 2 answers"):
        AddAnswers(("l1", "l2"), (None,))
    with pytest.raises(ValueError, match="names answer 'l1' more than once"):
        AddAnswers(("l1", "l1"), (None, None))
    with pytest.raises(ValueError, match="add_answers: to"):
        AddAnswers(("l1",), (0,))
    assert payload_from_dict({"kind": "add_answers", "answer_ids": ["l1"], "to": [None]}) == AddAnswers(("l1",), (None,))


def test_an_undo_never_brings_back_a_grade_given_under_another_maximum(start):
    """A grade of 4 given out of 10, cleared, then the maximum set to 5: undoing the clear
    would show "4 out of 5", which nobody gave. Once the maximum is 10 again, it may."""
    from grouper.edits import SetMaxScore

    log = Log(start)
    log.do("prof", SetMaxScore(10.0))  # v1
    log.do("ta", GradeGroup(1, 4.0, "4 of 10"))  # v2
    log.do("ta", GradeGroup(1, None))  # v3: cleared
    log.do("prof", SetMaxScore(5.0))  # v4
    with pytest.raises(EditRefused, match=r"group 1's earlier grade 4 was given out of 10, and the maximum was "
                                          r"changed to 5 by prof at version 4; undo edit 4 first"):
        log.do("ta", Undo(3))
    assert log.state.groups[1].grade is None
    log.do("prof", Undo(4))  # the maximum is 10 again
    log.do("ta", Undo(3))
    assert log.state.groups[1].grade.score == 4.0 and log.state.max_score == 10.0


def test_an_undo_of_a_maximum_change_is_refused_while_grades_given_under_it_stand(start):
    from grouper.edits import SetMaxScore

    log = Log(start)
    log.do("prof", SetMaxScore(10.0))  # v1
    log.do("prof", SetMaxScore(5.0))  # v2
    log.do("ta", GradeAnswer("a6", 5.0, "full marks"))  # v3: 5 out of 5
    with pytest.raises(EditRefused, match=r"answer 'a6' was graded 5 out of 5 by ta at version 3; undo edit 3 first"):
        log.do("prof", Undo(2))
    assert log.state.max_score == 5.0
    log.do("ta", Undo(3))
    log.do("prof", Undo(2))
    assert log.state.max_score == 10.0 and log.state.grade_of("a6") is None
    assert replay(log.initial, log.edits) == log.state
