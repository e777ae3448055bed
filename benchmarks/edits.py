"""Benchmark of the edit log: applying one edit and rebuilding a question's state.

For questions of 1,000 and 10,000 answers (groups of ten, a tenth ungrouped) it replays a
deterministic mix of a few hundred edits like a grader's (moves out to ungrouped and back,
confirms, grades, overrides, renames, merges, splits, undos) and measures, in one run:

- ``apply``: the pure fold (``grouper.edits.apply``), median microseconds per edit;
- ``append``: ``Store.append`` in memory (``sqlite://``, as the evaluation drives it) and on a SQLite file (``BEGIN IMMEDIATE``, read state, apply,
  insert, commit with ``synchronous=FULL``), median milliseconds per edit; its floor, the
  named peer, is a bare ``sqlite3`` INSERT of one row per committed transaction with the same
  pragmas;
- rebuilding the state: by a full replay from version 0 in memory, by ``Store.replay``
  (read every edit from the database and fold), and by ``Store.state`` with nothing cached in
  memory (the latest snapshot plus the edits after it): the naive re-fold from empty is the
  peer of the snapshot.

Usage::

    .venv/bin/python benchmarks/edits.py [--sizes 1000,10000] [--edits 350] [--json]

Timings on a shared machine are noisy: the load average at the start is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import (
    CONFIRMED,
    Confirm,
    Edit,
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    Rename,
    Split,
    Undo,
    apply,
    initial_state,
    make_edit,
    replay,
)
from grouper.store import Store

SNAPSHOT_EVERY = 100


def synthetic_question(n: int) -> tuple[Question, Grouping]:
    """``n`` answers: groups of ten, the last tenth ungrouped."""
    answers = tuple(Answer(f"a{i:05d}", "q", f"answer {i}", f"s{i}") for i in range(n))
    grouped = n - n // 10
    labels = np.full(n, UNGROUPED)
    groups = []
    for g, start in enumerate(range(0, grouped, 10), start=1):
        members = tuple(range(start, min(start + 10, grouped)))
        labels[list(members)] = g
        groups.append(Group(g, f"group {g}", members))
    return Question("q", "Q?", answers), Grouping(labels, np.ones(n), tuple(groups))


def grader_edits(initial, n_edits: int, seed: int = 0) -> list[Edit]:
    """A valid, deterministic log of ``n_edits`` mixed edits over ``initial``."""
    rng = random.Random(seed)
    state, log = initial, []
    kinds = ["move_out", "move_out", "move_in", "confirm", "grade", "grade", "override", "rename", "merge", "split", "undo"]
    while len(log) < n_edits:
        kind = rng.choice(kinds)
        groups = [g for g in state.groups.values() if g.members]
        group = rng.choice(groups)
        if kind == "move_out":
            payload = Move((rng.choice(group.members),), None)
        elif kind == "move_in" and state.ungrouped:
            payload = Move((rng.choice(state.ungrouped),), group.group_id)
        elif kind == "confirm" and group.status != CONFIRMED:
            payload = Confirm(group.group_id)
        elif kind == "grade":
            payload = GradeGroup(group.group_id, float(rng.randint(0, 4)), "ok")
        elif kind == "override":
            payload = GradeAnswer(rng.choice(group.members), float(rng.randint(0, 4)))
        elif kind == "rename":
            payload = Rename(group.group_id, f"title {len(log)}")
        elif kind == "merge":
            other = rng.choice(groups)
            if other.group_id == group.group_id:
                continue
            payload = Merge(group.group_id, (other.group_id,))
        elif kind == "split" and len(group.members) >= 2:
            half = len(group.members) // 2
            payload = Split(group.group_id, (group.members[:half], group.members[half:]))
        elif kind == "undo" and state.version:
            payload = Undo(state.version)
        else:
            continue
        edit = make_edit(state, "bench", payload)
        try:
            state = apply(state, edit)
        except EditRefused:
            continue
        log.append(edit)
    return log


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def bench_size(n: int, n_edits: int, folder: Path) -> dict:
    question, grouping = synthetic_question(n)
    initial = initial_state("q", [a.answer_id for a in question.answers], grouping)
    log = grader_edits(initial, n_edits)

    # pure apply, per edit
    per_edit = []
    state = initial
    for edit in log:
        start = time.perf_counter()
        state = apply(state, edit)
        per_edit.append(time.perf_counter() - start)
    final = state

    # pure full replay from version 0
    replays = []
    for _ in range(3):
        start = time.perf_counter()
        again = replay(initial, log)
        replays.append(time.perf_counter() - start)
    assert again == final

    # Store.append on a SQLite file
    path = folder / f"bench-{n}.sqlite"
    with Store.open(path, snapshot_every=SNAPSHOT_EVERY) as store:
        store.import_question(question)
        store.save_grouping("q", grouping, model_version="bench")
        appends = []
        for edit in log:
            start = time.perf_counter()
            store.append("q", edit.author, edit.base_version, edit.payload)
            appends.append(time.perf_counter() - start)
        assert store.state("q") == final
        # Rebuilds with a warm connection but no state in memory: a full replay of the log
        # from the database, and the latest snapshot plus the edits after it.
        store_replays, snapshot_rebuilds = [], []
        for _ in range(3):
            start = time.perf_counter()
            from_log = store.replay("q")
            store_replays.append(time.perf_counter() - start)
            store._states.clear()
            start = time.perf_counter()
            from_snapshot = store.state("q")
            snapshot_rebuilds.append(time.perf_counter() - start)
        assert from_log == final and from_snapshot == final
        store_replay, snapshot_rebuild = min(store_replays), min(snapshot_rebuilds)

    # Store.append in memory (sqlite://): what the evaluation oracle drives
    with Store("sqlite://", snapshot_every=SNAPSHOT_EVERY) as memory:
        memory.import_question(question)
        memory.save_grouping("q", grouping, model_version="bench")
        memory_appends = []
        for edit in log:
            start = time.perf_counter()
            memory.append("q", edit.author, edit.base_version, edit.payload)
            memory_appends.append(time.perf_counter() - start)
        assert memory.state("q") == final

    # the peer: a bare sqlite3 insert of one row per committed transaction, same pragmas
    floor_path = folder / f"floor-{n}.sqlite"
    conn = sqlite3.connect(floor_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    inserts = []
    for i in range(len(log)):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO log (payload) VALUES (?)", (f'{{"kind":"rename","n":{i}}}',))
        conn.execute("COMMIT")
        inserts.append(time.perf_counter() - start)
    conn.close()

    return {
        "answers": n,
        "groups": len(grouping.groups),
        "edits": len(log),
        "apply_us_median": _median_us(per_edit),
        "apply_us_p90": statistics.quantiles(per_edit, n=10)[-1] * 1e6,
        "replay_memory_ms": min(replays) * 1e3,
        "append_ms_median": statistics.median(appends) * 1e3,
        "memory_append_ms_median": statistics.median(memory_appends) * 1e3,
        "sqlite_insert_ms_median": statistics.median(inserts) * 1e3,
        "store_replay_ms": store_replay * 1e3,
        "snapshot_rebuild_ms": snapshot_rebuild * 1e3,
        "snapshot_tail_edits": len(log) % SNAPSHOT_EVERY,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="answers per question, comma separated")
    parser.add_argument("--edits", type=int, default=350, help="edits in the log")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_size(n, args.edits, Path(tmp)) for n in sizes]
    if args.json:
        json.dump({"load_average": load, "results": results}, sys.stdout, indent=2)
        print()
        return 0
    print(f"edit log benchmark ({os.cpu_count()} cores, load average {load:.2f} at start; snapshot every {SNAPSHOT_EVERY} edits)")
    header = (
        f"{'answers':>8} {'groups':>6} {'edits':>5} | {'apply µs':>9} {'p90':>7} | {'append ms':>9} {'in memory':>9} "
        f"{'peer: sqlite insert ms':>22} | {'replay in memory ms':>19} {'Store.replay ms':>15} "
        f"{'snapshot+tail ms':>16}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['answers']:>8} {r['groups']:>6} {r['edits']:>5} | {r['apply_us_median']:>9.0f} {r['apply_us_p90']:>7.0f} | "
            f"{r['append_ms_median']:>9.2f} {r['memory_append_ms_median']:>9.2f} {r['sqlite_insert_ms_median']:>22.2f} | {r['replay_memory_ms']:>19.1f} "
            f"{r['store_replay_ms']:>15.1f} {r['snapshot_rebuild_ms']:>16.1f}"
        )
    print(
        "apply: one pure edit; append: Store.append on a file, committed (synchronous=FULL), and on sqlite://; replay: all edits from version 0; "
        f"snapshot+tail: a fresh Store.state from the latest snapshot and {results[0]['snapshot_tail_edits']} edits after it"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
