"""Late answers (grouper.placement): placed into existing groups without regrouping."""

from __future__ import annotations

import numpy as np
import pytest

from grouper.clustering import UNGROUPED
from grouper.placement import PlacementIndex, PlacementSettings, place_answers


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _blobs(seed: int = 0, per_group: int = 12, dim: int = 16, spread: float = 0.05):
    """Three tight, well separated groups of synthetic unit vectors (ids 1, 2, 3) and
    three scattered ungrouped answers."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:3]
    vectors, labels, texts = [], [], []
    for g, centre in enumerate(centres, start=1):
        block = _unit(centre + spread * rng.standard_normal((per_group, dim)))
        vectors.append(block)
        labels += [g] * per_group
        texts += [f"group {g} answer {i}" for i in range(per_group)]
    loners = _unit(rng.standard_normal((3, dim)))
    vectors.append(loners)
    labels += [UNGROUPED] * 3
    texts += ["a loner", "another loner", "a third loner"]
    return np.concatenate(vectors), texts, np.array(labels), centres


def test_an_exact_repeat_joins_its_copies_group() -> None:
    vectors, texts, labels, _ = _blobs()
    # The vector is deliberately far from the group: the text alone decides.
    far = _unit(np.ones((1, vectors.shape[1])))
    placement = place_answers(far, [texts[13]], vectors, texts, labels)
    assert placement.labels.tolist() == [labels[13]]
    assert placement.confidence.tolist() == [1.0]
    assert placement.duplicate.tolist() == [True]


def test_a_repeat_compares_as_the_grouping_does_case_folded() -> None:
    vectors, texts, labels, _ = _blobs()
    placement = place_answers(vectors[[0]], [texts[0].upper()], vectors, texts, labels)
    assert placement.duplicate.tolist() == [True] and placement.labels.tolist() == [1]


def test_a_repeat_goes_where_most_of_its_copies_are_now() -> None:
    vectors, texts, labels, _ = _blobs()
    texts = list(texts)
    # After edits, three copies of one text: two in group 2, one in group 1.
    for i in (0, 12, 13):
        texts[i] = "the same words"
    placement = place_answers(vectors[[5]], ["the same words"], vectors, texts, labels)
    assert placement.labels.tolist() == [2]
    assert placement.confidence[0] == pytest.approx(2 / 3)


def test_a_repeat_of_ungrouped_answers_stays_ungrouped() -> None:
    vectors, texts, labels, _ = _blobs()
    placement = place_answers(vectors[[36]], [texts[36]], vectors, texts, labels)
    assert placement.labels.tolist() == [UNGROUPED]
    assert placement.confidence.tolist() == [0.0]


def test_a_near_answer_joins_the_nearest_group_with_high_confidence() -> None:
    vectors, texts, labels, centres = _blobs()
    rng = np.random.default_rng(7)
    new = _unit(centres[[1, 2]] + 0.03 * rng.standard_normal((2, vectors.shape[1])))
    placement = place_answers(new, ["new one", "new two"], vectors, texts, labels)
    assert placement.labels.tolist() == [2, 3]
    assert np.all(placement.confidence >= PlacementSettings().min_confidence)
    assert not placement.duplicate.any()


def test_a_far_off_answer_stays_ungrouped_with_a_suggestion() -> None:
    vectors, texts, labels, _ = _blobs()
    far = np.zeros((1, vectors.shape[1]), dtype=np.float32)
    far[0, -1] = 1.0  # orthogonal to every group
    placement = place_answers(far, ["something else entirely"], vectors, texts, labels)
    assert placement.labels.tolist() == [UNGROUPED]
    assert placement.confidence.tolist() == [0.0]
    assert placement.suggestion[0] in (1, 2, 3)
    assert placement.suggestion_confidence[0] < PlacementSettings().min_confidence


def test_an_answer_halfway_between_two_groups_is_left_to_the_instructor() -> None:
    vectors, texts, labels, centres = _blobs()
    between = _unit(centres[[0]] + centres[[1]])
    placement = place_answers(between, ["ambiguous"], vectors, texts, labels)
    assert placement.labels.tolist() == [UNGROUPED]


def test_confidences_are_in_the_unit_interval() -> None:
    vectors, texts, labels, _ = _blobs()
    rng = np.random.default_rng(3)
    new = _unit(rng.standard_normal((200, vectors.shape[1])))
    new[:36] = _unit(vectors[:36] + 0.02 * rng.standard_normal((36, vectors.shape[1])))
    placement = place_answers(new, [f"new {i}" for i in range(200)], vectors, texts, labels)
    for values in (placement.confidence, placement.suggestion_confidence):
        assert values.dtype == np.float64 and np.all((values >= 0.0) & (values <= 1.0))
    # Ungrouped answers carry no confidence; placed ones at least the threshold.
    assert np.all(placement.confidence[placement.labels == UNGROUPED] == 0.0)
    assert np.all(placement.confidence[placement.labels != UNGROUPED] >= PlacementSettings().min_confidence)


def test_no_new_answers_give_empty_arrays() -> None:
    vectors, texts, labels, _ = _blobs()
    placement = place_answers(np.zeros((0, vectors.shape[1]), dtype=np.float32), [], vectors, texts, labels)
    assert placement.labels.shape == placement.confidence.shape == (0,)
    assert placement.labels.dtype == np.int64


def test_a_grouping_without_groups_leaves_everything_ungrouped() -> None:
    vectors, texts, _, _ = _blobs()
    labels = np.full(len(texts), UNGROUPED)
    placement = place_answers(vectors[:4], ["w", "x", "y", "z"], vectors, texts, labels)
    assert placement.labels.tolist() == [UNGROUPED] * 4
    assert placement.suggestion.tolist() == [UNGROUPED] * 4


def test_an_empty_answer_joins_the_blank_group_and_is_otherwise_ungrouped() -> None:
    vectors, texts, labels, _ = _blobs()
    zero = np.zeros((1, vectors.shape[1]), dtype=np.float32)
    assert place_answers(zero, [""], vectors, texts, labels).labels.tolist() == [UNGROUPED]
    with_blank = np.concatenate([vectors, zero])
    placement = place_answers(zero, [""], with_blank, list(texts) + [""], np.append(labels, 9))
    assert placement.labels.tolist() == [9]


def test_the_index_is_reusable_and_placement_is_deterministic() -> None:
    vectors, texts, labels, _ = _blobs()
    index = PlacementIndex(vectors, texts, labels)
    rng = np.random.default_rng(5)
    new = _unit(vectors[:20] + 0.05 * rng.standard_normal((20, vectors.shape[1])))
    first = index.place(new, [f"n{i}" for i in range(20)])
    again = PlacementIndex(vectors, texts, labels).place(new, [f"n{i}" for i in range(20)])
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(first.confidence, again.confidence)


def test_mismatched_inputs_are_refused_with_the_shapes() -> None:
    vectors, texts, labels, _ = _blobs()
    with pytest.raises(ValueError, match="same answers"):
        PlacementIndex(vectors, texts[:-1], labels)
    with pytest.raises(ValueError, match="expected"):
        PlacementIndex(vectors, texts, labels).place(vectors[:2], ["one"])
    with pytest.raises(ValueError, match="min_confidence"):
        PlacementSettings(min_confidence=1.5).validate()


def test_late_real_answers_land_with_their_identical_and_paraphrased_peers(encoder) -> None:
    """On real embeddings: a late copy joins its group, a paraphrase too, nonsense does not."""
    lit = [
        "The bulb lights because it is in a closed path with the battery.",
        "The bulb is in a closed path with the battery, so it lights.",
        "It lights because there is a closed path containing the battery.",
        "Bulb A is in a closed path with the battery.",
        "Bulb A is contained in a closed path with the battery so it is on.",
    ]
    unlit = [
        "The switch is open so there is no closed path.",
        "There is a gap because the switch is open, so the path is not closed.",
        "Since the switch is open the circuit is not a closed path.",
        "The open switch breaks the closed path.",
        "Switch Z is open, so the path is not closed.",
    ]
    existing = lit + unlit
    labels = np.array([1] * len(lit) + [2] * len(unlit))
    late = [
        lit[0],
        "The bulb lights since it is on a closed path with the battery.",
        "The switch is open, therefore there is no closed path.",
        "My favourite colour is green and I like pizza.",
    ]
    placement = place_answers(
        encoder.encode(late).vectors, late, encoder.encode(existing).vectors, existing, labels
    )
    assert placement.labels.tolist() == [1, 1, 2, UNGROUPED], placement
    assert placement.confidence[0] == 1.0 and placement.duplicate.tolist() == [True, False, False, False]


def test_choosing_contenders_by_centroid_agrees_with_the_exhaustive_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large groupings pick the groups to score by centroid; on many small groups the result
    is that of comparing with every member."""
    import grouper.placement as placement_module

    rng = np.random.default_rng(11)
    dim, n_groups = 24, 60
    centres = _unit(rng.standard_normal((n_groups, dim)))
    sizes = rng.integers(2, 12, size=n_groups)
    vectors = _unit(np.repeat(centres, sizes, axis=0) + 0.15 * rng.standard_normal((int(sizes.sum()), dim)))
    labels = np.repeat(np.arange(1, n_groups + 1), sizes)
    texts = [f"existing {i}" for i in range(len(labels))]
    new = _unit(centres[rng.integers(0, n_groups, 300)] + 0.15 * rng.standard_normal((300, dim)))
    new_texts = [f"new {i}" for i in range(300)]
    exhaustive = place_answers(new, new_texts, vectors, texts, labels)
    monkeypatch.setattr(placement_module, "_EXACT_MEMBERS", 10)
    by_centroid = place_answers(new, new_texts, vectors, texts, labels)
    assert np.mean(by_centroid.suggestion == exhaustive.suggestion) >= 0.98
    assert np.mean(by_centroid.labels == exhaustive.labels) >= 0.98


def _brute_force(index: PlacementIndex, new: np.ndarray, vectors: np.ndarray, labels: np.ndarray):
    """Best group and confidence of each new answer, every group scored one by one."""
    s = index.settings
    radius = dict(zip(index.group_ids_.tolist(), index.radius_.tolist(), strict=True))
    best, confidence = [], []
    for vector in new:
        scores = {}
        for g in index.group_ids_.tolist():
            sims = np.sort(vectors[labels == g] @ vector)[::-1]
            scores[g] = float(np.mean(sims[: s.neighbours]))
        ranked = sorted(scores, key=lambda g: -scores[g])
        lead = scores[ranked[0]] - scores[ranked[1]]
        span = max(radius[ranked[0]] - s.min_similarity, 1e-6)
        closeness = np.clip((scores[ranked[0]] - s.min_similarity) / span, 0.0, 1.0)
        best.append(ranked[0])
        confidence.append(closeness * np.clip(lead / s.margin, 0.0, 1.0))
    return np.array(best), np.array(confidence)


def _uneven_groups(n_groups: int, seed: int = 4):
    """Groups of very different sizes (one member to past the radius sample), close enough
    together that many new answers are ambiguous, and new answers among them."""
    rng = np.random.default_rng(seed)
    dim = 32
    sizes = np.array([1, 2, 3, 300, 5, 9, 70][:n_groups])
    centres = _unit(rng.standard_normal((n_groups, dim)) + 1.5 * np.ones(dim) / np.sqrt(dim))
    vectors = _unit(np.repeat(centres, sizes, axis=0) + 0.2 * rng.standard_normal((int(sizes.sum()), dim)))
    labels = np.repeat(np.arange(10, 10 + n_groups), sizes)
    new = _unit(centres[rng.integers(0, n_groups, 120)] + 0.25 * rng.standard_normal((120, dim)))
    return vectors, [f"existing {i}" for i in range(len(labels))], labels, new


@pytest.mark.parametrize("gather_max", [0, 4, 64, 1000])
@pytest.mark.parametrize("by_centroid", [False, True])
def test_batched_scoring_matches_scoring_each_group_one_by_one(
    monkeypatch: pytest.MonkeyPatch, gather_max: int, by_centroid: bool
) -> None:
    """Every group a contender (4 groups comparing with every member, 7 by centroid): the
    batched scores, padded or a group at a time, are those of scoring each group alone."""
    import grouper.placement as placement_module

    vectors, texts, labels, new = _uneven_groups(7 if by_centroid else 4)
    monkeypatch.setattr(placement_module, "_GATHER_MAX", gather_max)
    monkeypatch.setattr(placement_module, "_GATHER_CELLS", 5000)  # several gathered parts
    if by_centroid:
        monkeypatch.setattr(placement_module, "_EXACT_MEMBERS", 0)
    index = PlacementIndex(vectors, texts, labels)
    placement = index.place(new, [f"new {i}" for i in range(len(new))])
    best, confidence = _brute_force(index, new, vectors, labels)
    np.testing.assert_array_equal(placement.suggestion, best)
    np.testing.assert_allclose(placement.suggestion_confidence, confidence, atol=1e-5)
    assert 0.1 < np.mean(confidence >= PlacementSettings().min_confidence) < 0.9  # a telling case


def test_radii_computed_when_needed_are_those_computed_all_at_once() -> None:
    vectors, texts, labels, new = _uneven_groups(7)
    lazy = PlacementIndex(vectors, texts, labels)
    lazy.place(new[:3], ["a", "b", "c"])  # computes some radii only
    assert 0 < np.sum(~np.isnan(lazy._radius)) < len(lazy.group_ids_)
    np.testing.assert_array_equal(lazy.radius_, PlacementIndex(vectors, texts, labels).radius_)
    # A small group's radius: the low quantile of its members' leave-one-out scores.
    members = vectors[labels == 15]
    sims = members @ members.T
    np.fill_diagonal(sims, -np.inf)
    loo = np.sort(sims, axis=1)[:, ::-1][:, :3].mean(axis=1)
    assert lazy.radius_[5] == pytest.approx(np.quantile(loo, PlacementSettings().radius_quantile), abs=1e-6)


def test_a_pickled_index_still_finds_repeats() -> None:
    """The texts' hashes are not pickled (they differ between processes): they are redone."""
    import pickle

    vectors, texts, labels, _ = _blobs()
    index = PlacementIndex(vectors, texts, labels)
    state = index.__getstate__()
    assert "_sorted_hashes" not in state
    again = pickle.loads(pickle.dumps(index))
    placement = again.place(vectors[[20, 0]], [texts[20].upper(), "not a repeat"])
    assert placement.duplicate.tolist() == [True, False]
    assert placement.labels.tolist() == [2, 1]
