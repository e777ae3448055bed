"""The store on real SQLite files: schema, append-only log, migrations, states, caches, busy waits."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
import threading
import time

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import Confirm, EditRefused, GradeGroup, Merge, Move, Rename, ReplayError, Undo
from grouper.store import Store, StoreBusy, StoreError
from grouper.store import migrate
from grouper.store.engine import make_engine


def _question(qid: str = "q1", n: int = 8) -> Question:
    return Question(qid, "What is the capital of Australia?", tuple(Answer(f"{qid}-{i}", qid, f"answer {i}", f"s{i}") for i in range(n)))


def _grouping(n: int = 8) -> Grouping:
    # group 1: 0-3, group 2: 4-5, ungrouped: 6.., matching _question(n)
    labels = np.array([1, 1, 1, 1, 2, 2] + [UNGROUPED] * (n - 6))
    return Grouping(labels, np.ones(n), (Group(1, "Canberra", (0, 1, 2, 3)), Group(2, "Sydney", (4, 5))))


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "grades.sqlite", snapshot_every=3) as s:
        s.import_question(_question(), course="Geography", exam="Midterm")
        s.save_grouping("q1", _grouping(), model_version="test-model")
        yield s


# --------------------------------------------------------------------------- schema and pragmas


def test_the_pinned_head_is_the_newest_migration():
    assert migrate.HEAD == migrate.head_revision()


def test_a_new_file_gets_the_newest_schema_in_wal_with_full_sync(tmp_path):
    path = tmp_path / "new.sqlite"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"courses", "exams", "questions", "answers", "groupings", "edits", "embeddings", "snapshots"} <= tables
    assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert conn.execute("select version_num from alembic_version").fetchone()[0] == migrate.head_revision()
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as c:
        assert c.exec_driver_sql("pragma synchronous").scalar() == 2  # FULL
        assert c.exec_driver_sql("pragma busy_timeout").scalar() == 10_000
    engine.dispose()


def test_the_edit_log_refuses_update_and_delete(store, tmp_path):
    store.append("q1", "ta1", 0, Confirm(1))
    engine = make_engine(store.url)
    for statement in ("UPDATE edits SET author = 'mallory'", "DELETE FROM edits"):
        with pytest.raises(IntegrityError, match="the edit log is append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    engine.dispose()
    # and the rows are untouched, also for a plain sqlite3 client
    raw = sqlite3.connect(tmp_path / "grades.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        raw.execute("delete from edits")
    assert raw.execute("select author from edits").fetchall() == [("ta1",)]


@pytest.mark.parametrize("payload", ['{"kind": "split", "group_id": 1, "parts": [1, 2]}', '{"kind": "rename"', "[3]"])
def test_a_damaged_logged_edit_is_named_not_traced(tmp_path, payload):
    path = tmp_path / "grades.sqlite"
    with Store.open(path) as store:
        store.import_question(_question())
        store.save_grouping("q1", _grouping(), model_version="test-model")
        store.append("q1", "ta1", 0, Rename(1, "Capital"))
    # damage the row as a disk or a careless hand might (the triggers refuse it otherwise)
    raw = sqlite3.connect(path)
    for (name,) in raw.execute("select name from sqlite_master where type = 'trigger'").fetchall():
        raw.execute(f"drop trigger {name}")
    raw.execute("update edits set payload = ?", (payload,))
    raw.commit()
    raw.close()
    with Store.open(path) as store:
        with pytest.raises(ReplayError, match="question q1, edit 1: the logged payload is unreadable"):
            store.state("q1")


# --------------------------------------------------------------------------- migrations


def test_a_database_at_the_first_revision_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, "0001")
    now = "2026-01-01 00:00:00.000000"
    with engine.begin() as conn:  # rows as a grouper of revision 0001 wrote them
        conn.execute(
            text("insert into questions (id, question_id, text, reference_answers, created_at) values (1, 'q1', 'Q?', '[]', :t)"),
            {"t": now},
        )
        for i in range(8):
            conn.execute(
                text("insert into answers (question_pk, answer_id, position, text, normalized) values (1, :a, :p, :x, :x)"),
                {"a": f"q1-{i}", "p": i, "x": f"answer {i}"},
            )
        grouping = (
            '{"labels":[1,1,1,1,2,2,-1,-1],"confidence":[1,1,1,1,1,1,0,0],'
            '"groups":[{"group_id":1,"title":"Canberra","members":[0,1,2,3],"blank":false},'
            '{"group_id":2,"title":"Sydney","members":[4,5],"blank":false}]}'
        )
        conn.execute(
            text("insert into groupings (id, question_pk, model_version, settings, data, created_at) values (1, 1, 'm', '{}', :d, :t)"),
            {"d": grouping, "t": now},
        )
        conn.execute(text("update questions set grouping_id = 1"))
        conn.execute(
            text(
                "insert into edits (question_pk, edit_id, author, at, base_version, kind, payload) "
                "values (1, 1, 'ta1', :t, 0, 'merge', :p)"
            ),
            {"t": now, "p": '{"kind":"merge","into":1,"others":[2]}'},
        )
    assert migrate.current_revision(engine) == "0001"
    engine.dispose()

    with Store.open(path) as store:  # opening upgrades
        assert migrate.current_revision(store._engine) == migrate.head_revision()
        state = store.state("q1")
        assert state.version == 1 and state.groups[1].members == tuple(f"q1-{i}" for i in range(6))
        store.append("q1", "ta2", 1, Rename(1, "Canberra (merged)"))
        store.embeddings.put_many("m", {"answer 0": np.ones(3)})  # a table of revision 0002
        assert store.replay("q1") == store.state("q1")
        # revision 0003: the answers imported before it are version 0's; late ones are added
        store.add_answers("q1", [Answer("q1-late", "q1", "Canberra")], [1], "ta1")
        assert store.replay("q1") == store.state("q1") and store.state("q1").groups[1].members[-1] == "q1-late"


def test_a_database_from_a_newer_grouper_is_left_alone(tmp_path):
    path = tmp_path / "future.sqlite"
    Store.open(path).close()
    raw = sqlite3.connect(path)
    raw.execute("update alembic_version set version_num = '9999'")
    raw.commit()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=rf"{path} is at schema revision '9999', which this version of grouper does not know"):
        Store.open(path)
    assert path.read_bytes() == before


def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(tmp_path):
    # Opening it (grouper show --db notes.sqlite) used to add grouper's tables and switch it to WAL.
    path = tmp_path / "notes.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("create table notes (id integer primary key, body text)")
    raw.execute("create table questions (id integer primary key, q text)")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"notes.sqlite is a database but not a grouper store \(its tables: notes, questions\); nothing was changed"):
        Store.open(path)
    assert path.read_bytes() == before
    raw = sqlite3.connect(path)
    assert raw.execute("pragma journal_mode").fetchone()[0] == "delete"
    raw.close()


def test_a_store_that_cannot_be_opened_is_said_in_one_line(tmp_path):
    not_sqlite = tmp_path / "answers.sqlite"
    not_sqlite.write_text("answer_id,answer\na1,Canberra\n")  # an answers file given as --db
    with pytest.raises(StoreError, match=rf"{not_sqlite} is not a SQLite database \(file is not a database\)"):
        Store.open(not_sqlite)
    assert not_sqlite.read_text() == "answer_id,answer\na1,Canberra\n"
    with pytest.raises(StoreError, match=rf"{tmp_path} cannot be opened \(unable to open database file\)"):
        Store.open(tmp_path)  # a folder
    for url, why in [("foo://bar", "no database driver for 'foo'"), ("postgresql+nosuchdriver://h/db", "no database driver for 'postgresql+nosuchdriver'")]:
        with pytest.raises(StoreError, match=re.escape(f"--db {url}: {why}")):
            Store(url)


def test_an_old_store_opened_read_only_says_it_needs_an_upgrade(tmp_path):
    path = tmp_path / "old.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine, "0002")
    engine.dispose()
    with pytest.raises(StoreError, match=r"old.sqlite is at schema revision '0002' and needs an upgrade to '0003', but it is read-only"):
        Store(f"sqlite:///file:{path}?mode=ro&uri=true")
    assert migrate.current_revision(make_engine(f"sqlite:///{path}")) == "0002"
    Store.open(path).close()  # writable, it is upgraded
    with Store(f"sqlite:///file:{path}?mode=ro&uri=true") as store:  # and then opens read-only
        assert store.question_ids() == []


# --------------------------------------------------------------------------- questions, groupings, states


def test_questions_come_back_as_imported(store):
    assert store.question("q1") == _question()
    info = store.questions()[0]
    assert (info.question_id, info.n_answers, info.n_edits, info.course, info.exam) == ("q1", 8, 0, "Geography", "Midterm")
    grouping = store.grouping("q1")
    assert grouping.groups == _grouping().groups and list(grouping.labels) == list(_grouping().labels)


def test_a_question_with_a_maximum_score_is_not_stored_without_its_grouping(store):
    with pytest.raises(StoreError, match="has a maximum score, which is logged over its grouping"):
        store.import_question(_with_max(_question("q2"), 4.0))
    assert store.question_ids() == ["q1"]


def test_courses_and_exams_are_filed_under_one_spelling(store):
    # A course typed "geography " or "GEOGRAPHY" on the next import is the course already
    # stored, not a second one that course filters would miss.
    store.import_question(_question("q2"), course="  geography ", exam="MIDTERM")
    store.import_question(_question("q3"), course="Ge\u0301ology  101", exam=None)
    store.import_question(_question("q4"), course="Géology 101", exam="Final   exam")
    filed = {i.question_id: (i.course, i.exam) for i in store.questions()}
    assert filed == {
        "q1": ("Geography", "Midterm"),
        "q2": ("Geography", "Midterm"),
        "q3": ("Géology 101", "(no exam)"),
        "q4": ("Géology 101", "Final exam"),
    }
    for course, exam in (("   ", None), ("Geography", "  ")):
        with pytest.raises(StoreError, match="is empty"):
            store.import_question(_question("q5"), course=course, exam=exam)
    # bytes that are not UTF-8 on a command line: named here, not failed inside SQLite
    with pytest.raises(StoreError, match=r"the course name 'Geo.{6}graphy' is not valid text: character 4 is a lone surrogate \(U\+DCFF\)"):
        store.import_question(_question("q5"), course="Geo\udcffgraphy")
    assert "q5" not in store.question_ids()


def test_a_duplicate_import_is_refused_and_writes_nothing(store):
    with pytest.raises(StoreError, match="question 'q1' is already in"):
        store.import_question(_question(n=3))
    assert len(store.answers("q1")) == 8


def _with_max(question: Question, max_score: float) -> Question:
    from dataclasses import replace

    return replace(question, max_score=max_score)


def test_an_import_stores_questions_groupings_and_maximum_scores_together(store):
    store.import_grouped(
        [(_with_max(_question("q2"), 4.0), _grouping()), (_question("q3"), _grouping())],
        model_version="m",
        course="Geography",
        author="prof",
    )
    assert store.question_ids() == ["q1", "q2", "q3"]
    assert store.model_version("q2") == "m" and store.grouping("q3").groups == _grouping().groups
    (edit,) = store.edits("q2")
    assert (edit.author, edit.kind, store.state("q2").max_score) == ("prof", "max_score", 4.0)
    assert store.edits("q3") == [] and store.state("q3").max_score is None


@pytest.mark.parametrize("second", ["already stored", "grouping does not fit"])
def test_an_import_that_fails_part_way_stores_none_of_its_questions(store, second):
    bad = (_question("q1"), _grouping()) if second == "already stored" else (_question("q3", 9), _grouping())
    with pytest.raises(StoreError, match="nothing was imported"):
        store.import_grouped([(_with_max(_question("q2"), 4.0), _grouping()), bad], model_version="m")
    assert store.question_ids() == ["q1"]
    # ... so the same file, corrected, imports: no half-stored question is in the way.
    store.import_grouped([(_with_max(_question("q2"), 4.0), _grouping())], model_version="m")
    assert store.state("q2").max_score == 4.0 and store.state("q2").version == 1


def test_an_import_killed_part_way_leaves_nothing_behind(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "grades.sqlite"
    Store.open(path).close()
    # The writer is killed (SIGKILL, no clean-up) while storing the second question's grouping,
    # after the first question, its grouping and its maximum score were written.
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_store as t
from grouper.store import Store
calls = []
real = Store._insert_grouping
def insert(self, *args):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args)
Store._insert_grouping = insert
with Store.open({str(path)!r}) as store:
    store.import_grouped([(t._with_max(t._question("q1"), 2.0), t._grouping()), (t._question("q2"), t._grouping())], model_version="m")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    with Store.open(path) as store:
        assert store.question_ids() == [] and store.integrity_check() == "ok"
        store.import_grouped([(_question("q1"), _grouping())], model_version="m")
        assert store.question_ids() == ["q1"]


def test_a_grouping_whose_groups_and_labels_disagree_is_refused(store):
    bad = [
        Grouping(np.array([1, 1, 1, 1, 2, 2, UNGROUPED, UNGROUPED]), np.ones(8), (Group(1, "a", (0, 1, 2)), Group(2, "b", (4, 5)))),
        Grouping(np.array([1, 1, 1, 1, 2, 2, UNGROUPED, UNGROUPED]), np.ones(8), (Group(1, "a", (0, 1, 2, 3, 4)), Group(2, "b", (4, 5)))),
        Grouping(np.array([1] * 8), np.ones(8), (Group(1, "a", (0, 1, 2, 3, 4, 5, 6, -1)),)),
    ]
    store.import_question(_question("q8"))
    for grouping in bad:
        with pytest.raises(StoreError, match="nothing was stored"):
            store.import_grouped([(_question("q9"), grouping)], model_version="m")
        with pytest.raises(StoreError, match="disagree|twice|nothing was stored") as refused:
            store.save_grouping("q8", grouping, model_version="m")
        assert "already grouped" not in str(refused.value)
    assert store.question_ids() == ["q1", "q8"] and store.grouping("q1").groups == _grouping().groups


def test_unknown_questions_are_named(store):
    with pytest.raises(StoreError, match="question 'nope' is not in .*known: 'q1'"):
        store.state("nope")


def test_a_grouping_never_replaces_the_base_of_a_question(store):
    # Even with no edits yet: version 0 may be on a grader's screen, and an edit made there
    # would land on the new groups of the same ids unchecked.
    with pytest.raises(StoreError, match="'q1' is already grouped .*grouper regroup"):
        store.save_grouping("q1", Grouping(np.ones(8, dtype=int), np.ones(8), (Group(1, "All", tuple(range(8))),)), model_version="v2")
    assert store.model_version("q1") == "test-model" and set(store.state("q1").groups) == {1, 2}
    store.append("q1", "ta1", 0, Confirm(1))
    with pytest.raises(StoreError, match="already grouped"):
        store.save_grouping("q1", _grouping(), model_version="third")
    store.import_question(_question("q2", 9))
    with pytest.raises(StoreError, match="labels 8 answers but question 'q2' has 9"):
        store.save_grouping("q2", _grouping(), model_version="m")


def test_append_applies_logs_and_refuses_stale_edits(store):
    edit = store.append("q1", "ta1", 0, Merge(1, (2,)))
    assert edit.edit_id == 1 and edit.at.tzinfo is not None
    with pytest.raises(EditRefused, match="group 2 was merged into group 1 by ta1 at version 1"):
        store.append("q1", "ta2", 0, GradeGroup(2, 1.0))
    assert [e.edit_id for e in store.edits("q1")] == [1]  # the refused edit left no row
    assert store.edits("q1")[0] == edit


def test_state_from_cache_snapshot_and_replay_agree(store, tmp_path):
    store.append("q1", "ta1", 0, Merge(1, (2,)))
    store.append("q1", "ta1", 1, GradeGroup(1, 2.0, "right"))
    store.append("q1", "ta2", 2, Move(("q1-6",), 1))  # version 3: snapshot_every=3 writes one
    store.append("q1", "ta2", 3, Undo(3))
    store.append("q1", "ta1", 4, Confirm(1))
    cached = store.state("q1")
    raw = sqlite3.connect(tmp_path / "grades.sqlite")
    assert raw.execute("select version from snapshots").fetchall() == [(3,)]
    with Store.open(tmp_path / "grades.sqlite") as fresh:  # no memory cache: snapshot + 2 edits
        assert fresh.state("q1") == cached
        assert fresh.replay("q1") == cached
    raw.execute("update snapshots set state = '{not json'")
    raw.commit()
    with Store.open(tmp_path / "grades.sqlite") as fresh:  # a damaged snapshot is only a cache miss
        assert fresh.state("q1") == cached


def test_an_edit_time_with_an_offset_is_stored_as_the_same_instant(store, tmp_path):
    from datetime import datetime, timedelta, timezone

    at = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    store.append("q1", "ta1", 0, Rename(1, "Canberra!"), at=at)
    with Store.open(tmp_path / "grades.sqlite") as fresh:
        (edit,) = fresh.edits("q1")
    assert edit.at == at and edit.at.utcoffset() == timedelta(0)


def test_a_store_sees_edits_appended_through_another(store, tmp_path):
    other = Store.open(tmp_path / "grades.sqlite")
    before = store.state("q1")
    other.append("q1", "ta2", 0, Rename(2, "Sydney (wrong)"))
    assert store.state("q1").groups[2].title == "Sydney (wrong)"
    with pytest.raises(EditRefused, match="renamed from 'Sydney' by ta2"):
        store.append("q1", "ta1", before.version, Rename(2, "Sydney?"))
    other.close()


def test_an_in_memory_store_serves_several_threads():
    with Store("sqlite://") as memory:
        memory.import_question(_question())
        memory.save_grouping("q1", _grouping(), model_version="m")
        errors = []

        def grade(score: float) -> None:
            try:
                for _ in range(5):
                    try:
                        memory.append("q1", f"ta{score}", None, GradeGroup(1, score + _ / 10))
                    except EditRefused:
                        pass
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=grade, args=(float(i),)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert memory.state("q1").version == 20 == len(memory.edits("q1"))
        assert memory.replay("q1") == memory.state("q1")


# --------------------------------------------------------------------------- embedding cache


def test_the_embedding_cache_keeps_vectors_per_model(store):
    vectors = {"Canberra": np.arange(4, dtype=np.float32), "Sydney": np.ones(4, dtype=np.float32), "": np.zeros(4)}
    store.embeddings.put_many("model-a", vectors)
    found = store.embeddings.get_many("model-a", ["Canberra", "Sydney", "Perth", ""])
    assert set(found) == {"Canberra", "Sydney"}  # empty text is never stored
    assert found["Canberra"].dtype == np.float32 and np.array_equal(found["Canberra"], vectors["Canberra"])
    assert store.embeddings.get_many("model-b", ["Canberra"]) == {}
    store.embeddings.put_many("model-a", {"Canberra": np.full(4, 9.0)})  # first vector stays
    assert np.array_equal(store.embeddings.get_many("model-a", ["Canberra"])["Canberra"], vectors["Canberra"])
    with pytest.raises(ValueError, match="holds NaN or infinity"):
        store.embeddings.put_many("model-a", {"x": np.array([np.nan, 1.0])})


def test_the_encoder_reads_and_fills_the_store_cache(store, encoder):
    texts = ["Canberra", "Sydney is the capital", "Canberra", ""]
    first = encoder.encode(texts, cache=store.embeddings)
    assert set(store.embeddings.get_many(encoder.model_key, texts)) == {"Canberra", "Sydney is the capital"}

    def no_compute(*args, **kwargs):
        raise AssertionError("cached texts were embedded again")

    original = encoder._embed_texts
    encoder._embed_texts = no_compute
    try:
        again = encoder.encode(texts, cache=store.embeddings)
    finally:
        encoder._embed_texts = original
    assert np.allclose(again.vectors, first.vectors)


# --------------------------------------------------------------------------- busy database


def _hold_write_lock(path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def test_a_briefly_busy_database_is_waited_for(store, tmp_path):
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "grades.sqlite", 0.6, started))
    holder.start()
    started.wait()
    patient = Store.open(tmp_path / "grades.sqlite", busy_timeout_s=0.05, retry_limit_s=30)
    edit = patient.append("q1", "ta1", 0, Confirm(1))  # waits out the lock through retries
    holder.join()
    assert edit.edit_id == 1
    patient.close()


def test_a_database_busy_for_too_long_says_so_and_writes_nothing(store, tmp_path):
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "grades.sqlite", 1.5, started))
    holder.start()
    started.wait()
    hasty = Store.open(tmp_path / "grades.sqlite", busy_timeout_s=0.05, retry_limit_s=0.3)
    with pytest.raises(StoreBusy) as busy:
        hasty.append("q1", "ta1", 0, Confirm(1))
    holder.join()
    assert "other graders kept the database busy" in str(busy.value)
    assert "database is locked" not in str(busy.value)
    assert hasty.edits("q1") == []
    hasty.close()
