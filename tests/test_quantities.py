"""Numeric questions: the final quantity of an answer (grouper.quantities), the grouping by it
(grouper.clustering, real encoder on small inputs) and its survival in the grade adaptation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grouper.answers import Answer, Question, load_answers, normalize_text
from grouper.clustering import Group, Grouping, GroupingSettings, group_embeddings
from grouper.edits import Confirm, GradeAnswer, GradeGroup
from grouper.embedding import Encoder
from grouper.grade_adaptation import GradeAdaptationSettings, adapt_to_grades
from grouper.late_answers import place_late_answers
from grouper.quantities import (
    NUMERIC_SHARE,
    QUANTITY_CLASS_SIZE,
    Quantity,
    final_quantity,
    is_numeric_question,
    is_quantity_answer,
    quantity_classes,
    quantity_title,
)
from grouper.references import embedded_references
from grouper.store import Store

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.mark.parametrize(
    ("text", "value", "unit", "working"),
    [
        ("19.6 m/s", "19.6", "m/s", ()),
        ("19.6m/s", "19.6", "m/s", ()),
        ("19.60 M/S", "19.6", "M/S", ()),  # symbols keep their case: "M" is not "m"
        ("19,6 m/s", "19.6", "m/s", ()),  # a decimal comma
        ("0,125", "0.125", "", ()),
        ("19.6 m/ s.", "19.6", "m/s", ()),
        ("about 19.6 m/s", "19.6", "m/s", ()),  # filler before the value
        ("the answer is 4", "4", "", ()),
        ("≈ 20 m/s", "20", "m/s", ()),
        ("v = 19.6 m/s", "19.6", "m/s", ()),
        ("v = gt = 9.8*2 = 19.6 m/s", "19.6", "m/s", ("9.8", "2")),  # the working is kept
        ("v = g t = 9.8 m/s^2 x 2.0 s = 19.6 m/s", "19.6", "m/s", ("9.8", "2")),
        ("19.6 m/s downwards", "19.6", "m/s downwards", ()),  # all that follows is kept
        ("19.6 m/s^2", "19.6", "m/s^2", ()),  # the exponent is the unit's
        ("19.6 m/s²", "19.6", "m/s^2", ()),
        ("19.6 m/s2", "19.6", "m/s^2", ()),  # NFKC's "m/s²"
        ("19.6 ms-1", "19.6", "ms^-1", ()),
        ("19.6 m s^-1", "19.6", "m s^-1", ()),
        ("19.6 meters per second", "19.6", "meters per second", ()),
        ("-19.6 m/s", "-19.6", "m/s", ()),
        ("v = - 19.6 m/s", "-19.6", "m/s", ()),
        ("v = \u201319.6 m/s", "-19.6", "m/s", ()),  # an en dash as minus
        ("3 x 10^8 m/s", "300000000", "m/s", ()),
        ("3×10⁸ m/s", "300000000", "m/s", ()),  # raw superscripts are a power
        ("1.5e3 J", "1500", "J", ()),
        ("1.5E3 Joules", "1500", "joules", ()),  # words are lower case
        ("1,000 N", "1000", "N", ()),  # a comma before three digits: thousands
        ("4294967296", "4294967296", "", ()),  # kept exactly
        ("1e400", "1e+400", "", ()),  # no overflow
        (".5 kg", "0.5", "kg", ()),
        ("50%", "50", "%", ()),
        # Not just a quantity: no key, the usual grouping.
        ("It is moving at 19.6 m/s when it lands.", None, None, None),  # prose before the value
        ("yes, it is only divisible by 1 and 7", None, None, None),
        ("it falls to 80", None, None, None),
        ("x = 2, y = 3", None, None, None),  # two statements
        ("2 or 3", None, None, None),  # a second value, or a verdict
        ("no 7", None, None, None),
        ("v=u+at, v=0+(9.8)(2.0), v=19.6m/s", None, None, None),
        ("19.6 m/s (3 s.f.)", None, None, None),  # a value after the unit
        ("p = 0.03 < 0.05", None, None, None),  # a comparison
        ("x^2 + 2x + 1", None, None, None),  # algebra
        ("x^2 + 1", None, None, None),
        ("y = 2x + 1", None, None, None),
        ("3/2", None, None, None),  # a fraction's last digits are no value
        ("2^32", None, None, None),  # nor a power's
        ("3 x 108 m/s", None, None, None),  # what NFKC makes of 3 x 10⁸: unreadable
        ("1.6 x 10-19 C", None, None, None),
        ("the 3rd", None, None, None),  # an ordinal is no value
        ("t2 and x2", None, None, None),  # digits glued to a letter name things
        ("I don't know", None, None, None),
        ("", None, None, None),
    ],
)
def test_an_answer_that_is_just_a_quantity_is_read_with_all_it_states(text: str, value, unit, working) -> None:
    quantity = final_quantity(text)
    if value is None:
        assert quantity is None
    else:
        assert quantity[:3] == Quantity(value, unit, working)[:3]


def test_a_second_assignment_on_its_own_line_is_part_of_what_an_answer_states():
    # Lines are spaces once normalised: "x = 2 / y = 3" and "y = 2 / x = 3" had one key.
    right, wrong = final_quantity(normalize_text("x = 2\ny = 3")), final_quantity(normalize_text("y = 2\nx = 3"))
    assert right.restarts == ("y",) and wrong.restarts == ("x",) and right != wrong
    assert quantity_title(right) == "= 3 (no unit) (working 2) (after y =)"
    assert final_quantity("v = gt = 9.8*2 = 19.6 m/s").restarts == ()
    # A unit in the working is kept too: such an answer is grouped apart, never with another value.
    assert final_quantity("v = g t = 9.8 m/s^2 x 2.0 s = 19.6 m/s").restarts == ("s",)


def test_one_number_written_two_ways_is_one_key_and_titles_read_as_written() -> None:
    assert final_quantity("19.600 m/s") == final_quantity("1.96e1 m/s") == final_quantity("19.6 m/s")
    assert final_quantity("19.61 m/s") != final_quantity("19.6 m/s")
    assert final_quantity("v = 19.6 m/s at t = 2 s") != final_quantity("v = 9.8 m/s at t = 2 s")
    assert quantity_title(Quantity("19.6", "m/s")) == "= 19.6 m/s"
    assert quantity_title(Quantity("19.6", "")) == "= 19.6 (no unit)"
    assert quantity_title(Quantity("19.6", "m/s", ("9.8", "2"))) == "= 19.6 m/s (working 9.8, 2)"


def test_a_quantity_answer_is_short_and_an_explanation_is_not() -> None:
    assert is_quantity_answer("v = 9.8 x 2 = 19.6 m/s")
    assert is_quantity_answer("19.6 meters per second squared")
    assert not is_quantity_answer("0 m/s because it was dropped from rest and has not moved yet")
    assert not is_quantity_answer("The bulb is in a closed path with the battery, so terminal 1 reads 1.5")
    assert not is_quantity_answer("fast")


def test_a_question_is_numeric_when_most_of_its_answered_texts_are_quantities() -> None:
    assert is_numeric_question(["19.6 m/s", "9.8", "fast", ""])  # 2 of 3 answered
    assert not is_numeric_question(["19.6 m/s", "fast", "no idea", ""])
    # Counts weigh distinct texts by the students who wrote them.
    assert is_numeric_question(["19.6 m/s", "fast"], counts=[3, 2])
    assert not is_numeric_question(["19.6 m/s", "fast"], counts=[2, 3])
    assert not is_numeric_question(["", "  "]) and not is_numeric_question([])
    # An explanation question whose answers hold numbers is not numeric.
    trend = ["it falls to 80", "goes up steadily then levels off at 80", "it rises to 80", "80", "levels at 80 degrees"]
    assert not is_numeric_question(trend)
    assert 0.5 < NUMERIC_SHARE < 1
    with pytest.raises(ValueError, match="1 counts for 2 texts"):
        is_numeric_question(["1", "2"], counts=[1])


def test_quantity_classes_count_students_not_texts() -> None:
    texts = ["19.6 m/s", "19.6m/s", "9.8 m/s", "9.8", "fast"]
    assert quantity_classes(texts, min_size=2) == [(Quantity("19.6", "m/s"), [0, 1])]
    assert quantity_classes(texts, counts=[1, 1, 3, 1, 5], min_size=3) == [(Quantity("9.8", "m/s"), [2])]
    assert quantity_classes(texts, counts=[2, 1, 3, 1, 5], min_size=3) == [
        (Quantity("19.6", "m/s"), [0, 1]),
        (Quantity("9.8", "m/s"), [2]),
    ]


# --------------------------------------------------------------------------- grouping

BALL_DROP = [
    *["19.6 m/s", "19.6m/s", "19.6 m/s.", "about 19.6 m/s"],  # 0-3
    *["v = gt = 9.8*2 = 19.6 m/s"] * 3,  # 4-6: the same working
    *["19.6", "19.6", "19.60"],  # 7-9
    *["19.6 m/s^2", "19.6 m/s²", "19.6m/s^2"],  # 10-12
    *["9.8 m/s", "9.8 m/s", "9.8m/s"],  # 13-15
    *["It is moving at 19.6 m/s when it lands.", "I don't know", "fast", "it speeds up the whole way down", ""],
]


def _members_by_title(grouping: Grouping, texts: list[str]) -> dict[str, set[str]]:
    return {g.title: {texts[m] for m in g.members} for g in grouping.groups}


def test_a_numeric_questions_answers_are_grouped_by_the_quantity_they_state(encoder: Encoder) -> None:
    texts = BALL_DROP
    vectors = encoder.encode(texts).vectors
    grouping = group_embeddings(vectors, texts)
    by_title = _members_by_title(grouping, texts)
    assert by_title["= 19.6 m/s"] == set(texts[:4])
    assert by_title["= 19.6 m/s (working 9.8, 2)"] == {texts[4]}
    assert by_title["= 19.6 (no unit)"] == {"19.6", "19.60"}
    assert by_title["= 19.6 m/s^2"] == set(texts[10:13])
    assert by_title["= 9.8 m/s"] == {"9.8 m/s", "9.8m/s"}
    assert by_title["(blank)"] == {""}
    in_quantity_groups = {i for g in grouping.groups if g.title.startswith("= ") for i in g.members}
    assert grouping.confidence[sorted(in_quantity_groups)].min() == 1.0
    # Answers that are not just a quantity are grouped as usual, apart from the quantity groups.
    assert not in_quantity_groups & {16, 17, 18, 19}
    # With the step off, the encoder puts "19.6 m/s" with answers stating other quantities.
    plain = group_embeddings(vectors, texts, GroupingSettings(quantities=False))
    assert not any(g.title.startswith("= ") for g in plain.groups)
    (with_right,) = [g for g in plain.groups if 1 in g.members]  # "19.6m/s"
    assert {final_quantity(texts[m]) for m in with_right.members} - {final_quantity(texts[0]), None}


def test_units_that_differ_only_in_case_are_different_groups() -> None:
    # "M" is molar and "m" metres; "1 MW" is a billion times "1 mW". One grade for both would
    # be wrong for half the students. Elsewhere, answers equal but for case are one text.
    texts = ["0.5 M"] * 3 + ["0.5 m"] * 3 + ["1 MW"] * 3 + ["1 mW"] * 3
    vectors = np.tile(np.eye(4)[0], (len(texts), 1))  # what an uncased encoder sees: one point
    by_title = _members_by_title(group_embeddings(vectors, texts), texts)
    assert {t: m for t, m in by_title.items() if t.startswith("= ")} == {
        "= 0.5 M": {"0.5 M"}, "= 0.5 m": {"0.5 m"}, "= 1 MW": {"1 MW"}, "= 1 mW": {"1 mW"},
    }
    prose = ["Canberra"] * 2 + ["canberra"] * 2 + ["Sydney"] * 3
    grouping = group_embeddings(np.tile(np.eye(4)[0], (7, 1)), prose, GroupingSettings(min_cluster_size=3))
    assert grouping.labels[0] == grouping.labels[2] != -1  # 4 students wrote one text: a group


def test_quantity_groups_come_first_with_a_reference_too(encoder: Encoder) -> None:
    texts = BALL_DROP
    vectors = encoder.encode(texts).vectors
    question = Question("q3", "How fast?", (), reference_answers=("v = g t = 9.8 m/s^2 x 2.0 s = 19.6 m/s",))
    references = embedded_references(question, lambda t: encoder.encode(t).vectors)
    by_title = _members_by_title(group_embeddings(vectors, texts, references=references), texts)
    assert by_title["= 19.6 m/s"] == set(texts[:4])
    assert by_title["= 19.6 m/s^2"] == set(texts[10:13])


def test_an_explanation_question_is_grouped_as_before(encoder: Encoder) -> None:
    (question,) = load_answers(SAMPLE_DATA / "q2_photosynthesis.csv")
    texts = [a.normalized for a in question.answers]
    vectors = encoder.encode(texts).vectors
    on, off = group_embeddings(vectors, texts), group_embeddings(vectors, texts, GroupingSettings(quantities=False))
    assert not is_numeric_question(texts)
    assert on.groups == off.groups
    np.testing.assert_array_equal(on.labels, off.labels)


def test_the_sample_ball_drop_question_is_numeric(encoder: Encoder) -> None:
    (question,) = load_answers(SAMPLE_DATA / "q3_ball_drop.csv")
    texts = [a.normalized for a in question.answers]
    assert is_numeric_question(texts)
    grouping = group_embeddings(encoder.encode(texts).vectors, texts)
    # Each quantity group holds one grade of the sample's gold labels.
    impure = 0
    for group in grouping.groups:
        if group.title.startswith("= "):
            grades = [question.answers[m].gold for m in group.members]
            impure += len(grades) - max(grades.count(g) for g in set(grades))
    assert impure == 0


# --------------------------------------------------------------------------- adaptation


def test_the_grade_adaptation_keeps_answers_ending_in_one_quantity_together() -> None:
    """The vectors say half of the "9.8 m/s" answers look like the right ones; the re-cut
    from the grades must still keep that final quantity in one group."""
    rng = np.random.default_rng(0)
    right = ["19.6 m/s", "19.6m/s", "v = gt = 19.6 m/s", "19.6 m/s."] * 2
    slip = ["9.8 m/s", "9.8m/s", "v = 9.8 m/s", "9.8 m/s."] * 2
    no_unit = ["4.9", "4.9 ", "about 4.9", "it is 4.9"] * 2
    texts = right + slip + no_unit
    grade = ["right"] * 8 + ["wrong"] * 16
    e0, e1 = np.eye(8)[0], np.eye(8)[1]
    directions = [e0] * 8 + [e0 if i % 2 else e1 for i in range(8)] + [e1] * 8
    vectors = np.stack([d + 0.1 * rng.standard_normal(8) for d in directions])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    answers = tuple(Answer(f"a{i}", "q", t, gold=g) for i, (t, g) in enumerate(zip(texts, grade, strict=True)))
    # Group 1 is the right answers; groups 2 and 3 each mix the two wrong quantities.
    groups = (Group(1, "g1", tuple(range(8))), Group(2, "g2", (*range(8, 12), *range(16, 20))),
              Group(3, "g3", (*range(12, 16), *range(20, 24))))
    labels = np.array([1] * 8 + [2] * 4 + [3] * 4 + [2] * 4 + [3] * 4)
    with Store("sqlite://") as store:
        store.import_question(Question("q", "How fast?", answers))
        store.save_grouping("q", Grouping(labels, np.ones(24), groups), model_version="test")
        store.append("q", "ta", None, Confirm(1))
        store.append("q", "ta", None, GradeGroup(1, 1.0, "right"))
        store.append("q", "ta", None, GradeAnswer("a16", 0.0, "wrong"))
        state = store.state("q")
        payloads = adapt_to_grades(state, answers, vectors, None, GradeAdaptationSettings(weight=1.0))
        assert payloads
        for payload in payloads:
            store.append("q", "model:test", None, payload)
        after = store.state("q")
    slip_groups = {after.location[f"a{i}"] for i in range(8, 16)}
    assert len(slip_groups) == 1
    (slip_group,) = slip_groups
    assert set(after.groups[slip_group].members) == {f"a{i}" for i in range(8, 16)}
    assert {after.location[f"a{i}"] for i in range(17, 24)} != {slip_group}


# --------------------------------------------------------------------------- late answers


def test_a_late_answer_joins_the_group_of_its_final_quantity_not_of_its_embedding() -> None:
    texts = ["19.6 m/s", "19.6 m/s.", "v = gt = 19.6 m/s", "9.8 m/s", "9.8m/s", "v = 9.8 m/s", "fast"]
    e0, e1 = np.eye(4)[0], np.eye(4)[1]
    vectors = np.stack([e0, e0, e0, e1, e1, e1, e1])
    answers = tuple(Answer(f"a{i}", "q", t) for i, t in enumerate(texts))
    groups = (Group(1, "= 19.6 m/s", (0, 1, 2)), Group(2, "= 9.8 m/s", (3, 4, 5, 6)))
    late = (Answer("late1", "q", "about 19.6m/s"), Answer("late2", "q", "9.8 m/s"), Answer("late3", "q", "no idea"))
    # The first late answer's embedding sits with the 9.8 m/s group.
    late_vectors = np.stack([e1, e1, e1])
    with Store("sqlite://") as store:
        store.import_question(Question("q", "How fast?", answers))
        store.save_grouping("q", Grouping(np.array([1, 1, 1, 2, 2, 2, 2]), np.ones(7), groups), model_version="test")
        places, suggestions = place_late_answers(store.state("q"), answers, vectors, late, late_vectors)
        assert places[0] == 1 and suggestions[0] == 1
        assert places[1] == 2  # an exact repeat follows its copies
        assert suggestions[2] == 2  # no quantity: the embedding decides, as before
        # Equal to a group's texts but for a unit's case is no repeat: "9.8 M/S" states no
        # quantity any group holds, so it waits ungrouped.
        places, _ = place_late_answers(store.state("q"), answers, vectors, (Answer("late4", "q", "9.8 M/S"),), late_vectors[:1])
        assert places == [None]
        # A reviewed group gets no answer nobody has seen: it waits, with the group suggested.
        store.append("q", "ta", None, Confirm(1))
        places, suggestions = place_late_answers(store.state("q"), answers, vectors, late, late_vectors)
        assert places[0] is None and suggestions[0] == 1


def test_the_class_size_is_the_groupings_smallest_group() -> None:
    assert QUANTITY_CLASS_SIZE == GroupingSettings().min_cluster_size


def test_a_currency_sign_before_the_value_is_part_of_its_unit():
    # "$5", "€5" and a bare "5" were one group titled "(no unit)".
    assert final_quantity("$5").unit == "$" and final_quantity("€ 5").unit == "€"
    assert final_quantity("5").unit == "" and final_quantity("5 $").unit == "$"
    assert len({final_quantity(t) for t in ("$5", "€5", "5", "£5")}) == 4
    assert final_quantity("$5") == final_quantity("$ 5.00")
