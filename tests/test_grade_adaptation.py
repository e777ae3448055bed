"""Within-question adaptation to the grades given so far (grouper.grade_adaptation)."""

from __future__ import annotations

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import Confirm, GradeAnswer, GradeGroup, Move, Split
from grouper.grade_adaptation import GradeAdaptationSettings, adapt_to_grades, grade_log_probabilities
from grouper.regroup import fixed_answers
from grouper.store import Store


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _two_grade_question(n: int = 24, seed: int = 0) -> tuple[Question, np.ndarray, list[str]]:
    """Answers near one of two directions; the grade is which direction. Vectors are made
    here (a pure function of vectors is under test, not the encoder)."""
    rng = np.random.default_rng(seed)
    grade = ["right" if i % 2 == 0 else "wrong" for i in range(n)]
    centres = {"right": np.eye(8)[0], "wrong": np.eye(8)[1]}
    vectors = _unit(np.stack([centres[g] + 0.15 * rng.standard_normal(8) for g in grade]))
    answers = tuple(Answer(f"a{i}", "q", f"answer {i} {g}", gold=g) for i, g in enumerate(grade))
    return Question("q", "Which?", answers), vectors, grade


def _mixed_grouping(n: int) -> Grouping:
    """Three suggested groups that each mix both grades: the zero-shot cut got them wrong."""
    thirds = [range(n // 3), range(n // 3, 2 * n // 3), range(2 * n // 3, n)]
    labels = np.concatenate([[g + 1] * len(r) for g, r in enumerate(thirds)])
    groups = tuple(Group(g + 1, f"g{g + 1}", tuple(r)) for g, r in enumerate(thirds))
    return Grouping(labels, np.ones(n), groups)


def test_nothing_is_learned_before_two_grades_are_seen() -> None:
    features = np.random.default_rng(0).standard_normal((10, 3))
    labels = np.full(10, UNGROUPED)
    assert grade_log_probabilities(features, labels) is None
    labels[:6] = 0  # one grade only
    assert grade_log_probabilities(features, labels) is None
    labels[:2] = 1  # two grades, but fewer reviewed answers than asked for
    assert grade_log_probabilities(features, labels, GradeAdaptationSettings(min_reviewed=8)) is None
    logp = grade_log_probabilities(features, labels)
    assert logp.shape == (10, 2)
    np.testing.assert_allclose(logp.sum(axis=1), 0.0, atol=1e-9)  # centred per answer


def test_the_grade_model_ranks_unreviewed_answers_by_what_was_reviewed() -> None:
    _, vectors, grade = _two_grade_question()
    labels = np.full(len(grade), UNGROUPED)
    labels[:6] = [0 if g == "right" else 1 for g in grade[:6]]
    logp = grade_log_probabilities(vectors, labels)
    predicted = np.where(logp[:, 0] > logp[:, 1], "right", "wrong")
    assert list(predicted[6:]) == grade[6:]


def test_settings_are_checked_with_the_value_and_the_rule() -> None:
    with pytest.raises(ValueError, match=r"regularisation \(0\) must be > 0"):
        GradeAdaptationSettings(regularisation=0).validate()
    with pytest.raises(ValueError, match=r"weight \(-1\) must be >= 0"):
        GradeAdaptationSettings(weight=-1).validate()
    with pytest.raises(ValueError, match=r"min_reviewed \(1\) must be at least 2"):
        GradeAdaptationSettings(min_reviewed=1).validate()


def test_after_a_reviewed_group_the_rest_is_cut_by_grade_and_reviewed_work_stays() -> None:
    question, vectors, grade = _two_grade_question()
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q", _mixed_grouping(len(grade)), model_version="test")
        state = store.state("q")
        # The oracle's review of group 1: the wrong ones out with their grade, the rest graded right.
        for i in range(len(grade) // 3):
            if grade[i] == "wrong":
                store.append("q", "ta", None, Move((f"a{i}",), None))
                store.append("q", "ta", None, GradeAnswer(f"a{i}", 0.0, "wrong"))
        store.append("q", "ta", None, Confirm(1))
        store.append("q", "ta", None, GradeGroup(1, 1.0, "right"))
        state = store.state("q")
        before_fixed = {a: state.location[a] for a in fixed_answers(state)}

        payloads = adapt_to_grades(state, question.answers, vectors, None, GradeAdaptationSettings(weight=1.0))
        assert payloads
        for p in payloads:
            store.append("q", "model:test", None, p)
        after = store.state("q")
        # Confirmed and individually graded answers are where they were.
        assert {a: after.location[a] for a in before_fixed} == before_fixed
        # The answers not reviewed are cut into as many groups as were waiting (two), now of
        # one grade each.
        free = [a.answer_id for a in question.answers if a.answer_id not in before_fixed]
        groups = {after.location[a] for a in free}
        assert None not in groups and len(groups) == 2
        for gid in groups:
            members = [int(a[1:]) for a in after.groups[gid].members]
            assert len({grade[m] for m in members}) == 1, f"group {gid} mixes grades"


def test_a_graders_split_of_an_unreviewed_group_survives_the_adaptation() -> None:
    """The grader split group 2 by hand (not confirmed yet); re-cutting the rest from the
    grades given must leave both parts as the grader made them, in a real store."""
    question, vectors, grade = _two_grade_question()
    n = len(grade)
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q", _mixed_grouping(n), model_version="test")
        for i in range(n // 3):
            if grade[i] == "wrong":
                store.append("q", "ta", None, Move((f"a{i}",), None))
                store.append("q", "ta", None, GradeAnswer(f"a{i}", 0.0, "wrong"))
        store.append("q", "ta", None, Confirm(1))
        store.append("q", "ta", None, GradeGroup(1, 1.0, "right"))
        second = store.state("q").groups[2].members
        # A split that mixes grades on purpose: the model would re-cut it if it could.
        store.append("q", "ta", None, Split(2, (second[:3], second[3:])))
        state = store.state("q")
        parts = {gid: state.groups[gid].members for gid in (2, state.next_group_id - 1)}

        payloads = adapt_to_grades(state, question.answers, vectors, None, GradeAdaptationSettings(weight=1.0))
        for p in payloads:  # group 3 alone is the model's to re-cut
            store.append("q", "model:test", None, p)
        after = store.state("q")
    for gid, members in parts.items():
        assert after.groups[gid].members == members


def test_no_edit_before_anything_is_graded() -> None:
    question, vectors, grade = _two_grade_question()
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q", _mixed_grouping(len(grade)), model_version="test")
        state = store.state("q")
    assert adapt_to_grades(state, question.answers, vectors) == []
    with pytest.raises(ValueError, match="24 answers but 3 vectors"):
        adapt_to_grades(state, question.answers, vectors[:3])
