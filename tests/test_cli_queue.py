"""``grouper queue``: the ungrouped queue of the UI, from the command line, on a real SQLite
store grouped by the real packaged encoder."""

from __future__ import annotations

import json

import pytest

from grouper.answers import Answer, Question
from grouper.cli import main
from grouper.edits import GradeAnswer, GradeGroup, Move
from grouper.intake import import_questions
from grouper.store import Store

CANBERRA = ["Canberra", "It is Canberra", "Canberra is the capital", "the capital is Canberra", "Canberra, ACT"]
SYDNEY = ["Sydney", "It is Sydney", "Sydney is the capital", "the capital is Sydney", "Sydney, NSW"]


@pytest.fixture
def queued_db(tmp_path, encoder, monkeypatch):
    """Two groups made by hand, "Canberra" (a0..a4) graded 1 and "Sydney" (a5..a9) ungraded;
    a grader then moved a1 and "Sydney\\x1b[31m" (a10) out of them, and graded a2 alone."""
    path = tmp_path / "grades.sqlite"
    texts = CANBERRA + SYDNEY + ["Sydney\x1b[31m"]
    answers = tuple(Answer(f"a{i}", "q1", t) for i, t in enumerate(texts))
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))
    with Store.open(path) as store:
        import_questions(store, [Question("q1", "Capital of Australia?", answers, ())], encoder)
        store.append("q1", "ta", None, Move(tuple(f"a{i}" for i in range(5)), "new", title="Canberra"))
        store.append("q1", "ta", None, Move(tuple(f"a{i}" for i in range(5, 11)), "new", title="Sydney"))
        state = store.state("q1")
        canberra, sydney = state.location["a0"], state.location["a5"]
        store.append("q1", "ta", None, GradeGroup(canberra, 1.0, "right"))
        store.append("q1", "ben", None, Move(("a1", "a10"), None))
        store.append("q1", "ben", None, Move(("a2",), None))
        store.append("q1", "ben", None, GradeAnswer("a2", 1.0))
    return path, canberra, sydney


def test_queue_lists_the_waiting_answers_with_their_suggestions_as_json(queued_db, capsys):
    path, canberra, sydney = queued_db
    assert main(["queue", "--db", str(path), "-q", "q1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["question_id"] == "q1" and out["graded_alone"] == 1
    rows = {row["answer_id"]: row for row in out["queue"]}
    assert set(rows) >= {"a1", "a10"} and "a2" not in rows  # graded on its own: done
    # a1 reads like the Canberra group, but a grader took it out: it is not suggested back.
    assert rows["a1"]["reason"] == "ungrouped" and rows["a1"]["suggested_group"] != canberra
    assert rows["a1"]["moved_out_of"] == [canberra]
    assert rows["a10"]["moved_out_of"] == [sydney]
    for row in out["queue"]:  # the grade an answer gets by moving there, or null
        if row["suggested_group"] == canberra:
            assert row["suggested_grade"] == {"score": 1.0, "comment": "right", "items": [], "adjustment": 0.0}
        else:
            assert row["suggested_grade"] is None
    assert all(row["suggested_group"] != sydney for row in out["queue"] if row["answer_id"] == "a10")


def test_queue_as_text_escapes_student_text_and_says_why_nothing_is_suggested(queued_db, capsys):
    path, _, sydney = queued_db
    assert main(["queue", "--db", str(path), "-q", "q1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("question q1: 2 ungrouped answer(s), ")
    assert "1 graded on its own, not listed" in out
    assert "\x1b" not in out and "Sydney\\u001b[31m" in out
    assert f"moved out of group {sydney}" in out


def test_queue_top_and_bad_input(queued_db, capsys):
    path, _, _ = queued_db
    assert main(["queue", "--db", str(path), "-q", "q1", "--json", "--top", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["queue"]) == 1
    assert main(["queue", "--db", str(path), "-q", "nope"]) == 2
    err = capsys.readouterr().err
    assert "question 'nope' is not in" in err and "(known: 'q1')" in err
    assert main(["queue", "--db", str(path), "-q", "q1", "--top", "-1"]) == 2
    assert "--top must be 0 (all) or more" in capsys.readouterr().err


def test_a_doubtful_member_with_no_clear_lead_is_listed_without_a_group(tmp_path, encoder, capsys, monkeypatch):
    """The sample capital question as imported: its doubtful members are offered another group
    only when that group's centre leads their own by DOUBTFUL_LEAD; the others say so."""
    from pathlib import Path

    from grouper.answers import load_answers
    from grouper.review import DOUBTFUL_LEAD

    path = tmp_path / "grades.sqlite"
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "q1_capital_australia.csv"
    with Store.open(path) as store:
        import_questions(store, load_answers(sample), encoder)
    assert main(["queue", "--db", str(path), "-q", "q1", "--json"]) == 0
    doubtful = [row for row in json.loads(capsys.readouterr().out)["queue"] if row["reason"] == "doubtful"]
    offered = [row for row in doubtful if row["suggested_group"] is not None]
    alone = [row for row in doubtful if row["suggested_group"] is None]
    assert alone, doubtful
    assert all(row["similarity"] - row["current_similarity"] >= DOUBTFUL_LEAD for row in offered)
    assert all(row["similarity"] == 0.0 and 0 < row["current_similarity"] < 1 for row in alone)
    assert main(["queue", "--db", str(path), "-q", "q1"]) == 0
    out = capsys.readouterr().out
    row = alone[0]
    own = f"{row['current_similarity']:.2f} to group {row['current_group']}"
    assert f"no other group is clearly closer ({own}, where it is)" in out


def test_a_suggested_move_names_the_grade_the_answer_will_have_its_own_where_it_has_one():
    """An answer with its own grade keeps it when moved: the line and the JSON say that grade,
    not the target group's."""
    import numpy as np

    from grouper.clustering import Group, Grouping
    from grouper.commands.queue import _as_json, _line
    from grouper.edits import apply, initial_state, make_edit
    from grouper.review import GraderMoves, QueueItem

    state = initial_state("q", ["a", "b", "c"], Grouping(np.array([1, 1, 2]), np.ones(3), (Group(1, "x", (0, 1)), Group(2, "y", (2,)))))
    for payload in (GradeGroup(2, 0.0), GradeAnswer("a", 1.0, "its own grade")):
        state = apply(state, make_edit(state, "ta", payload))
    item = QueueItem("a", 1, 2, 0.98, "doubtful", 0.41)
    moves = GraderMoves({}, frozenset())
    assert "keeps its own grade 1 there" in _line(item, "odd text", state, moves)
    assert _as_json(item, moves, state)["suggested_grade"]["score"] == 1.0
