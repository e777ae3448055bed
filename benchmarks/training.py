r"""Benchmark of the data flywheel's training: time, and zero-shot APA before and after.

Corrections are simulated on the corpora's ``train`` questions from their gold grades: what a
complete review would have logged (answers graded alike are must-links, answers graded
differently are cannot-links, within each question). The base model is fine-tuned on them
through the product's own path (:func:`grouper.training.retrain`: balanced pairs, validation
by question, early stopping, a version published in a registry, the run recorded in MLflow),
with the ``unseen-questions`` and ``unseen-domains`` questions as the held-out set that
decides activation. Zero-shot APA is then reported for every corpus and split, parent and
candidate, so a regression anywhere shows.

``--adaptation`` adds the within-question fast path: the oracle instructor of the benchmark
protocol reviews groups one at a time, and after each review
:func:`grouper.adaptation.adapt_regroup` refits the projection head on the answers reviewed
so far and regroups the answers not yet reviewed (flywheel mode with adaptation only):
``regroup`` re-clusters them in the adapted space, ``assign`` first offers, per reviewed
grade, the answers whose reviewed neighbours agree on it. The initial grouping here is
``group_embeddings`` without reference answers, and the zero-shot figure beside it is of that
same grouping, so the two compare like with like. A stand-in until ``grouper evaluate --mode
flywheel`` exists; the official figures come from there.

Run (CPU figures on a shared machine vary with its load; the threads flag matters there)::

    .venv/bin/python benchmarks/training.py --max-pairs 1000 --threads 1 --out benchmarks/results/training-1000.json
    .venv/bin/python benchmarks/training.py --max-pairs 4000 --learning-rate 5e-5 --eval-every 20 \
        --threads 1 --out benchmarks/results/training-4000.json
    .venv/bin/python benchmarks/training.py --skip-training --adaptation --adaptation-questions 4 \
        --adaptation-version base --threads 1 --out benchmarks/results/adaptation.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grouper.adaptation import AdaptationSettings, adapt_regroup, pairs_from_labels  # noqa: E402
from grouper.answers import Question, load_answers  # noqa: E402
from grouper.clustering import group_embeddings  # noqa: E402
from grouper.edits import CONFIRMED, Confirm, GradeAnswer, GradeGroup, Move, apply, initial_state, make_edit  # noqa: E402
from grouper.evaluation.oracle import review_order  # noqa: E402
from grouper.embedding import Encoder, choose_device  # noqa: E402
from grouper.evaluation.apa import count_review, majority_label  # noqa: E402
from grouper.evaluation.runner import evaluate_questions, summarise  # noqa: E402
from grouper.model_versions import ModelRegistry  # noqa: E402
from grouper.pairs import TrainingPair  # noqa: E402
from grouper.store import Store  # noqa: E402
from grouper.training import FineTuneSettings, TrackingSettings, apa_metric, retrain  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
CORPORA = ("saf-en", "semeval2013-beetle", "semeval2013-scientsbank")
MIN_ANSWERS = 20


def load_questions(folder: Path) -> list[Question]:
    questions = []
    for name in CORPORA:
        questions.extend(load_answers(folder / f"{name}.jsonl"))
    return questions


def simulated_pairs(questions: Sequence[Question], per_question: int, rng: np.random.Generator) -> list[TrainingPair]:
    """Gold-grade pairs within each question, balanced and capped per question."""
    pairs: list[TrainingPair] = []
    for q in questions:
        answers = [a for a in q.answers if a.normalized]
        labels = np.array([a.gold for a in answers], dtype=object)
        ids = {g: i for i, g in enumerate(sorted(set(labels)))}
        idx = pairs_from_labels(np.array([ids[g] for g in labels]), rng, per_question)
        for i, j, together in idx:
            a, b = answers[i], answers[j]
            pairs.append(TrainingPair(q.question_id, a.answer_id, b.answer_id, a.normalized, b.normalized,
                                      bool(together), edit_id=None, author="simulated-oracle"))
    return pairs


def zero_shot_apa(encoder: Encoder, questions: Sequence[Question], cache) -> dict[str, dict[str, float]]:
    """The official zero-shot APA (``grouper evaluate``'s runner) per corpus/split."""
    results = evaluate_questions(questions, encoder, mode="zero-shot", cache=cache)
    return {
        f"{r.dataset}/{r.split}": {"apa": round(r.apa, 4), "one_group": round(r.one_group, 4), "exact": round(r.exact, 4),
                                   "questions": r.questions, "answers": r.answers}
        for r in summarise(results)
    }


def _own_zero_shot(vectors: np.ndarray, texts: Sequence[str], gold: Sequence[str]) -> tuple[int, int]:
    """Zero-shot actions of the simulation's own grouping (no reference answers), so that its
    figures compare like with like."""
    grouping = group_embeddings(vectors, texts)
    count = count_review([[gold[i] for i in g.members] for g in grouping.groups], len(grouping.ungrouped))
    return count.actions, count.answers


def adaptation_apa(
    question: Question,
    vectors: np.ndarray,
    settings: AdaptationSettings,
    rng: np.random.Generator,
    *,
    assign_confidence: float | None,
) -> tuple[int, int, float]:
    """The oracle instructor with the fast path after every reviewed group, through edits.

    The oracle's review is the protocol's (wrong members moved out and graded, the group
    confirmed and graded); after each review :func:`grouper.adaptation.adapt_regroup` fits
    the head to what is reviewed and regroups the rest, its edits applied as a model's; the
    next group is the first in the UI's order. Pure folds of the edit log, no store.

    Returns (actions, answers, seconds spent adapting).
    """
    ids = [a.answer_id for a in question.answers]
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    scale = {g: float(i) for i, g in enumerate(sorted(set(gold.values())))}
    state = initial_state(question.question_id, ids, group_embeddings(vectors, [a.normalized for a in question.answers]))

    def edit(payload, author: str = "oracle") -> None:
        nonlocal state
        state = apply(state, make_edit(state, author, payload))

    actions = 0
    seconds = 0.0
    while True:
        pending = [g for g in review_order(state) if state.groups[g].status != CONFIRMED and state.groups[g].members]
        if not pending:
            break
        group = state.groups[pending[0]]
        label = majority_label([gold[a] for a in group.members])
        for a in [a for a in group.members if gold[a] != label]:
            edit(Move((a,), None))
            edit(GradeAnswer(a, scale[gold[a]], gold[a]))
            actions += 1
        edit(Confirm(group.group_id))
        edit(GradeGroup(group.group_id, scale[label], label))
        actions += 1
        started = time.perf_counter()
        payloads, _ = adapt_regroup(state, question.answers, vectors, settings, rng=rng,
                                    assign_confidence=assign_confidence)
        seconds += time.perf_counter() - started
        for payload in payloads:
            edit(payload, author="model:adaptation")
    for a in ids:  # the answers left ungraded are graded one by one
        if state.grade_of(a) is None:
            edit(GradeAnswer(a, scale[gold[a]], gold[a]))
            actions += 1
    assert all(state.grade_of(a).comment == gold[a] for a in ids)
    return actions, len(ids), seconds


def run_adaptation(encoder: Encoder, cache, questions: Sequence[Question], per_split: int,
                   settings: AdaptationSettings, strategies: Sequence[str], seed: int) -> dict:
    by_split: dict[str, list[Question]] = {}
    for q in questions:
        if len(q.answers) >= MIN_ANSWERS:
            by_split.setdefault(f"{q.dataset}/{q.split}", []).append(q)
    out: dict[str, dict] = {}
    for key, qs in sorted(by_split.items()):
        rng = np.random.default_rng(seed)
        chosen = [qs[i] for i in sorted(rng.choice(len(qs), size=min(per_split, len(qs)), replace=False))]
        row: dict[str, float | int] = {"questions": len(chosen)}
        data = []
        for q in chosen:
            texts = [x.normalized for x in q.answers]
            data.append((encoder.encode(texts, cache=cache).vectors, texts, [str(x.gold) for x in q.answers]))
        actions = [_own_zero_shot(v, t, g) for v, t, g in data]
        row["answers"] = sum(n for _, n in actions)
        row["zero_shot_apa"] = round(sum(a for a, _ in actions) / row["answers"], 4)
        row["one_group_apa"] = round(sum(count_review([g], 0).actions for _, _, g in data) / row["answers"], 4)
        for strategy in strategies:
            total_a = total_n = 0
            seconds = 0.0
            for q, (v, _, _) in zip(chosen, data):
                a, n, sec = adaptation_apa(q, v, settings, np.random.default_rng(seed),
                                           assign_confidence=0.6 if strategy == "assign" else None)
                total_a += a
                total_n += n
                seconds += sec
            row[f"adaptation_{strategy}_apa"] = round(total_a / total_n, 4)
            row[f"adaptation_{strategy}_seconds"] = round(seconds, 2)
        out[key] = row
        print(key, json.dumps(row), flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--max-pairs", type=int, default=2000, help="training pairs after balancing")
    parser.add_argument("--pairs-per-question", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=10, help="validate (for early stopping) every N steps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is fastest on a busy shared CPU)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=REPO / "var" / "bench-embeddings.sqlite",
                        help="a store file used as the embedding cache")
    parser.add_argument("--models", type=Path, default=REPO / "var" / "bench-models")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--adaptation", action="store_true")
    parser.add_argument("--adaptation-questions", type=int, default=10, help="questions per split for --adaptation")
    parser.add_argument("--adaptation-version", default=None, help="model version of the registry for --adaptation")
    parser.add_argument("--strategies", default="regroup,assign")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "training.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    questions = load_questions(args.datasets)
    train = [q for q in questions if q.split == "train"]
    held = [q for q in questions if q.split != "train"]
    report: dict = {"device": str(device), "torch_threads": torch.get_num_threads()}
    if args.out.is_file():
        report = {**json.loads(args.out.read_text()), **report}
    registry = ModelRegistry(args.models)

    cache_store = Store.open(args.cache)
    cache = cache_store.embeddings
    if not args.skip_training:
        rng = np.random.default_rng(args.seed)
        pairs = simulated_pairs(train, args.pairs_per_question, rng)
        settings = FineTuneSettings(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                    max_pairs=args.max_pairs, max_steps=args.max_steps, eval_every=args.eval_every)
        started = time.perf_counter()
        outcome = retrain(pairs, apa_metric(held, cache=cache), rng=rng, registry=registry, settings=settings,
                          held_out=sorted(q.question_id for q in held), device=device,
                          tracking=TrackingSettings(), progress=True)
        wall = time.perf_counter() - started
        card = outcome.card
        all_splits = {
            which: zero_shot_apa(registry.load(version, device=device), questions, cache)
            for which, version in (("parent", card.parent), ("candidate", card.version))
        }
        report["training"] = {
            "version": card.version, "parent": card.parent, "activated": outcome.activated, "decision": card.decision,
            "pairs_simulated": len(pairs), "run": card.training["run"], "settings": card.training["settings"],
            "held_out_metric": card.metrics, "zero_shot_all_splits": all_splits,
            "retrain_wall_seconds_incl_evaluation": round(wall, 1), "mlflow_run_id": outcome.run_id,
        }
        print(json.dumps(report["training"], indent=2), flush=True)

    if args.adaptation:
        version = args.adaptation_version or registry.active()
        encoder = registry.load(version, device=device)
        report[f"adaptation[{version}]"] = run_adaptation(
            encoder, cache, questions, args.adaptation_questions, AdaptationSettings(), args.strategies.split(","), args.seed
        )
    cache_store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
