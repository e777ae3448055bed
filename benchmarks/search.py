"""How fast the Search page finds answers: ``grouper.answer_search`` against pandas.

Questions of 1,000, 10,000 and 100,000 answers are drawn (with repeats) from the real corpora
in ``../shared/datasets``; each query is run over them by

- ``answer_search``: the product's path, the answers folded once per question
  (:func:`grouper.answer_search.fold_texts`, timed apart, as the page caches it) and every
  query answered by :func:`grouper.answer_search.search_folded`;
- the peer, ``pandas``: ``Series.str.contains(term, case=False, regex=False)`` per term on the
  raw texts, combined with ``&``, what a data-frame UI would do; it does not fold NFKC forms,
  so it may find fewer answers (the match counts are printed for both).

Usage::

    .venv/bin/python benchmarks/search.py [--sizes 1000 10000 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from benchmarks.common import load_corpora  # noqa: E402
from grouper.answer_search import fold_texts, parse_query, search_folded  # noqa: E402

#: Queries a grader types: one word, two words, a phrase, a word and a phrase, a miss.
QUERIES = ("battery", "bulb closed", '"closed path"', 'circuit "no gap"', "zzzxq")


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    """Print one markdown row per question size and query."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs (default: 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    pool = [a.text for a in load_corpora()]
    rng = random.Random(args.seed)
    print("| answers | fold once (s) | query | matches | answer_search (ms) | pandas matches | pandas (ms) | pandas / answer_search |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        texts = {f"a{i}": rng.choice(pool) for i in range(n)}
        started = time.perf_counter()
        folded = fold_texts(texts)
        fold_s = time.perf_counter() - started
        series = pd.Series(list(texts.values()), index=list(texts))
        for query in QUERIES:
            terms = parse_query(query)
            ours = search_folded(folded, terms)
            ours_s = _best(lambda: search_folded(folded, terms), args.repeat)

            def peer() -> list[str]:
                mask = pd.Series(True, index=series.index)
                for term in terms:
                    mask &= series.str.contains(term, case=False, regex=False)
                return list(series.index[mask])

            theirs = peer()
            peer_s = _best(peer, args.repeat)
            print(
                f"| {n:,} | {fold_s:.3f} | `{query}` | {len(ours):,} | {ours_s * 1e3:.1f} | {len(theirs):,} | "
                f"{peer_s * 1e3:.1f} | {peer_s / ours_s:.1f}x |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
