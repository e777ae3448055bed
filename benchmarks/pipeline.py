"""Benchmark of the core pipeline: embedding throughput and grouping time, ours against peers.

For each sample size (default 1,000 and 10,000 answers) this draws a deterministic sample of
the answers of all the real corpora in ``shared/datasets/`` (the three files concatenated)
and measures, in one process and one run:

- embedding, in answers per second: ``grouper.embedding.Encoder.encode`` against the named
  peer, sentence-transformers' ``SentenceTransformer.encode`` of the same packaged weights
  (same device, ``normalize_embeddings=True``), each with its own default batching: that is
  what a user of either gets;
- grouping, in seconds: ``grouper.clustering.group_embeddings`` against a naive
  ``hdbscan.HDBSCAN(min_cluster_size=3, min_samples=1)`` on the raw 384-d embeddings;
- peak memory of each step, two ways: the ``tracemalloc`` peak (Python objects and numpy
  arrays; torch's own tensor memory is not traced) and the process's peak resident set size
  from ``resource.getrusage`` (``ru_maxrss``, a high-water mark over the whole run so far).

Usage::

    .venv/bin/python benchmarks/pipeline.py [--sizes 1000,10000] [--json]
        [--skip-naive-above N] [--device cpu] [--datasets DIR]

The answers are the normalised texts the pipeline embeds. Exact duplicates are part of real
data; ``Encoder.encode`` embeds each distinct text once and says so in the ``unique`` column,
the peer embeds every text. Timings on a shared machine are noisy: the load average at the
start is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout, without installing
    sys.path.insert(0, str(REPO))

from grouper.answers import load_answers  # noqa: E402
from grouper.clustering import group_embeddings  # noqa: E402
from grouper.embedding import Encoder, base_model_dir, choose_device  # noqa: E402

DEFAULT_DATASETS = REPO.parent / "shared" / "datasets"
CORPORA = ("saf-en.jsonl", "semeval2013-beetle.jsonl", "semeval2013-scientsbank.jsonl")
PEER_BATCH_SIZE = 32  # SentenceTransformer.encode's default, named so the report can say it
# The naive peer clusters raw 384-d vectors, where HDBSCAN's space trees help little; on a
# 2-core machine shared with other work 10,000 answers took about 100 s. Above this size it is
# skipped by default so that the peer does not dominate the run.
DEFAULT_SKIP_NAIVE_ABOVE = 5000

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One measured (or skipped) step."""

    size: int
    unique: int
    stage: str  # "embedding" | "grouping"
    implementation: str
    peer: bool
    seconds: float | None  # None when skipped
    answers_per_second: float | None
    python_peak_mib: float | None
    maxrss_mib: float | None
    speedup_vs_peer: float | None = None  # on our rows: peer seconds / our seconds


def load_corpus_texts(datasets_dir: Path) -> tuple[list[str], dict[str, int]]:
    """All answers of the corpora, normalised, in file order; and the count per file.

    Parameters
    ----------
    datasets_dir : Path
        The folder of the JSONL corpora.

    Returns
    -------
    texts : list of str
    counts : dict of str to int
    """
    texts: list[str] = []
    counts: dict[str, int] = {}
    for name in CORPORA:
        answers = [a for q in load_answers(datasets_dir / name) for a in q.answers]
        counts[name] = len(answers)
        texts.extend(a.normalized for a in answers)
    return texts, counts


def draw_sample(texts: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` answers drawn without replacement; the same seed gives the same sample."""
    if size > len(texts):
        raise SystemExit(f"--sizes: {size} is more than the {len(texts)} answers of the corpora")
    chosen = np.random.default_rng(seed).choice(len(texts), size=size, replace=False)
    return [texts[i] for i in chosen]


def _maxrss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def measure(step: Callable[[], T]) -> tuple[T, float, float, float]:
    """Run ``step`` once; return its result, seconds, tracemalloc peak (MiB), maxrss (MiB)."""
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    return result, seconds, peak, _maxrss_mib()


def run(
    sizes: Sequence[int],
    *,
    datasets_dir: Path,
    device: str | None,
    seed: int,
    skip_naive_above: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Measure every step at every size; return the rows and the conditions of the run."""
    import hdbscan
    import torch
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    texts, counts = load_corpus_texts(datasets_dir)
    for size in sizes:  # refuse an impossible size before minutes of model loading
        draw_sample(texts, size, seed)
    torch_device = choose_device(device)
    ours = Encoder(device=torch_device)
    peer = SentenceTransformer(str(base_model_dir()), device=str(torch_device), local_files_only=True)
    # Warm up both (lazy initialisation, first-call allocations) and the clustering imports,
    # so that no timed step pays a one-off cost.
    warm = texts[:32]
    ours.encode(warm)
    peer.encode(warm, batch_size=PEER_BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False)
    group_embeddings(ours.encode(texts[:64]).vectors, texts[:64])

    rows: list[Row] = []
    max_cosine_gap = 0.0
    tracemalloc.start()
    try:
        for size in sizes:
            sample = draw_sample(texts, size, seed)
            unique = len(set(sample))
            log(f"size {size}: embedding (ours)")
            encoded, s_ours, py_ours, rss_ours = measure(lambda: ours.encode(sample, progress=False))
            log(f"size {size}: embedding (sentence-transformers)")
            peer_vectors, s_peer, py_peer, rss_peer = measure(
                lambda: peer.encode(
                    sample, batch_size=PEER_BATCH_SIZE, normalize_embeddings=True, show_progress_bar=False
                )
            )
            # Same weights, same answers: the vectors must agree (a sanity check of the race).
            nonblank = np.array([bool(t) for t in sample])
            cosine = np.sum(encoded.vectors[nonblank].astype(np.float64) * peer_vectors[nonblank], axis=1)
            max_cosine_gap = max(max_cosine_gap, float(np.max(np.abs(1.0 - cosine), initial=0.0)))
            rows.append(
                Row(size, unique, "embedding", "grouper Encoder.encode", False, s_ours, size / s_ours,
                    py_ours, rss_ours, s_peer / s_ours)
            )
            rows.append(
                Row(size, unique, "embedding", "SentenceTransformer.encode", True, s_peer, size / s_peer,
                    py_peer, rss_peer)
            )

            log(f"size {size}: grouping (ours)")
            _, g_ours, gpy_ours, grss_ours = measure(lambda: group_embeddings(encoded.vectors, sample))
            if size > skip_naive_above:
                naive = Row(size, unique, "grouping", "naive HDBSCAN raw 384-d", True, None, None, None, None)
                speedup = None
            else:
                log(f"size {size}: grouping (naive HDBSCAN)")
                clusterer = hdbscan.HDBSCAN(min_cluster_size=3, min_samples=1)
                _, g_peer, gpy_peer, grss_peer = measure(lambda: clusterer.fit(encoded.vectors))
                naive = Row(size, unique, "grouping", "naive HDBSCAN raw 384-d", True, g_peer, size / g_peer,
                            gpy_peer, grss_peer)
                speedup = g_peer / g_ours
            rows.append(
                Row(size, unique, "grouping", "grouper group_embeddings", False, g_ours, size / g_ours,
                    gpy_ours, grss_ours, speedup)
            )
            rows.append(naive)
    finally:
        tracemalloc.stop()

    return {
        "conditions": {
            "corpora": counts,
            "answers_available": len(texts),
            "seed": seed,
            "device": str(torch_device),
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "python": platform.python_version(),
            "peer_batch_size": PEER_BATCH_SIZE,
            # The encoder's own batching, as far as this version of it exposes it.
            "ours_batching": {
                name: str(getattr(ours, name))
                for name in ("batch_size", "tokens_per_batch", "dtype")
                if hasattr(ours, name)
            },
            "skip_naive_above": skip_naive_above,
            "max_cosine_gap_ours_vs_peer": max_cosine_gap,
            "total_seconds": time.perf_counter() - started,
            "memory": (
                "python_peak_mib: tracemalloc peak during the step (Python objects and numpy arrays; "
                "torch tensors are not traced); maxrss_mib: process peak RSS from getrusage "
                "(ru_maxrss), a high-water mark over the run so far, not per step"
            ),
        },
        "rows": [asdict(r) for r in rows],
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table with its conditions above it."""
    c = report["conditions"]
    corpora = ", ".join(f"{name} ({n})" for name, n in c["corpora"].items())
    ours_batching = ", ".join(f"{k} {v}" for k, v in c["ours_batching"].items()) or "defaults"
    load = "n/a" if c["load_average_at_start"] is None else f"{c['load_average_at_start']:.1f}"
    lines = [
        "grouper pipeline benchmark",
        f"  answers: {corpora} = {c['answers_available']}; sample seed {c['seed']}, without replacement",
        f"  device {c['device']}, torch threads {c['torch_threads']}, {c['cpu_count']} CPU cores, "
        f"load average at start {load} (a shared machine makes timings noisy)",
        f"  ours: {ours_batching}; peer: batch size {c['peer_batch_size']}; max |1 - cos| ours vs peer: "
        f"{c['max_cosine_gap_ours_vs_peer']:.1e}; total {c['total_seconds']:.0f} s",
        "  py peak = tracemalloc peak during the step (Python and numpy; torch tensors not traced);",
        "  maxrss = process peak RSS (getrusage ru_maxrss) so far in the run, not per step",
        "",
    ]
    header = ("size", "unique", "stage", "implementation", "result", "vs peer", "py peak MiB", "maxrss MiB")
    table = [header]
    for r in report["rows"]:
        name = r["implementation"] + (" (peer)" if r["peer"] else "")
        if r["seconds"] is None:
            result, py_peak, rss = "skipped", "-", "-"
        else:
            if r["stage"] == "embedding":
                result = f"{r['answers_per_second']:.1f} answers/s"
            else:
                result = f"{r['seconds']:.2f} s"
            py_peak, rss = f"{r['python_peak_mib']:.1f}", f"{r['maxrss_mib']:.0f}"
        speedup = "" if r["speedup_vs_peer"] is None else f"{r['speedup_vs_peer']:.2f}x"
        table.append((str(r["size"]), str(r["unique"]), r["stage"], name, result, speedup, py_peak, rss))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {0, 1, 4, 5, 6, 7}
    for row in table:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: expected comma-separated integers") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: sizes must be positive")
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print a table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[1000, 10000], help="answers per sample (1000,10000)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--skip-naive-above",
        type=int,
        default=DEFAULT_SKIP_NAIVE_ABOVE,
        metavar="N",
        help=f"skip the naive HDBSCAN peer above N answers (default {DEFAULT_SKIP_NAIVE_ABOVE})",
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS, help="folder of the corpora")
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    args = parser.parse_args(argv)
    if not args.datasets.is_dir():
        print(f"benchmark: no corpora at {args.datasets}", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    report = run(
        args.sizes,
        datasets_dir=args.datasets,
        device=args.device,
        seed=args.seed,
        skip_naive_above=args.skip_naive_above,
        log=log,
    )
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
