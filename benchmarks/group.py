"""Grouping speed and memory at 1k, 10k and 100k answers, against naive HDBSCAN, same run.

The answers are real (``../shared/datasets``, all corpora together, about 18,000); above that
size they are repeated with variation to reach the size: each repeat's text gets a marker
(so that exact-duplicate de-duplication cannot collapse it) and its vector a small random
perturbation (cosine about 0.97 to the original), renormalised. Embeddings are given (computed
once by our encoder and kept in ``~/.cache/grouper/benchmarks``), so this measures grouping
alone.

``ours`` is :func:`grouper.clustering.group_embeddings` with default settings (no reference
answers: the HDBSCAN path). The peer is what a user would write first:
``hdbscan.HDBSCAN(min_cluster_size=3, min_samples=1).fit(vectors)`` on the raw 384-d
embeddings; it is skipped above ``--naive-max`` answers (it takes minutes at 20,000 here).
``place 1k`` times :mod:`grouper.placement` putting 1,000 late answers (real answers not in
the set, perturbed likewise) into the grouping just made, index build included.

Each measurement runs in a fresh subprocess with one thread (``OMP_NUM_THREADS=1`` unless
set), imports done and inputs loaded before the clock starts, so its peak memory is its own:
the peak resident set size during the call minus the size before it.

Usage::

    python benchmarks/group.py [--sizes 1000,10000,100000] [--naive-max 20000] [--json]

``--json`` prints a list of ``{"size": int, "seconds": float, "peak_mib": float,
"naive_seconds": float or null, ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import cache_folder, corpus_vectors, describe_device, load_corpora, peak_rss  # noqa: E402

_NOISE_COSINE = 0.97  # a repeat's cosine similarity to the answer it varies, about
_LATE = 1000


def _perturb(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors at a random direction about arccos(_NOISE_COSINE) from ``vectors``."""
    noise = rng.standard_normal(vectors.shape).astype(np.float32)
    noise -= np.sum(noise * vectors, axis=1, keepdims=True) * vectors  # orthogonal part only
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    sine = np.sqrt(1.0 - _NOISE_COSINE**2)
    out = _NOISE_COSINE * vectors + sine * noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def corpus_texts_and_vectors() -> tuple[list[str], np.ndarray]:
    """All corpus answers and their embeddings by our encoder (embedded once, then cached).

    The vectors are written to a plain ``.npy`` beside the cache, so that the measuring
    subprocesses load them without torch or the model in memory.
    """
    texts = [a.text for a in load_corpora()]
    path = cache_folder() / "group-benchmark-vectors.npy"
    if not os.environ.get("GROUPER_BENCH_WORKER"):
        import torch

        from grouper.embedding import Encoder

        torch.set_num_threads(1)
        vectors = corpus_vectors(Encoder(device=torch.device("cpu")), texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return texts, vectors
    vectors = np.load(path, allow_pickle=False)
    if vectors.shape[0] != len(texts):
        raise SystemExit(f"{path} does not match the corpora; run benchmarks/group.py without --worker")
    return texts, vectors


def build_set(size: int, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(vectors, texts) of ``size`` answers and (vectors, texts) of 1,000 late answers."""
    texts, vectors = corpus_texts_and_vectors()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    late_rows, pool = order[:_LATE], order[_LATE:]
    if size <= len(pool):
        rows = pool[:size]
        set_vectors, set_texts = vectors[rows], [texts[i] for i in rows]
    else:
        extra = rng.choice(pool, size - len(pool))
        set_vectors = np.concatenate([vectors[pool], _perturb(vectors[extra], rng)])
        set_texts = [texts[i] for i in pool] + [
            f"{texts[i]} (variant {k})" if texts[i] else "" for k, i in enumerate(extra.tolist())
        ]
    late_vectors = _perturb(vectors[late_rows], rng)
    late_texts = [f"{texts[i]} (late)" if texts[i] else "" for i in late_rows.tolist()]
    return set_vectors, set_texts, late_vectors, late_texts


def worker(method: str, size: int) -> dict[str, float]:
    """Run one measurement in this process (called in a subprocess by :func:`main`)."""
    import gc

    # Imports happen before the clock starts, for both sides.
    import hdbscan
    import scipy.sparse.csgraph  # noqa: F401
    import sklearn.decomposition  # noqa: F401

    import grouper.knn_hdbscan  # noqa: F401
    from grouper.clustering import UNGROUPED, group_embeddings
    from grouper.placement import PlacementIndex

    vectors, texts, late_vectors, late_texts = build_set(size)
    gc.collect()
    result: dict[str, float] = {}
    if method == "ours":
        with peak_rss() as memory:
            start = time.perf_counter()
            grouping = group_embeddings(vectors, texts)
            result["seconds"] = time.perf_counter() - start
        result["peak_mib"] = memory["peak_mib"]
        result["groups"] = len(grouping.groups)
        result["ungrouped"] = int(np.sum(grouping.labels == UNGROUPED))
        start = time.perf_counter()
        placement = PlacementIndex(vectors, texts, grouping.labels).place(late_vectors, late_texts)
        result["place_1k_seconds"] = time.perf_counter() - start
        result["place_1k_placed"] = int(np.sum(placement.labels != UNGROUPED))
    else:
        with peak_rss() as memory:
            start = time.perf_counter()
            labels = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=1).fit(vectors).labels_
            result["seconds"] = time.perf_counter() - start
        result["peak_mib"] = memory["peak_mib"]
        result["groups"] = int(labels.max() + 1)
    return result


def _run_worker(method: str, size: int) -> dict[str, float]:
    env = dict(os.environ, GROUPER_BENCH_WORKER="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    done = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--sizes", str(size)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{method} at {size} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--naive-max", type=int, default=20_000, help="skip naive HDBSCAN above this size")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", choices=["ours", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.worker:
        print(json.dumps(worker(args.worker, sizes[0])))
        return 0
    corpus_texts_and_vectors()  # embed the corpora once (cached) before anything is timed
    rows = []
    for size in sizes:
        ours = _run_worker("ours", size)
        print(f"  {size}: ours {ours['seconds']:.2f} s", file=sys.stderr)
        naive = _run_worker("naive", size) if size <= args.naive_max else None
        if naive:
            print(f"  {size}: naive {naive['seconds']:.2f} s", file=sys.stderr)
        rows.append({
            "size": size,
            "seconds": ours["seconds"],
            "peak_mib": ours["peak_mib"],
            "naive_seconds": naive["seconds"] if naive else None,
            "naive_peak_mib": naive["peak_mib"] if naive else None,
            "groups": ours["groups"],
            "ungrouped": ours["ungrouped"],
            "place_1k_seconds": ours["place_1k_seconds"],
            "place_1k_placed": ours["place_1k_placed"],
        })
    if args.json:
        print(json.dumps(rows))
        return 0
    threads = os.environ.get("OMP_NUM_THREADS", "1")
    print(f"Grouping benchmark on {describe_device(__import__('torch').device('cpu')).split(',')[0]}, "
          f"{threads} thread(s) per measurement; embeddings given; naive = "
          f"hdbscan.HDBSCAN(min_cluster_size=3, min_samples=1) on raw 384-d (skipped above {args.naive_max})")
    head = (f"{'answers':>8}{'ours s':>9}{'ours MiB':>10}{'naive s':>10}{'naive MiB':>11}{'speed-up':>10}"
            f"{'groups':>8}{'ungrouped':>10}{'place 1k s':>12}{'placed':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        naive_s = f"{r['naive_seconds']:.2f}" if r["naive_seconds"] is not None else "-"
        naive_m = f"{r['naive_peak_mib']:.0f}" if r["naive_peak_mib"] is not None else "-"
        speedup = f"{r['naive_seconds'] / r['seconds']:.1f}x" if r["naive_seconds"] is not None else "-"
        print(f"{r['size']:>8}{r['seconds']:>9.2f}{r['peak_mib']:>10.0f}{naive_s:>10}{naive_m:>11}{speedup:>10}"
              f"{r['groups']:>8}{r['ungrouped']:>10}{r['place_1k_seconds']:>12.3f}{r['place_1k_placed']:>8}")
    print("MiB = peak resident memory added during the call (fresh process each); "
          "place 1k = 1,000 late answers placed into that grouping")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
