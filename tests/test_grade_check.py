"""The grade check (grouper.grade_check): which graded answers most likely carry a wrong grade.

The ranking is tested on hand-made vectors, where the right answer is known; ``grouper check``
on a real SQLite store grouped by the real packaged encoder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.cli import main
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import CheckGrades, GradeAnswer, GradeGroup, Move, SetRubric, apply, initial_state, make_edit
from grouper.grade_check import GradeCheckSettings, conflicts_among, grade_conflicts, grade_doubts, identical_answers, identity_key
from grouper.intake import import_questions
from grouper.store import Store

DIM = 8


def _direction(axis: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    v = np.zeros(DIM)
    v[axis] = 1.0
    v += rng.normal(scale=noise, size=DIM)
    return v / np.linalg.norm(v)


def _question(texts: list[str]) -> tuple[Answer, ...]:
    return tuple(Answer(f"a{i}", "q", t) for i, t in enumerate(texts))


def _graded(answers, labels, grades, alone=()):
    """A state with groups by ``labels`` (group ids from 1), each graded ``grades[gid]``;
    the ``alone`` answers (id, score, comment) moved out and graded on their own."""
    ids = [a.answer_id for a in answers]
    labels = np.array(labels)
    groups = tuple(
        Group(int(g), f"group {g}", tuple(int(i) for i in np.flatnonzero(labels == g)))
        for g in sorted(set(labels) - {UNGROUPED})
    )
    state = initial_state("q", ids, Grouping(labels, np.ones(len(ids)), groups))

    def do(payload):
        nonlocal state
        state = apply(state, make_edit(state, "ta", payload))

    grouped = tuple(a for a, _, _ in alone if state.location[a] is not None)
    if grouped:
        do(Move(grouped, None))
    for answer_id, score, comment in alone:
        do(GradeAnswer(answer_id, score, comment))
    for gid, (score, comment) in grades.items():
        do(GradeGroup(gid, score, comment))
    return state


@pytest.fixture
def three_groups():
    """Groups 1 (ten "right" answers, one of them really a "wrong" one), 2 (ten "wrong"), 3
    (ten "partly") and 4 (five more "right"), graded 2, 0, 1 and 2."""
    rng = np.random.default_rng(0)
    texts = [f"right {i}" for i in range(9)] + ["wrong but kept"] + [f"wrong {i}" for i in range(10)] + [f"partly {i}" for i in range(10)] + [f"also right {i}" for i in range(5)]
    vectors = np.stack(
        [_direction(0, rng) for _ in range(9)] + [_direction(1, rng)] + [_direction(1, rng) for _ in range(10)] + [_direction(2, rng) for _ in range(10)]
        + [_direction(0, rng) for _ in range(5)]
    )
    labels = [1] * 10 + [2] * 10 + [3] * 10 + [4] * 5
    answers = _question(texts)
    state = _graded(answers, labels, {1: (2.0, "right"), 2: (0.0, "wrong"), 3: (1.0, "partly"), 4: (2.0, "right")})
    return state, answers, vectors


def test_the_member_that_does_not_belong_comes_first_with_the_grade_it_should_have(three_groups):
    state, answers, vectors = three_groups
    doubts = grade_doubts(state, answers, vectors)
    assert len(doubts) == 35  # every graded answer, once
    assert sorted(d.answer_id for d in doubts) == sorted(a.answer_id for a in answers)
    first = doubts[0]
    assert first.answer_id == "a9"
    assert first.grade.score == 2.0 and first.group_id == 1 and not first.graded_alone
    # Its likely grade is the one given to the answers it resembles, comment and all.
    assert first.likely is not None and (first.likely.score, first.likely.comment) == (0.0, "wrong")
    assert first.likely_probability is not None and first.likely_probability > 0.5
    assert first.probability is not None and first.group_probability is not None
    assert first.probability < first.group_probability
    assert first.typicality == min(d.typicality for d in doubts)
    assert all(0.0 <= d.doubt <= 1.0 for d in doubts)
    assert first.doubt > max(d.doubt for d in doubts[1:])


def test_doubts_are_listed_most_doubtful_first(three_groups):
    doubts = grade_doubts(*three_groups)
    assert [d.doubt for d in doubts] == sorted((d.doubt for d in doubts), reverse=True)
    assert all(d.checked_by is None for d in doubts)


def test_answers_checked_as_right_come_after_the_rest_saying_who(three_groups):
    state, answers, vectors = three_groups
    state = apply(state, make_edit(state, "ben", CheckGrades(("a9", "a0"))))
    doubts = grade_doubts(state, answers, vectors)
    assert [d.answer_id for d in doubts[-2:]] == ["a9", "a0"]  # still most doubtful first among them
    assert doubts[-1].checked_by == "ben" and doubts[0].checked_by is None
    assert len(doubts) == 35
    # A check lapses when the grade changes: regraded, a9 is doubtful again.
    state = apply(state, make_edit(state, "ada", GradeGroup(1, 1.5, "most of it")))
    assert grade_doubts(state, answers, vectors)[0].answer_id == "a9"


def _by_rubric(state, grades):
    """``state`` with a rubric of two items worth 2 points each, and each group ``gid`` of
    ``grades`` regraded as those items: the same score, other feedback."""
    state = apply(state, make_edit(state, "prof", SetRubric(((1, "names the path", 2.0), (2, "explains why", 2.0)))))
    for gid, items in grades.items():
        state = apply(state, make_edit(state, "ta", GradeGroup(gid, None, items=items)))
    return state


def test_rubric_items_of_the_same_points_are_another_grade(three_groups):
    """Groups 1 and 4 are both worth 2, as other items: the answers of group 4 are graded
    "explains why", so the likely grade of a group 1 member that reads like them is that item."""
    state, answers, vectors = three_groups
    vectors = vectors.copy()
    vectors[[0, 1, 2]] = vectors[[30, 31, 32]]  # a0-a2 read like group 4
    state = _by_rubric(state, {1: (1,), 4: (2,)})
    doubts = {d.answer_id: d for d in grade_doubts(state, answers, vectors)}
    odd = doubts["a0"]
    assert odd.likely is not None and odd.likely.items == (2,) and odd.likely.score == 2.0
    assert odd.likely_probability > 0.5
    # With bare scores of 2 for both groups, the same answer has no other grade to suggest.
    plain = {d.answer_id: d for d in grade_doubts(three_groups[0], answers, vectors)}
    assert plain["a0"].likely is None


def test_identical_answers_given_other_rubric_items_of_the_same_points_conflict():
    answers = _question(["Canberra", "canberra!", "CANBERRA", "Sydney"])
    state = _by_rubric(_graded(answers, [1, 1, 2, 3], {3: (0.0, "")}), {1: (1,), 2: (2,)})
    assert state.grade_of("a0").score == state.grade_of("a2").score == 2.0
    assert grade_conflicts(state, answers) == {"a2": ("a0", "a1")}


def test_an_answer_graded_unlike_most_of_its_identical_answers_comes_first():
    rng = np.random.default_rng(1)
    texts = ["Canberra", "It is Canberra", "canberra!", "Canberra city", "Sydney", "Sydney, NSW", "sydney", "CANBERRA"]
    vectors = np.stack([_direction(0, rng) for _ in range(4)] + [_direction(1, rng) for _ in range(3)] + [_direction(0, rng)])
    answers = _question(texts)
    # "CANBERRA" (a7) is wrongly in the Sydney group and got its 0; "Canberra" and
    # "canberra!" got 1: the one graded unlike the rest is the doubtful one.
    state = _graded(answers, [1, 1, 1, 1, 2, 2, 2, 2], {1: (1.0, "right"), 2: (0.0, "")})
    doubts = grade_doubts(state, answers, vectors)
    assert doubts[0].answer_id == "a7" and doubts[0].doubt == 1.0
    assert set(doubts[0].twins) == {"a0", "a2"}
    assert doubts[0].likely is not None and (doubts[0].likely.score, doubts[0].likely.comment) == (1.0, "right")
    assert not any(d.twins for d in doubts[1:])


def test_grade_conflicts_are_the_identical_answers_graded_unlike_most_of_theirs():
    answers = _question(["Canberra", "canberra!", "CANBERRA", "Sydney", "sydney", "", " "])
    state = _graded(answers, [1, 1, 2, 2, 2, 3, 3], {1: (1.0, ""), 2: (0.0, ""), 3: (0.0, "blank")}, alone=(("a6", 1.0, ""),))
    assert grade_conflicts(state, answers) == {"a2": ("a0", "a1")}  # blanks are never twins
    fixed = apply(state, make_edit(state, "ta", GradeAnswer("a2", 1.0, "")))
    assert grade_conflicts(fixed, answers) == {}


def test_a_mark_that_changes_a_value_makes_another_answer_not_an_identical_one():
    # x + 7 = 2: "-5" is right and "5" a sign error. Taken as identical, each was a certain
    # conflict whose "likely" grade was the other's: one click gave the sign error full marks.
    answers = _question(["-5", "x = -5", "5", "x = 5", "50%", "50", "?", "...", "Canberra.", "canberra", "1.5", "15"])
    assert identical_answers(answers) == {"a8": ("a8", "a9"), "a9": ("a8", "a9")}
    assert [identity_key(t) for t in ("-5.", "3,5", "1/2", "It's  Canberra!")] == ["-5", "3,5", "1/2", "it s canberra"]
    state = _graded(answers[:4], [1, 1, 2, 2], {1: (1.0, "right"), 2: (0.0, "sign error")})
    assert grade_conflicts(state, answers[:4]) == {}


def test_two_identical_answers_graded_differently_are_both_doubtful():
    rng = np.random.default_rng(6)
    answers = _question(["Canberra", "canberra", "Sydney", "It is Sydney"])
    vectors = np.stack([_direction(0, rng), _direction(0, rng), _direction(1, rng), _direction(1, rng)])
    state = _graded(answers, [1, 2, 2, 2], {1: (1.0, ""), 2: (0.0, "")})
    twins = {d.answer_id: d for d in grade_doubts(state, answers, vectors) if d.twins}
    assert set(twins) == {"a0", "a1"}
    assert twins["a0"].twins == ("a1",) and twins["a0"].likely.score == 0.0
    assert twins["a1"].twins == ("a0",) and twins["a1"].likely.score == 1.0


def test_blank_answers_are_not_twins():
    rng = np.random.default_rng(2)
    answers = _question(["", " ", "x", "y"])
    vectors = np.stack([np.zeros(DIM), np.zeros(DIM), _direction(0, rng), _direction(1, rng)])
    state = _graded(answers, [1, 1, 2, 2], {1: (0.0, "blank"), 2: (1.0, "")}, alone=(("a1", 2.0, "generous"),))
    assert not any(d.twins for d in grade_doubts(state, answers, vectors))


def test_ungraded_answers_are_not_listed_and_an_answer_graded_alone_is_marked():
    rng = np.random.default_rng(3)
    answers = _question([f"t{i}" for i in range(8)])
    vectors = np.stack([_direction(i % 2, rng) for i in range(8)])
    state = _graded(answers, [1, 2, 1, 2, 1, 2, UNGROUPED, UNGROUPED], {1: (1.0, "")}, alone=(("a6", 0.0, "own"),))
    doubts = grade_doubts(state, answers, vectors)
    assert sorted(d.answer_id for d in doubts) == ["a0", "a2", "a4", "a6"]  # group 2 and a7 are ungraded
    alone = next(d for d in doubts if d.answer_id == "a6")
    assert alone.graded_alone and alone.group_id is None and alone.typicality == 1.0
    assert alone.group_probability is None


def test_with_one_score_given_there_is_no_model_and_no_likely_grade():
    rng = np.random.default_rng(4)
    answers = _question([f"t{i}" for i in range(6)])
    vectors = np.stack([_direction(0, rng) for _ in range(5)] + [_direction(1, rng)])
    state = _graded(answers, [1] * 6, {1: (1.0, "")})
    doubts = grade_doubts(state, answers, vectors)
    assert all(d.probability is None and d.likely is None for d in doubts)
    assert doubts[0].answer_id == "a5"  # the least typical member still comes first


def test_nothing_graded_gives_nothing():
    answers = _question(["a", "b"])
    state = initial_state("q", ["a0", "a1"], Grouping(np.array([1, 1]), np.ones(2), (Group(1, "g", (0, 1)),)))
    assert grade_doubts(state, answers, np.eye(2, DIM)) == []


def test_bad_arguments_are_refused_with_the_reason(three_groups):
    state, answers, vectors = three_groups
    with pytest.raises(ValueError, match="35 answers but 34 vectors"):
        grade_doubts(state, answers, vectors[:34])
    with pytest.raises(ValueError, match=r"folds \(1\) must be at least 2"):
        grade_doubts(state, answers, vectors, settings=GradeCheckSettings(folds=1))
    with pytest.raises(ValueError, match="regularisation"):
        grade_doubts(state, answers, vectors, settings=GradeCheckSettings(regularisation=0))


# --------------------------------------------------------------------------- grouper check


RIGHT = ["Canberra", "It is Canberra", "Canberra is the capital", "the capital is Canberra", "Canberra, ACT"]
ALSO_RIGHT = ["Canberra!!", "I think Canberra", "Canberra (ACT)", "Its Canberra"]
WRONG = ["Sydney", "It is Sydney", "Sydney is the capital", "the capital is Sydney", "Sydney, NSW"]


@pytest.fixture
def checked_db(tmp_path, encoder, monkeypatch):
    """A real store, grouped by the real encoder; then regrouped by hand into two "Canberra"
    groups graded 1, the first also holding "Sydney\\x1b[31m" (wrongly), and a "Sydney"
    group graded 0."""
    path = tmp_path / "grades.sqlite"
    texts = RIGHT + WRONG + ["Sydney\x1b[31m"] + ALSO_RIGHT
    answers = tuple(Answer(f"a{i}", "q1", t) for i, t in enumerate(texts))
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))
    with Store.open(path) as store:
        import_questions(store, [Question("q1", "Capital of Australia?", answers, ("Canberra",))], encoder)
        state = store.state("q1")
        store.append("q1", "ta", state.version, Move(tuple(f"a{i}" for i in range(5)) + ("a10",), "new", title="Canberra"))
        state = store.state("q1")
        store.append("q1", "ta", state.version, Move(tuple(f"a{i}" for i in range(5, 10)), "new", title="Sydney"))
        state = store.state("q1")
        store.append("q1", "ta", state.version, Move(tuple(f"a{i}" for i in range(11, 15)), "new", title="Canberra too"))
        state = store.state("q1")
        canberra, too, sydney = (state.location[a] for a in ("a0", "a11", "a5"))
        for done, (gid, score, comment) in enumerate([(canberra, 1.0, "right"), (too, 1.0, "right"), (sydney, 0.0, "wrong")]):
            store.append("q1", "ta", state.version + done, GradeGroup(gid, score, comment))
    return path, canberra


def test_check_lists_the_wrongly_kept_member_first_as_json(checked_db, capsys):
    path, canberra = checked_db
    assert main(["check", "--db", str(path), "-q", "q1", "--json", "--top", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["question_id"] == "q1" and out["graded"] == 15
    assert len(out["doubts"]) == 3
    first = out["doubts"][0]
    assert first["answer_id"] == "a10" and first["group_id"] == canberra
    assert first["grade"]["score"] == 1.0
    assert first["likely"] == {"score": 0.0, "comment": "wrong", "items": [], "adjustment": 0.0}


def test_check_as_text_shows_student_text_with_control_characters_escaped(checked_db, capsys):
    path, _ = checked_db
    assert main(["check", "--db", str(path), "-q", "q1", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "15 graded answer(s), the 1 most doubtful first" in out
    assert "a10" in out and "likely 0 (wrong)" in out
    assert "\x1b" not in out and "Sydney\\u001b[31m" in out


def test_an_answer_checked_as_right_leaves_the_list_until_all_is_asked(checked_db, capsys):
    path, _ = checked_db
    assert main(["edit", "--db", str(path), "-q", "q1", "--author", "ben", "check-grades", "a10,a0"]) == 0
    out = capsys.readouterr().out
    assert "2 answer(s) checked as right" in out
    edit_id = out.split()[1]  # "edit N applied: ..."
    assert main(["edit", "--db", str(path), "-q", "q1", "--author", "ben", "undo", edit_id]) == 0  # both unchecked again
    assert main(["edit", "--db", str(path), "-q", "q1", "--author", "ben", "check-grades", "a10"]) == 0
    capsys.readouterr()
    assert main(["check", "--db", str(path), "-q", "q1", "--json", "--top", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["graded"] == 15 and out["checked"] == 1 and len(out["doubts"]) == 14
    assert "a10" not in {d["answer_id"] for d in out["doubts"]}
    assert main(["check", "--db", str(path), "-q", "q1", "--top", "0", "--all"]) == 0
    text = capsys.readouterr().out
    assert "1 checked as right" in text and text.rstrip().splitlines()[-2].lstrip().startswith("a10")
    assert "checked as right by ben" in text
    # Checking it again is refused (status 3), naming who checked it.
    assert main(["edit", "--db", str(path), "-q", "q1", "--author", "cy", "check-grades", "a10"]) == 3
    assert "already checked by ben" in capsys.readouterr().err
    # Named beside a new one, it is left as it is, and the summary says so.
    assert main(["edit", "--db", str(path), "-q", "q1", "--author", "cy", "check-grades", "a10,a0"]) == 0
    assert "1 answer(s) checked as right; 1 already were" in capsys.readouterr().out


def test_check_lists_one_groups_answers(checked_db, capsys):
    path, canberra = checked_db
    assert main(["check", "--db", str(path), "-q", "q1", "--json", "--top", "0", "--group", str(canberra)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["doubts"]) == 6 and {d["group_id"] for d in out["doubts"]} == {canberra}
    assert out["doubts"][0]["answer_id"] == "a10"
    assert out["graded"] == 6 and out["checked"] == 0 and out["group_id"] == canberra  # the group's counts
    assert main(["check", "--db", str(path), "-q", "q1", "--top", "2", "--group", str(canberra)]) == 0
    assert f"15 graded answer(s) (6 in group {canberra}), the 2 most doubtful first" in capsys.readouterr().out
    # A checked answer leaves the list, not the group's graded count (it said "5 in group").
    assert main(["edit", "--db", str(path), "-q", "q1", "--author", "cy", "check-grades", "a10"]) == 0
    capsys.readouterr()
    assert main(["check", "--db", str(path), "-q", "q1", "--group", str(canberra)]) == 0
    assert f"15 graded answer(s) (6 in group {canberra}), the 5 most doubtful first; 1 checked as right" in capsys.readouterr().out
    assert main(["check", "--db", str(path), "-q", "q1", "--json", "--group", str(canberra)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["graded"], out["checked"], len(out["doubts"])) == (6, 1, 5)


def test_check_bad_input_is_status_2_with_the_reason(checked_db, capsys):
    path, _ = checked_db
    assert main(["check", "--db", str(path), "-q", "q1", "--group", "99"]) == 2
    assert "question q1 has no group 99" in capsys.readouterr().err
    assert main(["check", "--db", str(path), "-q", "nope"]) == 2
    assert "no question 'nope'" in capsys.readouterr().err
    assert main(["check", "--db", str(path), "-q", "q1", "--top", "-1"]) == 2
    assert "--top must be 0 (all) or more" in capsys.readouterr().err


def test_fractional_scores_are_grades_like_any_other():
    rng = np.random.default_rng(5)
    answers = _question([f"t{i}" for i in range(12)])
    vectors = np.stack([_direction(i % 3, rng) for i in range(12)])
    state = _graded(answers, [1, 2, 3, 4] * 3, {1: (0.5, ""), 2: (1.5, ""), 3: (2.5, ""), 4: (0.5, "")})
    doubts = grade_doubts(state, answers, vectors)
    assert len(doubts) == 12 and all(d.probability is not None for d in doubts)
    assert {d.likely.score for d in doubts if d.likely is not None} <= {0.5, 1.5, 2.5}


def test_conflicts_among_looks_only_around_the_answers_named():
    answers = _question(["Canberra", "canberra!", "CANBERRA", "Sydney", "sydney", "", " ", "Perth"])
    identical = identical_answers(answers)
    assert identical["a0"] == ("a0", "a1", "a2") and identical["a3"] == ("a3", "a4")
    assert "a5" not in identical and "a7" not in identical  # blanks, and answers with no twin
    state = _graded(answers, [1, 1, 2, 2, 3, 4, 4, 3], {1: (1.0, ""), 2: (0.0, ""), 3: (0.5, ""), 4: (0.0, "")})
    # a2 ("CANBERRA", graded 0) is the odd one out; the Sydneys (0 and 0.5) have no majority.
    assert conflicts_among(state, identical, ["a0"]) == {"a2": ("a0", "a1")}
    assert conflicts_among(state, identical, ["a4", "a7"]) == {"a3": ("a4",), "a4": ("a3",)}
    assert conflicts_among(state, identical, []) == {}
    both = conflicts_among(state, identical, ["a1", "a3"])
    assert both == {k: v for k, v in grade_conflicts(state, answers).items()}


def test_check_names_the_rubric_items_of_a_grade(checked_db, capsys):
    path, canberra = checked_db
    with Store.open(path) as store:
        state = store.state("q1")
        store.append("q1", "prof", state.version, SetRubric(((1, "names Canberra", 1.0),)))
        store.append("q1", "ta", state.version + 1, GradeGroup(canberra, None, items=(1,)))
    assert main(["check", "--db", str(path), "-q", "q1", "--top", "0", "--group", str(canberra)]) == 0
    assert "graded 1 [names Canberra (+1)]" in capsys.readouterr().out


def test_a_blank_answer_among_written_ones_is_the_least_typical_and_the_queue_lists_it():
    from grouper.review import review_queue, typicality

    block = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 0.0]])
    assert list(typicality(block)[:2] > 0.9) == [True, True] and typicality(block)[2] == -1.0
    assert list(typicality(np.zeros((3, 2)))) == [1.0, 1.0, 1.0]  # the blank group itself
    vectors = {"a": block[0], "b": block[1], "c": block[2], "d": np.array([0.0, 1.0]), "e": np.array([0.1, 0.9])}
    items = review_queue({1: ("a", "b", "c"), 2: ("d", "e")}, [], vectors)
    assert [(i.answer_id, i.current_group, i.suggested_group) for i in items] == [("c", 1, None)]
