"""Embedding speed: our encoder against sentence-transformers' ``encode``, same run.

Both embed the same real answers (10,000 drawn from ``../shared/datasets``, with the exact
repeats real answers have, plus a set of the longest answers) with the same weights on the
same device, interleaved, several repeats; the figures are medians and the ratio is of
medians. ``ours`` is :meth:`grouper.embedding.Encoder.encode` as the product calls it;
``ours, no dedup`` embeds every answer even when its text repeats, to show how much of the
win is the de-duplication. The peer is ``SentenceTransformer.encode`` with its default
batch size (32) unless ``--peer-batch-size`` says otherwise, in float32 (its default).

Usage::

    python benchmarks/embed.py [--answers 10000] [--repeats 3] [--device cpu] [--json]
    python benchmarks/embed.py --apa      # does our precision change the APA on the corpora?

``--json`` prints one object::

    {"device": str, "answers": int, "ours_per_s": float, "peer_per_s": float, "ratio": float,
     "max_cosine_diff": float, "peak_mib": float, ...}

for the 10,000-answer set (further keys: the no-dedup figure, the peer's peak, the long set).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import describe_device, load_corpora, sample_texts, timed  # noqa: E402
from grouper.embedding import Encoder, base_model_dir, choose_device  # noqa: E402


def _peer(device: torch.device):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(base_model_dir()), device=str(device), local_files_only=True)


def _max_cosine_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest 1 - cos over rows that are not zero in either (empty texts are zero in ours)."""
    keep = (np.abs(a).sum(axis=1) > 0) & (np.abs(b).sum(axis=1) > 0)
    a64, b64 = a[keep].astype(np.float64), b[keep].astype(np.float64)
    cos = np.sum(a64 * b64, axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    return float(np.max(1.0 - cos)) if len(cos) else 0.0


def measure(
    texts: list[str], encoder: Encoder, peer, peer_batch_size: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Time ours, ours without dedup and the peer on ``texts``, interleaved; medians."""
    non_empty = [t for t in texts if t]
    counts = encoder.token_counts(non_empty)
    runs: dict[str, Callable[[], np.ndarray]] = {
        "ours": lambda: encoder.encode(texts, progress=False).vectors,
        # The same batching and compute, but every answer embedded even when its text repeats.
        "ours_no_dedup": lambda: encoder._embed_texts(non_empty, counts, progress=False),
        "peer": lambda: peer.encode(
            texts, batch_size=peer_batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        ),
    }
    # One untimed warm-up each (allocator, kernel selection, lazy CUDA init).
    warm = texts[:64]
    encoder.encode(warm, progress=False)
    peer.encode(warm, batch_size=peer_batch_size, show_progress_bar=False)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, list[float]] = {name: [] for name in runs}
    outputs: dict[str, np.ndarray] = {}
    names = list(runs)
    for repeat in range(repeats):
        # Rotate the order so that neither side always runs first (or right after the other).
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            value, secs, peak = timed(device, runs[name])
            seconds[name].append(secs)
            peaks[name].append(peak)
            outputs.setdefault(name, value)
            print(f"    repeat {repeat + 1}: {name:<14} {len(texts) / secs:8.1f} answers/s", file=sys.stderr)
    per_s = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
    ratios = [p / o for o, p in zip(seconds["ours"], seconds["peer"], strict=True)]
    return {
        "answers": len(texts),
        "ours_per_s": per_s["ours"],
        "ours_no_dedup_per_s": per_s["ours_no_dedup"],
        "peer_per_s": per_s["peer"],
        "ratio": per_s["ours"] / per_s["peer"],
        "ratio_no_dedup": per_s["ours_no_dedup"] / per_s["peer"],
        "ratio_per_repeat": ratios,
        "max_cosine_diff": _max_cosine_diff(outputs["ours"], outputs["peer"]),
        "peak_mib": max(peaks["ours"]),
        "peer_peak_mib": max(peaks["peer"]),
        "unique_fraction": len(set(texts)) / len(texts),
        "mean_tokens": float(np.mean(counts)) if len(counts) else 0.0,
    }


def _long_texts(all_texts: list[str], encoder: Encoder, n: int) -> list[str]:
    """The ``n`` longest distinct answers (by tokens): the long-answer set."""
    distinct = sorted(set(all_texts))
    counts = encoder.token_counts(distinct)
    order = np.argsort(-counts, kind="stable")[:n]
    return [distinct[i] for i in order]


def _print_table(device: str, rows: list[tuple[str, dict[str, float]]], peer_batch_size: int, precision: str) -> None:
    print(f"Embedding benchmark on {device}; ours in {precision}; peer: SentenceTransformer.encode "
          f"(batch_size={peer_batch_size}, float32)")
    head = (f"{'set':<22}{'answers':>8}{'tokens':>8}{'ours/s':>9}{'no-dedup/s':>11}{'peer/s':>9}"
            f"{'ratio':>7}{'ratio nd':>9}{'max 1-cos':>11}{'ours MiB':>10}{'peer MiB':>10}")
    print(head)
    print("-" * len(head))
    for name, r in rows:
        print(f"{name:<22}{r['answers']:>8}{r['mean_tokens']:>8.1f}{r['ours_per_s']:>9.1f}"
              f"{r['ours_no_dedup_per_s']:>11.1f}{r['peer_per_s']:>9.1f}{r['ratio']:>7.2f}"
              f"{r['ratio_no_dedup']:>9.2f}{r['max_cosine_diff']:>11.2e}{r['peak_mib']:>10.0f}"
              f"{r['peer_peak_mib']:>10.0f}")
    print("ratio = ours/s over peer/s (medians); 'nd' = ours without exact-duplicate dedup; "
          "tokens = mean tokens per answer; MiB = peak memory added during the call")


# --------------------------------------------------------------------------- APA check


def apa_check(device: torch.device, precision: str) -> None:
    """Group every corpus question with float32 vectors and with ``precision`` vectors.

    Prints, per corpus and split, APA (weighted by answers, questions with >= 20 answers) for
    both, the difference, the adjusted Rand index between the two groupings and the largest
    cosine difference between the vectors. A speed trick is kept only if APA moves < 0.005.
    """
    from collections import defaultdict

    from sklearn.metrics import adjusted_rand_score

    from grouper.clustering import group_embeddings
    from grouper.evaluation.apa import count_review

    answers = load_corpora()
    texts = [a.text for a in answers]
    reference = Encoder(device=device, precision="float32")
    trial = Encoder(device=device, precision=precision)
    print(f"embedding {len(texts)} answers in float32 and in {trial.dtype} on {describe_device(device)} ...",
          file=sys.stderr)
    base_vectors = reference.encode(texts).vectors
    trial_vectors = trial.encode(texts).vectors
    by_question: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, a in enumerate(answers):
        by_question[(a.dataset, a.split, a.question_id)].append(i)
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0])
    for (dataset, split, _), rows in sorted(by_question.items()):
        if len(rows) < 20:
            continue
        q_texts = [texts[i] for i in rows]
        gold = [answers[i].label for i in rows]
        results = []
        for vectors in (base_vectors, trial_vectors):
            grouping = group_embeddings(vectors[rows], q_texts)
            groups = [[gold[m] for m in g.members] for g in grouping.groups]
            results.append((count_review(groups, len(grouping.ungrouped)).actions, grouping.labels))
        t = totals[(dataset, split)]
        t[0] += len(rows)
        t[1] += results[0][0]
        t[2] += results[1][0]
        t[3] += adjusted_rand_score(results[0][1], results[1][1]) * len(rows)
        t[4] = max(t[4], _max_cosine_diff(base_vectors[rows], trial_vectors[rows]))
    print(f"APA with float32 vectors vs {trial.dtype} vectors (zero-shot, default grouping settings)")
    head = f"{'corpus, split':<46}{'answers':>8}{'APA f32':>9}{'APA trial':>10}{'delta':>8}{'ARI':>7}{'max 1-cos':>11}"
    print(head)
    print("-" * len(head))
    for (dataset, split), (n, a32, atr, ari, cos) in sorted(totals.items()):
        print(f"{dataset + ', ' + split:<46}{int(n):>8}{a32 / n:>9.4f}{atr / n:>10.4f}{(atr - a32) / n:>+8.4f}"
              f"{ari / n:>7.3f}{cos:>11.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=10_000, help="real answers in the main set")
    parser.add_argument("--long", type=int, default=500, help="answers in the long-answer set (0: none)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--precision", default="auto", help="ours: auto, float32, bfloat16, float16")
    parser.add_argument("--peer-batch-size", type=int, default=32, help="SentenceTransformer.encode's batch_size")
    parser.add_argument("--threads", type=int, help="torch threads, for both sides (default: torch's)")
    parser.add_argument("--apa", action="store_true", help="check that our precision leaves APA unchanged")
    parser.add_argument("--json", action="store_true", help="print one JSON object for the main set")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    if args.apa:
        apa_check(device, args.precision)
        return 0
    answers = load_corpora()
    texts = sample_texts(answers, args.answers)
    encoder = Encoder(device=device, precision=args.precision)
    peer = _peer(device)
    print(f"main set: {len(texts)} answers", file=sys.stderr)
    rows = [(f"{len(texts)} real answers", measure(texts, encoder, peer, args.peer_batch_size, args.repeats, device))]
    if args.long:
        long_texts = _long_texts([a.text for a in answers], encoder, args.long)
        print(f"long set: {len(long_texts)} answers", file=sys.stderr)
        rows.append((f"{len(long_texts)} longest answers",
                     measure(long_texts, encoder, peer, args.peer_batch_size, args.repeats, device)))
    device_name = describe_device(device)
    if args.json:
        main_row = dict(rows[0][1])
        out = {"device": device_name, **{k: main_row.pop(k) for k in
               ("answers", "ours_per_s", "peer_per_s", "ratio", "max_cosine_diff", "peak_mib")}}
        out.update(main_row)
        out["precision"] = str(encoder.dtype).removeprefix("torch.")
        out["peer_batch_size"] = args.peer_batch_size
        if len(rows) > 1:
            out["long"] = rows[1][1]
        print(json.dumps(out))
    else:
        _print_table(device_name, rows, args.peer_batch_size, str(encoder.dtype).removeprefix("torch."))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
