"""Reference pairs: graded answers against the reference answers (grouper.reference_pairs)."""

from __future__ import annotations

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.clustering import Group, Grouping
from grouper.edits import Confirm, GradeAnswer, GradeGroup, SetMaxScore
from grouper.reference_pairs import REFERENCE_PREFIX, question_reference_pairs, reference_pairs
from grouper.store import Store


def test_full_marks_go_with_their_nearest_reference_and_the_rest_apart() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071], [1.0, 0.0], [0.0, 1.0]])
    refs = np.array([[1.0, 0.0], [0.0, 1.0]])
    pairs = question_reference_pairs(
        "q", ["a", "b", "c", "", "e"], [1.0, 1.0, 0.0, 1.0, None], vectors, ["ref one", "ref two"], refs,
        ["a0", "a1", "a2", "a3", "a4"],
    )
    # Blank (a3) and ungraded (a4) answers give no pair.
    assert [(p.answer_id_a, p.answer_id_b, p.text_a, p.together) for p in pairs] == [
        (f"{REFERENCE_PREFIX}0", "a0", "ref one", True),
        (f"{REFERENCE_PREFIX}1", "a1", "ref two", True),
        (f"{REFERENCE_PREFIX}0", "a2", "ref one", False),
    ]


def test_no_pair_without_references_or_without_two_scores() -> None:
    vectors = np.eye(2)
    assert question_reference_pairs("q", ["a", "b"], [1.0, 0.0], vectors, [], np.zeros((0, 2)), ["x", "y"]) == []
    assert question_reference_pairs("q", ["a", "b"], [1.0, 1.0], vectors, ["r"], vectors[:1], ["x", "y"]) == []
    with pytest.raises(ValueError, match="must describe the same answers"):
        question_reference_pairs("q", ["a"], [1.0, 0.0], vectors, ["r"], vectors[:1], ["x", "y"])


def _capital_question() -> Store:
    """An in-memory store with one question, grouped: a0 a1 (Canberra) and a2 a3 (not)."""
    texts = ["Canberra", "It is Canberra", "Sydney", "Melbourne"]
    answers = tuple(Answer(f"a{i}", "cap", t) for i, t in enumerate(texts))
    question = Question("cap", "What is the capital of Australia?", answers, ("Canberra is the capital.",))
    grouping = Grouping(np.array([1, 1, 2, 2]), np.ones(4), (Group(1, "c", (0, 1)), Group(2, "s", (2, 3))))
    store = Store("sqlite://")
    store.import_question(question)
    store.save_grouping("cap", grouping, model_version="test")
    return store


def test_pairs_come_from_the_grades_in_the_store(encoder) -> None:
    with _capital_question() as store:
        assert reference_pairs(store, ["cap"], encoder) == []  # nothing graded yet
        store.append("cap", "ta", None, Confirm(1))
        store.append("cap", "ta", None, GradeGroup(1, 2.0, "right"))
        store.append("cap", "ta", None, GradeAnswer("a2", 0.0, "wrong"))
        pairs = reference_pairs(store, ["cap"], encoder)
    assert {(p.answer_id_b, p.together) for p in pairs} == {("a0", True), ("a1", True), ("a2", False)}
    assert all(p.text_a == "Canberra is the capital." for p in pairs)
    # Each pair is traceable to the edit that gave the answer its grade, and its author.
    assert {p.answer_id_b: (p.edit_id, p.author) for p in pairs} == {"a0": (2, "ta"), "a1": (2, "ta"), "a2": (3, "ta")}


def test_full_marks_are_the_questions_maximum_when_it_has_one(encoder) -> None:
    # Nobody reached 5 of 5: the best grade given (3) is not "says what the reference says".
    with _capital_question() as store:
        store.append("cap", "ada", None, SetMaxScore(5.0))
        store.append("cap", "ada", None, GradeGroup(1, 3.0))
        store.append("cap", "ben", None, GradeGroup(2, 1.0))
        assert {(p.answer_id_b, p.together) for p in reference_pairs(store, ["cap"], encoder)} == {
            ("a0", False), ("a1", False), ("a2", False), ("a3", False)
        }
        store.append("cap", "ada", None, GradeGroup(1, 5.0))
        pairs = reference_pairs(store, ["cap"], encoder)
    assert {(p.answer_id_b, p.together, p.author) for p in pairs} == {
        ("a0", True, "ada"), ("a1", True, "ada"), ("a2", False, "ben"), ("a3", False, "ben")
    }
    # With a maximum, one score for every graded answer still says which side they are on.
    vectors = np.eye(2)
    only_full = question_reference_pairs("q", ["a", "b"], [5.0, 5.0], vectors, ["r"], vectors[:1], ["x", "y"], max_score=5.0)
    assert [p.together for p in only_full] == [True, True]


def test_correction_pairs_refuse_filters_that_cannot_apply_to_grades(encoder) -> None:
    from datetime import UTC, datetime

    from grouper.feedback import PairFilter, correction_pairs

    with Store("sqlite://") as store:
        with pytest.raises(ValueError, match="authors and dates cannot filter them"):
            correction_pairs(store, select=PairFilter(authors=frozenset({"ta"})), sources=("references",), encoder=encoder)
        with pytest.raises(ValueError, match="authors and dates cannot filter them"):
            correction_pairs(
                store, select=PairFilter(since=datetime(2026, 1, 1, tzinfo=UTC)), sources=("references",),
                encoder=encoder,
            )
        with pytest.raises(ValueError, match="need the encoder"):
            correction_pairs(store, sources=("references",))
        assert correction_pairs(store, sources=("answers", "references"), encoder=encoder) == []
