"""``grouper evaluate``: the APA benchmark of ``../shared/benchmark-protocol.md`` on answer files."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from grouper.answers import load_answers
from grouper.clustering import GroupingSettings
from grouper.evaluation.apa import MIN_ANSWERS, MODES

if TYPE_CHECKING:
    from grouper.evaluation.runner import QuestionResult, SplitResult

_TARGET_RATIO = 0.8  # the target: APA at most 0.8 x the better trivial baseline


def _cmd_evaluate(args: argparse.Namespace) -> int:
    flywheel_only = args.no_retrain or args.max_pairs is not None or args.keep_models or args.pairs is not None
    if args.mode != "flywheel" and flywheel_only:
        print("grouper: --no-retrain, --max-pairs, --pairs and --keep-models need --mode flywheel", file=sys.stderr)
        return 2
    if args.max_pairs is not None and args.max_pairs < 2:
        print(f"grouper: --max-pairs ({args.max_pairs}) must be at least 2", file=sys.stderr)
        return 2
    from grouper.embedding import Encoder, choose_device
    from grouper.evaluation.runner import evaluate_questions, summarise
    from grouper.store import Store

    if args.min_answers < 1:
        print(f"grouper: --min-answers ({args.min_answers}) must be at least 1", file=sys.stderr)
        return 2
    # Read every file and check every option before loading the model: a bad file or a
    # mistyped path fails in a second, not a minute (or after the first file's questions).
    files = [(Path(path).stem, load_answers(path, encoding=args.encoding, require_gold=args.min_answers)) for path in args.files]
    device = choose_device(args.device)
    _check_store_path(args.log_db, "--log-db", created=False)
    if args.cache and "://" not in args.cache:
        Path(args.cache).expanduser().parent.mkdir(parents=True, exist_ok=True)
    if args.cache:
        _check_store_path(args.cache, "--cache", created=True)
    if not any(len(q.answers) >= args.min_answers for _, questions in files for q in questions):
        print(f"grouper: no question in the file(s) has {args.min_answers} or more answers: nothing to measure", file=sys.stderr)
        return 2
    in_memory = args.log_db == "sqlite://"
    if not in_memory:
        clash = _log_clash(args.files, files, args.log_db, args.min_answers)
        if clash:
            print(f"grouper: {clash}", file=sys.stderr)
            return 2
    encoder = Encoder(device=device)
    settings = GroupingSettings(use_references=not args.no_references)
    cache_store = Store(args.cache) if args.cache else None

    def progress(result: QuestionResult) -> None:
        if args.verbose:
            print(f"  {result.dataset} {result.split} {result.question_id}: APA {result.apa:.3f}", file=sys.stderr)

    flywheel = None
    if args.mode == "flywheel":
        from dataclasses import replace

        from grouper.evaluation.flywheel import DEFAULT_FINE_TUNE
        from grouper.evaluation.runner import FlywheelSettings

        fine_tune = DEFAULT_FINE_TUNE if args.max_pairs is None else replace(DEFAULT_FINE_TUNE, max_pairs=args.max_pairs)
        keep = Path(args.keep_models) if args.keep_models else None
        flywheel = FlywheelSettings(
            retrain=not args.no_retrain, fine_tune=fine_tune, keep_models=keep, pair_sources=tuple(args.pairs or ["references"])
        )

    def on_retrained(summary: dict) -> None:
        # On stderr, so that --json prints exactly the promised object.
        if "steps" not in summary:
            print(f"  {summary['dataset']}: not fine-tuned ({summary['reason']}); its other splits use the parent model", file=sys.stderr)
            return
        print(
            f"  {summary['dataset']}: fine-tuned on {summary['n_train_pairs']} of {summary['pairs']} pairs from the train questions' log: "
            f"{summary['steps']} steps, {summary['seconds']:.0f} s on {summary['device']} ({summary['precision']}), "
            f"validation loss {summary['val_loss_before']} -> {summary['val_loss_best']}; "
            f"{'used' if summary['used'] else 'NOT used'}: {summary['reason']}",
            file=sys.stderr,
        )

    started = time.perf_counter()
    results: list[QuestionResult] = []
    log_store = None
    try:
        for name, questions in files:
            # In memory, each file gets its own log, so that files may reuse question ids.
            if log_store is None or in_memory:
                if log_store is not None:
                    log_store.close()
                log_store = Store(args.log_db)
            results.extend(
                evaluate_questions(
                    questions,
                    encoder,
                    settings,
                    mode=args.mode,
                    cache=cache_store.embeddings if cache_store is not None else None,
                    store=log_store,
                    min_answers=args.min_answers,
                    default_dataset=name,
                    on_question=progress,
                    flywheel=flywheel,
                    on_retrained=on_retrained,
                )
            )
    finally:
        for store in (log_store, cache_store):
            if store is not None:
                store.close()
    splits = summarise(results)
    if args.json:
        json.dump(_as_json(splits, results), sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_table(splits, sys.stdout)
        print(f"{len(results)} questions, {sum(r.answers for r in results)} answers, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stdout)
    return 0


def _log_clash(paths: list[str], files: list[tuple[str, list]], log_db: str, min_answers: int) -> str | None:
    """Why the measured questions cannot all be logged in the one ``--log-db`` store (a
    question id in two files, or already in that store), naming file and question; ``None``
    when they can. Said before the model loads: the store would refuse the question only
    after the files before it were measured, and their results were lost."""
    from grouper.store import Store, sqlite_file

    first: dict[str, str] = {}
    for path, (_, questions) in zip(paths, files, strict=True):
        for q in questions:
            if len(q.answers) < min_answers:
                continue
            if q.question_id in first:
                return (
                    f"question {q.question_id!r} is in {first[q.question_id]} and again in {path}, and one "
                    f"--log-db store holds each question once; give another --log-db, or none"
                )
            first[q.question_id] = path
    where = sqlite_file(log_db)
    if where is not None and not where.exists():
        return None
    with Store(log_db) as store:
        stored = set(store.question_ids())
    for qid, path in first.items():
        if qid in stored:
            return f"{path}: question {qid!r} is already in {log_db}; give a new --log-db file (or none)"
    return None


def _check_store_path(value: str, option: str, *, created: bool) -> None:
    """A SQLite store named by a path or ``sqlite:///`` URL must be a file in a folder that
    exists (``created``: the folder was just made); a server URL is taken as is."""
    from grouper.store import sqlite_file

    path = sqlite_file(value)
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"{option} {value} is a folder; name a database file in it, e.g. {path / 'grouper.sqlite'}")
    if not created and not path.parent.is_dir():
        raise ValueError(f"{option} {value}: the folder {path.parent} does not exist; create it first")


def _as_json(splits: list[SplitResult], results: list[QuestionResult]) -> dict:
    return {
        "splits": [
            {
                "dataset": s.dataset,
                "split": s.split,
                "questions": s.questions,
                "answers": s.answers,
                "apa": round(s.apa, 6),
                "one_group": round(s.one_group, 6),
                "exact": round(s.exact, 6),
            }
            for s in splits
        ],
        "questions": [
            {
                "question_id": r.question_id,
                "split": r.split,
                "answers": r.answers,
                "apa": round(r.apa, 6),
            }
            for r in results
        ],
    }


def _print_table(splits: list[SplitResult], out) -> None:
    header = f"{'dataset':<26} {'split':<17} {'questions':>9} {'answers':>7} {'APA':>6} {'one group':>9} {'exact':>6} {'floor':>6} {'ratio':>6}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for s in splits:
        verdict = "hit" if s.ratio <= _TARGET_RATIO else "miss"
        print(
            f"{s.dataset:<26} {s.split:<17} {s.questions:>9} {s.answers:>7} {s.apa:>6.3f} {s.one_group:>9.3f} "
            f"{s.exact:>6.3f} {s.floor:>6.3f} {s.ratio:>6.3f}  {verdict}",
            file=out,
        )
    print(f"ratio: APA / min(one group, exact); target <= {_TARGET_RATIO}", file=out)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    parser = sub.add_parser(
        "evaluate",
        help="measure grading actions per answer (APA) with an oracle instructor on files with gold grades",
        description=(
            "Group every question with at least --min-answers answers as the product does, let an oracle "
            "instructor who knows the gold grades review the groups through the edit log, and print APA per "
            "corpus and split with the one-group and exact-text baselines."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="answer file(s) with a label (gold grade) column")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="zero-shot",
        help=(
            "zero-shot (default): group once, then grade; flywheel: grade each file's train questions first, "
            "fine-tune the encoder on their logged corrections, group the other questions with it, and "
            "re-cut the answers not reviewed yet after every reviewed group"
        ),
    )
    parser.add_argument(
        "--no-retrain",
        action="store_true",
        help="flywheel mode without fine-tuning: only the within-question adaptation",
    )
    parser.add_argument(
        "--max-pairs",
        type=int,
        metavar="N",
        help="flywheel mode: fine-tune on at most N pairs (default 4000; more trains longer)",
    )
    parser.add_argument(
        "--pairs",
        nargs="+",
        choices=("references", "answers"),
        default=None,
        help="flywheel mode: fine-tune on graded answers against the reference answers (default: references), "
        "on must/cannot-links among answers, or both",
    )
    parser.add_argument(
        "--keep-models",
        metavar="DIR",
        help="flywheel mode: save each corpus's fine-tuned model in DIR/<dataset> (safetensors)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object with per-split and per-question APA")
    parser.add_argument(
        "--cache",
        metavar="DB",
        help="keep embeddings in this store file (or URL) between runs, e.g. var/embeddings.sqlite",
    )
    parser.add_argument(
        "--log-db",
        default="sqlite://",
        metavar="URL",
        help="store for the imported questions and the oracle's edit log (default: in memory)",
    )
    parser.add_argument("--min-answers", type=int, default=MIN_ANSWERS, help=f"evaluate questions with at least this many answers (default {MIN_ANSWERS})")
    parser.add_argument("--no-references", action="store_true", help="ignore the files' reference answers (HDBSCAN grouping only)")
    parser.add_argument("--encoding", help="decode input with this codec instead of detecting UTF-8/UTF-16")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each question's APA to stderr as it is known")
    parser.set_defaults(func=_cmd_evaluate)
