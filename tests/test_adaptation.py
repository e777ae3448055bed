"""The within-question fast path: a projection head fitted to the answers reviewed so far."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from grouper.adaptation import (
    AdaptationSettings,
    fit_projection,
    nearest_reviewed,
    pairs_from_labels,
    regroup_unreviewed,
)
from grouper.answers import load_answers
from grouper.clustering import UNGROUPED
from grouper.training.losses import ContrastiveLoss

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run this module's torch work on one thread, restoring the setting afterwards.

    On a CPU shared by several busy processes, two intra-op threads spin-wait on each other
    and a forward pass of the encoder took 25 times longer than on one thread (58 s against
    2.4 s for 90 answers, measured here); the tiny runs of these tests gain nothing from two.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def photosynthesis(encoder):
    """The sample question with three grades, its embeddings and gold class ids."""
    (question,) = load_answers(SAMPLE_DATA / "q2_photosynthesis.csv")
    # 90 of its 170 answers: enough for every grade, and half the embedding time
    question = replace(question, answers=question.answers[:90])
    vectors = encoder.encode([a.normalized for a in question.answers]).vectors
    classes = sorted({a.gold for a in question.answers})
    assert len(classes) == 3
    gold = np.array([classes.index(a.gold) for a in question.answers])
    return question, vectors, gold


def test_pairs_from_labels_joins_same_labels_and_parts_different_ones():
    labels = np.array([0, 0, 1, UNGROUPED, 1])
    pairs = pairs_from_labels(labels, np.random.default_rng(0))
    as_set = {(int(i), int(j)): int(t) for i, j, t in pairs}
    assert as_set == {(0, 1): 1, (0, 2): 0, (0, 4): 0, (1, 2): 0, (1, 4): 0, (2, 4): 1}
    assert not np.any(pairs[:, 0] == pairs[:, 1])


def test_pairs_from_labels_caps_and_balances():
    labels = np.array([0] * 30 + [1] * 3)
    pairs = pairs_from_labels(labels, np.random.default_rng(0), max_pairs=40)
    assert len(pairs) == 40
    assert pairs[:, 2].sum() == 20  # 435 + 3 must-links, 90 cannot-links: half and half


def test_head_starts_at_the_identity():
    vectors = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    fitted = fit_projection(vectors, np.zeros((0, 3), dtype=np.int64), rng=np.random.default_rng(0))
    np.testing.assert_allclose(fitted.transform(vectors), vectors, atol=1e-6)
    assert fitted.n_pairs == 0


def test_head_refuses_self_pairs_and_out_of_range_indices():
    vectors = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="two different answers"):
        fit_projection(vectors, np.array([[1, 1, 1]]), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        fit_projection(vectors, np.array([[0, 3, 1]]), rng=np.random.default_rng(0))


def test_projection_head_lowers_the_pair_loss_within_the_question(photosynthesis):
    _, vectors, gold = photosynthesis
    rng = np.random.default_rng(0)
    reviewed = np.zeros(len(gold), dtype=bool)
    reviewed[rng.permutation(len(gold))[: len(gold) * 4 // 10]] = True
    fitted = fit_projection(vectors, pairs_from_labels(np.where(reviewed, gold, UNGROUPED), rng), rng=rng)
    assert fitted.loss_after < fitted.loss_before
    # and on the answers not reviewed yet: what the regrouping is for
    held = pairs_from_labels(np.where(~reviewed, gold, UNGROUPED), rng)
    loss = ContrastiveLoss(AdaptationSettings().margin)

    def held_loss(v: np.ndarray) -> float:
        t = torch.as_tensor(v)
        return float(loss(t[held[:, 0]], t[held[:, 1]], torch.as_tensor(held[:, 2])))

    assert held_loss(fitted.transform(vectors)) < held_loss(vectors)


def test_regroup_unreviewed_groups_only_the_unreviewed_answers(photosynthesis):
    question, vectors, gold = photosynthesis
    reviewed = np.arange(len(gold)) < 40
    fitted = fit_projection(
        vectors, pairs_from_labels(np.where(reviewed, gold, UNGROUPED), np.random.default_rng(0)),
        AdaptationSettings(steps=20), rng=np.random.default_rng(0),
    )
    texts = [a.normalized for a in question.answers]
    indices, grouping = regroup_unreviewed(vectors, texts, reviewed, fitted)
    np.testing.assert_array_equal(indices, np.arange(40, len(gold)))
    assert grouping.labels.shape == (len(gold) - 40,)
    members = sorted(i for g in grouping.groups for i in g.members)
    assert members == sorted(set(range(len(indices))) - set(grouping.ungrouped.tolist()))


def test_nearest_reviewed_votes_with_the_neighbours():
    # two tight clusters on the axes; two reviewed answers in each, one unreviewed near each
    vectors = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99], [0.98, 0.2], [0.2, 0.98], [0, 0]], dtype=np.float32)
    vectors[:-1] /= np.linalg.norm(vectors[:-1], axis=1, keepdims=True)
    labels = np.array([5, 5, 7, 7, UNGROUPED, UNGROUPED, UNGROUPED])
    suggested, confidence = nearest_reviewed(vectors, labels, k=2)
    assert suggested.tolist() == [5, 5, 7, 7, 5, 7, UNGROUPED]  # the blank answer gets nothing
    assert confidence[4] == pytest.approx(1.0) and confidence[:4].tolist() == [1.0] * 4
    assert confidence[6] == 0.0


def test_adapt_regroup_after_a_review_moves_only_unreviewed_answers(photosynthesis):
    from grouper.clustering import group_embeddings
    from grouper.edits import Confirm, GradeAnswer, GradeGroup, Move, apply, initial_state, make_edit
    from grouper.evaluation.apa import majority_label
    from grouper.regroup import fixed_answers

    from grouper.adaptation import adapt_regroup, reviewed_labels

    question, vectors, gold = photosynthesis
    ids = [a.answer_id for a in question.answers]
    state = initial_state("q2", ids, group_embeddings(vectors, [a.normalized for a in question.answers]))

    def edit(payload, author="oracle"):
        nonlocal state
        state = apply(state, make_edit(state, author, payload))

    # the oracle reviews the largest group: wrong members out (with their grade), then confirm + grade
    first = max(state.groups.values(), key=lambda g: len(g.members))
    label = majority_label([gold[ids.index(a)] for a in first.members])
    for a in [a for a in first.members if gold[ids.index(a)] != label]:
        edit(Move((a,), None))
        edit(GradeAnswer(a, float(gold[ids.index(a)])))
    edit(Confirm(first.group_id))
    edit(GradeGroup(first.group_id, float(label)))
    labels = reviewed_labels(state, ids)
    assert (labels != UNGROUPED).sum() == len(first.members)

    before = state
    payloads, fitted = adapt_regroup(state, question.answers, vectors, AdaptationSettings(steps=30),
                                     rng=np.random.default_rng(0))
    assert fitted.n_pairs > 0 and payloads
    for payload in payloads:
        edit(payload, author="model:test")
    assert state.groups[first.group_id] == before.groups[first.group_id]
    for a in fixed_answers(before):
        assert state.location[a] == before.location[a]
    placed = [a for g in state.groups.values() for a in g.members] + list(state.ungrouped)
    assert sorted(placed) == sorted(ids)


def test_reviewed_labels_tell_grades_apart_by_score_and_items_not_by_comment():
    from grouper.adaptation import reviewed_labels
    from grouper.clustering import Group, Grouping
    from grouper.edits import GradeAnswer, SetRubric, apply, initial_state, make_edit

    ids = ["a0", "a1", "a2", "a3", "a4"]
    state = initial_state("q", ids, Grouping(np.array([1] * 5), np.ones(5), (Group(1, "all", tuple(range(5))),)))
    for payload in (
        SetRubric(((1, "names the path", 1.0), (2, "says it lights", 1.0))),
        GradeAnswer("a0", 1.0, "good"),
        GradeAnswer("a1", 1.0, "Good!"),  # the same grade, worded otherwise
        GradeAnswer("a2", None, items=(1,)),  # 1 point, but as a rubric item: another grade
        GradeAnswer("a3", 0.0, "no"),
    ):
        state = apply(state, make_edit(state, "ada", payload))
    labels = reviewed_labels(state, ids)
    assert labels[0] == labels[1]
    assert len({labels[0], labels[2], labels[3]}) == 3
    assert labels[4] == UNGROUPED  # in an unconfirmed group, ungraded
