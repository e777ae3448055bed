"""How often the groups page's rubric suggestion (key T) is the right grade, on the real corpora.

Every question with at least 20 answers of ``../shared/datasets/`` is grouped as the product
groups it (:func:`grouper.clustering.group_embeddings`, reference answers included) and given
a rubric of one item per gold grade. A grader who knows the gold grades then reviews the
groups in the order the groups page lists them (:func:`grouper.review.listing_order`) and
grades each by the item of its majority grade, through the fold (``make_edit`` / ``apply``).
Before each group is graded we look at what the page would offer:

- ``suggestion`` (ours): :func:`grouper.review.rubric_suggestion`, the items of the most
  similar group already graded by the rubric, when one is similar enough;
- ``most used`` (the peer, measured in the same run): the first "Grade as before" preset
  (:func:`grouper.review.grades_in_use`), the grade given most often so far: what reusing
  earlier grades offers without looking at the answers;
- ``previous``: the grade of the group graded just before.

For each we count groups where something was offered, and how often the offer was the
group's grade. The first group of a question is never counted (nothing is graded yet). With
real rubrics a grade is several items, so a right offer saves several keys; here each grade is
one item, so the figure to read is the hit rate.

Usage::

    .venv/bin/python benchmarks/rubric_suggestion.py --cache var/embeddings.sqlite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import embedder, load_corpora, references_of  # noqa: E402

from grouper.clustering import group_embeddings  # noqa: E402
from grouper.edits import GradeGroup, SetRubric, apply, initial_state, make_edit  # noqa: E402
from grouper.review import grades_in_use, listing_order, rubric_suggestion  # noqa: E402

OFFERS = ("suggestion", "most used", "previous")


def review(question, embed) -> dict[str, list[int]]:
    """Per offer: [groups where it was offered, of which right] over one question's groups."""
    texts = [a.normalized for a in question.answers]
    vectors = embed(texts)
    grouping = group_embeddings(vectors, texts, references=references_of(question, embed))
    ids = [a.answer_id for a in question.answers]
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    grades = sorted(set(gold.values()))
    item_of = {g: n for n, g in enumerate(grades, start=1)}
    state = initial_state(question.question_id, ids, grouping)
    state = apply(state, make_edit(state, "bench", SetRubric(tuple((n, g, float(n)) for g, n in item_of.items()))))
    by_id = dict(zip(ids, vectors, strict=True))
    counts = {name: [0, 0] for name in OFFERS}
    previous: tuple[int, ...] | None = None
    for gid in listing_order(state):
        members = state.groups[gid].members
        labels = [gold[a] for a in members]
        right = (item_of[max(grades, key=labels.count)],)  # the majority grade (ties: first in order)
        if state.version > 1:  # something is graded already
            offers = {
                "suggestion": (s.items if (s := rubric_suggestion(state, by_id, gid)) else None),
                "most used": (presets[0].items if (presets := grades_in_use(state)) else None),
                "previous": previous,
            }
            for name, offered in offers.items():
                if offered is not None:
                    counts[name][0] += 1
                    counts[name][1] += offered == right
        state = apply(state, make_edit(state, "bench", GradeGroup(gid, None, items=right)))
        previous = right
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="a store whose embedding cache to use (and fill)")
    args = parser.parse_args(argv)
    embed = embedder(args.cache)
    totals: dict[str, dict[str, list[int]]] = {}
    for question in load_corpora():
        corpus = question.dataset or ""
        counts = review(question, embed)
        for name, (offered, right) in counts.items():
            t = totals.setdefault(corpus, {n: [0, 0] for n in OFFERS})[name]
            t[0] += offered
            t[1] += right
    print("| corpus | offer | groups offered | right | hit rate | ratio to most used |")
    print("|---|---|---:|---:|---:|---:|")
    for corpus, table in totals.items():
        peer = table["most used"][1] / max(table["most used"][0], 1)
        for name in OFFERS:
            offered, right = table[name]
            rate = right / max(offered, 1)
            print(f"| {corpus} | {name} | {offered:,} | {right:,} | {rate:.3f} | {rate / peer if peer else float('nan'):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
