"""Embedding speed: our encoder against sentence-transformers' ``encode``, same run.

Both embed the same real answers (10,000 drawn from ``../shared/datasets``, with the exact
repeats real answers have, plus a set of the longest answers) with the same weights on the
same device, interleaved, several repeats; answers/s are medians over the repeats and the
ratio is the median of the ratios within each repeat (both sides back to back). ``ours`` is :meth:`grouper.embedding.Encoder.encode` as the product calls it;
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
    # The load of a shared machine drifts between repeats: a ratio taken within one repeat
    # (the two sides back to back) is steadier than a ratio of medians.
    ratios = [p / o for o, p in zip(seconds["ours"], seconds["peer"], strict=True)]
    ratios_nd = [p / o for o, p in zip(seconds["ours_no_dedup"], seconds["peer"], strict=True)]
    return {
        "answers": len(texts),
        "ours_per_s": per_s["ours"],
        "ours_no_dedup_per_s": per_s["ours_no_dedup"],
        "peer_per_s": per_s["peer"],
        "ratio": statistics.median(ratios),
        "ratio_no_dedup": statistics.median(ratios_nd),
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
    print("ratio = ours/s over peer/s, median of per-repeat ratios; 'nd' = ours without exact-duplicate dedup; "
          "tokens = mean tokens per answer; MiB = peak memory added during the call")


# --------------------------------------------------------------------------- APA check


def apa_check(device: torch.device, precision: str) -> None:
    """APA on every corpus with float32 vectors and with ``precision`` vectors.

    Runs the protocol's benchmark (:func:`grouper.evaluation.runner.evaluate_questions`, the
    product's grouping with reference answers, zero-shot) once per precision, each with its
    own cache (the cache key does not include the precision), and prints APA per corpus and
    split for both, their difference, and the largest cosine difference between the two
    encoders' vectors. A speed trick is kept only if APA moves by less than 0.005.
    """
    from grouper.answers import load_answers
    from grouper.embedding import InMemoryEmbeddingCache
    from grouper.evaluation.runner import evaluate_questions, summarise

    from benchmarks.common import DATASETS

    files = sorted(DATASETS.glob("*.jsonl"))
    questions = [(q, f.stem) for f in files for q in load_answers(f)]
    reference = Encoder(device=device, precision="float32")
    trial = Encoder(device=device, precision=precision)
    summaries = {}
    caches = {}
    for name, encoder in (("float32", reference), ("trial", trial)):
        caches[name] = InMemoryEmbeddingCache()
        print(f"  APA run with {encoder.dtype} on {describe_device(device)} ...", file=sys.stderr)
        results = []
        for f in files:
            results += evaluate_questions(
                [q for q, stem in questions if stem == f.stem], encoder, cache=caches[name], default_dataset=f.stem
            )
        summaries[name] = {(r.dataset, r.split): r for r in summarise(results)}
    texts = sorted({a.normalized for q, _ in questions for a in q.answers if a.normalized})
    a = np.stack([v for _, v in sorted(caches["float32"].get_many(reference.model_key, texts).items())])
    b = np.stack([v for _, v in sorted(caches["trial"].get_many(trial.model_key, texts).items())])
    print(f"APA (zero-shot, the product's grouping) with float32 vectors vs {str(trial.dtype).removeprefix('torch.')} "
          f"vectors; largest 1 - cos over all {len(texts)} distinct answers: {_max_cosine_diff(a, b):.2e}")
    head = f"{'corpus, split':<46}{'questions':>10}{'answers':>8}{'APA f32':>9}{'APA trial':>10}{'delta':>9}"
    print(head)
    print("-" * len(head))
    for key, base in summaries["float32"].items():
        other = summaries["trial"][key]
        print(f"{base.dataset + ', ' + base.split:<46}{base.questions:>10}{base.answers:>8}{base.apa:>9.4f}"
              f"{other.apa:>10.4f}{other.apa - base.apa:>+9.4f}")


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
