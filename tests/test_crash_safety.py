"""A writer killed with SIGKILL at random points, many times, loses no acknowledged edit.

The writer (tests/helpers/crash_writer.py) appends edits in a loop and prints each edit only
after ``Store.append`` returned. After every kill the test reopens the database and checks:
every acknowledged edit is in the log with the payload the writer acknowledged; the log is
contiguous; ``PRAGMA integrity_check`` is ok; and the state (memory-free, from the latest
snapshot) equals a full replay of the log from version 0. Kills land between transactions,
inside them, and while a snapshot is written (every 5 edits).

SIGKILL ends the process but not the machine: this shows that the store never acknowledges
an edit before it is committed and that an interrupted transaction leaves nothing half-done.
(``synchronous=FULL`` is what carries the same promise across a power cut.)
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.store import Store

WRITER = Path(__file__).parent / "helpers" / "crash_writer.py"
KILLS = 60


def _make_store(path: Path) -> None:
    n = 24
    question = Question("q1", "Q?", tuple(Answer(f"a{i}", "q1", f"answer {i}") for i in range(n)))
    labels = np.array([1 + i // 5 if i < 20 else UNGROUPED for i in range(n)])
    groups = tuple(Group(g, f"group {g}", tuple(range((g - 1) * 5, g * 5))) for g in range(1, 5))
    with Store.open(path) as store:
        store.import_question(question)
        store.save_grouping("q1", Grouping(labels, np.ones(n), groups), model_version="m")


def _run_and_kill(path: Path, seed: int, rng: random.Random) -> dict[int, dict]:
    """Start the writer, let it acknowledge a few edits, kill it mid-flight; its acks."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    acked: dict[int, dict] = {}
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
    target = rng.randint(0, 6)
    while len(acked) < target:
        line = proc.stdout.readline()
        if not line:
            break
        _, edit_id, payload = line.rstrip("\n").split(" ", 2)
        acked[int(edit_id)] = json.loads(payload)
    time.sleep(rng.uniform(0, 0.02))  # lands anywhere: between, inside or at the end of a transaction
    proc.send_signal(signal.SIGKILL)
    rest, err = proc.communicate()
    for line in rest.splitlines():  # acknowledged before the kill, still in the pipe
        if line.startswith("ACK "):
            _, edit_id, payload = line.split(" ", 2)
            acked[int(edit_id)] = json.loads(payload)
    assert proc.returncode == -signal.SIGKILL, err
    return acked


@pytest.mark.slow
def test_no_acknowledged_edit_is_lost_when_the_writer_is_killed(tmp_path):
    from grouper.edit_codec import payload_to_dict

    path = tmp_path / "grades.sqlite"
    _make_store(path)
    rng = random.Random(20260501)
    acknowledged: dict[int, dict] = {}
    kills = lost = 0
    for k in range(KILLS):
        acknowledged.update(_run_and_kill(path, seed=k, rng=rng))
        kills += 1
        with Store.open(path, snapshot_every=5) as store:
            assert store.integrity_check() == "ok", f"after kill {kills}"
            log = {e.edit_id: payload_to_dict(e.payload) for e in store.edits("q1")}
            assert list(log) == list(range(1, len(log) + 1)), f"the log has a gap after kill {kills}"
            missing = [e for e in acknowledged if log.get(e) != acknowledged[e]]
            lost += len(missing)
            assert not missing, f"after kill {kills}, acknowledged edits {missing[:5]} are missing or changed"
            assert store.state("q1") == store.replay("q1"), f"snapshot + log differs from a full replay after kill {kills}"
    print(f"\ncrash safety: {kills} SIGKILLs survived, {len(acknowledged)} acknowledged edits, {len(log)} in the log, {lost} lost")
    assert kills == KILLS and lost == 0 and len(acknowledged) > KILLS
