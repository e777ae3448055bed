"""How many wrongly graded answers the grade check finds, on the real corpora.

Every question with at least 20 answers of ``../shared/datasets/`` is grouped as the product
groups it (reference answers included). A hurried grader who knows the gold grades then
reviews each group in the groups page's order, through the fold (``make_edit`` / ``apply``):
each member whose gold grade is not the group's majority is caught and moved out with
probability ``1 - miss``, else it stays and gets the group's grade (the error group grading
risks); the group is graded its majority grade, and every ungrouped answer is graded on its own,
correctly. Each gold label is a score (``grouper.evaluation.oracle.grade_scale``).

Then :func:`grouper.grade_check.grade_doubts` ranks the graded answers, and an instructor
checks them in that order. For each ranking: the share of the wrong grades among the first
10 % and 20 % of the answers checked (recall at that budget), and the average precision of
the whole ranking. Rankings, all from the same run:

- ``grade check`` (ours): the product's doubt (typicality and held-out grade model, twins first);
- ``least typical`` (the peer): members least typical of their group first, the product's
  own cue before this check (the groups page lists members so), answers graded alone last;
- ``grade model``: the held-out model's raw probability of the score alone (not relative to the
  groupmates), to show what the comparison with them adds;
- ``random``: what checking a sample gives.

``--timing 1000,10000`` instead times one ranking of a question of that many answers (the
SciEntsBank answers pooled, grouped and graded by the hurried grader), against the peer's
ranking: the typicality of every member in its group, nothing fitted (best of 3 runs each).

Usage::

    .venv/bin/python benchmarks/grade_check.py --cache var/embeddings.sqlite [--miss 0.3] [--seeds 3]
    .venv/bin/python benchmarks/grade_check.py --cache var/embeddings.sqlite --timing 1000,10000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import embedder, load_corpora, references_of  # noqa: E402

from grouper.answers import Answer, Question  # noqa: E402
from grouper.clustering import group_embeddings  # noqa: E402
from grouper.edits import GradeAnswer, GradeGroup, Move, apply, initial_state, make_edit  # noqa: E402
from grouper.evaluation.oracle import grade_scale  # noqa: E402
from grouper.grade_check import grade_doubts  # noqa: E402
from grouper.review import listing_order, typicality  # noqa: E402

RANKINGS = ("grade check", "least typical", "grade model", "random")
BUDGETS = (0.10, 0.20)


def hurried_grading(question, vectors, references, miss: float, rng: np.random.Generator):
    """The question's state after the hurried grader, and the set of wrongly graded answers."""
    texts = [a.normalized for a in question.answers]
    grouping = group_embeddings(vectors, texts, references=references)
    ids = [a.answer_id for a in question.answers]
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    scale = grade_scale(list(gold.values()))
    state = initial_state(question.question_id, ids, grouping)
    wrong: set[str] = set()

    def do(payload):
        nonlocal state
        state = apply(state, make_edit(state, "bench", payload))

    for gid in listing_order(state):
        members = state.groups[gid].members
        labels = [gold[a] for a in members]
        majority = max(sorted(set(labels)), key=labels.count)
        caught = []
        for a in members:
            if gold[a] != majority:
                (wrong.add(a) if rng.random() < miss else caught.append(a))
        if caught:
            do(Move(tuple(caught), None))
        do(GradeGroup(gid, scale[majority], majority))
    for a in ids:
        if state.location[a] is None:
            do(GradeAnswer(a, scale[gold[a]], gold[a]))
    return state, wrong


def least_typical_ranking(state, vectors: dict) -> list[str]:
    """The peer's ranking: members least typical of their group first (what the groups page
    shows first in each group), answers graded alone last."""
    rank: list[tuple[bool, float, str]] = []
    for group in state.groups.values():
        members = [a for a in group.members if a not in state.overrides and group.grade is not None]
        if members:
            rank.extend((False, t, a) for a, t in zip(members, typicality(np.stack([vectors[a] for a in members])), strict=True))
    rank.extend((True, 1.0, a) for a in state.overrides)
    return [a for _, _, a in sorted(rank)]


def rankings(doubts, state, vectors: dict, rng: np.random.Generator) -> dict[str, list[str]]:
    """Answer ids in checking order, per ranking."""
    by_model = sorted(doubts, key=lambda d: 1.0 if d.probability is None else d.probability)
    shuffled = list(doubts)
    rng.shuffle(shuffled)
    return {
        "grade check": [d.answer_id for d in doubts],
        "least typical": least_typical_ranking(state, vectors),
        "grade model": [d.answer_id for d in by_model],
        "random": [d.answer_id for d in shuffled],
    }


def measure(order: list[str], wrong: set[str]) -> tuple[list[int], float]:
    """Wrong grades found within each budget, and the ranking's average precision."""
    hits = np.array([a in wrong for a in order])
    found = [int(hits[: max(1, round(b * len(order)))].sum()) for b in BUDGETS]
    ranks = np.flatnonzero(hits) + 1
    precision = float((np.arange(1, len(ranks) + 1) / ranks).mean()) if len(ranks) else 0.0
    return found, precision


def timing(sizes: list[int], embed) -> int:
    """Print the time of one ranking per question size, ours against the peer's."""
    pooled = [a for q in load_corpora() if q.dataset == "semeval2013-scientsbank" for a in q.answers]
    print("| answers | groups | grade check (s) | least typical (s) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for size in sizes:
        if size > len(pooled):
            raise SystemExit(f"--timing {size}: only {len(pooled)} answers to pool")
        answers = tuple(Answer(f"a{i}", "pooled", a.text, gold=a.gold) for i, a in enumerate(pooled[:size]))
        question = Question("pooled", "", answers)
        vectors = embed([a.normalized for a in answers])
        state, _ = hurried_grading(question, vectors, None, 0.3, np.random.default_rng(0))
        by_id = dict(zip([a.answer_id for a in answers], vectors, strict=True))
        ours, peer = [], []
        for _ in range(3):
            start = time.perf_counter()
            grade_doubts(state, answers, vectors)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            least_typical_ranking(state, by_id)
            peer.append(time.perf_counter() - start)
        print(f"| {size:,} | {len(state.groups):,} | {min(ours):.2f} | {min(peer):.2f} | {min(ours) / min(peer):.1f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="a store whose embedding cache to use (and fill)")
    parser.add_argument("--miss", type=float, default=0.3, help="share of the misplaced members the grader misses")
    parser.add_argument("--seeds", type=int, default=3, help="simulated graders per question")
    parser.add_argument("--timing", help="comma-separated question sizes to time instead (e.g. 1000,10000)")
    args = parser.parse_args(argv)
    embed = embedder(args.cache)
    if args.timing:
        return timing([int(n) for n in args.timing.split(",")], embed)
    # Per split: answers, wrong grades, found per ranking and budget, AP weighted by wrong grades.
    totals: dict[tuple[str, str], dict] = {}
    for question in load_corpora():
        vectors = embed([a.normalized for a in question.answers])
        references = references_of(question, embed)
        for seed in range(args.seeds):
            rng = np.random.default_rng([seed, len(question.answers)])
            state, wrong = hurried_grading(question, vectors, references, args.miss, rng)
            t = totals.setdefault(
                (question.dataset or "", question.split or ""),
                {"answers": 0, "wrong": 0, **{r: [[0] * len(BUDGETS), 0.0] for r in RANKINGS}},
            )
            t["answers"] += len(question.answers)
            t["wrong"] += len(wrong)
            if not wrong:
                continue
            doubts = grade_doubts(state, question.answers, vectors, references)
            by_id = dict(zip([a.answer_id for a in question.answers], vectors, strict=True))
            for name, order in rankings(doubts, state, by_id, rng).items():
                found, precision = measure(order, wrong)
                t[name][0] = [x + y for x, y in zip(t[name][0], found, strict=True)]
                t[name][1] += precision * len(wrong)
    print(f"miss {args.miss}, {args.seeds} simulated graders per question")
    print("| corpus, split | answers | wrong grades | ranking | found in first 10 % | in first 20 % | average precision | ratio to least typical (10 %) |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for (corpus, split), t in totals.items():
        peer = t["least typical"][0][0]
        for name in RANKINGS:
            found, precision = t[name]
            share = [f / max(t["wrong"], 1) for f in found]
            ratio = found[0] / peer if peer else float("nan")
            print(
                f"| {corpus} {split} | {t['answers']:,} | {t['wrong']:,} | {name} | {share[0]:.2f} | {share[1]:.2f} "
                f"| {precision / max(t['wrong'], 1):.2f} | {ratio:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
