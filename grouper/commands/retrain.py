"""``grouper retrain``, ``grouper models`` and ``grouper regroup``: the data flywheel.

``retrain`` turns the store's edit log into must-link / cannot-link pairs, fine-tunes the
active model on them, measures parent and candidate on held-out questions (zero-shot APA),
publishes the candidate as a new version in ``models/`` and activates it only if it wins::

    grouper retrain --db grades.sqlite
    grouper retrain --db grades.sqlite --held-out q7 --held-out q9 --epochs 2
    grouper retrain --db grades.sqlite --held-out-file graded_last_year.csv --regroup

Held-out questions are never trained on. They are either named (``--held-out``: stored
questions whose every answer is graded, their final grades being the gold), given as graded
answer files (``--held-out-file``), or drawn with the seed from the fully graded questions.

``models`` lists the versions (``--activate V`` switches, e.g. to roll back); ``regroup``
regroups the answers nobody has confirmed or graded with the active model, keeping confirmed
and graded groups and their ids, the groups a grader merged, split, renamed or made, and the
answers a grader moved. Exit status: 0 done (a candidate that lost is still a success: it is
kept and its card says why), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from grouper.commands._model_options import add_models_option, registry_of
from grouper.commands._store_options import add_db_option, open_store

_MIN_ANSWERS = 20  # the benchmark protocol's floor for a question to count


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time; use ISO 8601, e.g. 2026-05-01") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _cmd_retrain(args: argparse.Namespace) -> int:
    from grouper.answers import load_answers
    from grouper.embedding import choose_device
    from grouper.feedback import course_questions
    from grouper.training import FineTuneSettings, TrackingSettings, retrain_from_store

    registry = registry_of(args)
    held_files = [q for path in args.held_out_file or [] for q in load_answers(path)]
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate, "max_pairs": args.max_pairs}
    settings = FineTuneSettings(**{k: v for k, v in given.items() if v is not None}, max_steps=args.max_steps)
    device = choose_device(args.device)
    print(f"retraining {registry.active()} on the corrections in {args.db or 'the default store'}; device {device}",
          file=sys.stderr)
    store = open_store(args)
    try:
        outcome = retrain_from_store(
            store, rng=np.random.default_rng(args.seed), registry=registry, settings=settings,
            questions=course_questions(store, args.course, within=args.question) if args.course else args.question,
            authors=args.author, since=args.since, until=args.until,
            held_out=args.held_out or (), held_out_questions=held_files,
            held_out_fraction=args.held_out_fraction, min_answers=args.min_answers, device=device,
            tracking=TrackingSettings(folder=args.mlflow), progress=None,
            pair_sources=tuple(args.pairs) if args.pairs else None,
        )
    finally:
        store.close()
    card = outcome.card
    summary = {
        "version": card.version,
        "parent": card.parent,
        "activated": outcome.activated,
        "decision": card.decision,
        "metrics": card.metrics,
        "training": card.training["run"],
        "mlflow_run_id": outcome.run_id,
    }
    print(json.dumps(summary, indent=2) if args.json else _describe(summary))
    if args.regroup and outcome.activated:
        return _regroup_all(args, registry, device)
    return 0


def _describe(summary: dict) -> str:
    metrics = summary["metrics"]
    lines = [
        f"version {summary['version']} (from {summary['parent']}): "
        + ("ACTIVATED" if summary["activated"] else "kept, not activated"),
        f"  {summary['decision']}",
    ]
    for key in metrics["parent"]:
        lines.append(f"  {metrics['metric']} {key}: {metrics['parent'][key]:.4f} -> {metrics['candidate'][key]:.4f}")
    run = summary["training"]
    lines.append(
        f"  trained {run['steps']} steps on {run['n_train_pairs']} pairs in {run['seconds']:.1f} s on {run['device']}"
        + (", stopped early" if run["stopped_early"] else "")
    )
    return "\n".join(lines)


def _regroup_all(args: argparse.Namespace, registry, device) -> int:
    from grouper.regroup import regroup_store

    store = open_store(args)
    try:
        report = regroup_store(store, registry, questions=args.question, device=device)
    finally:
        store.close()
    for qid, (done, refused) in report.items():
        line = f"question {qid}: {done} regrouping edit(s)"
        print(line + (f"; stopped: {refused}" if refused else ""), file=sys.stderr)
    return 0


def _cmd_regroup(args: argparse.Namespace) -> int:
    from grouper.embedding import choose_device

    return _regroup_all(args, registry_of(args), choose_device(args.device))


def _cmd_models(args: argparse.Namespace) -> int:

    registry = registry_of(args)
    if args.activate:
        registry.set_active(args.activate, force=args.force)
    active = registry.active()
    rows = []
    for version in registry.versions():
        card = registry.card(version)
        rows.append({
            "version": version, "active": version == active, "parent": card.parent,
            "created_at": card.created_at, "beats_parent": card.beats_parent, "decision": card.decision,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            mark = "*" if r["active"] else " "
            print(f"{mark} {r['version']:<6} parent={r['parent'] or '-':<6} {r['created_at']}  {r['decision']}")
    return 0


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    add_models_option(parser)
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``retrain``, ``models`` and ``regroup`` commands."""
    # The fine-tuning defaults are FineTuneSettings'; importing it here would load torch for
    # every command.
    p = sub.add_parser("retrain", help="fine-tune the model on the logged corrections; activate it if it beats its parent")
    add_db_option(p)
    _add_model_options(p)
    p.add_argument("-q", "--question", action="append", help="train on these questions only (repeatable)")
    p.add_argument("--course", action="append", help="train on this course's questions only (repeatable)")
    p.add_argument("--author", action="append", help="learn from these graders' edits only (repeatable)")
    p.add_argument("--since", type=_when, help="edits at or after this time (ISO 8601, UTC unless given)")
    p.add_argument("--until", type=_when, help="edits before this time (ISO 8601, UTC unless given)")
    p.add_argument("--held-out", action="append", metavar="QUESTION", help="a fully graded stored question to check on, never trained on")
    p.add_argument("--held-out-file", action="append", metavar="FILE", help="a graded answer file to check on (repeatable)")
    p.add_argument("--held-out-fraction", type=float, default=0.25,
                   help="without --held-out*, hold out this share of the fully graded questions (default 0.25)")
    p.add_argument("--min-answers", type=int, default=_MIN_ANSWERS, help="held-out questions need this many answers")
    p.add_argument("--epochs", type=int, default=None, help="passes over the pairs (default: FineTuneSettings')")
    p.add_argument("--batch-size", type=int, default=None, help="pairs per step (default: FineTuneSettings')")
    p.add_argument("--learning-rate", type=float, default=None, help="AdamW's (default: FineTuneSettings')")
    p.add_argument("--max-pairs", type=int, default=None, help="at most this many pairs (default: FineTuneSettings')")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--pairs", nargs="+", choices=("answers", "references"), default=None,
        help="learn from graded answers against the reference answers, from the links among answers in "
        "the log, or both (default: the reference pairs when the questions give any and no --author, "
        "--since or --until is given, else the answer links; reference pairs transferred best)",
    )
    p.add_argument("--mlflow", type=Path, default=None, help="MLflow store folder (default: $GROUPER_MLFLOW_DIR, else var/mlruns)")
    p.add_argument("--regroup", action="store_true", help="when activated, regroup every unconfirmed answer with it")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=_cmd_retrain)

    m = sub.add_parser("models", help="list model versions; --activate V to switch (a rollback, say)")
    _add_model_options(m)
    m.add_argument("--activate", metavar="VERSION")
    m.add_argument("--force", action="store_true", help="activate even a version that did not beat its parent")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_cmd_models)

    r = sub.add_parser("regroup", help="regroup unconfirmed, ungraded answers with the active model")
    add_db_option(r)
    _add_model_options(r)
    r.add_argument("-q", "--question", action="append", help="these questions only (repeatable)")
    r.set_defaults(func=_cmd_regroup)
