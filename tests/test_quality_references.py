"""Grouping by reference answers (grouper.references and its use in grouper.clustering)."""

from __future__ import annotations

import numpy as np
import pytest

from grouper.answers import load_answers
from grouper.clustering import UNGROUPED, GroupingSettings, group_embeddings
from grouper.evaluation.apa import count_review
from grouper.pipeline import group_question
from grouper.references import (
    References,
    content_words,
    group_count,
    reference_groups,
    reference_scores,
)

# --------------------------------------------------------------------------- words and scores


def test_content_words_drop_function_words_and_suffixes_but_keep_negations() -> None:
    assert content_words("The bulbs are NOT connected to the battery") == {"bulb", "not", "connect", "battery"}
    assert content_words("") == set()


def _refs(texts: list[str], question: str = "", dim: int = 4) -> References:
    # Vectors do not matter for the lexical part: give every reference the same one.
    return References(tuple(texts), np.tile(np.eye(dim)[0], (len(texts), 1)), question)


def _recall_part(answers: list[str], refs: References) -> np.ndarray:
    """The lexical signal alone: equal vectors make the cosine part constant (z-score 0)."""
    vectors = np.tile(np.eye(4)[0], (len(answers), 1))
    return reference_scores(vectors, answers, refs)


def test_an_answer_saying_more_of_the_reference_scores_higher() -> None:
    refs = _refs(["the switch is open so there is a gap in the circuit"])
    scores = _recall_part(["a gap: the switch is open", "the switch is open", "I like turtles"], refs)
    assert scores[0] > scores[1] > scores[2]


def test_words_of_the_question_earn_nothing() -> None:
    refs = _refs(["the bulb is in a closed path with the battery"], question="Why does the bulb light?")
    # "bulb" is in the question: repeating it is not credited, "closed path" is.
    scores = _recall_part(["bulb bulb bulb", "closed path"], refs)
    assert scores[1] > scores[0]


def test_a_misspelt_word_still_matches() -> None:
    refs = _refs(["the terminals are separated by a gap"])
    scores = _recall_part(["terminals seperated by gap", "terminals joined by wire"], refs)
    assert scores[0] > scores[1]


def test_references_need_one_vector_per_text() -> None:
    with pytest.raises(ValueError, match="one embedding row per reference"):
        References(("a", "b"), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="at least one"):
        References((), np.zeros((0, 4)))


# --------------------------------------------------------------------------- groups


def test_reference_groups_split_the_plane_of_the_two_signals() -> None:
    rng = np.random.default_rng(0)
    # Three clouds: says the reference in meaning and wording, in meaning only, neither.
    centres = np.array([[2.0, 2.0], [1.5, -1.0], [-2.0, -2.0]])
    signals = np.concatenate([c + rng.normal(0, 0.2, (20, 2)) for c in centres])
    labels, confidence = reference_groups(signals, np.ones(60), 3, min_size=3)
    assert [set(labels[i * 20 : (i + 1) * 20].tolist()) for i in range(3)] == [{0}, {1}, {2}]
    assert np.all((confidence > 0.5) & (confidence <= 1.0))


def test_light_groups_are_dissolved_into_their_neighbours() -> None:
    signals = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [20.0, 20.0]])
    labels, _ = reference_groups(signals, np.ones(6), 3, min_size=2)
    assert sorted(np.bincount(labels).tolist()) == [3, 3]  # the lone outlier joined the nearest group
    # Weights count answers: one distinct text written by three students is a group alone.
    weighted, _ = reference_groups(signals[:4], np.array([1.0, 1.0, 1.0, 3.0]), 2, min_size=3)
    assert weighted.tolist() == [1, 1, 1, 0]


def test_reference_groups_are_numbered_closest_to_the_references_first_and_repeatable() -> None:
    signals = np.array([[-1.0, -1.0], [-1.1, -0.9], [-0.9, -1.2], [1.0, 1.0], [1.2, 0.9], [0.9, 1.1]])
    labels, confidence = reference_groups(signals, np.ones(6), 2)
    assert labels.tolist() == [1, 1, 1, 0, 0, 0]
    again, _ = reference_groups(signals, np.ones(6), 2)
    assert np.array_equal(labels, again)
    one, conf_one = reference_groups(signals, np.ones(6), 1)
    assert one.tolist() == [0] * 6 and conf_one.tolist() == [1.0] * 6


def test_a_large_question_is_grouped_in_bounded_time() -> None:
    rng = np.random.default_rng(0)
    signals = np.round(rng.normal(0, 1, (60_000, 2)), 3)
    labels, _ = reference_groups(signals, np.ones(len(signals)), group_count(100_000, 3.0, 3), min_size=3)
    assert len(np.unique(labels)) > 50 and np.bincount(labels).min() >= 3


def test_group_count_grows_with_the_square_root_of_the_answers() -> None:
    assert group_count(0, 3.0, 3) == 0
    assert group_count(20, 3.0, 3) == 1
    assert group_count(90, 3.0, 3) == 3
    assert group_count(100_000, 3.0, 3) == 105
    assert group_count(8, 0.5, 3) == 2  # never more groups than min_size answers can fill


# --------------------------------------------------------------------------- grouping


def _embed(encoder, texts):
    return encoder.encode(texts).vectors


ANSWERS = (
    ["The switch is open, so there is a gap in the circuit."] * 2
    + ["there is a gap because the switch is open", "Switch open: the circuit has a gap", "the gap is at the open switch"]
    + ["the battery is dead", "The bulb is broken", "the battery is used up", "because the bulb burned out", "no idea"]
    + ["", ""]
)


@pytest.fixture(scope="module")
def switch(encoder):
    references = References(
        ("The switch is open, which leaves a gap in the circuit.",),
        _embed(encoder, ["The switch is open, which leaves a gap in the circuit."]),
        "Why does the bulb not light?",
    )
    return _embed(encoder, ANSWERS), references


def test_with_references_every_answer_is_in_a_group(switch) -> None:
    vectors, references = switch
    grouping = group_embeddings(vectors, ANSWERS, GroupingSettings(group_scale=1.0), references=references)
    assert not (grouping.labels == UNGROUPED).any()
    content = [g for g in grouping.groups if not g.blank]
    assert len(content) == 2 and grouping.groups[-1].blank and grouping.groups[-1].members == (10, 11)
    gap = {grouping.labels[i] for i in range(5)}
    other = {grouping.labels[i] for i in range(5, 10)}
    assert len(gap) == 1 and len(other) == 1 and gap != other
    assert np.all((grouping.confidence >= 0) & (grouping.confidence <= 1))


def test_reference_grouping_ignores_the_order_of_the_answers(switch) -> None:
    vectors, references = switch
    settings = GroupingSettings(group_scale=1.0)
    first = group_embeddings(vectors, ANSWERS, settings, references=references)
    order = np.random.default_rng(3).permutation(len(ANSWERS))
    second = group_embeddings(vectors[order], [ANSWERS[i] for i in order], settings, references=references)
    as_sets = lambda g, ids: {frozenset(int(ids[m]) for m in grp.members) for grp in g.groups}  # noqa: E731
    assert as_sets(first, np.arange(len(ANSWERS))) == as_sets(second, order)


def test_without_references_or_when_turned_off_hdbscan_groups(switch) -> None:
    vectors, references = switch
    plain = group_embeddings(vectors, ANSWERS)
    off = group_embeddings(vectors, ANSWERS, GroupingSettings(use_references=False), references=references)
    assert np.array_equal(plain.labels, off.labels)


def test_hdbscan_leftovers_form_one_group_or_stay_ungrouped(encoder) -> None:
    texts = ["Canberra"] * 3 + ["photosynthesis", "the moon is made of cheese", "seventeen", "blue whale"]
    vectors = _embed(encoder, texts)
    grouped = group_embeddings(vectors, texts)
    left = [g for g in grouped.groups if g.title == "(other answers)"]
    assert len(left) == 1 and sorted(left[0].members) == [3, 4, 5, 6]
    assert not grouped.confidence[list(left[0].members)].any()  # nothing vouches for them
    ungrouped = group_embeddings(vectors, texts, GroupingSettings(leftovers="ungrouped"))
    assert sorted(ungrouped.ungrouped.tolist()) == [3, 4, 5, 6]
    with pytest.raises(ValueError, match="leftovers"):
        group_embeddings(vectors, texts, GroupingSettings(leftovers="nearest"))


# --------------------------------------------------------------------------- real questions


@pytest.mark.slow
def test_reference_groups_beat_one_group_on_a_real_science_question(encoder, datasets_dir) -> None:
    """A real SciEntsBank question (110 answers): on this corpus grouping by content alone loses
    to one group (protocol table), while reference groups must need clearly fewer actions."""
    (question,) = [q for q in load_answers(datasets_dir / "semeval2013-scientsbank.jsonl") if q.question_id == "PS_2b"]
    labels = [str(a.gold) for a in question.answers]
    grouping = group_question(question, encoder).grouping
    actions = count_review([[labels[i] for i in g.members] for g in grouping.groups], len(grouping.ungrouped)).actions
    assert actions <= 0.8 * count_review([labels], 0).actions
