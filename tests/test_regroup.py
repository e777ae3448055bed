"""Regrouping keeps confirmed and graded groups with their ids and regroups only the rest."""

from __future__ import annotations

import numpy as np
import pytest

from grouper.answers import Answer
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import (
    CONFIRMED,
    NEW,
    Confirm,
    Delete,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    Rename,
    Split,
    Undo,
    apply,
    initial_state,
    make_edit,
)
import torch

from grouper.regroup import fixed_answers, is_model_author, model_author, plan_regroup, regroup_question, regroup_store


def state_with(groups: dict[int, list[int]], n: int, blank: int | None = None):
    labels = np.full(n, UNGROUPED)
    for gid, members in groups.items():
        labels[members] = gid
    grouping = Grouping(
        labels, np.ones(n),
        tuple(Group(gid, f"g{gid}", tuple(m), blank=gid == blank) for gid, m in groups.items()),
    )
    return initial_state("q", [f"a{i}" for i in range(n)], grouping)


def run(state, payloads, author="model:v0002"):
    for payload in payloads:
        state = apply(state, make_edit(state, author, payload))
    return state


def test_model_author_is_recognisable():
    assert model_author("v0003") == "model:v0003"
    assert is_model_author("model:v0003") and not is_model_author("ada")


def test_confirmed_and_graded_groups_keep_their_ids_and_members():
    # 1: confirmed, 2: graded, 3 and 4: suggested, a10 and a11 ungrouped, a9 overridden in 4
    state = state_with({1: [0, 1], 2: [2, 3], 3: [4, 5, 6], 4: [7, 8, 9]}, 12)
    state = run(state, [Confirm(1), GradeGroup(2, 1.0), GradeAnswer("a9", 0.5)], author="ada")
    assert fixed_answers(state) == {"a0", "a1", "a2", "a3", "a9"}
    before = {gid: state.groups[gid] for gid in (1, 2)}
    # new clusters: mostly group 3 plus an ungrouped answer; a brand new pair; a7 left out
    clusters = [["a4", "a5", "a10"], ["a6", "a8", "a11"]]
    after = run(state, plan_regroup(state, clusters, titles=["x", "y"]))
    for gid in (1, 2):
        assert after.groups[gid].members == before[gid].members
        assert after.groups[gid].status == before[gid].status and after.groups[gid].grade == before[gid].grade
    assert set(after.groups[3].members) == {"a4", "a5", "a10"}  # the id of the group most of it came from
    new_ids = [gid for gid in after.groups if gid >= state.next_group_id]
    assert len(new_ids) == 1 and set(after.groups[new_ids[0]].members) == {"a6", "a8", "a11"}
    assert after.groups[new_ids[0]].title == "y"
    assert after.location["a7"] is None
    # group 4 keeps a9 (its own grade), so it is not deleted; a9 did not move
    assert after.location["a9"] == 4 and 4 in after.groups


def test_answers_a_grader_moved_stay_where_the_grader_put_them():
    """A model must not undo a person's correction: an answer a grader took out of a group, or
    moved into one, keeps that place through a regrouping, though neither group is reviewed."""
    state = state_with({1: [0, 1, 2], 2: [3, 4, 5]}, 6)
    state = run(state, [Move(("a2",), None), Move(("a5",), 1)], author="ada")
    assert fixed_answers(state) == {"a2", "a5"}
    with pytest.raises(ValueError, match="stays"):
        plan_regroup(state, [["a0", "a1", "a2"]])  # a2 back with the answers it was taken from
    after = run(state, plan_regroup(state, [["a0", "a1", "a3", "a4"]]))
    assert after.location["a2"] is None and after.location["a5"] == 1


def test_answers_a_grader_took_out_of_a_group_never_go_back_when_free_again():
    state = state_with({1: [0, 1, 2, 3], 2: [4, 5]}, 6)
    # Ada moves a2 and a3 out to a group of their own, then deletes it: they are ungrouped, free.
    state = run(state, [Move(("a2", "a3"), NEW, title="not like these"), Delete(3)], author="ada")
    assert not {"a2", "a3"} & fixed_answers(state)
    after = run(state, plan_regroup(state, [["a0", "a1", "a2", "a3"], ["a4", "a5"]]))
    assert after.location["a2"] is None and after.location["a3"] is None  # not back in group 1
    assert set(after.groups[1].members) == {"a0", "a1"}


def test_a_group_a_person_brought_back_by_undoing_a_models_delete_stays():
    state = state_with({1: [0, 1, 2], 2: [3]}, 4)
    state = run(state, [Move(("a3",), 1), Delete(2)])  # a model empties and deletes group 2
    state = run(state, [Undo(state.version)], author="ada")  # Ada wants it back
    assert 2 in state.groups and not state.groups[2].members
    payloads = plan_regroup(state, [["a0", "a1", "a2", "a3"]])
    assert Delete(2) not in payloads


def test_groups_a_grader_merged_split_renamed_or_made_keep_their_members():
    """A grader's merge, split, rename or new group says how those answers go together; a
    model regrouping the unreviewed answers must not re-cut it, though nothing is confirmed."""
    state = state_with({1: [0, 1], 2: [2, 3], 3: [4, 5, 6, 7], 4: [8, 9], 5: [10, 11], 6: [12, 13, 14]}, 16)
    state = run(
        state,
        [Merge(1, (2,)), Split(3, (("a4", "a5"), ("a6", "a7"))), Rename(4, "forgot the units"), Move(("a15",), NEW)],
        author="ada",
    )
    split_off = state.next_group_id - 2  # the split's second part; the move's new group is last
    made = state.next_group_id - 1
    assert state.location["a6"] == split_off and state.location["a15"] == made
    kept = {1: state.groups[1], 3: state.groups[3], split_off: state.groups[split_off], 4: state.groups[4], made: state.groups[made]}
    assert fixed_answers(state) == {f"a{i}" for i in (*range(10), 15)}
    with pytest.raises(ValueError, match="stays"):
        plan_regroup(state, [["a4", "a6", "a10"]])  # the split, re-merged
    # the model's clusters can only re-cut groups 5 and 6 and the ungrouped a14
    after = run(state, plan_regroup(state, [["a10", "a12"], ["a11", "a13", "a14"]]))
    for gid, group in kept.items():
        assert after.groups[gid] == group


def test_an_undone_split_keeps_nothing():
    state = run(state_with({1: [0, 1, 2, 3]}, 4), [Split(1, (("a0", "a1"), ("a2", "a3")))], author="ada")
    state = run(state, [Undo(state.version)], author="ada")
    assert fixed_answers(state) == set()


def test_a_models_own_splits_and_new_groups_keep_nothing():
    state = state_with({1: [0, 1, 2, 3]}, 5)
    state = run(state, [Split(1, (("a0", "a1"), ("a2", "a3"))), Move(("a4",), NEW)], author="model:v0002")
    assert fixed_answers(state) == set()


def test_a_models_own_moves_do_not_fix_answers():
    state = run(state_with({1: [0, 1, 2], 2: [3, 4, 5]}, 6), [Move(("a2",), None)], author="model:grades")
    assert fixed_answers(state) == set()


def test_a_cluster_mostly_from_one_group_keeps_that_group_and_moves_only_the_rest():
    state = run(state_with({1: [0, 1, 2], 2: [3, 4, 5]}, 6), [Confirm(1)], author="ada")
    payloads = plan_regroup(state, [["a5", "a4"]])  # 2 of group 2's 3 members
    assert payloads == [Move(("a3",), to=None)]  # no delete, no new group
    after = run(state, payloads)
    assert set(after.groups[2].members) == {"a4", "a5"} and after.location["a3"] is None
    assert after.next_group_id == state.next_group_id


def test_an_unmatched_suggested_group_is_emptied_then_deleted():
    state = state_with({1: [0, 1], 2: [2, 3]}, 6)
    payloads = plan_regroup(state, [["a0", "a2", "a4"], ["a1", "a3", "a5"]])
    after = run(state, payloads)
    assert any(isinstance(p, Delete) for p in payloads)
    assert set(after.groups) == {3, 4}  # fresh ids, never 1 or 2 again
    assert {frozenset(g.members) for g in after.groups.values()} == {frozenset({"a0", "a2", "a4"}), frozenset({"a1", "a3", "a5"})}


def test_nothing_to_do_gives_no_edits():
    state = state_with({1: [0, 1, 2]}, 4)
    assert plan_regroup(state, [["a0", "a1", "a2"]]) == []


def test_plan_refuses_to_move_fixed_answers():
    state = run(state_with({1: [0, 1]}, 3), [Confirm(1)], author="ada")
    with pytest.raises(ValueError, match="stays"):
        plan_regroup(state, [["a0", "a2"]])
    with pytest.raises(ValueError, match="more than one cluster"):
        plan_regroup(state, [["a2"], ["a2"]])


def test_regroup_question_groups_only_free_answers_from_vectors():
    rng = np.random.default_rng(0)
    centres = np.eye(4, dtype=np.float32)
    n = 16
    vectors = np.repeat(centres, 4, axis=0) + 0.01 * rng.normal(size=(n, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    answers = [Answer(f"a{i}", "q", f"answer {i // 4} variant {i}") for i in range(n)]
    # initially everything in one suggested group, except a confirmed group of the first four
    state = run(state_with({1: [0, 1, 2, 3], 2: list(range(4, n))}, n), [Confirm(1)], author="ada")
    after = run(state, regroup_question(state, answers, vectors))
    assert after.groups[1].members == state.groups[1].members and after.groups[1].status == CONFIRMED
    together = {frozenset(g.members) for gid, g in after.groups.items() if gid != 1 and g.members}
    assert together == {frozenset(f"a{i}" for i in range(k * 4, k * 4 + 4)) for k in (1, 2, 3)}


def test_regroup_store_logs_model_edits_and_leaves_confirmed_groups(tmp_path):
    from pathlib import Path

    from grouper.answers import load_answers
    from grouper.model_versions import ModelRegistry
    from grouper.store import Store
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    (question,) = load_answers(Path(__file__).resolve().parents[1] / "sample_data" / "q1_capital_australia.csv")
    n = len(question.answers)
    labels = np.array([1] * 10 + [2] * (n - 10))
    grouping = Grouping(labels, np.ones(n), (Group(1, "first", tuple(range(10))), Group(2, "rest", tuple(range(10, n)))))
    with Store.open(tmp_path / "grades.sqlite") as store:
        store.import_question(question)
        store.save_grouping("q1", grouping, model_version="test")
        store.append("q1", "ada", 0, Confirm(1))
        confirmed = store.state("q1").groups[1]
        report = regroup_store(store, registry, device=torch.device("cpu"))
        done, refused = report["q1"]
        assert refused is None and done >= 1
        edits = store.edits("q1")
        assert [e.author for e in edits] == ["ada"] + ["model:v0001"] * done
        after = store.state("q1")
        assert after.groups[1] == confirmed


def test_a_graders_confirm_during_a_regroup_stops_the_plan_and_nothing_confirmed_moves(tmp_path):
    """Regrouping appends its plan edit by edit against the version it planned from; when a
    grader confirms groups in between, the rest of the plan is refused, never forced."""
    registry, store = _interleaved_q1(tmp_path)
    with store:
        confirmed: dict[int, tuple[str, ...]] = {}
        original_append = store.append

        def append_then_a_grader_confirms(question_id, author, base, payload):
            edit = original_append(question_id, author, base, payload)
            if author.startswith("model:") and not confirmed:
                state = store.state(question_id)
                for gid, group in state.groups.items():
                    if group.members and group.status != CONFIRMED:
                        original_append(question_id, "ben", state.version, Confirm(gid))
                        state = store.state(question_id)
                        confirmed[gid] = state.groups[gid].members
            return edit

        store.append = append_then_a_grader_confirms
        report = regroup_store(store, registry, device=torch.device("cpu"))
        done, refused = report["q1"]
        after = store.state("q1")
    assert done >= 1 and confirmed
    assert refused is not None  # the plan went on to touch groups ben had confirmed
    for gid, members in confirmed.items():
        assert after.groups[gid].members == members and after.groups[gid].status == CONFIRMED


def test_a_graders_edit_between_a_models_edits_stops_the_plan_after_the_next(tmp_path):
    """Each of a regroup's edits is made against the version its plan reached: a grade given
    in between is checked by the next model edit, and the plan stops there (before, the edit
    after that took the grader's edit for one the plan had seen)."""
    registry, store = _interleaved_q1(tmp_path)
    with store:
        original_append = store.append
        model_edits: list[int] = []

        def append_then_a_grader_renames(question_id, author, base, payload):
            edit = original_append(question_id, author, base, payload)
            if author.startswith("model:"):
                model_edits.append(edit.edit_id)
                if len(model_edits) == 1:  # a change nobody's plan conflicts with
                    state = store.state(question_id)
                    original_append(question_id, "ben", state.version, Rename(min(state.groups), "seen by ben"))
            return edit

        store.append = append_then_a_grader_renames
        done, stopped = regroup_store(store, registry, device=torch.device("cpu"))["q1"]
    # The model's edit after ben's was checked against it (refused if it touched his group),
    # and the plan stopped there: no third model edit took ben's change for seen.
    assert stopped is not None and len(model_edits) == done <= 2


def test_a_question_grouped_by_the_version_is_not_regrouped_again_and_unknown_questions_write_nothing(tmp_path):
    from grouper.store import StoreError

    registry, store = _interleaved_q1(tmp_path)
    with store:
        with pytest.raises(StoreError, match="'nosuch' is not in"):
            regroup_store(store, registry, questions=["q1", "nosuch"], device=torch.device("cpu"))
        assert store.edits("q1") == []
        done, _ = regroup_store(store, registry, device=torch.device("cpu"))["q1"]
        assert done >= 1
        store.append("q1", "ada", None, Confirm(min(store.state("q1").groups)))
        # Regrouped by this version already: a second run re-cuts nothing.
        assert regroup_store(store, registry, device=torch.device("cpu"))["q1"] == (0, None)


def test_answers_a_grader_put_back_by_undoing_a_models_move_stay():
    """The model split a1, a2 off group 1; a grader undid that move. The next regroup must not
    split them off again (a redo by the grader gives the model's grouping back, free again)."""
    state = state_with({1: [0, 1, 2, 3]}, 4)
    state = run(state, [Move(("a2", "a3"), NEW)], author="model:v0002")
    moved = state.version
    state = run(state, [Undo(moved)], author="ada")
    assert state.groups[1].members == ("a0", "a1", "a2", "a3")
    assert fixed_answers(state) == {"a2", "a3"}
    with pytest.raises(ValueError, match="'a2' is in a group a grader reviewed or shaped, was placed by a grader"):
        plan_regroup(state, [["a0", "a1"], ["a2", "a3"]])
    state = run(state, [Undo(state.version)], author="ada")  # redo the model's move
    assert fixed_answers(state) == set()


def _interleaved_q1(tmp_path):
    """A registry with a published version, and a store holding the sample q1 in four
    suggested groups of interleaved answers: any regrouping has several edits to make."""
    from pathlib import Path

    from grouper.answers import load_answers
    from grouper.model_versions import ModelRegistry
    from grouper.store import Store
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    (question,) = load_answers(Path(__file__).resolve().parents[1] / "sample_data" / "q1_capital_australia.csv")
    n = len(question.answers)
    labels = np.arange(n) % 4 + 1
    grouping = Grouping(labels, np.ones(n), tuple(Group(g, f"g{g}", tuple(np.flatnonzero(labels == g))) for g in range(1, 5)))
    store = Store.open(tmp_path / "grades.sqlite")
    store.import_question(question)
    store.save_grouping("q1", grouping, model_version="test")
    return registry, store
