"""The review queue respects what graders did: an answer a grader moved out of a group is not
suggested back into it (nor into the group its old groupmates went to since), and an answer a
grader moved into its group is not second-guessed as doubtful. Measured on the corpora in
``benchmarks/review_queue.py``: without this, half the answers moved out were suggested back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_edits import Log  # the log helper of the fold's own tests
from test_ui_review import _unit  # unit vectors written by their directions

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import GradeGroup, Merge, Move, QuestionState, Split, Undo, initial_state
from grouper.regroup import shaped_groups
from grouper.review import grader_moves, no_suggestion_reason, review_queue


# Group 1 points along x, group 2 along y, group 3 along z. "odd" reads like group 1 (0.78
# similar to its centre) but a grader knows it is graded otherwise; it is also 0.6 similar to
# group 2. "stray" is like group 1 and nothing else.
VECTORS = {
    "a1": _unit(1, 0.02, 0),
    "a2": _unit(1, -0.02, 0),
    "a3": _unit(1, 0, 0.03),
    "odd": _unit(1, 0.8, 0),
    "stray": _unit(1, 0.05, 0.05),
    "b1": _unit(0, 1, 0.01),
    "b2": _unit(0.01, 1, 0),
    "c1": _unit(0, 0.01, 1),
    "c2": _unit(0.01, 0, 1),
}
IDS = list(VECTORS)


def _log_of(members: dict[int, tuple[str, ...]]) -> Log:
    """A log starting from these groups of ``VECTORS``' answers (the rest ungrouped)."""
    labels = np.full(len(IDS), UNGROUPED)
    groups = []
    for gid, ms in members.items():
        idx = tuple(IDS.index(a) for a in ms)
        labels[list(idx)] = gid
        groups.append(Group(gid, f"group {gid}", idx))
    return Log(initial_state("q", IDS, Grouping(labels, np.ones(len(IDS)), tuple(groups))))


@pytest.fixture
def log() -> Log:
    return _log_of({1: ("a1", "a2", "a3", "odd", "stray"), 2: ("b1", "b2"), 3: ("c1", "c2")})


def _queue(state: QuestionState, *, history: bool = True):
    groups = {g: group.members for g, group in state.groups.items()}
    moves = grader_moves(state) if history else None
    return {item.answer_id: item for item in review_queue(groups, state.ungrouped, VECTORS, moves=moves)}


def test_an_answer_a_grader_moved_out_is_not_suggested_back(log):
    state = log.do("ada", Move(("odd",), None))
    assert _queue(state, history=False)["odd"].suggested_group == 1  # the nearest centre: back where it was
    item = _queue(state)["odd"]
    assert (item.reason, item.suggested_group) == ("ungrouped", 2)
    assert item.similarity == pytest.approx(float(VECTORS["odd"] @ _unit(*(VECTORS["b1"] + VECTORS["b2"]))))
    assert grader_moves(state).moved_away_from == {"odd": frozenset({1})}
    assert grader_moves(state).placed == frozenset({"odd"})  # out, where the grader put it


def test_with_only_the_old_group_close_there_is_no_suggestion(log):
    state = log.do("ada", Move(("stray",), None))
    item = _queue(state)["stray"]
    assert (item.suggested_group, item.similarity) == (None, 0.0)


def test_the_old_group_is_followed_through_a_merge(log):
    log.do("ada", Move(("odd",), None))
    state = log.do("ben", Merge(3, (1,)))  # odd's old groupmates are in group 3 now
    assert state.group_of("a1") == 3
    assert grader_moves(state).moved_away_from == {"odd": frozenset({3})}
    assert _queue(state)["odd"].suggested_group == 2


def test_a_models_moves_and_undone_moves_say_nothing(log):
    state = log.do("model:grades", Move(("odd",), None))
    assert grader_moves(state).moved_away_from == {}
    assert _queue(state)["odd"].suggested_group == 1
    log.do("ada", Move(("odd",), 2))  # 2
    state = log.do("ada", Undo(2))
    assert state.group_of("odd") is None
    assert grader_moves(state).placed == frozenset()  # back where the model's move put it


def test_an_answer_a_grader_moved_in_is_not_doubtful(log):
    state = log.do("ada", Move(("stray",), 2))
    doubtful = _queue(state, history=False)["stray"]  # atypical in group 2, nearer group 1's centre
    assert (doubtful.reason, doubtful.suggested_group) == ("doubtful", 1)
    assert "stray" not in _queue(state)
    assert grader_moves(state).placed == frozenset({"stray"})


def test_a_member_whose_grade_a_grader_checked_is_not_doubtful(log):
    from grouper.edits import CheckGrades
    from grouper.review import question_queue

    log.do("model:grades", Move(("stray",), 2))  # the model's move: stray is doubtful in group 2
    log.do("ada", GradeGroup(1, 1.0))
    state = log.do("ada", GradeGroup(2, 0.0))
    queued = {item.answer_id: item for item in question_queue(state, VECTORS)}
    assert queued["stray"].suggested_group == 1
    state = log.do("ben", CheckGrades(("stray",)))  # "Looks right": its grade 0 stands
    # It was still offered group 1, graded 1: one click undid the check's word.
    assert "stray" not in {item.answer_id for item in question_queue(state, VECTORS)}
    state = log.do("ada", GradeGroup(2, 0.5))  # regraded: the check lapses, the doubt is back
    assert "stray" in {item.answer_id for item in question_queue(state, VECTORS)}


def test_a_redone_move_counts_again_and_a_later_merge_ends_the_placement(log):
    log.do("ada", Move(("odd",), 2))  # 1
    log.do("ada", Undo(1))  # 2
    state = log.do("ada", Undo(2))  # 3: the move is back
    assert state.group_of("odd") == 2 and grader_moves(state).placed == frozenset({"odd"})
    state = log.do("ben", Merge(3, (2,)))  # odd moved again, by a merge: no longer a grader's own placement
    assert grader_moves(state).placed == frozenset()
    assert grader_moves(state).moved_away_from == {"odd": frozenset({1})}


def test_moving_back_in_and_out_again_keeps_one_avoided_group(log):
    log.do("ada", Move(("odd",), None))
    log.do("ada", Move(("odd",), 1))
    state = log.do("ben", Move(("odd",), None))
    assert grader_moves(state).moved_away_from == {"odd": frozenset({1})}
    assert _queue(state)["odd"].suggested_group == 2


def test_old_groupmates_moved_out_since_do_not_hide_where_the_rest_are(log):
    for answer_id in ("a1", "a2", "a3", "odd"):  # one at a time: a1's old groupmates leave after it
        state = log.do("ada", Move((answer_id,), None))
    assert state.groups[1].members == ("stray",)
    assert grader_moves(state).moved_away_from["a1"] == frozenset({1})


def test_the_graders_moves_read_alike_from_a_stored_snapshot_and_from_the_whole_log(log, tmp_path):
    """A real SQLite store: a fresh Store starts from the latest snapshot (here one every two
    edits), whose undo records must still say who moved what."""
    from grouper.answers import Answer, Question
    from grouper.store import Store

    question = Question("q", "?", tuple(Answer(a, "q", a) for a in IDS))
    grouping = Grouping(
        np.array([1, 1, 1, 1, 1, 2, 2, 3, 3]),
        np.ones(len(IDS)),
        tuple(Group(g, f"group {g}", tuple(i for i, x in enumerate([1, 1, 1, 1, 1, 2, 2, 3, 3]) if x == g)) for g in (1, 2, 3)),
    )
    path = tmp_path / "grades.sqlite"
    with Store.open(path, snapshot_every=2) as store:
        store.import_question(question)
        store.save_grouping("q", grouping, model_version="test")
        for author, payload in [
            ("ada", Move(("odd",), None)),
            ("model:grades", Move(("a1",), None)),
            ("ben", Move(("stray",), 2)),
            ("ada", Undo(3)),
            ("ben", Merge(3, (1,))),
        ]:
            store.append("q", author, None, payload)
    with Store.open(path, snapshot_every=2) as store:
        moves = grader_moves(store.state("q"))
        assert moves == grader_moves(store.replay("q"))
    assert moves.moved_away_from == {"odd": frozenset({3})} and moves.placed == frozenset({"odd"})


def test_a_group_graded_as_the_one_it_was_moved_out_of_is_not_suggested(log):
    """Moving the answer there would give it the grade the grader took it away from."""
    log.do("ada", Move(("odd",), None))
    log.do("ada", GradeGroup(1, 2.0, "right"))
    state = log.do("ada", GradeGroup(2, 2.0, "also right, worded otherwise"))  # the comment does not matter
    moves = grader_moves(state)
    assert moves.moved_away_from == {"odd": frozenset({1})} and moves.avoid == {"odd": frozenset({1, 2})}
    assert _queue(state)["odd"].suggested_group is None
    state = log.do("ada", GradeGroup(2, 1.0))  # regraded: another grade, so a fair suggestion again
    assert grader_moves(state).avoid == {"odd": frozenset({1})}
    assert _queue(state)["odd"].suggested_group == 2


def test_an_ungraded_old_group_avoids_only_itself(log):
    log.do("ada", Move(("odd",), None))
    state = log.do("ada", GradeGroup(2, 2.0))
    assert grader_moves(state).avoid == {"odd": frozenset({1})}


def test_the_reason_for_no_suggestion_names_the_group_left_and_the_grade_left_out(log):
    state = log.do("ada", Move(("stray",), None))
    moves = grader_moves(state)
    assert no_suggestion_reason(moves, "a1") == "no group is close"
    assert no_suggestion_reason(moves, "stray") == "no other group is close (moved out of group 1)"
    log.do("ada", GradeGroup(1, 2.0))
    moves = grader_moves(log.do("ada", GradeGroup(2, 2.0)))
    assert no_suggestion_reason(moves, "stray") == (
        "no group suggested: moved out of group 1; groups graded as it is are left out"
    )


def test_members_of_a_group_a_grader_split_are_not_doubtful():
    """After a grader split a mixed group, the queue must not invite moving a part's member
    back into the other part: groups a person shaped are settled, as confirmed ones are."""
    from grouper.review import question_queue

    log = _log_of({1: ("a1", "a2", "a3", "b1", "b2", "stray"), 3: ("c1", "c2")})
    state = log.do("ada", Split(1, (("a1", "a2", "a3"), ("b1", "b2", "stray"))))
    # The same groups with no history, as a model would have made them: "stray" is doubtful,
    # suggested into group 1.
    as_made = replace(state, records={})
    doubtful = {i.answer_id: i for i in question_queue(as_made, VECTORS)}["stray"]
    assert (doubtful.reason, doubtful.suggested_group) == ("doubtful", 1)
    assert "stray" not in {i.answer_id for i in question_queue(state, VECTORS)}
    # Undoing the split gives the group back to the model, and its members to the queue.
    state = log.do("ada", Undo(state.version))
    assert shaped_groups(state) == frozenset()
