"""A consistent copy of a SQLite store while graders keep working (Store.backup, grouper backup)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.cli import main
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import Confirm, GradeGroup, Rename, Undo
from grouper.store import Store


def _store(path) -> None:
    answers = tuple(Answer(f"a{i}", "q1", t) for i, t in enumerate(["x", "y", "z", "w"]))
    grouping = Grouping(np.array([1, 1, 2, UNGROUPED]), np.ones(4), (Group(1, "one", (0, 1)), Group(2, "two", (2,))))
    with Store.open(path) as store:
        store.import_question(Question("q1", "Q?", answers))
        store.save_grouping("q1", grouping, model_version="m")
        store.append("q1", "ta1", 0, Confirm(1))
        store.append("q1", "ta1", 1, GradeGroup(1, 2.0))


def test_the_copy_holds_every_edit_and_replays_to_the_same_state(tmp_path):
    source = tmp_path / "live.sqlite"
    _store(source)
    with Store.open(source) as store:
        summary = store.backup(tmp_path / "copy.sqlite")
        live = store.state("q1")
    assert summary == {"questions": 1, "edits": 2}
    with Store.open(tmp_path / "copy.sqlite") as copy:
        assert copy.integrity_check() == "ok"
        assert copy.replay("q1") == live
        assert [e.payload for e in copy.edits("q1")] == [Confirm(1), GradeGroup(1, 2.0)]


def test_a_backup_taken_while_a_grader_edits_is_a_consistent_prefix_of_the_log(tmp_path):
    source = tmp_path / "live.sqlite"
    _store(source)
    stop, started = threading.Event(), threading.Event()

    def grader() -> None:
        with Store.open(source) as store:
            titles = ("A", "B")
            i = 0
            while not stop.is_set():
                state = store.state("q1")
                store.append("q1", "ta2", state.version, Rename(2, titles[i % 2]))
                started.set()
                i += 1

    worker = threading.Thread(target=grader)
    worker.start()
    assert started.wait(60)
    try:
        with Store.open(source) as store:
            for n in range(3):
                store.backup(tmp_path / f"copy{n}.sqlite")
    finally:
        stop.set()
        worker.join()
    with Store.open(source) as store:
        full = store.edits("q1")
    for n in range(3):
        with Store.open(tmp_path / f"copy{n}.sqlite") as copy:
            logged = copy.edits("q1")
            assert len(logged) > 2  # taken while the grader was editing
            assert logged == full[: len(logged)]  # nothing torn, nothing out of order
            copy.replay("q1")  # and it folds


def test_backup_refuses_to_overwrite_and_memory_stores(tmp_path):
    source = tmp_path / "live.sqlite"
    _store(source)
    (tmp_path / "taken.sqlite").write_bytes(b"keep me")
    with Store.open(source) as store:
        with pytest.raises(FileExistsError, match="taken.sqlite already exists"):
            store.backup(tmp_path / "taken.sqlite")
    assert (tmp_path / "taken.sqlite").read_bytes() == b"keep me"
    with Store("sqlite://") as memory, pytest.raises(ValueError, match="in memory"):
        memory.backup(tmp_path / "m.sqlite")
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_backup_from_the_command_line(tmp_path, capsys):
    source = tmp_path / "live.sqlite"
    _store(source)
    assert main(["backup", "--db", str(source), str(tmp_path / "b.sqlite")]) == 0
    assert "1 question(s), 2 edit(s)" in capsys.readouterr().out
    assert main(["backup", "--db", str(source), str(tmp_path / "b.sqlite")]) == 2
    assert "already exists" in capsys.readouterr().err
    with Store.open(source) as store:
        store.append("q1", "ta1", 2, Undo(2))
    assert main(["backup", "--db", str(source), str(tmp_path / "b.sqlite"), "--force"]) == 0
    with Store.open(tmp_path / "b.sqlite") as copy:
        assert len(copy.edits("q1")) == 3


def test_a_backup_of_a_store_that_is_not_there_is_refused(tmp_path, capsys):
    from grouper.cli import main

    assert main(["backup", "--db", str(tmp_path / "cours.sqlite"), str(tmp_path / "b.sqlite")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not (tmp_path / "cours.sqlite").exists() and not (tmp_path / "b.sqlite").exists()
    _store(tmp_path / "a.sqlite")
    assert main(["backup", "--db", str(tmp_path / "a.sqlite"), str(tmp_path / "missing" / "b.sqlite")]) == 2
    assert "does not exist; create it first" in capsys.readouterr().err


def test_a_backup_onto_the_store_itself_is_refused_even_when_overwriting(tmp_path, capsys):
    source = tmp_path / "live.sqlite"
    _store(source)
    with Store.open(source) as store:
        for target in (source, tmp_path / "live.sqlite-wal"):
            with pytest.raises(ValueError, match="is the store itself"):
                store.backup(target, overwrite=True)
        assert len(store.edits("q1")) == 2 and store.integrity_check() == "ok"
    assert main(["backup", "--db", str(source), str(source), "--force"]) == 2
    assert "is the store itself" in capsys.readouterr().err


def test_overwriting_an_old_backup_left_with_its_write_ahead_log_gives_the_live_store(tmp_path):
    import subprocess
    import sys

    source, old = tmp_path / "live.sqlite", tmp_path / "b.sqlite"
    _store(source)
    with Store.open(source) as store:
        store.backup(old)
    # Someone opened the old backup and edited it, then was killed: its edits stay in b.sqlite-wal.
    script = (
        "import os, sys\nfrom grouper.edits import Rename\nfrom grouper.store import Store\n"
        "store = Store.open(sys.argv[1])\n"
        "for i in range(5):\n    store.append('q1', 'ta9', store.state('q1').version, Rename(2, f'old {i}'))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(old)], check=True)
    assert (tmp_path / "b.sqlite-wal").stat().st_size > 0
    with Store.open(source) as store:
        store.append("q1", "ta1", 2, Rename(1, "live"))
        assert store.backup(old, overwrite=True) == {"questions": 1, "edits": 3}
        live = store.state("q1")
    # Before, SQLite replayed the old log over the new copy: 7 edits, the old backup's.
    with Store.open(old) as copy:
        assert len(copy.edits("q1")) == 3 and copy.replay("q1") == live


def test_an_old_backup_still_open_elsewhere_is_not_overwritten(tmp_path, capsys):
    import sqlite3

    source, old = tmp_path / "live.sqlite", tmp_path / "b.sqlite"
    _store(source)
    with Store.open(source) as store:
        store.backup(old)
    holder = sqlite3.connect(old)  # a UI left open on the old backup, in the middle of its work
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE held (x)")
        holder.commit()
        with Store.open(source) as store:
            store.append("q1", "ta1", 2, Rename(1, "live"))
            with pytest.raises(ValueError, match="b.sqlite is open in another program"):
                store.backup(old, overwrite=True)
        assert main(["backup", "--db", str(source), str(old), "--force"]) == 2
        assert "b.sqlite is open in another program (its b.sqlite-wal is in use)" in capsys.readouterr().err
        assert holder.execute("SELECT count(*) FROM edits").fetchone()[0] == 2
    finally:
        holder.close()
    assert not list(tmp_path.glob(".*"))
