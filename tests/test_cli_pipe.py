"""``grouper ... | head``: a reader that stops early is not an error of ours."""

from __future__ import annotations

import subprocess
import sys

from grouper.answers import Answer, Question
from grouper.cli import BROKEN_PIPE
from grouper.store import Store


def test_output_to_a_reader_that_has_gone_ends_quietly_with_the_sigpipe_status(tmp_path):
    db = tmp_path / "grades.sqlite"
    with Store.open(db) as store:
        store.import_question(Question("q1", "Capital of Australia?", (Answer("a1", "q1", "Canberra"),)))
    # The child's stdout is a pipe whose read end is already closed: every write fails, as
    # when `head` has read its lines and exited.
    code = (
        "import os, sys\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from grouper.cli import main\n"
        f"sys.exit(main(['show', '--db', {str(db)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stderr) == (BROKEN_PIPE, "")
