"""Where the ungrouped queue suggests the answers a grader moved out, on the real corpora.

Every question with at least 20 answers of ``../shared/datasets/`` is grouped as the product
groups it (reference answers included). The grader, who knows the gold grades, reviews every
group as the protocol's oracle does, through the fold (``make_edit`` / ``apply``): each member
whose gold grade is not the group's majority is moved out to the ungrouped answers, one move
each, and the group is graded its majority grade. Those answers then wait in the ungrouped
queue, each with a suggested group (:func:`grouper.review.review_queue`). A suggestion is right when the suggested group's
grade is the answer's gold grade: accepting it grades the answer correctly; wrong, when it
is not (no suggestion is neither).

Two rules, measured in the same run on the same states:

- ``nearest centre`` (the peer, the queue before this change): the group whose centre is
  most similar, whatever the graders did;
- ``following the graders`` (the product): the same, but never the group that holds the
  answers a grader moved it away from, nor a group graded as that one is (``grader_moves``).

A second table is about the queue's other half, the doubtful members of groups nobody has
reviewed, on the grouping as made (before any edit): how many are misplaced (their gold grade
is not their group's majority), against the share of all members that are (the peer: looking
at members at random), and how often moving one to its suggested group would fix its grade
(useful) or spoil it (harmful): offered whenever another centre is closer at all (the peer, the
rule before), and only when it leads the member's own by ``DOUBTFUL_LEAD`` (the product). The
last row is the same count on the groupings made without reference answers.

``--timing 10000`` instead times ``grader_moves`` and the queue on a question of that many
answers (the corpora's answers pooled into one question) after a grader moved a tenth of them
out, one move each, against the queue alone (best of 3).

Usage::

    .venv/bin/python benchmarks/review_queue.py --cache var/embeddings.sqlite
    .venv/bin/python benchmarks/review_queue.py --cache var/embeddings.sqlite --timing 10000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import embedder, load_corpora, references_of  # noqa: E402

from grouper.clustering import group_embeddings  # noqa: E402
from grouper.edits import GradeGroup, Move, QuestionState, apply, initial_state, make_edit  # noqa: E402
from grouper.evaluation.oracle import grade_scale  # noqa: E402
from grouper.review import DOUBTFUL_LEAD, grader_moves, review_queue  # noqa: E402

GRADER = "ta"


def graded_apart(question, vectors, references) -> tuple[QuestionState, dict[str, str]]:
    """The question's state after the grader moved every off-majority member out and graded
    each group its majority grade (the scores of ``grade_scale``)."""
    texts = [a.normalized for a in question.answers]
    ids = [a.answer_id for a in question.answers]
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    scale = grade_scale(list(gold.values()))
    state = initial_state(question.question_id, ids, group_embeddings(vectors, texts, references=references))
    for gid in sorted(state.groups):
        members = state.groups[gid].members
        majority = Counter(gold[a] for a in members).most_common(1)[0][0]
        for answer_id in [a for a in members if gold[a] != majority]:
            state = apply(state, make_edit(state, GRADER, Move((answer_id,), None)))
        state = apply(state, make_edit(state, GRADER, GradeGroup(gid, scale[majority])))
    return state, gold


def suggestions(state: QuestionState, vectors: dict[str, np.ndarray], follow: bool) -> dict[str, int | None]:
    groups = {g: group.members for g, group in state.groups.items()}
    queue = review_queue(groups, state.ungrouped, vectors, moves=grader_moves(state) if follow else None)
    return {item.answer_id: item.suggested_group for item in queue if item.reason == "ungrouped"}


def quality(cache: str | None) -> None:
    embed = embedder(cache)
    rows: dict[tuple[str, str], Counter] = {}
    doubts: dict[tuple[str, str], Counter] = {}
    for question in load_corpora():
        texts = [a.normalized for a in question.answers]
        vectors = embed(texts)
        references = references_of(question, embed)
        by_id = {a.answer_id: vectors[i] for i, a in enumerate(question.answers)}
        split = (question.dataset or "", question.split or "all")
        _doubtful(question, vectors, references, by_id, doubts.setdefault(split, Counter()))
        if references is not None:
            _doubtful(question, vectors, None, by_id, doubts.setdefault(("", "no references"), Counter()))
        state, gold = graded_apart(question, vectors, references)
        grade = {
            g: Counter(gold[a] for a in group.members).most_common(1)[0][0]
            for g, group in state.groups.items()
            if group.members
        }
        origin = _origins(state)
        count = rows.setdefault(split, Counter())
        peer, ours = suggestions(state, by_id, False), suggestions(state, by_id, True)
        for answer_id in state.ungrouped:
            count["moved out"] += 1
            count["some group has its grade"] += gold[answer_id] in grade.values()
            for name, chosen in (("peer", peer.get(answer_id)), ("ours", ours.get(answer_id))):
                count[f"{name} suggested"] += chosen is not None
                count[f"{name} back"] += chosen is not None and chosen == origin.get(answer_id)
                count[f"{name} right"] += chosen is not None and grade.get(chosen) == gold[answer_id]
    header = (
        "| corpus, split | moved out | a group has its grade | nearest centre: back where it was | "
        "right | wrong | following the graders: back | right | wrong | ratio (right) |"
    )
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    total: Counter = Counter()
    for (dataset, split), c in rows.items():
        total.update(c)
        print(_row(f"{dataset}, {split}", c))
    print(_row("all", total))
    print()
    print(
        "| corpus, split | doubtful | misplaced | all members misplaced (peer) | ratio "
        "| any closer centre (peer): offered | useful | harmful | leading by the margin: offered | useful | harmful |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    without = doubts.pop(("", "no references"), Counter())
    total = Counter()
    for (dataset, split), c in doubts.items():
        total.update(c)
        print(_doubt_row(f"{dataset}, {split}", c))
    print(_doubt_row("all", total))
    print(_doubt_row("all, grouped without reference answers", without))


def _doubtful(question, vectors, references, by_id, count: Counter) -> None:
    texts = [a.normalized for a in question.answers]
    ids = [a.answer_id for a in question.answers]
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    state = initial_state(question.question_id, ids, group_embeddings(vectors, texts, references=references))
    grade = {g: Counter(gold[a] for a in group.members).most_common(1)[0][0] for g, group in state.groups.items()}
    blank = {g for g, group in state.groups.items() if group.blank}
    for g, group in state.groups.items():
        if g not in blank and len(group.members) > 1:
            count["members"] += len(group.members)
            count["members misplaced"] += sum(gold[a] != grade[g] for a in group.members)
    groups = {g: group.members for g, group in state.groups.items()}
    for name, lead in (("peer", 0.0), ("ours", DOUBTFUL_LEAD)):
        for item in review_queue(groups, state.ungrouped, by_id, settled=blank, doubtful_lead=lead):
            if item.reason != "doubtful":
                continue
            here = grade[item.current_group] == gold[item.answer_id]
            if name == "ours":  # the same members either way: count them once
                count["doubtful"] += 1
                count["misplaced"] += not here
            if item.suggested_group is None:
                continue
            there = grade[item.suggested_group] == gold[item.answer_id]
            count[f"{name} offered"] += 1
            count[f"{name} useful"] += there and not here
            count[f"{name} harmful"] += here and not there


def _doubt_row(name: str, c: Counter) -> str:
    n = max(c["doubtful"], 1)
    base = c["members misplaced"] / max(c["members"], 1)
    return (
        f"| {name} | {c['doubtful']:,} | {c['misplaced'] / n:.2f} | {base:.2f} | {c['misplaced'] / n / base:.2f} | "
        + " | ".join(f"{c[f'{who} {what}']:,}" for who in ("peer", "ours") for what in ("offered", "useful", "harmful"))
        + " |"
    )


def _row(name: str, c: Counter) -> str:
    n = c["moved out"]
    ratio = c["ours right"] / c["peer right"] if c["peer right"] else float("nan")
    def wrong(name: str) -> float:
        return (c[f"{name} suggested"] - c[f"{name} right"]) / n

    return (
        f"| {name} | {n:,} | {c['some group has its grade'] / n:.2f} | {c['peer back'] / n:.2f} | "
        f"{c['peer right'] / n:.2f} | {wrong('peer'):.2f} | {c['ours back'] / n:.2f} | {c['ours right'] / n:.2f} | "
        f"{wrong('ours'):.2f} | {ratio:.2f} |"
    )


def _origins(state: QuestionState) -> dict[str, int | None]:
    """The group each ungrouped answer was last moved out of."""
    out: dict[str, int | None] = {}
    for edit_id in sorted(state.records):
        for answer_id, before in state.records[edit_id].locations_before.items():
            out[answer_id] = before
    return out


def timing(size: int, cache: str | None) -> None:
    embed = embedder(cache)
    answers = [a for q in load_corpora() for a in q.answers][:size]
    texts = [a.normalized for a in answers]
    vectors = embed(texts)
    ids = [f"x{i}" for i in range(len(answers))]
    state = initial_state("pooled", ids, group_embeddings(vectors, texts))
    rng = np.random.default_rng(0)
    grouped = [a for a in ids if state.location[a] is not None]
    for answer_id in rng.choice(grouped, size=len(ids) // 10, replace=False):
        state = apply(state, make_edit(state, GRADER, Move((str(answer_id),), None)))
    by_id = dict(zip(ids, vectors, strict=True))
    groups = {g: group.members for g, group in state.groups.items()}

    def best(fn) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    moves_s = best(lambda: grader_moves(state))
    moves = grader_moves(state)
    peer_s = best(lambda: review_queue(groups, state.ungrouped, by_id))
    ours_s = best(lambda: review_queue(groups, state.ungrouped, by_id, moves=moves))
    print("| answers | groups | moved out | grader_moves s | queue s | queue, nearest centre (peer) s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    total = moves_s + ours_s
    print(
        f"| {len(ids):,} | {len(state.groups)} | {len(state.ungrouped):,} | {moves_s:.3f} | {ours_s:.3f} | "
        f"{peer_s:.3f} | {total / peer_s:.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="store file whose embedding cache to use (e.g. var/embeddings.sqlite)")
    parser.add_argument("--timing", type=int, help="time the queue on a question of this many answers instead")
    args = parser.parse_args(argv)
    if args.timing:
        timing(args.timing, args.cache)
    else:
        quality(args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
