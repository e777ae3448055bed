"""Late answers added to a stored question through the store, against regrouping it all.

For a question of 1,000, 10,000 and 100,000 answers it adds 1,000 late answers with
:func:`grouper.late_answers.add_late_answers`, the product path (``grouper import --late``
and the UI's import page): read the question's state and answers, look their vectors up in
the store's embedding cache, place the late answers into the current groups
(:func:`grouper.late_answers.place_late_answers`), and store the answers and log one
``AddAnswers`` edit in one committed transaction on a SQLite file (WAL, ``synchronous=FULL``);
then :meth:`grouper.store.Store.state` is read, as the next page view does. Those seconds,
together, are ``late s``.

The named peer, measured in the same run, is what an instructor would otherwise do:
re-import the question and regroup all n + m answers from scratch with the product's grouping,
:func:`grouper.clustering.group_embeddings` (default settings, no reference answers: the
HDBSCAN path). Only the grouping call is timed, not storing it, so the peer is a lower bound.
``regroup / late`` is the peer's seconds over ours. The peer runs in a subprocess of its own
and is stopped after ``--peer-timeout`` seconds (shown as "not run").

The answers are synthetic and seeded: 384-d unit vectors around ``--centres`` random centres
(a centre plus Gaussian noise of 0.7 times its scale, about cosine 0.67 between two answers of
one centre), texts ``"answer <i>"``. The stored grouping is the product's own grouping of the
n answers (untimed), and a share ``--reviewed`` of its groups is confirmed through
``Store.append`` before the late answers come, since a late answer never joins a reviewed
group. The late answers come from the same centres, except a share ``--novel`` from centres
the question has not seen (answers no group fits). ``placed`` counts late answers that joined
a group; ``waiting`` those left ungrouped, split into those whose closest group is a reviewed
one and the rest.

The encoder is a stand-in (no transformer runs on either side): a tiny object with the
``Encoder.encode(texts, cache=)`` interface that reads the store's embedding cache as the real
encoder does, and for a text not cached returns its precomputed vector and caches it. The
stored answers' vectors are cached beforehand, as ``grouper import`` leaves them. Embedding
the 1,000 late texts would cost both sides the same and is left out of both.

Each size runs in a fresh subprocess (one thread, ``OMP_NUM_THREADS=1`` unless set), imports
and warm-up done before any clock starts. ``MiB`` is the peak resident memory the timed
block adds (:func:`benchmarks.common.peak_rss`).

Usage::

    .venv/bin/python benchmarks/late_answers.py [--sizes 1000,10000,100000] [--late 1000]
        [--quick] [--json]

``--quick`` defaults to sizes 1,000 and 5,000 with 200 late answers. ``--json`` prints the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import describe_device, peak_rss

_DIM = 384
_NOISE = 0.7  # noise scale relative to a centre's (cosine about 1 / (1 + 0.7**2) within a centre)
_QUESTION = "q"
_AUTHOR = "bench"


def synthetic_set(n: int, m: int, centres: int, novel: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``n`` stored and ``m`` late answers; deterministic for the arguments.

    Parameters
    ----------
    n, m : int
        Stored and late answers.
    centres : int
        Centres of the stored answers; the late ones add as many unseen centres.
    novel : float
        Share of the late answers drawn around the unseen centres.
    seed : int

    Returns
    -------
    vectors : ndarray of shape (n, 384), float32
    late_vectors : ndarray of shape (m, 384), float32
        L2-normalised.
    """
    rng = np.random.default_rng(seed)
    seen = rng.standard_normal((centres, _DIM), dtype=np.float32)
    unseen = rng.standard_normal((centres, _DIM), dtype=np.float32)

    def around(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        out = np.empty((len(labels), _DIM), dtype=np.float32)
        for start in range(0, len(labels), 10_000):  # in blocks: no float64 or n x dim temporaries
            block = labels[start : start + 10_000]
            out[start : start + len(block)] = points[block] + _NOISE * rng.standard_normal((len(block), _DIM), dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    vectors = around(seen, rng.integers(0, centres, n))
    n_novel = round(m * novel)
    late = np.concatenate([around(seen, rng.integers(0, centres, m - n_novel)), around(unseen, rng.integers(0, centres, n_novel))])
    return vectors, late[rng.permutation(m)]


class StandInEncoder:
    """Precomputed vectors behind ``Encoder.encode``'s interface, read through the cache.

    Parameters
    ----------
    texts : sequence of str
        Every text it may be asked for (normalised, distinct).
    vectors : ndarray of shape (len(texts), dim)
    """

    model_key = "bench-stand-in-encoder"

    def __init__(self, texts: Sequence[str], vectors: np.ndarray):
        self._rows = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors
        self.dim = vectors.shape[1]
        self.seconds = 0.0  # time spent in encode (cache reads and writes), summed

    def encode(self, texts: Sequence[str], *, progress: bool | None = None, cache=None):
        """The texts' vectors: from ``cache`` when there, else precomputed and cached.

        Parameters
        ----------
        texts : sequence of str
        progress : bool, optional
            Ignored.
        cache : EmbeddingCache, optional

        Returns
        -------
        EncodedTexts
        """
        from grouper.embedding import EncodedTexts

        start = time.perf_counter()
        found = cache.get_many(self.model_key, list(dict.fromkeys(texts))) if cache is not None else {}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        computed = {t: self._vectors[self._rows[t]] for t in missing}
        if cache is not None and computed:
            cache.put_many(self.model_key, computed)
        found.update(computed)
        vectors = np.stack([found[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        self.seconds += time.perf_counter() - start
        return EncodedTexts(vectors.astype(np.float32, copy=False), np.zeros(len(texts), dtype=bool))


def _warm_up() -> None:
    """Import and compile what the timed code uses, on a small throwaway input."""
    from grouper.clustering import group_embeddings

    vectors, _ = synthetic_set(300, 0, 10, 0.0, seed=12345)
    group_embeddings(vectors, [f"warm {i}" for i in range(len(vectors))])


def late_worker(n: int, m: int, centres: int, novel: float, reviewed: float, seed: int) -> dict:
    """Add ``m`` late answers to a stored question of ``n`` through the store, timed.

    Returns
    -------
    dict
        Seconds, peak MiB, and how the late answers were placed.
    """
    import gc

    from grouper.answers import Answer, Question
    from grouper.clustering import group_embeddings
    from grouper.edits import CONFIRMED, Confirm
    from grouper.late_answers import add_late_answers, place_late_answers
    from grouper.store import Store

    _warm_up()
    vectors, late_vectors = synthetic_set(n, m, centres, novel, seed)
    answers = tuple(Answer(f"a{i:06d}", _QUESTION, f"answer {i}") for i in range(n))
    late = [Answer(f"late{i:05d}", _QUESTION, f"late answer {i}") for i in range(m)]
    encoder = StandInEncoder([a.normalized for a in answers] + [a.normalized for a in late], np.concatenate([vectors, late_vectors]))
    rng = np.random.default_rng(seed + 1)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "late.sqlite") as store:
        # Setup, untimed: what `grouper import` leaves, then some groups reviewed.
        store.import_question(Question(_QUESTION, "Q?", answers))
        texts = [a.normalized for a in answers]
        grouping = group_embeddings(encoder.encode(texts, cache=store.embeddings).vectors, texts)
        store.save_grouping(_QUESTION, grouping, model_version=encoder.model_key)
        group_ids = [g.group_id for g in grouping.groups if not g.blank]
        chosen = rng.choice(group_ids, round(len(group_ids) * reviewed), replace=False) if group_ids else []
        for group_id in sorted(int(g) for g in chosen):
            store.append(_QUESTION, _AUTHOR, None, Confirm(group_id))
        before = store.state(_QUESTION)
        # The pure placement alone, on the same inputs (for the breakdown; not in `late s`).
        start = time.perf_counter()
        place_late_answers(before, answers, vectors, late, late_vectors)
        place_seconds = time.perf_counter() - start
        encoder.seconds = 0.0
        gc.collect()

        with peak_rss() as memory:
            start = time.perf_counter()
            added = add_late_answers(store, _QUESTION, late, encoder, _AUTHOR)
            added_at = time.perf_counter()
            after = store.state(_QUESTION)
            end = time.perf_counter()
        # A reader without this process's memory cache (another UI session): snapshot + tail.
        with Store(store.url) as other:
            start_fresh = time.perf_counter()
            fresh = other.state(_QUESTION)
            fresh_seconds = time.perf_counter() - start_fresh
        assert fresh == after and after.version == before.version + 1
        assert len(added.placed) + len(added.waiting) == m
        waiting_reviewed = sum(
            1 for g in added.waiting.values() if g is not None and (before.groups[g].status == CONFIRMED or before.groups[g].grade is not None)
        )
    return {
        "answers": n,
        "late": m,
        "groups": len(grouping.groups),
        "reviewed_groups": len(chosen),
        "late_seconds": end - start,
        "add_seconds": added_at - start,
        "cache_seconds": encoder.seconds,
        "place_seconds": place_seconds,
        "state_seconds": end - added_at,
        "fresh_state_seconds": fresh_seconds,
        "late_peak_mib": memory["peak_mib"],
        "placed": len(added.placed),
        "waiting": len(added.waiting),
        "waiting_reviewed": waiting_reviewed,
    }


def peer_worker(n: int, m: int, centres: int, novel: float, seed: int) -> dict:
    """Regroup all ``n + m`` answers from scratch with the product's grouping, timed."""
    import gc

    from grouper.clustering import group_embeddings

    _warm_up()
    vectors, late_vectors = synthetic_set(n, m, centres, novel, seed)
    both = np.concatenate([vectors, late_vectors])
    del vectors, late_vectors
    texts = [f"answer {i}" for i in range(n)] + [f"late answer {i}" for i in range(m)]
    gc.collect()
    print("clock started", flush=True)  # the parent's --peer-timeout counts from here
    with peak_rss() as memory:
        start = time.perf_counter()
        grouping = group_embeddings(both, texts)
        seconds = time.perf_counter() - start
    return {"peer_seconds": seconds, "peer_peak_mib": memory["peak_mib"], "peer_groups": len(grouping.groups)}


def _run_worker(kind: str, args: argparse.Namespace, size: int, timeout: float | None = None) -> dict | None:
    """One worker in a fresh subprocess; ``None`` when its timed block ran past ``timeout``.

    The timeout counts from the worker's ``clock started`` line, so setup is not charged to it.
    """
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    command = [
        sys.executable, __file__, "--worker", kind, "--sizes", str(size), "--late", str(args.late),
        "--centres", str(args.centres), "--novel", str(args.novel), "--reviewed", str(args.reviewed),
        "--seed", str(args.seed),
    ]
    killed = threading.Event()

    def kill(process: subprocess.Popen) -> None:
        killed.set()
        process.kill()

    with tempfile.TemporaryFile("w+") as errors, subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=errors, text=True, env=env
    ) as process:
        assert process.stdout is not None
        timer = None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("clock started") and timeout is not None:
                timer = threading.Timer(timeout, kill, (process,))
                timer.start()
        process.wait()
        if timer is not None:
            timer.cancel()
        if killed.is_set():
            return None
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{kind} at {size} failed:\n{errors.read()[-3000:]}")
    return json.loads(lines[-1])


def _table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        (
            "| answers | late | groups | reviewed groups | late s | of which: add_late_answers s | (cache reads s) | "
            "(placement s) | state read s | fresh state read s | late MiB | peer: regroup n+m s | peer MiB | "
            "regroup / late | placed | waiting (closest group reviewed) | waiting (none close) |"
        ),
        "|" + "---:|" * 17,
    ]
    for r in rows:
        if r["peer_seconds"] is None:
            peer, peer_mib, ratio = f"not run (> {args.peer_timeout:g} s)", "-", "-"
        else:
            peer, peer_mib = f"{r['peer_seconds']:.2f}", f"{r['peer_peak_mib']:.0f}"
            ratio = f"{r['peer_seconds'] / r['late_seconds']:.1f}x"
        lines.append(
            f"| {r['answers']:,} | {r['late']:,} | {r['groups']} | {r['reviewed_groups']} | {r['late_seconds']:.3f} | "
            f"{r['add_seconds']:.3f} | {r['cache_seconds']:.3f} | {r['place_seconds']:.3f} | {r['state_seconds']:.4f} | "
            f"{r['fresh_state_seconds']:.3f} | {r['late_peak_mib']:.0f} | {peer} | {peer_mib} | {ratio} | {r['placed']} | "
            f"{r['waiting_reviewed']} | {r['waiting'] - r['waiting_reviewed']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table (or JSON with ``--json``).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="stored answers per question, comma separated (default 1000,10000,100000)")
    parser.add_argument("--late", type=int, help="late answers added to each (default 1000)")
    parser.add_argument("--quick", action="store_true", help="default to sizes 1000,5000 with 200 late answers")
    parser.add_argument("--centres", type=int, default=200, help="centres of the synthetic answers")
    parser.add_argument("--novel", type=float, default=0.1, help="share of late answers around unseen centres")
    parser.add_argument("--reviewed", type=float, default=0.25, help="share of groups confirmed before the late answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer-timeout", type=float, default=180.0, help="stop the peer regroup after this many seconds")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    parser.add_argument("--worker", choices=["late", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ("1000,5000" if args.quick else "1000,10000,100000")
    args.late = args.late if args.late is not None else (200 if args.quick else 1000)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.worker == "late":
        print(json.dumps(late_worker(sizes[0], args.late, args.centres, args.novel, args.reviewed, args.seed)))
        return 0
    if args.worker == "peer":
        print(json.dumps(peer_worker(sizes[0], args.late, args.centres, args.novel, args.seed)))
        return 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for size in sizes:
        row = _run_worker("late", args, size)
        print(f"  {size}: late {row['late_seconds']:.3f} s", file=sys.stderr)
        peer = _run_worker("peer", args, size, timeout=args.peer_timeout)
        print(f"  {size}: peer {'not run' if peer is None else format(peer['peer_seconds'], '.2f') + ' s'}", file=sys.stderr)
        row.update(peer or {"peer_seconds": None, "peer_peak_mib": None, "peer_groups": None})
        rows.append(row)
    if args.json:
        print(json.dumps({"load_average": load, "results": rows}))
        return 0
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", "1")
    print(
        f"Late answers through the store vs regrouping the whole question; {describe_device(torch.device('cpu')).split(',')[0]}, "
        f"{threads} thread(s) per measurement, load average {load:.2f} at start; seed {args.seed}, {args.centres} centres, "
        f"{args.novel:.0%} of late answers novel, {args.reviewed:.0%} of groups confirmed first"
    )
    print()
    print(_table(rows, args))
    print()
    print(
        "late s = add_late_answers (state + answers read, embedding-cache lookups, placement, answers stored and "
        "AddAnswers logged in one commit) + Store.state read; (cache reads) and (placement, timed alone) are parts of "
        "add_late_answers; fresh state read = Store.state from another Store (snapshot + tail), not in late s; "
        "peer = grouper.clustering.group_embeddings on all n + m vectors (grouping only, not stored); "
        "regroup / late = peer s / late s; MiB = peak resident memory added by the timed block"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
