"""``grouper group`` and ``grouper demo``: group answer files and print the groups."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from grouper.answers import AnswerFileError, FileProblem, Question, load_answers
from grouper.clustering import GroupingSettings
from grouper.commands._model_options import active_encoder, add_models_option

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


def _plain(text: str, limit: int = 100) -> str:
    """Student text made safe for a terminal: control characters (escape sequences
    included) shown as code points, and long text shortened."""
    safe = "".join(
        ch if not unicodedata.category(ch).startswith("C") or ch == " " else f"\\u{ord(ch):04x}" for ch in text
    )
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def _settings(args: argparse.Namespace) -> GroupingSettings:
    """The grouping settings of the options, validated now: a bad value is reported before
    the model is loaded and the answers embedded, not after."""
    settings = GroupingSettings(min_cluster_size=args.min_cluster_size)
    settings.validate()
    return settings


def _load_questions(paths: Sequence[str], encoding: str | None, file_format: str | None) -> list[Question]:
    """Import every file (each all or nothing), refusing an answer id used by two files.

    Answer ids are unique within a file; across files the ``--json`` mapping, keyed by answer
    id, would silently keep only one of two answers that share an id.
    """
    questions: list[Question] = []
    first_file: dict[str, str] = {}
    for path in paths:
        loaded = load_answers(path, encoding=encoding, file_format=file_format)
        for question in loaded:
            for answer in question.answers:
                other = first_file.get(answer.answer_id)
                if other is not None:
                    raise AnswerFileError(
                        path,
                        [FileProblem(None, None, f"answer id {answer.answer_id!r} is also used in {other}")],
                    )
                first_file[answer.answer_id] = path
        questions.extend(loaded)
    return questions


def _print_summary(result, out) -> None:  # result: QuestionGrouping
    q = result.question
    grouping = result.grouping
    title = f"Question {_plain(q.question_id, 60)}"
    if q.text:
        title += f": {_plain(q.text, 90)}"
    print(title, file=out)
    n_ungrouped = len(grouping.ungrouped)
    counts = f"  {len(q.answers)} answers, {len(grouping.groups)} groups, {n_ungrouped} ungrouped"
    if result.truncated.any():
        counts += f", {int(result.truncated.sum())} truncated (longer than the encoder's limit)"
    print(counts, file=out)
    for group in grouping.groups:
        print(f"  [{group.group_id}] {len(group.members):>4}  {_plain(group.title, 70)}", file=out)
        for index in group.members[:3]:
            answer = q.answers[index]
            print(f"          - {_plain(answer.answer_id, 40)}: {_plain(answer.text, 80)}", file=out)
    if n_ungrouped:
        print(f"  ungrouped: {n_ungrouped}", file=out)
    truncated = [q.answers[i].answer_id for i in result.truncated.nonzero()[0]]
    if truncated:
        # Name them: only their beginning was embedded, so a grader should read them whole.
        shown = ", ".join(_plain(a, 40) for a in truncated[:10])
        more = f" and {len(truncated) - 10} more" if len(truncated) > 10 else ""
        print(f"  truncated (only their beginning was grouped): {shown}{more}", file=out)
    print(file=out)


def _cmd_group(args: argparse.Namespace) -> int:
    from grouper.pipeline import group_question

    settings = _settings(args)
    questions = _load_questions(args.files, args.encoding, args.format)
    encoder = active_encoder(args)
    mapping: dict[str, int | None] = {}
    for question in questions:
        result = group_question(question, encoder, settings)
        if args.json:
            mapping.update(result.group_of())
        else:
            _print_summary(result, sys.stdout)
    if args.json:
        json.dump(mapping, sys.stdout)  # ASCII: no raw control or bidi character reaches a terminal
        sys.stdout.write("\n")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    files = sorted(str(p) for p in SAMPLE_DATA.glob("*.csv"))
    if not files:
        print(f"grouper: no sample data found in {SAMPLE_DATA}", file=sys.stderr)
        return 1
    args.files = files
    args.json = False
    return _cmd_group(args)


def _add_grouping_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoding", help="decode input with this codec instead of detecting UTF-8/UTF-16")
    parser.add_argument("--format", choices=["csv", "json", "jsonl"], help="input format (default: from the suffix)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    add_models_option(parser)
    parser.add_argument("--min-cluster-size", type=int, default=GroupingSettings.min_cluster_size)



def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``group`` and ``demo`` commands."""
    group = sub.add_parser("group", help="group every question in answer files and print the groups")
    group.add_argument("files", nargs="+", metavar="FILE", help="CSV, JSON or JSONL answer file")
    group.add_argument("--json", action="store_true", help='print {"answer_id": group id or null, ...}')
    _add_grouping_options(group)
    group.set_defaults(func=_cmd_group)

    demo = sub.add_parser("demo", help="group the sample data")
    _add_grouping_options(demo)
    demo.set_defaults(func=_cmd_demo)
