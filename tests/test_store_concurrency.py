"""Several graders edit one question through one SQLite file at the same time.

Rounds are fenced with barriers so that every grader reads the same version before anyone
writes. In a contended round all graders edit the same group: exactly one edit may win, the
others must be refused. In a disjoint round each grader edits their own group: all must win,
however stale their version (edits on different groups never block each other). Afterwards
every applied edit is in the log, no edit was applied over a change its author had not seen,
the log replays to the state, and no error other than a refusal reached any grader (in
particular no "database is locked").
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.clustering import Group, Grouping
from grouper.edits import EditRefused, GradeGroup, Merge, Move, Rename, replay
from grouper.store import Store

N_GROUPS = 10
PER_GROUP = 4


def _make_store(path: Path) -> None:
    n = N_GROUPS * PER_GROUP
    question = Question("q1", "Q?", tuple(Answer(f"a{i}", "q1", f"answer {i}") for i in range(n)))
    labels = np.repeat(np.arange(1, N_GROUPS + 1), PER_GROUP)
    groups = tuple(Group(g, f"group {g}", tuple(range((g - 1) * PER_GROUP, g * PER_GROUP))) for g in range(1, N_GROUPS + 1))
    with Store.open(path, snapshot_every=7) as store:
        store.import_question(question)
        store.save_grouping("q1", Grouping(labels, np.ones(n), groups), model_version="m")


def grader(path: str, me: int, rounds: int, barrier, results) -> None:
    """One grader: contended and disjoint rounds; reports what happened to each edit.

    Module-level so that spawned processes can run it.
    """
    applied = refused = 0
    errors: list[str] = []
    with Store.open(path, snapshot_every=7) as store:
        for r in range(rounds):
            for contended in (True, False):
                barrier.wait()
                seen = store.state("q1").version
                barrier.wait()  # everyone has read the same version; now everyone writes
                if contended:
                    payload = GradeGroup(1, float(me) + r / 100, f"grader {me}")
                else:
                    payload = Rename(2 + me, f"round {r} by grader {me}")
                try:
                    store.append("q1", f"ta{me}", seen, payload)
                    applied += 1
                except EditRefused as exc:
                    refused += 1
                    if "group 1 was graded" not in str(exc):
                        errors.append(f"refusal without its reason: {exc}")
                except Exception as exc:  # noqa: BLE001 - every other error is a failure
                    errors.append(f"{type(exc).__name__}: {exc}")
    results.put((me, applied, refused, errors))


def _named_groups(edit) -> list[int]:
    p = edit.payload
    if isinstance(p, Merge):
        return [p.into, *p.others]
    if isinstance(p, Move):
        return [p.to] if isinstance(p.to, int) else []
    return [p.group_id]


def _check_log(path: Path, applied: int) -> None:
    with Store.open(path) as store:
        log = store.edits("q1")
        state = store.state("q1")
        initial = store.initial_state("q1")
        assert store.integrity_check() == "ok"
    assert len(log) == applied == state.version, "an applied edit is missing from the log"
    assert [e.edit_id for e in log] == list(range(1, applied + 1))
    assert replay(initial, log) == state
    # No lost update: every group an edit named looked, just before it was applied, exactly as
    # at the version its author saw.
    states = [initial]
    for edit in log:
        states.append(replay(states[-1], [edit]))
    for edit in log:
        for g in _named_groups(edit):
            seen = states[edit.base_version].groups.get(g)
            before = states[edit.edit_id - 1].groups.get(g)
            assert (seen is None) == (before is None)
            if seen is not None:
                assert (seen.title, seen.members, seen.status, seen.grade) == (
                    before.title,
                    before.members,
                    before.status,
                    before.grade,
                ), f"edit {edit.edit_id} by {edit.author} overwrote a change to group {g} it had not seen"


class _ListQueue(list):
    def put(self, item) -> None:
        self.append(item)


def _verify(results, n: int, rounds: int, path: Path) -> tuple[int, int]:
    assert len(results) == n
    errors = [e for _, _, _, errs in results for e in errs]
    assert errors == [], errors[:3]
    applied = sum(a for _, a, _, _ in results)
    refused = sum(r for _, _, r, _ in results)
    # each contended round: one winner, n - 1 refused; each disjoint round: n winners
    assert applied == rounds * (1 + n)
    assert refused == rounds * (n - 1)
    _check_log(path, applied)
    return applied, refused


def test_threads_editing_one_question(tmp_path):
    path = tmp_path / "grades.sqlite"
    _make_store(path)
    n, rounds = 6, 6
    barrier = threading.Barrier(n)
    results = _ListQueue()
    threads = [threading.Thread(target=grader, args=(str(path), me, rounds, barrier, results)) for me in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied, refused = _verify(results, n, rounds, path)
    print(f"\nthreads: {n} graders x {rounds} rounds: {applied} edits applied, {refused} conflicting edits refused, 0 lost")


@pytest.mark.slow
def test_processes_editing_one_question(tmp_path):
    path = tmp_path / "grades.sqlite"
    _make_store(path)
    n, rounds = 4, 5
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    queue = ctx.Queue()
    procs = [ctx.Process(target=grader, args=(str(path), me, rounds, barrier, queue)) for me in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    applied, refused = _verify(results, n, rounds, path)
    print(f"\nprocesses: {n} graders x {rounds} rounds: {applied} edits applied, {refused} conflicting edits refused, 0 lost")
