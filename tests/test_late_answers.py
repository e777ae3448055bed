"""Late answers: added to a stored question where a grader would put them, never into a
reviewed group, logged so that the question replays, with the real encoder and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from grouper.answers import Answer, Question, load_answers
from grouper.edits import Confirm, EditRefused, GradeGroup, Move
from grouper.intake import import_questions
from grouper.late_answers import add_late_answers, late_answers_of
from grouper.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "q1_capital_australia.csv"


@pytest.fixture
def stored(tmp_path, encoder) -> Path:
    db = tmp_path / "grades.sqlite"
    with Store.open(db) as store:
        import_questions(store, load_answers(SAMPLE), encoder)
    return db


def late(*texts: str) -> list[Answer]:
    return [Answer(f"late-{i}", "q1", t) for i, t in enumerate(texts)]


def group_of_text(store: Store, text: str) -> int:
    """The group holding the stored answers written exactly ``text``."""
    state = store.state("q1")
    groups = {state.location[a.answer_id] for a in store.answers("q1") if a.text == text}
    (gid,) = groups
    return gid


def test_a_repeat_joins_its_groups_and_the_question_replays(stored, encoder):
    with Store.open(stored) as store:
        canberra = group_of_text(store, "Canberra")
        before = store.state("q1")
        done = add_late_answers(store, "q1", late("Canberra", "Canberra"), encoder, "ada")
        after = store.state("q1")
        assert done.placed == {"late-0": canberra, "late-1": canberra} and done.waiting == {}
        assert after.version == before.version + 1 and store.edits("q1")[-1].kind == "add_answers"
        assert after.groups[canberra].members[-2:] == ("late-0", "late-1")
        assert [a.answer_id for a in store.answers("q1")][-2:] == ["late-0", "late-1"]
        assert store.replay("q1") == after  # from version 0 and the log, no cache
    with Store.open(stored) as reopened:  # and from the file, in another process's view
        assert reopened.state("q1").content() == after.content()


def test_a_late_answer_never_joins_a_reviewed_group(stored, encoder):
    with Store.open(stored) as store:
        canberra = group_of_text(store, "Canberra")
        store.append("q1", "ben", None, GradeGroup(canberra, 1.0))
        done = add_late_answers(store, "q1", late("Canberra"), encoder, "ada")
        state = store.state("q1")
    # it waits for a grader, pointed at the group it would have joined; nobody graded it
    assert done.placed == {} and done.waiting == {"late-0": canberra}
    assert state.location["late-0"] is None and state.grade_of("late-0") is None


def test_a_group_confirmed_while_placing_refuses_the_whole_addition(stored, encoder):
    with Store.open(stored) as store:
        canberra = group_of_text(store, "Canberra")
        state = store.state("q1")
        store.append("q1", "ben", None, Confirm(canberra))
        with pytest.raises(EditRefused, match=f"group {canberra} was confirmed by ben"):
            store.add_answers("q1", late("Canberra"), [canberra], "ada", base_version=state.version)
        assert "late-0" not in store.state("q1").positions
        assert len(store.answers("q1")) == len(state.positions)  # no row was written


def test_late_answers_are_graded_and_moved_like_the_others(stored, encoder):
    with Store.open(stored) as store:
        add_late_answers(store, "q1", late("Melbourne, I think", "   "), encoder, "ada")
        state = store.state("q1")
        if state.location["late-0"] is not None:
            store.append("q1", "ben", None, Move(("late-0",), None))
        store.append("q1", "ben", None, Move(("late-0",), "new", title="late"))
        gid = store.state("q1").location["late-0"]
        store.append("q1", "ben", None, GradeGroup(gid, 0.0))
        assert store.state("q1").grade_of("late-0").score == 0.0
        assert store.replay("q1").content() == store.state("q1").content()


def test_ids_already_stored_are_refused_and_nothing_is_written(stored, encoder):
    with Store.open(stored) as store:
        taken = store.answers("q1")[0]
        with pytest.raises(EditRefused, match="already answers to question q1"):
            add_late_answers(store, "q1", [Answer(taken.answer_id, "q1", "new text"), *late("x")], encoder, "ada")
        assert len(store.answers("q1")) == len(store.state("q1").positions)


def test_a_re_uploaded_file_gives_only_its_new_answers_and_refuses_changed_texts(stored):
    (question,) = load_answers(SAMPLE)
    with Store.open(stored) as store:
        stored_answers = store.answers("q1")
    extra = Answer("q1-999", "q1", "Canberra!")
    grown = type(question)(question.question_id, question.text, (*question.answers, extra))
    assert late_answers_of(stored_answers, grown) == [extra]
    changed = type(question)(
        question.question_id, question.text, (Answer(question.answers[0].answer_id, "q1", "Sydney"), *question.answers[1:])
    )
    with pytest.raises(ValueError, match=f"'{question.answers[0].answer_id}' are stored with another text"):
        late_answers_of(stored_answers, changed)


def test_an_answer_id_or_text_in_another_unicode_form_is_the_stored_answer():
    import unicodedata

    nfd = lambda text: unicodedata.normalize("NFD", text)  # noqa: E731 - how macOS writes them
    stored = [Answer("q1/Zo\u00eb", "q1", "Caf\u00e9 Canberra"), Answer("q1/Ren\u00e9", "q1", "Sydney")]
    again = Question("q1", "Q?", (*(Answer(nfd(a.answer_id), "q1", nfd(a.text)) for a in stored), Answer("q1/s3", "q1", "x")))
    assert [a.answer_id for a in late_answers_of(stored, again)] == ["q1/s3"]
    changed = Question("q1", "Q?", (Answer(nfd("q1/Zo\u00eb"), "q1", "Perth"),))
    with pytest.raises(ValueError, match="are stored with another text"):
        late_answers_of(stored, changed)


# -- grouper import --late ---------------------------------------------------------------------


def grown_file(tmp_path: Path, extra: list[tuple[str, str]], change_first: str | None = None) -> Path:
    import csv

    with SAMPLE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if change_first is not None:
        rows[0]["answer"] = change_first
    template = rows[0]
    rows += [{**template, "answer_id": aid, "student_id": "", "answer": text, "grade": "", "score": ""} for aid, text in extra]
    path = tmp_path / "q1_with_late.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(template))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_late_adds_only_the_new_answers_once(tmp_path, stored, capsys, monkeypatch):
    from grouper.cli import main

    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))
    path = grown_file(tmp_path, [("q1-900", "Canberra"), ("q1-901", "the one with the big lake, Canberra I guess")])
    assert main(["import", str(path), "--db", str(stored), "--late", "--author", "ada"]) == 0
    out = capsys.readouterr().out
    assert "question q1: 2 late answer(s) added" in out
    with Store.open(stored) as store:
        state = store.state("q1")
        assert [a.answer_id for a in store.answers("q1")][-2:] == ["q1-900", "q1-901"]
        assert state.location["q1-900"] == group_of_text(store, "Canberra")
        assert store.edits("q1")[-1].author == "ada"
        version = state.version
    assert main(["import", str(path), "--db", str(stored), "--late", "--author", "ada"]) == 0
    assert "question q1: no new answers" in capsys.readouterr().out
    with Store.open(stored) as store:
        assert store.state("q1").version == version


def test_import_late_refuses_without_an_author_or_with_a_changed_text(tmp_path, stored, capsys, monkeypatch):
    from grouper.cli import main

    monkeypatch.delenv("GROUPER_AUTHOR", raising=False)
    path = grown_file(tmp_path, [("q1-900", "Canberra")])
    assert main(["import", str(path), "--db", str(stored), "--late"]) == 2
    assert "every edit needs an author" in capsys.readouterr().err
    changed = grown_file(tmp_path, [("q1-900", "Canberra")], change_first="Sydney")
    assert main(["import", str(changed), "--db", str(stored), "--late", "--author", "ada"]) == 2
    assert "are stored with another text" in capsys.readouterr().err
    with Store.open(stored) as store:
        assert "q1-900" not in store.state("q1").positions and store.edits("q1") == []
    # A bad grouping option for a new question in the same command: refused before the late
    # answers are written (they were committed, then the command failed).
    new = tmp_path / "q2.csv"
    new.write_text("question_id,answer_id,answer\nq2,b1,yes\nq2,b2,no\n", encoding="utf-8")
    argv = ["import", str(path), str(new), "--db", str(stored), "--late", "--author", "ada", "--min-cluster-size", "1"]
    assert main(argv) == 2
    assert "min_cluster_size (1) must be at least 2; nothing was imported" in capsys.readouterr().err
    with Store.open(stored) as store:
        assert store.edits("q1") == [] and store.question_ids() == ["q1"]


def test_late_answers_of_students_who_already_answered_are_named():
    from grouper.answers import Answer
    from grouper.late_answers import resubmissions

    stored = [Answer("a1", "q", "Canberra", "s1"), Answer("a2", "q", "Sydney", "s2"), Answer("a3", "q", "Perth")]
    late = [Answer("l1", "q", "Canberra, I mean", "s1"), Answer("l2", "q", "Hobart", "s3"), Answer("l3", "q", "x", "s3")]
    assert resubmissions(stored, late) == {"s1": ["a1", "l1"], "s3": ["l2", "l3"]}
    assert resubmissions(stored, late[1:2]) == {}
