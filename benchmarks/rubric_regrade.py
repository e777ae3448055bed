"""Repricing a rubric item through the store, against regrading the same answers by hand.

A question of n answers in ``sqrt``-many groups is graded by rubric items through
:meth:`grouper.store.Store.append` on a SQLite file (WAL, ``synchronous=FULL``): every group
gets item 1 (half of them item 2 as well), and 1 % of the answers an own grade with item 2
(untimed). Then the instructor gives item 1 other points.

- ``rubric``: the product path, one ``SetRubric`` edit (the fold regrades every group and
  answer that has item 1 in the same transaction), then :meth:`Store.state` is read, as the
  next page view does.
- ``by hand`` (the named peer, measured in the same run on a copy of the same file): what a
  grader must do where grades are bare scores, as in this product before rubrics and in a
  spreadsheet: one ``GradeGroup`` per group and one ``GradeAnswer`` per own grade that had the
  item, each with its new score, through the same store, then the same state read.

``edits`` is how many logged actions each needs; ``by hand / rubric`` is the peer's seconds
over ours. Best of ``--repeats`` runs, each on a fresh copy of the graded file.

Usage::

    .venv/bin/python benchmarks/rubric_regrade.py [--sizes 1000,10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grouper.answers import Answer, Question  # noqa: E402
from grouper.clustering import Group, Grouping  # noqa: E402
from grouper.edits import GradeAnswer, GradeGroup, SetRubric  # noqa: E402
from grouper.store import Store  # noqa: E402

ITEMS = ((1, "names the closed path", 1.0), (2, "explains why", 0.5))
REPRICED = ((1, "names the closed path", 2.0), (2, "explains why", 0.5))


def graded_store(path: Path, n: int) -> tuple[int, int]:
    """A question of n answers in about sqrt(n) groups, every group graded by the rubric, 1 %
    of the answers with an own rubric grade. Returns (groups, own grades)."""
    k = max(1, math.isqrt(n))
    labels = np.arange(n) % k + 1
    groups = tuple(Group(g, f"group {g}", tuple(np.flatnonzero(labels == g).tolist())) for g in range(1, k + 1))
    answers = tuple(Answer(f"a{i}", "q", f"answer {i}") for i in range(n))
    with Store.open(path) as store:
        store.import_question(Question("q", "Why does the bulb light?", answers))
        store.save_grouping("q", Grouping(labels, np.ones(n), groups), model_version="bench")
        version = store.append("q", "prof", 0, SetRubric(ITEMS)).edit_id
        for g in range(1, k + 1):
            version = store.append("q", "ta", version, GradeGroup(g, None, items=(1,) if g % 2 else (1, 2))).edit_id
        own = answers[:: 100]
        for a in own:
            version = store.append("q", "ta", version, GradeAnswer(a.answer_id, None, items=(1, 2))).edit_id
    return k, len(own)


def by_rubric(path: Path) -> tuple[float, int, int]:
    with Store.open(path) as store:
        base = store.state("q").version
        start = time.perf_counter()
        store.append("q", "prof", base, SetRubric(REPRICED))
        state = store.state("q")
        seconds = time.perf_counter() - start
    return seconds, 1, len(state.last_change.grade_changes)


def by_hand(path: Path) -> tuple[float, int, int]:
    with Store.open(path) as store:
        state = store.state("q")
        points = {i: p for i, _, p in REPRICED}
        # What the grader works out and types, edit by edit: each grade with item 1, rescored.
        todo = [GradeGroup(g.group_id, math.fsum(points[i] for i in g.grade.items)) for g in state.groups.values() if 1 in g.grade.items]
        todo += [GradeAnswer(a, math.fsum(points[i] for i in grade.items)) for a, grade in state.overrides.items() if 1 in grade.items]
        version = state.version
        changed: set[str] = set()
        start = time.perf_counter()
        for payload in todo:
            version = store.append("q", "ta", version, payload).edit_id
            changed.update(c.answer_id for c in store.state("q").last_change.grade_changes)
        store.state("q")
        seconds = time.perf_counter() - start
    return seconds, len(todo), len(changed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="answers per question, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print("| answers | groups | own grades | rubric: edits | rubric (s) | by hand: edits | by hand (s) | answers regraded | by hand / rubric |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            graded = Path(tmp) / "graded.sqlite"
            k, own = graded_store(graded, n)
            results = {}
            for name, run in (("rubric", by_rubric), ("hand", by_hand)):
                best = None
                for r in range(args.repeats):
                    copy = Path(tmp) / f"{name}-{r}.sqlite"
                    shutil.copy(graded, copy)  # WAL checkpointed on close: the file is whole
                    outcome = run(copy)
                    best = outcome if best is None or outcome[0] < best[0] else best
                results[name] = best
            (ours, our_edits, our_changed), (peer, peer_edits, peer_changed) = results["rubric"], results["hand"]
            assert our_changed == peer_changed, (our_changed, peer_changed)  # the same answers regraded
            print(f"| {n:,} | {k} | {own} | {our_edits} | {ours:.3f} | {peer_edits} | {peer:.2f} | {our_changed:,} | {peer / ours:.0f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
