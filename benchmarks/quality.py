"""Grouping-quality experiments: APA of grouping variants on the benchmark corpora, quickly.

``grouper evaluate`` is the benchmark of record (the oracle grades through the edit log).
This script answers "is variant B better than A?" in seconds: it groups every question with
at least 20 answers through :func:`grouper.clustering.group_embeddings` (the product's
function) under each variant's settings, and counts the oracle's actions with the protocol's
arithmetic (:func:`grouper.evaluation.apa.count_review`, which the oracle is checked against).
Embeddings come from a store's embedding cache, filled on first use.

Usage::

    .venv/bin/python benchmarks/quality.py --cache var/embeddings.sqlite            # all variants
    .venv/bin/python benchmarks/quality.py --cache var/embeddings.sqlite default hdbscan-naive
    # zero-shot grouping with a fine-tuned model (grouper evaluate --mode flywheel --keep-models DIR)
    .venv/bin/python benchmarks/quality.py --cache var/embeddings.sqlite default \
        --model-dir DIR/semeval2013-beetle --corpus semeval2013-beetle

Results of the variants tried are recorded in ``benchmarks/results/zero_shot_experiments.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grouper.answers import Question, load_answers  # noqa: E402
from grouper.clustering import Grouping, GroupingSettings, group_embeddings  # noqa: E402
from grouper.evaluation.apa import count_review  # noqa: E402
from grouper.references import References, embedded_references  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
CORPORA = ("semeval2013-beetle", "semeval2013-scientsbank", "saf-en")
MIN_ANSWERS = 20


@dataclass(frozen=True)
class Variant:
    """A grouping to measure: settings, and whether it sees the reference answers."""

    description: str
    settings: GroupingSettings
    references: bool = True


DEFAULT = GroupingSettings()
VARIANTS: dict[str, Variant] = {
    "default": Variant("product defaults: k-means on the two reference signals, sqrt(n)/3 groups", DEFAULT),
    "no-references": Variant("product defaults without reference answers: HDBSCAN, leftovers grouped", DEFAULT, False),
    "no-references-ungrouped": Variant(
        "HDBSCAN (PCA 32), leftovers left ungrouped (the grouping before this work)",
        replace(DEFAULT, leftovers="ungrouped"),
        False,
    ),
    "no-references-mcs5": Variant("HDBSCAN min_cluster_size=5, leftovers grouped", replace(DEFAULT, min_cluster_size=5), False),
    "no-references-leaf": Variant(
        "HDBSCAN leaf selection, leftovers grouped", replace(DEFAULT, cluster_selection_method="leaf"), False
    ),
    "no-references-eps": Variant(
        "HDBSCAN cluster_selection_epsilon=0.3, leftovers grouped",
        replace(DEFAULT, cluster_selection_epsilon=0.3),
        False,
    ),
    "no-quantities": Variant(
        "product defaults, but numeric questions not grouped by final quantity", replace(DEFAULT, quantities=False)
    ),
    "no-references-no-quantities": Variant(
        "no-references, and numeric questions not grouped by final quantity", replace(DEFAULT, quantities=False), False
    ),
    "scale-2": Variant("reference groups, sqrt(n)/2 of them", replace(DEFAULT, group_scale=2.0)),
    "scale-2.5": Variant("reference groups, sqrt(n)/2.5 of them", replace(DEFAULT, group_scale=2.5)),
    "scale-3.5": Variant("reference groups, sqrt(n)/3.5 of them", replace(DEFAULT, group_scale=3.5)),
    "scale-4": Variant("reference groups, sqrt(n)/4 of them", replace(DEFAULT, group_scale=4.0)),
    "scale-inf": Variant("one reference group (everything but blanks in one group)", replace(DEFAULT, group_scale=1e9)),
}


def load_corpora(names: tuple[str, ...] = CORPORA) -> list[Question]:
    """Questions with at least ``MIN_ANSWERS`` answers of the named corpora."""
    out: list[Question] = []
    for name in names:
        out.extend(q for q in load_answers(DATASETS / f"{name}.jsonl") if len(q.answers) >= MIN_ANSWERS)
    return out


def embedder(cache_path: str | None, model_dir: str | None = None) -> Callable[[list[str]], np.ndarray]:
    """A function from texts to vectors, through a store's embedding cache; the packaged base
    model, or the safetensors model in ``model_dir`` (a fine-tuned one, say)."""
    import torch

    from grouper.embedding import Encoder, InMemoryEmbeddingCache, file_sha256
    from grouper.store import Store

    if model_dir is None:
        encoder = Encoder(device=torch.device("cpu"))
    else:
        folder = Path(model_dir)
        encoder = Encoder(folder, device=torch.device("cpu"), expected_sha256=file_sha256(folder / "model.safetensors"))
    cache = Store(cache_path).embeddings if cache_path else InMemoryEmbeddingCache()
    return lambda texts: encoder.encode(texts, cache=cache).vectors


def references_of(question: Question, embed: Callable[[list[str]], np.ndarray]) -> References | None:
    """The question's references as the pipeline builds them."""
    return embedded_references(question, embed)


def actions(grouping: Grouping, labels: list[str]) -> int:
    """The oracle's actions on a grouping."""
    groups = [[labels[i] for i in g.members] for g in grouping.groups]
    return count_review(groups, len(grouping.ungrouped)).actions


def run(variants: dict[str, Variant], questions: list[Question], embed) -> dict[str, dict[tuple[str, str], float]]:
    """APA per variant and (dataset, split)."""
    prepared = []
    for q in questions:
        texts = [a.normalized for a in q.answers]
        prepared.append((q, texts, embed(texts), references_of(q, embed), [str(a.gold) for a in q.answers]))
    table: dict[str, dict[tuple[str, str], float]] = {}
    for name, variant in variants.items():
        totals: dict[tuple[str, str], list[int]] = {}
        started = time.perf_counter()
        for q, texts, vectors, refs, labels in prepared:
            grouping = group_embeddings(vectors, texts, variant.settings, references=refs if variant.references else None)
            t = totals.setdefault((q.dataset or "", q.split or "all"), [0, 0])
            t[0] += actions(grouping, labels)
            t[1] += len(labels)
        table[name] = {k: a / n for k, (a, n) in totals.items()}
        print(f"{name:<26}", " ".join(f"{v:.3f}" for v in table[name].values()), f"({time.perf_counter() - started:.1f} s)", flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help=f"variants to run (default: all): {', '.join(VARIANTS)}")
    parser.add_argument("--cache", help="store file whose embedding cache to use (e.g. var/embeddings.sqlite)")
    parser.add_argument("--model-dir", help="group with the safetensors model in this folder instead of the base model")
    parser.add_argument("--corpus", action="append", choices=CORPORA, help="only these corpora (default: all three)")
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    chosen = {k: VARIANTS[k] for k in (args.variants or VARIANTS)}
    questions = load_corpora(tuple(args.corpus) if args.corpus else CORPORA)
    splits = sorted({(q.dataset or "", q.split or "all") for q in questions}, key=lambda s: (CORPORA.index(s[0]), s[1]))
    print(f"{'variant':<26}", " ".join(f"{d.split('-')[-1][:6]}/{s[:6]}" for d, s in splits))
    run(chosen, questions, embedder(args.cache, args.model_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
