"""The scripted workflow: ``grouper import``, ``show``, ``edit ...`` and ``export ...``."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.cli import main
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import Rename
from grouper.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "q1_capital_australia.csv"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "grades.sqlite"
    texts = ["Canberra", "canberra", "It is Canberra", "Sydney", "sydney", "Melbourne", "Perth", "=1+1"]
    answers = tuple(Answer(f"a{i}", "q1", t, f"s{i}") for i, t in enumerate(texts))
    labels = np.array([1, 1, 1, 2, 2, 2, UNGROUPED, UNGROUPED])
    grouping = Grouping(labels, np.ones(8), (Group(1, "Canberra", (0, 1, 2)), Group(2, "Sydney", (3, 4, 5))))
    with Store.open(path) as store:
        store.import_question(Question("q1", "Capital of Australia?", answers))
        store.save_grouping("q1", grouping, model_version="test-model")
        rng = np.random.default_rng(0)
        store.embeddings.put_many("test-model", {a.normalized: rng.normal(size=4) for a in answers})
    monkeypatch.setenv("GROUPER_DB", str(path))
    monkeypatch.delenv("GROUPER_AUTHOR", raising=False)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def edit(capsys, *argv: str, author: str = "ta1") -> tuple[int, str, str]:
    return run(capsys, "edit", "-q", "q1", "--author", author, *argv)


def state(db):
    with Store.open(db) as store:
        return store.state("q1")


def test_every_edit_verb_from_the_command_line(db, capsys):
    assert edit(capsys, "confirm", "1")[0] == 0
    assert edit(capsys, "rename", "2", "Sydney (wrong)")[0] == 0
    status, out, _ = edit(capsys, "grade", "1", "2", "--comment", "right")
    assert status == 0 and "3 answer(s) changed grade" in out
    assert edit(capsys, "grade-answer", "a2", "1.5")[0] == 0
    status, out, _ = edit(capsys, "move", "a6,a7", "--to", "new", "--title", "odd")
    assert status == 0 and "new group(s): 3" in out
    assert edit(capsys, "move", "a7", "--to", "ungrouped")[0] == 0
    assert edit(capsys, "merge", "2", "3")[0] == 0
    assert edit(capsys, "split", "2", "--part", "a3,a4")[0] == 0  # the rest forms one more part
    assert edit(capsys, "delete", "4")[0] == 0
    assert edit(capsys, "undo", "9")[0] == 0
    s = state(db)
    assert s.version == 10
    assert s.groups[1].status == "confirmed" and s.grade_of("a0").score == 2.0 and s.grade_of("a2").score == 1.5
    assert s.groups[2].title == "Sydney (wrong)" and s.groups[2].members == ("a3", "a4")
    assert s.groups[4].members == ("a5", "a6") and s.ungrouped == ("a7",)


def test_an_automatic_split_uses_the_cached_embeddings(db, capsys):
    status, out, err = edit(capsys, "split", "1", "--k", "2", "--seed", "3")
    assert status == 0, err
    s = state(db)
    assert len(s.groups) == 3 and sorted(s.groups[1].members + s.groups[3].members) == ["a0", "a1", "a2"]


def test_a_stale_edit_is_refused_with_status_3_and_the_reason(db, capsys):
    edit(capsys, "rename", "1", "Canberra!", author="ta2")
    status, _, err = run(capsys, "edit", "-q", "q1", "--author", "ta1", "--base-version", "0", "grade", "1", "1")
    assert status == 3
    assert "group 1 was renamed from 'Canberra' by ta2 at version 1" in err
    assert state(db).version == 1


def test_bad_input_is_status_2_with_a_message(db, capsys):
    status, _, err = run(capsys, "edit", "-q", "q1", "confirm", "1")
    assert status == 2 and "needs an author" in err
    status, _, err = edit(capsys, "grade", "1")
    assert status == 2 and "give a SCORE or --items, or --clear" in err
    status, _, err = run(capsys, "edit", "-q", "q9", "--author", "ta1", "confirm", "1")
    assert status == 2 and "question 'q9' is not in" in err
    status, _, err = edit(capsys, "split", "7", "--k", "2")
    assert status == 3 and "group 7 does not exist" in err
    assert state(db).version == 0


def test_a_maximum_score_from_the_command_line_bounds_every_grade(db, capsys, tmp_path):
    status, out, _ = edit(capsys, "max-score", "5")
    assert status == 0 and "max_score by ta1" in out
    status, _, err = edit(capsys, "grade", "1", "7")
    assert status == 3 and "score 7 is above the question's maximum score 5 (set by ta1 at version 1)" in err
    assert edit(capsys, "grade", "1", "5")[0] == 0
    status, _, err = edit(capsys, "max-score", "4")
    assert status == 3 and "group 1 is graded 5, above the new maximum score 4" in err
    status, _, err = edit(capsys, "max-score")
    assert status == 2 and "give POINTS, or --clear" in err
    status, _, err = edit(capsys, "max-score", "0")
    assert status == 2 and "max_score must be above 0" in err
    status, out, _ = run(capsys, "show", "-q", "q1")
    assert "out of 5 points" in out.splitlines()[0]
    assert json.loads(run(capsys, "show", "-q", "q1", "--json")[1])["max_score"] == 5.0
    grades = tmp_path / "grades.csv"
    assert run(capsys, "export", "grades", "-o", str(grades))[0] == 0
    rows = list(csv.DictReader(grades.open(newline="")))
    assert {r["max_score"] for r in rows} == {"5"} and rows[0]["score"] == "5"
    assert edit(capsys, "max-score", "--clear")[0] == 0
    assert state(db).max_score is None and state(db).version == 3


def test_history_says_who_did_what_newest_first(db, capsys):
    edit(capsys, "merge", "1", "2", author="ta1")
    edit(capsys, "undo", "1", author="ta1")
    edit(capsys, "rename", "1", "=cities", author="ta2")
    status, out, _ = run(capsys, "history", "-q", "q1")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 3
    assert lines[0].split(None, 3)[0] == "3" and lines[0].endswith("ta2: renamed group 1 to '=cities'")
    assert lines[1].endswith("ta1: undid edit 1")
    assert lines[2].endswith("ta1: merged group 2 into group 1  (undone by edit 2)")
    rows = json.loads(run(capsys, "history", "-q", "q1", "--author", "ta2", "--json")[1])
    assert [(r["edit_id"], r["kind"], r["undone_by"]) for r in rows] == [(3, "rename", None)]
    status, out, _ = run(capsys, "history", "-q", "q1", "--kind", "confirm")
    assert status == 0 and out == "question q1: no edits match\n"
    status, _, err = run(capsys, "history", "-q", "nope")
    assert status == 2 and "question 'nope' is not in" in err


def test_the_author_can_come_from_the_environment(db, capsys, monkeypatch):
    monkeypatch.setenv("GROUPER_AUTHOR", "ta9")
    status, out, _ = run(capsys, "edit", "-q", "q1", "--json", "confirm", "2")
    assert status == 0 and json.loads(out)["payload"] == {"kind": "confirm", "group_id": 2}
    with Store.open(db) as store:
        assert store.edits("q1")[0].author == "ta9"


def test_show_lists_questions_and_groups(db, capsys):
    status, out, _ = run(capsys, "show")
    assert status == 0 and out.startswith("q1: 8 answers, 0 edits")
    edit(capsys, "grade", "2", "0")
    status, out, _ = run(capsys, "show", "-q", "q1", "--json")
    shown = json.loads(out)
    assert shown["version"] == 1 and shown["groups"][1]["score"] == 0.0 and shown["ungrouped"] == ["a6", "a7"]
    size = len(shown["groups"][1]["members"])
    edit(capsys, "grade-answer", "a6", "1")
    status, out, _ = run(capsys, "show", "-q", "q1")
    assert f"2 ungrouped, {size + 1} graded" in out.splitlines()[0]


def test_an_answer_id_with_a_comma_is_named_escaped_never_guessed(tmp_path, capsys, monkeypatch):
    # "smith,john" moved the answers smith and john, leaving the answer "smith,john" where it was.
    path = tmp_path / "commas.sqlite"
    ids = ["smith", "john", "smith,john", "doe,jane", "other"]
    answers = tuple(Answer(a, "q1", f"text {i}") for i, a in enumerate(ids))
    with Store.open(path) as store:
        store.import_question(Question("q1", "Q?", answers))
        store.save_grouping("q1", Grouping(np.ones(5, dtype=int), np.ones(5), (Group(1, "all", tuple(range(5))),)), model_version="m")
    monkeypatch.setenv("GROUPER_DB", str(path))
    status, _, err = edit(capsys, "move", "smith,john", "--to", "new")
    assert status == 2 and "'smith,john' is an answer id, and its parts 'smith', 'john' are answers too" in err
    assert "write smith\\,john for the one answer" in err and state(path).version == 0
    assert edit(capsys, "move", "smith\\,john", "--to", "new")[0] == 0
    assert state(path).groups[2].members == ("smith,john",)
    assert edit(capsys, "move", "doe,jane", "--to", "2")[0] == 0  # no answers "doe" and "jane": the one id
    assert state(path).groups[2].members == ("smith,john", "doe,jane")
    assert edit(capsys, "move", "smith,john", "--to", "ungrouped")[0] == 2
    assert edit(capsys, "move", "smith, john", "--to", "ungrouped")[0] == 0  # not an id as typed: two answers
    assert state(path).groups[1].members == ("other",)


def test_bad_rubric_and_author_input_is_refused_and_logs_nothing(db, capsys):
    # `rubric ""` removed the whole rubric without --clear.
    assert edit(capsys, "rubric", "names the city=2")[0] == 0
    status, _, err = edit(capsys, "rubric", "")
    assert status == 2 and "--clear for no rubric" in err and len(state(db).rubric) == 1
    # An author with escape sequences was logged and echoed raw to every grader's terminal.
    for name in ("ta2\x1b[2J\x1b[31m", "\u202eevil", "\x1b[31m"):
        status, out, err = edit(capsys, "confirm", "1", author=name)
        assert status == 2 and out == "" and "holds a control or invisible character" in err and "\x1b" not in err
    status, out, _ = edit(capsys, "grade", "2", "-0")
    assert status == 0 and "ungraded -> 0\n" in out and state(db).groups[2].grade.score == 0
    assert str(state(db).groups[2].grade.score) == "0.0"
    status, _, err = edit(capsys, "rubric", "a=1e308", "b=1e308")
    assert status == 0
    status, _, err = edit(capsys, "grade", "1", "--items", "2,3")  # ids are never reused: a and b are 2 and 3
    assert status == 3 and "rubric items 2, 3 sum to more points than any score can hold" in err
    assert state(db).version == 3
    # A person's edit signed as a model's was left out of training and redone by regrouping.
    status, out, err = edit(capsys, "confirm", "1", author="model:ada")
    assert status == 2 and "a name cannot start with 'model:'" in err
    # Cleaned as the UI's name form cleans it: one person, one author in the log.
    assert edit(capsys, "confirm", "1", author="  Zoe\u0301   Lovelace ")[0] == 0
    assert state(db).groups[1].changed_by == "Zo\u00e9 Lovelace"
    

def test_exports_from_the_command_line(db, capsys, tmp_path):
    edit(capsys, "grade", "1", "2", "--comment", "=right")
    edit(capsys, "move", "a1", "--to", "ungrouped")
    grades = tmp_path / "grades.csv"
    assert run(capsys, "export", "grades", "-o", str(grades))[0] == 0
    rows = list(csv.DictReader(grades.open(newline="")))
    assert [r["score"] for r in rows[:3]] == ["2", "", "2"] and rows[0]["comment"] == "'=right"
    assert rows[7]["answer_id"] == "a7" and rows[7]["score"] == ""
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".grades.csv")]  # no temporary left
    status, out, _ = run(capsys, "export", "log", "-q", "q1")
    assert [json.loads(line)["payload"]["kind"] for line in out.splitlines()] == ["grade", "move"]
    status, out, _ = run(capsys, "export", "pairs", "--author", "ta1")
    pairs = [json.loads(line) for line in out.splitlines()]
    assert {(p["answer_id_a"], p["answer_id_b"]): p["together"] for p in pairs}[("a0", "a1")] is False
    status, _, err = run(capsys, "export", "grades", "-q", "nope")
    assert status == 2 and "question 'nope' is not in" in err
    missing = tmp_path / "no-such-folder" / "grades.csv"
    status, _, err = run(capsys, "export", "grades", "-o", str(missing))
    assert status == 2 and f"the folder {missing.parent} does not exist; create it first" in err
    assert not missing.parent.exists()


def test_an_export_for_excel_begins_with_a_byte_order_mark(db, capsys, tmp_path):
    # Without one, Excel reads UTF-8 in the machine's code page: "Zoë" shows as "ZoÃ«".
    with Store.open(db) as store:
        store.append("q1", "ta1", 0, Rename(1, "Zoë's group"))
    edit(capsys, "grade", "1", "2", "--comment", "très bien")
    for kind in ("grades", "grades-by-student"):
        plain_file, excel_file = tmp_path / f"{kind}.csv", tmp_path / f"{kind}-excel.csv"
        assert run(capsys, "export", kind, "-o", str(plain_file))[0] == 0
        assert run(capsys, "export", kind, "--excel", "-o", str(excel_file))[0] == 0
        assert not plain_file.read_bytes().startswith(b"\xef\xbb\xbf")
        assert excel_file.read_bytes() == b"\xef\xbb\xbf" + plain_file.read_bytes()
    rows = list(csv.DictReader((tmp_path / "grades-excel.csv").open(encoding="utf-8-sig", newline="")))
    assert rows[0]["answer_id"] == "a0" and rows[0]["group_title"] == "Zoë's group" and rows[0]["comment"] == "très bien"
    status, out, _ = run(capsys, "export", "grades", "--excel")
    assert status == 0 and out.startswith("\ufeffquestion_id,answer_id,")
    # JSON Lines are UTF-8 without a mark; asking for one there is refused, not ignored.
    for kind in ("log", "pairs"):
        status, out, err = run(capsys, "export", kind, "--excel")
        assert status == 2 and out == "" and "--excel is for the CSV exports" in err, kind


def test_exporting_grades_warns_of_identical_answers_graded_differently(db, capsys, tmp_path):
    edit(capsys, "grade", "1", "2")
    grades = tmp_path / "grades.csv"
    status, _, err = run(capsys, "export", "grades", "-o", str(grades))
    assert status == 0 and "warning" not in err
    edit(capsys, "grade-answer", "a1", "0")  # "canberra" now graded unlike "Canberra"
    status, _, err = run(capsys, "export", "grades", "-o", str(grades))
    assert status == 0  # the export goes ahead, but not silently
    assert "warning: question q1: 2 answer(s) graded unlike most of their identical answers (a0, a1)" in err
    assert "grouper check -q q1" in err
    assert [r["score"] for r in csv.DictReader(grades.open(newline=""))][:2] == ["2", "0"]


def test_an_export_never_replaces_a_store_and_says_what_is_not_graded(db, capsys, tmp_path):
    before = db.read_bytes()
    status, _, err = run(capsys, "export", "grades", "-o", str(db))
    assert status == 2 and "is the store itself" in err and db.read_bytes() == before
    other = tmp_path / "other.sqlite"
    Store.open(other).close()
    status, _, err = run(capsys, "export", "grades", "-o", str(other))
    assert status == 2 and "is a SQLite database" in err
    status, _, err = run(capsys, "export", "grades", "-o", str(tmp_path))
    assert status == 2 and "is a folder" in err
    edit(capsys, "grade", "1", "2")
    status, _, err = run(capsys, "export", "grades-by-student", "-o", str(tmp_path / "by-student.csv"))
    assert status == 0
    assert "question q1: 5 of 8 answer(s) not graded yet (empty score cells; the by-student totals count them as 0)" in err


def test_an_export_file_is_as_readable_as_any_other_and_keeps_the_mode_it_replaces(db, capsys, tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        fresh = tmp_path / "grades.csv"
        assert run(capsys, "export", "grades", "-o", str(fresh))[0] == 0
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # mkstemp's 0600 would lock co-graders out
        fresh.chmod(0o664)
        assert run(capsys, "export", "grades", "-o", str(fresh))[0] == 0
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o664
    finally:
        os.umask(mask)


def test_a_store_that_cannot_be_opened_is_one_line_and_a_url_with_options_opens(
    db, tmp_path, foreign_sqlite, capsys, monkeypatch
):
    monkeypatch.delenv("GROUPER_DB", raising=False)
    not_sqlite = tmp_path / "answers.sqlite"
    not_sqlite.write_text("answer_id,answer\na1,Canberra\n")
    foreign = foreign_sqlite
    for where, why in [
        (str(not_sqlite), f"{not_sqlite} is not a SQLite database"),
        (str(foreign), f"{foreign} is a database but not a grouper store (its tables: notes)"),
        ("foo://bar", "--db foo://bar: no database driver for 'foo'"),
    ]:
        for argv in (["show"], ["history", "-q", "q1"], ["export", "grades"]):
            status, out, err = run(capsys, *argv, "--db", where)
            assert status == 2 and out == "" and err.startswith(f"grouper: {why}") and err.count("\n") == 1, (argv, err)
    # SQLAlchemy URLs with SQLite's options name the same file (they were "no store at ...?timeout=5").
    for url in (f"sqlite:///{db}?timeout=5", f"sqlite:///file:{db}?mode=ro&uri=true"):
        status, out, err = run(capsys, "show", "--db", url)
        assert status == 0 and "q1" in out, (url, err)
    status, _, err = run(capsys, "edit", "--db", f"sqlite:///file:{db}?mode=ro&uri=true", "-q", "q1", "--author", "ta1", "confirm", "1")
    assert status == 2 and f"{db} is read-only for this user" in err


def test_stored_text_never_reaches_the_terminal_raw_and_ids_match_in_either_unicode_form(tmp_path, capsys, monkeypatch):
    import unicodedata

    path = tmp_path / "hostile.sqlite"
    evil = "q1\x1b]0;PWNED\x07\x1b[2J"
    decomposed = unicodedata.normalize("NFD", "Übung-1")
    with Store.open(path) as store:
        store.import_question(Question(evil, "Q?", (Answer("a0", evil, "right \u202e\u009b31m"),)))
        store.import_question(Question(decomposed, "Q?", (Answer("b0", decomposed, "ja"),)))
        store.save_grouping(evil, Grouping(np.array([1]), np.ones(1), (Group(1, "right \u202e", (0,)),)), model_version="m")
        store.save_grouping(decomposed, Grouping(np.array([1]), np.ones(1), (Group(1, "ja", (0,)),)), model_version="m")
    monkeypatch.setenv("GROUPER_DB", str(path))
    status, _, err = run(capsys, "show", "-q", "nope")
    assert status == 2 and "\x1b" not in err and "\x07" not in err and "'q1\\x1b]0;PWNED" in err
    status, out, _ = run(capsys, "show", "-q", evil, "--json", "--members", "5")
    assert status == 0 and out.isascii() and json.loads(out)["groups"][0]["title"] == "right \u202e"
    status, out, _ = run(capsys, "show", "--json")
    assert status == 0 and out.isascii() and json.loads(out)[0]["question_id"] == evil
    # Import keeps one question per NFC form; show and history find it typed either way.
    for command in ("show", "history"):
        status, out, err = run(capsys, command, "-q", unicodedata.normalize("NFC", "Übung-1"))
        assert status == 0, err


def test_a_mistyped_store_is_an_error_not_an_empty_export(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GROUPER_DB", raising=False)
    typo = tmp_path / "grdaes.sqlite"
    for argv in (["export", "grades"], ["history", "-q", "q1"], ["show"], ["queue", "-q", "q1"]):
        status, out, err = run(capsys, *argv, "--db", str(typo))
        assert status == 2 and f"no store at {typo}" in err, argv
    assert not typo.exists()
    status, _, err = run(capsys, "import", str(SAMPLE), "--db", str(tmp_path / "no-such-folder" / "g.sqlite"))
    assert status == 2 and "the folder of the store" in err


def test_the_installed_command_runs_as_a_real_process(db):
    with Store.open(db) as store:
        store.append("q1", "ta2", 0, Rename(1, "Canberra!"))
    done = subprocess.run(
        [sys.executable, "-m", "grouper", "edit", "--db", str(db), "-q", "q1", "--author", "ta1", "--base-version", "0", "confirm", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr  # the exit status scripts see
    assert "group 1 was renamed from 'Canberra' by ta2 at version 1" in done.stderr


@pytest.mark.slow
def test_import_groups_a_file_with_the_real_encoder(tmp_path, capsys):
    db = tmp_path / "import.sqlite"
    status, out, err = run(capsys, "import", str(SAMPLE), "--db", str(db), "--course", "Geo", "--device", "cpu")
    assert status == 0, err
    assert out.startswith("question q1: 185 answers in ")
    with Store.open(db) as store:
        s = store.state("q1")
        assert len(s.positions) == 185 and len(s.groups) >= 3
        answers = store.answers("q1")
        texts = [a.normalized for a in answers if a.normalized]
        assert len(store.embeddings.get_many(store.model_version("q1"), texts)) == len(set(texts))
    status, _, err = run(capsys, "import", str(SAMPLE), "--db", str(db))
    assert status == 2 and "already in" in err
    status, out, _ = run(capsys, "import", str(SAMPLE), "--db", str(db), "--skip-existing")
    assert status == 0 and "already in the store" in out


@pytest.mark.slow
def test_import_takes_the_maximum_score_from_the_file_or_the_option(tmp_path, capsys):
    db = tmp_path / "import.sqlite"
    (tmp_path / "a.csv").write_text("answer_id,answer,max_score\n1,Canberra,2\n2,Sydney,\n3,Canberra,\n")
    (tmp_path / "b.csv").write_text("answer_id,answer,score\n1,Canberra,1\n2,Sydney,0\n3,Perth,0\n")
    status, _, err = run(capsys, "import", str(tmp_path / "b.csv"), "--db", str(db), "--max-score", "0.5", "--device", "cpu")
    assert status == 2 and "question b, answer 1: score 1 is outside 0 to --max-score 0.5" in err
    status, _, err = run(capsys, "import", str(tmp_path / "b.csv"), "--db", str(db), "--max-score", "-1", "--device", "cpu")
    assert status == 2 and "--max-score must be a number above 0" in err
    status, out, err = run(
        capsys, "import", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--db", str(db),
        "--max-score", "3", "--author", "prof", "--device", "cpu",
    )
    assert status == 0, err
    assert "question a: the file's maximum score 2 is kept, not --max-score" in out
    with Store.open(db) as store:
        assert (store.state("a").max_score, store.state("b").max_score) == (2.0, 3.0)
        for qid in ("a", "b"):
            assert [(e.author, e.kind) for e in store.edits(qid)] == [("prof", "max_score")]


def test_reference_answers_from_the_command_line(db, capsys):
    status, out, _ = edit(capsys, "references", "Canberra", "Canberra is the capital")
    assert status == 0 and "references by ta1" in out
    with Store.open(db) as store:
        assert store.question("q1").reference_answers == ("Canberra", "Canberra is the capital")
    status, _, err = edit(capsys, "references")
    assert status == 2 and "give the reference answers, or --clear" in err
    assert edit(capsys, "references", "--clear")[0] == 0
    with Store.open(db) as store:
        assert store.reference_answers("q1") == ()
    status, out, _ = run(capsys, "history", "-q", "q1")
    assert out.splitlines()[0].endswith("ta1: removed the reference answers")


def test_a_rubric_from_the_command_line_grades_and_regrades(db, capsys):
    status, out, _ = edit(capsys, "rubric", "names Canberra=2", "spelling=-0.5", author="prof")
    assert status == 0 and "rubric by prof" in out
    assert [(i.item_id, i.description, i.points) for i in state(db).rubric] == [(1, "names Canberra", 2.0), (2, "spelling", -0.5)]
    status, out, _ = edit(capsys, "grade", "1", "--items", "1", "--comment", "right")
    assert status == 0 and "3 answer(s) changed grade" in out
    assert edit(capsys, "grade-answer", "a1", "--items", "1,2")[0] == 0
    assert state(db).grade_of("a1").score == 1.5
    # a stated score must be the items' sum
    status, _, err = edit(capsys, "grade-answer", "a2", "3", "--items", "1")
    assert status == 3 and "not the sum of the rubric items' points (2)" in err
    # the same description with new points keeps the id, so it regrades everyone who has it
    status, out, _ = edit(capsys, "rubric", "names Canberra=3", "spelling=-0.5", author="prof")
    assert status == 0 and "3 answer(s) changed grade" in out and "a1: 1.5 -> 2.5" in out
    # an id before a colon rewords an item and keeps it; an item in use cannot be dropped
    assert edit(capsys, "rubric", "1: says Canberra=3", "spelling=-0.5", author="prof")[0] == 0
    assert state(db).rubric_item(1).description == "says Canberra"
    status, _, err = edit(capsys, "rubric", "says Canberra=3", author="prof")
    assert status == 3 and "rubric item 'spelling' is part of 1 grade" in err
    for bad, message in [(("rubric", "no points"), "is not DESCRIPTION=POINTS"), (("rubric", "x=many"), "'many' is not a number"),
                         (("rubric",), "or --clear for no rubric"), (("grade", "1", "--clear", "--items", "1"), "--clear takes no")]:
        status, _, err = edit(capsys, *bad, author="prof")
        assert status == 2 and message in err, err
    with pytest.raises(SystemExit) as exit_:  # argparse's own refusal of the option's value
        edit(capsys, "grade", "1", "--items", "a")
    assert exit_.value.code == 2 and "give rubric item ids separated by commas" in capsys.readouterr().err
    status, out, _ = run(capsys, "show", "-q", "q1")
    assert "rubric: says Canberra (+3)" in out and "rubric item 2: spelling (-0.5)  (1 answer(s))" in out
    assert "rubric item 1: says Canberra (+3)  (3 answer(s))" in out  # group 1's three
    status, out, _ = run(capsys, "show", "-q", "q1", "--json")
    shown = json.loads(out)
    assert shown["rubric"][0] == {"item_id": 1, "description": "says Canberra", "points": 3.0, "answers": 3}
    assert shown["overrides"]["a1"]["rubric_items"] == [1, 2]
    status, out, _ = run(capsys, "history", "-q", "q1")
    lines = out.splitlines()
    assert lines[0].endswith("prof: set the rubric (2 items)")
    assert any(line.endswith("ta1: gave answer a1 its own grade: rubric items 1, 2") for line in lines)


def test_a_rubric_grade_with_a_point_adjustment_from_the_command_line(db, capsys):
    assert edit(capsys, "rubric", "names Canberra=2", "spelling=-0.5", author="prof")[0] == 0
    status, out, _ = edit(capsys, "grade-answer", "a1", "--items", "1", "--adjust", "-0.25", "--comment", "late")
    assert status == 0, out
    grade = state(db).grade_of("a1")
    assert (grade.score, grade.items, grade.adjustment, grade.comment) == (1.75, (1,), -0.25, "late")
    # a stated score is checked against the items and the adjustment together
    status, _, err = edit(capsys, "grade-answer", "a2", "2", "--items", "1", "--adjust", "0.5")
    assert status == 3 and "points and the adjustment +0.5 (2.5)" in err
    for bad, message in [(("grade", "1", "2", "--adjust", "1"), "--adjust goes with --items"),
                         (("grade", "1", "--clear", "--adjust", "1"), "--clear takes no")]:
        status, _, err = edit(capsys, *bad)
        assert status == 2 and message in err, err
    status, out, _ = run(capsys, "show", "-q", "q1", "--json")
    assert json.loads(out)["overrides"]["a1"] == {"score": 1.75, "comment": "late", "rubric_items": [1], "adjustment": -0.25}
    status, out, _ = run(capsys, "history", "-q", "q1")
    assert out.splitlines()[0].endswith("gave answer a1 its own grade: rubric item 1, adjustment -0.25 (late)")


def test_a_questions_rubric_grading_exports_with_a_column_per_item(db, capsys, tmp_path):
    status, _, err = run(capsys, "export", "rubric", "-q", "q1")
    assert status == 2 and "question q1 has no rubric" in err
    edit(capsys, "rubric", "names Canberra=2", "=spelling=-0.5", author="prof")
    edit(capsys, "grade", "1", "--items", "1")
    edit(capsys, "grade-answer", "a2", "--items", "1,2", "--adjust", "0.25")
    edit(capsys, "grade", "2", "0")  # a bare score: the rubric says nothing about these answers
    out_file = tmp_path / "rubric.csv"
    assert run(capsys, "export", "rubric", "-q", "q1", "-o", str(out_file))[0] == 0
    rows = list(csv.reader(out_file.open(newline="")))
    assert rows[0] == ["question_id", "answer_id", "student_id", "score", "max_score", "adjustment",
                       "1: names Canberra (+2)", "2: =spelling (-0.5)"]
    by_answer = {r[1]: r for r in rows[1:]}
    assert by_answer["a0"][3:] == ["2", "", "0", "1", "0"]
    assert by_answer["a2"][3:] == ["1.75", "", "0.25", "1", "1"]
    assert by_answer["a3"][3:] == ["0", "", "", "", ""] and by_answer["a6"][3:] == ["", "", "", "", ""]
    assert len(rows) == 9
    # several questions have different rubrics: the export is one question's
    with Store.open(db) as store:
        store.import_question(Question("q2", "Why?", (Answer("b0", "q2", "because", "s0"),)))
    status, _, err = run(capsys, "export", "rubric")
    assert status == 2 and "a rubric export is one question's" in err and "q1, q2" in err


def test_a_rubric_copied_from_another_question(db, capsys):
    with Store.open(db) as store:
        store.import_question(Question("q2", "Capital of Australia? (version B)", (Answer("b0", "q2", "Canberra", "s0"),)))
        store.save_grouping("q2", Grouping(np.array([1]), np.ones(1), (Group(1, "Canberra", (0,)),)), model_version="test-model")
    status, _, err = edit(capsys, "rubric", "--from", "q2", author="prof")
    assert status == 2 and "question q2 has no rubric to copy" in err
    assert run(capsys, "edit", "-q", "q2", "--author", "prof", "rubric", "names Canberra=2", "spelling=-0.5")[0] == 0
    assert edit(capsys, "rubric", "names canberra=1", author="prof")[0] == 0
    status, out, _ = edit(capsys, "rubric", "--from", "q2", author="prof")
    assert status == 0 and "rubric by prof" in out
    # q1 keeps its own "names canberra" (1 point) and gains what it lacked
    assert [(i.item_id, i.description, i.points) for i in state(db).rubric] == [(1, "names canberra", 1.0), (2, "spelling", -0.5)]
    status, _, err = edit(capsys, "rubric", "--from", "q2", author="prof")
    assert status == 2 and "already has every item" in err
    status, _, err = edit(capsys, "rubric", "x=1", "--from", "q2", author="prof")
    assert status == 2 and "--from takes no items" in err
    status, _, err = edit(capsys, "rubric", "--from", "nope", author="prof")
    assert status == 2 and "question 'nope' is not in" in err


def test_an_edit_reports_its_own_effect_when_another_graders_lands_right_after(db, capsys, monkeypatch):
    """ta2 grades group 2 between ta1's append and the command's re-read: ta1's rename
    changed no grade, and the command must not print ta2's grade changes as its own."""
    from grouper.edits import GradeGroup

    real_append = Store.append

    def append_then_another(self, question_id, author, base, payload, **kw):
        made = real_append(self, question_id, author, base, payload, **kw)
        if author == "ta1":
            with Store.open(db) as other:
                other.append(question_id, "ta2", None, GradeGroup(2, 0.0))
        return made

    monkeypatch.setattr(Store, "append", append_then_another)
    status, out, _ = edit(capsys, "rename", "1", "Canberra!")
    assert status == 0
    assert "edit 1 applied: rename by ta1 (question q1, now version 2)" in out
    assert "changed grade" not in out
    assert state(db).groups[2].grade.score == 0.0


def test_a_question_named_twice_is_exported_once(db, capsys, tmp_path):
    out = tmp_path / "grades.csv"
    assert run(capsys, "export", "grades", "-q", "q1", "-q", "q1", "-o", str(out))[0] == 0
    with out.open(newline="") as f:
        assert len(list(csv.DictReader(f))) == 8


def test_a_question_named_in_two_unicode_forms_is_exported_once_and_found_in_its_course(tmp_path, capsys, monkeypatch):
    composed, decomposed = "\u00dcbung1", "U\u0308bung1"
    path = tmp_path / "u.sqlite"
    with Store.open(path) as store:
        answers = tuple(Answer(f"a{i}", decomposed, t, f"s{i}") for i, t in enumerate(["ja", "nein"]))
        store.import_question(Question(decomposed, "Q?", answers), course="Geo")
        store.save_grouping(decomposed, Grouping(np.array([1, 1]), np.ones(2), (Group(1, "g", (0, 1)),)), model_version="m")
    monkeypatch.setenv("GROUPER_DB", str(path))
    status, out, _ = run(capsys, "export", "grades", "-q", composed, "-q", decomposed)
    assert status == 0 and len(out.strip().splitlines()) == 3  # a header and each answer once
    status, out, err = run(capsys, "export", "grades-by-student", "-q", composed, "-q", decomposed)
    assert status == 0 and len(out.strip().splitlines()) == 3, err
    status, out, err = run(capsys, "export", "grades", "-q", composed, "--course", "Geo")
    assert status == 0 and len(out.strip().splitlines()) == 3, err


def test_an_export_writes_through_links_and_into_pipes_and_says_what_it_cannot(db, capsys, tmp_path):
    import os
    import threading

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "real.csv").write_text("old\n")
    (tmp_path / "link.csv").symlink_to(shared / "real.csv")
    assert run(capsys, "export", "grades", "-o", str(tmp_path / "link.csv"))[0] == 0
    assert (tmp_path / "link.csv").is_symlink()  # the link stays; the file it names is the export
    assert (shared / "real.csv").read_text().startswith("question_id,answer_id")
    fifo = tmp_path / "grades.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    assert run(capsys, "export", "grades", "-o", str(fifo))[0] == 0  # it read the pipe for a database header: hung
    reader.join(30)
    assert received and received[0].startswith("question_id,answer_id") and fifo.exists()
    # Filters of the pairs export given to another were ignored: "grades --author ta1" gave everyone's.
    status, out, err = run(capsys, "export", "grades", "--author", "ta1", "--since", "2026-01-01")
    assert status == 2 and out == "" and "--author, --since filter(s) the edits of `export pairs`" in err
    # Started with standard output closed (>&-): one line, not an AttributeError traceback.
    real = sys.stdout
    sys.stdout = None
    try:
        status = main(["export", "grades"])
    finally:
        sys.stdout = real
    assert status == 2 and "standard output is closed; write the export to a file with -o FILE" in capsys.readouterr().err


def test_pair_filters_that_cannot_match_are_refused_and_empty_ones_said(db, capsys):
    status, _, err = run(capsys, "export", "pairs", "--edit-kind", "mrege")
    assert status == 2 and "edit kind(s) 'mrege' give no pairs" in err
    status, _, err = run(capsys, "export", "pairs", "--since", "2026-05-02", "--until", "2026-05-01")
    assert status == 2 and "must be before until" in err
    status, out, err = run(capsys, "export", "pairs", "--author", "nobody")
    assert status == 0 and out == "" and "no edit matches the filters given" in err


def test_a_question_given_twice_in_one_import_is_refused_before_anything_is_stored(tmp_path, capsys):
    db = tmp_path / "import.sqlite"
    (tmp_path / "a.csv").write_text("question_id,answer_id,answer\nq7,1,Canberra\nq7,2,Sydney\n")
    (tmp_path / "b.csv").write_text("question_id,answer_id,answer\nq7,3,Perth\n")
    status, _, err = run(capsys, "import", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--db", str(db), "--device", "cpu")
    assert status == 2 and "question q7 is in" in err and "nothing was imported" in err
    with Store.open(db) as store:
        assert store.question_ids() == []


def test_a_refused_import_adds_no_late_answers_either(tmp_path, capsys):
    db = tmp_path / "import.sqlite"
    (tmp_path / "a.csv").write_text("question_id,answer_id,answer\nqa,1,Canberra\nqa,2,Sydney\nqa,3,Perth\n")
    assert run(capsys, "import", str(tmp_path / "a.csv"), "--db", str(db), "--device", "cpu")[0] == 0
    (tmp_path / "b.csv").write_text(
        "question_id,answer_id,answer,score\nqa,1,Canberra,\nqa,2,Sydney,\nqa,3,Perth,\nqa,4,Canberra!,\nqb,b1,x,9\n"
    )
    status, _, err = run(
        capsys, "import", str(tmp_path / "b.csv"), "--db", str(db), "--late", "--max-score", "5",
        "--author", "ta1", "--device", "cpu",
    )
    assert status == 2 and "score 9 is outside 0 to --max-score 5" in err
    with Store.open(db) as store:
        assert store.edits("qa") == [] and len(store.answers("qa")) == 3


def test_show_and_import_write_ids_safely_to_the_terminal(tmp_path, capsys):
    db = tmp_path / "import.sqlite"
    (tmp_path / "c.csv").write_text("question_id,answer_id,answer\n\x1b[2Jq9,\x1b]0;x\x07a1,a closed loop\n")
    status, out, _ = run(capsys, "import", str(tmp_path / "c.csv"), "--db", str(db), "--device", "cpu")
    assert status == 0 and "\x1b" not in out and "\\u001b[2Jq9" in out
    status, out, _ = run(capsys, "show", "--db", str(db), "-q", "\x1b[2Jq9")
    assert status == 0 and "\x1b" not in out and "\x07" not in out


def test_history_takes_the_verbs_spelling_of_kinds_and_counts_are_never_negative(db, capsys):
    assert edit(capsys, "grade-answer", "a6", "1")[0] == 0
    status, out, _ = run(capsys, "history", "-q", "q1", "--kind", "grade-answer")
    assert status == 0 and "its own grade" in out
    status, _, err = run(capsys, "history", "-q", "q1", "--kind", "gradeanswer")
    assert status == 2 and "unknown edit kind(s) 'gradeanswer'" in err
    with pytest.raises(SystemExit):
        main(["history", "-q", "q1", "--limit", "-1"])
    with pytest.raises(SystemExit):
        main(["show", "-q", "q1", "--members", "-1"])


def test_split_refuses_both_parts_and_k(db, capsys):
    status, _, err = edit(capsys, "split", "1", "--part", "a0", "--k", "3")
    assert status == 2 and "not both" in err
    assert len(state(db).groups) == 2
