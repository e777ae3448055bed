"""Numeric questions: APA with answers grouped by their final quantity, against the grouping
without it, in the same run.

On a question that asks for a number, ``grouper.clustering.group_embeddings`` first groups the
answers that end in the same value and unit (``GroupingSettings.quantities``,
``grouper.quantities``). The peer is the same product with that step off: reference groups
when the question has a reference answer, HDBSCAN when it has none.

Two tables:

1. the project's sample questions (``sample_data/``, synthetic, written by the project; one of
   them, the ball drop, asks for a number), each without a reference answer and with the one
   given below (the sample files carry none; these are what an instructor would type);
2. the three real corpora of ``../shared/datasets/``: how many of their questions count as
   numeric, and APA per split with and without the step (explanation questions: the step
   must not fire and nothing may move).

Usage::

    .venv/bin/python benchmarks/numeric.py --cache var/embeddings.sqlite
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from quality import CORPORA, actions, embedder, load_corpora, references_of  # noqa: E402

from grouper.answers import load_answers  # noqa: E402
from grouper.clustering import GroupingSettings, group_embeddings  # noqa: E402
from grouper.evaluation.apa import count_review, exact_text_key, groups_from_keys  # noqa: E402
from grouper.quantities import is_numeric_question  # noqa: E402

SAMPLES = {
    "q1_capital_australia.csv": "Canberra",
    "q2_photosynthesis.csv": (
        "Plants use the energy of sunlight for photosynthesis, which turns carbon dioxide and water "
        "into the sugar (glucose) they need for energy and growth."
    ),
    "q3_ball_drop.csv": "v = g t = 9.8 m/s^2 x 2.0 s = 19.6 m/s",
}
OURS = GroupingSettings()
PEER = GroupingSettings(quantities=False)


def _apa(vectors, texts, labels, settings, references) -> tuple[float, int]:
    grouping = group_embeddings(vectors, texts, settings, references=references)
    return actions(grouping, labels) / len(labels), len(grouping.groups)


def sample_table(embed) -> None:
    """APA of each sample question, ours and the peer's, without and with a reference, and
    the protocol's two trivial baselines."""
    print(
        "sample question      numeric  one group  exact text  reference  peer APA (groups)  ours APA (groups)  ours/peer"
    )
    for name, reference in SAMPLES.items():
        (question,) = load_answers(REPO / "sample_data" / name)
        texts = [a.normalized for a in question.answers]
        labels = [str(a.gold) for a in question.answers]
        vectors = embed(texts)
        one_group = count_review([labels], 0).actions / len(labels)
        exact_groups = groups_from_keys([exact_text_key(a.text) for a in question.answers])
        exact = count_review([[labels[i] for i in g] for g in exact_groups], 0).actions / len(labels)
        title = name.split("_")[0] + " " + name.split("_", 1)[1][:-4]
        with_reference = references_of(dataclasses.replace(question, reference_answers=(reference,)), embed)
        for shown, refs in (("none", None), ("given", with_reference)):
            peer, peer_groups = _apa(vectors, texts, labels, PEER, refs)
            ours, our_groups = _apa(vectors, texts, labels, OURS, refs)
            print(
                f"{title:<20} {is_numeric_question(texts)!s:<8} {one_group:<10.3f} {exact:<11.3f} {shown:<10} "
                f"{peer:.3f} ({peer_groups:>2})        {ours:.3f} ({our_groups:>2})        {ours / peer:.2f}"
            )


def corpus_table(embed) -> None:
    """Numeric questions in the corpora, and APA per split with and without the step."""
    questions = load_corpora(CORPORA)
    print("\ncorpus, split                          questions  numeric  peer APA  ours APA")
    splits: dict[tuple[str, str], list] = {}
    for q in questions:
        splits.setdefault((q.dataset or "", q.split or ""), []).append(q)
    for (dataset, split), qs in splits.items():
        totals = {"peer": 0, "ours": 0}
        answers = numeric = 0
        for q in qs:
            texts = [a.normalized for a in q.answers]
            labels = [str(a.gold) for a in q.answers]
            vectors, refs = embed(texts), references_of(q, embed)
            numeric += is_numeric_question(texts)
            for key, settings in (("peer", PEER), ("ours", OURS)):
                totals[key] += actions(group_embeddings(vectors, texts, settings, references=refs), labels)
            answers += len(labels)
        print(
            f"{dataset + ', ' + split:<38} {len(qs):>9}  {numeric:>7}  {totals['peer'] / answers:.3f}     "
            f"{totals['ours'] / answers:.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="store file whose embedding cache to use (e.g. var/embeddings.sqlite)")
    parser.add_argument("--samples-only", action="store_true", help="skip the corpora")
    args = parser.parse_args(argv)
    embed = embedder(args.cache)
    sample_table(embed)
    if not args.samples_only:
        corpus_table(embed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
