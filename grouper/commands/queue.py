"""``grouper queue``: the answers waiting in the UI's ungrouped queue, with their suggestions.

    grouper queue --db course.sqlite -q q1 [--top 20] [--json]

The list is :func:`grouper.review.question_queue`: the ungrouped answers not yet graded on
their own (the ones most like a group first), then the doubtful members of groups nobody has
confirmed (least typical first). Each has the group it most resembles, never one a grader
moved it out of, nor one graded as that group is. Nothing is changed; accept a suggestion with
``grouper edit ... move A --to G``, or grade an answer with ``grouper edit ... grade-answer``.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from grouper.commands._model_options import add_models_option, registry_of, stored_vectors
from grouper.commands._store_options import add_db_option, fail, open_store, plain, reports_busy

if TYPE_CHECKING:
    from grouper.edits import QuestionState
    from grouper.review import GraderMoves, QueueItem


def _line(item: QueueItem, text: str, state: QuestionState, moves: GraderMoves) -> str:
    from grouper.review import no_suggestion_reason

    away = sorted(moves.moved_away_from.get(item.answer_id, ()))
    where = "ungrouped" if item.current_group is None else f"in group {item.current_group}"
    if away:
        where += f" (moved out of group {', '.join(map(str, away))})"
    if item.suggested_group is None:
        hint = no_suggestion_reason(moves, item)
    else:
        group = state.groups[item.suggested_group]
        own = f"; {item.current_similarity:.2f} to its own" if item.reason == "doubtful" else ""
        own_grade = state.overrides.get(item.answer_id)
        if own_grade is not None:  # it keeps its own grade wherever it goes (the UI says so too)
            grade = f"keeps its own grade {own_grade.score:g} there"
        else:
            grade = "not graded" if group.grade is None else f"graded {group.grade.score:g}"
        hint = f"-> group {item.suggested_group} \"{plain(group.title, 40)}\" (similarity {item.similarity:.2f}{own}; {grade})"
    return f"  {plain(item.answer_id, 24)}  {where}  {hint}\n      {plain(text, 90)}"


def _as_json(item: QueueItem, moves: GraderMoves, state: QuestionState) -> dict:
    # The grade the answer has once moved: its own where it has one, else the group's.
    own = state.overrides.get(item.answer_id)
    grade = None if item.suggested_group is None else own or state.groups[item.suggested_group].grade
    return {
        "answer_id": item.answer_id,
        "reason": item.reason,
        "current_group": item.current_group,
        "suggested_group": item.suggested_group,
        "similarity": item.similarity,
        "current_similarity": item.current_similarity if item.reason == "doubtful" else None,
        "moved_out_of": sorted(moves.moved_away_from.get(item.answer_id, ())),
        "suggested_grade": None if grade is None else {
            "score": grade.score, "comment": grade.comment, "items": list(grade.items), "adjustment": grade.adjustment,
        },
    }


@reports_busy
def _cmd_queue(args: argparse.Namespace) -> int:
    from grouper.review import grader_moves, question_queue

    if args.top < 0:
        return fail(f"--top must be 0 (all) or more, found {args.top}", 2)
    with open_store(args) as store:
        question = store.question(args.question)  # an unknown one: StoreError, status 2, naming those known
        state = store.state(args.question)
        by_text = stored_vectors(
            store, args.question, [a.normalized for a in question.answers], lambda: registry_of(args),
            "restore that version in --models",
        )
    vectors = {a.answer_id: by_text[a.normalized] for a in question.answers}
    moves = grader_moves(state)
    items = question_queue(state, vectors, moves)
    shown = items if args.top == 0 else items[: args.top]
    graded_alone = sum(1 for a in state.ungrouped if a in state.overrides)
    if args.json:
        body = {"question_id": args.question, "graded_alone": graded_alone, "queue": [_as_json(i, moves, state) for i in shown]}
        print(json.dumps(body, indent=2))
        return 0
    ungrouped = sum(1 for item in items if item.reason == "ungrouped")
    alone = f"; {graded_alone} graded on {'its' if graded_alone == 1 else 'their'} own, not listed" if graded_alone else ""
    first = "" if len(shown) == len(items) else f"; the first {len(shown)}"
    print(
        f"question {args.question}: {ungrouped} ungrouped answer(s), {len(items) - ungrouped} doubtful member(s) "
        f"of unconfirmed groups{alone}{first}"
    )
    texts = {a.answer_id: a.text for a in question.answers}
    for item in shown:
        print(_line(item, texts[item.answer_id], state, moves))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``queue`` command."""
    queue = sub.add_parser("queue", help="the ungrouped and doubtful answers waiting for a look, with suggested groups")
    add_db_option(queue)
    queue.add_argument("--question", "-q", required=True, help="the question")
    queue.add_argument("--top", type=int, default=20, help="how many to list (default: 20; 0 lists them all)")
    queue.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_models_option(queue)
    queue.set_defaults(func=_cmd_queue)
