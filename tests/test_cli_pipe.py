"""``grouper ... | head``: a reader that stops early is not an error of ours, but it is said."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from grouper.answers import Answer, Question
from grouper.cli import BROKEN_PIPE
from grouper.clustering import Group, Grouping
from grouper.store import Store


def _store(tmp_path: Path, *, grouped: bool = False) -> Path:
    db = tmp_path / "grades.sqlite"
    with Store.open(db) as store:
        store.import_question(Question("q1", "Capital of Australia?", (Answer("a1", "q1", "Canberra"),)))
        if grouped:
            store.save_grouping("q1", Grouping(np.array([1]), np.ones(1), (Group(1, "Canberra", (0,)),)), model_version="m")
    return db


def _into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    """Run the CLI with stdout a pipe whose read end is already closed: every write fails, as
    when `head` has read its lines and exited."""
    code = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from grouper.cli import main\n"
        f"sys.exit(main({list(argv)!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_output_to_a_reader_that_has_gone_ends_quietly_with_the_sigpipe_status(tmp_path):
    done = _into_a_closed_pipe("show", "--db", str(_store(tmp_path)))
    assert (done.returncode, done.stderr) == (BROKEN_PIPE, "")


def test_an_export_cut_short_by_its_reader_says_so_with_the_sigpipe_status(tmp_path):
    """``grouper export grades | head -1`` must not exit 0: a pipeline would take the export
    for complete."""
    done = _into_a_closed_pipe("export", "grades", "--db", str(_store(tmp_path, grouped=True)))
    assert done.returncode == BROKEN_PIPE and "Traceback" not in done.stderr
    assert "1 of 1 answer(s) not graded yet" in done.stderr  # the export's own notes still said
