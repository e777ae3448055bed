"""``grouper check``: the graded answers most likely to carry the wrong grade, to look at again.

    grouper check --db course.sqlite -q q1 [--top 20] [--group 3] [--all] [--json]

The ranking is :func:`grouper.grade_check.grade_doubts`: identical answers graded with
different scores first, then members least like the group whose grade they carry and least
like what the other groups' grades predict. Answers whose grade a grader has checked and found
right are left out (``--all`` lists them after the rest). Nothing is changed; fix a grade with
``grouper edit ... grade-answer``, or say it is right with ``grouper edit ... check-grades``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from grouper.commands._model_options import add_models_option, registry_of, stored_vectors
from grouper.commands._store_options import add_db_option, fail, open_store, plain, reports_busy

if TYPE_CHECKING:
    from grouper.edits import Grade, QuestionState
    from grouper.grade_check import GradeDoubt
    from grouper.model_versions import ModelRegistry
    from grouper.review import GradeInUse
    from grouper.store import Store


def _grade_text(grade: Grade | GradeInUse, state: QuestionState) -> str:
    """The score, its rubric items (two grades of the same points may be other items), the comment."""
    from grouper.rubric import rubric_text

    items = f" [{plain(rubric_text(state, grade.items, grade.adjustment), 60)}]" if grade.items else ""
    return f"{grade.score:g}{items}" + (f" ({plain(grade.comment, 30)})" if grade.comment else "")


def _doubt_line(doubt: GradeDoubt, text: str, state: QuestionState) -> str:
    where = "graded on its own" if doubt.graded_alone else f"group {doubt.group_id}"
    reasons = []
    if doubt.twins:
        reasons.append("identical to " + ", ".join(plain(t, 20) for t in doubt.twins[:3]) + (" …" if len(doubt.twins) > 3 else "") + ", graded otherwise")
    if doubt.likely is not None:
        chance = "" if doubt.likely_probability is None else f" ({doubt.likely_probability:.0%})"
        reasons.append(f"likely {_grade_text(doubt.likely, state)}{chance}")
    if doubt.checked_by is not None:
        reasons.append(f"checked as right by {plain(doubt.checked_by, 30)}")
    tail = ("; " + "; ".join(reasons)) if reasons else ""
    return f"  {plain(doubt.answer_id, 24)}  doubt {doubt.doubt:.2f}  graded {_grade_text(doubt.grade, state)}, {where}{tail}\n      {plain(text, 90)}"


def _as_json(doubt: GradeDoubt) -> dict:
    def grade(g: Grade | GradeInUse | None) -> dict | None:
        return None if g is None else {"score": g.score, "comment": g.comment, "items": list(g.items), "adjustment": g.adjustment}

    return {
        "answer_id": doubt.answer_id,
        "doubt": doubt.doubt,
        "grade": grade(doubt.grade),
        "group_id": doubt.group_id,
        "graded_alone": doubt.graded_alone,
        "typicality": doubt.typicality,
        "probability": doubt.probability,
        "likely": grade(doubt.likely),
        "likely_probability": doubt.likely_probability,
        "twins": list(doubt.twins),
        "checked_by": doubt.checked_by,
    }


def _doubts(store: Store, question_id: str, registry: Callable[[], ModelRegistry]) -> list[GradeDoubt]:
    """:func:`grouper.grade_check.grade_doubts` of a stored question, from the embeddings cached
    at import: no model is loaded unless some are missing."""
    from grouper.grade_check import grade_doubts
    from grouper.references import embedded_references

    def embed(texts: list[str]) -> np.ndarray:
        found = stored_vectors(store, question_id, texts, registry, "restore that version in --models")
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 1))

    question = store.question(question_id)
    vectors = embed([a.normalized for a in question.answers])
    return grade_doubts(store.state(question_id), question.answers, vectors, embedded_references(question, embed))


@reports_busy
def _cmd_check(args: argparse.Namespace) -> int:
    if args.top < 0:
        return fail(f"--top must be 0 (all) or more, found {args.top}", 2)
    with open_store(args) as store:
        if args.question not in store.question_ids():
            return fail(f"no question {args.question!r} in {store.where}", 2)
        if args.group is not None and args.group not in store.state(args.question).groups:
            return fail(f"question {args.question} has no group {args.group}", 2)
        doubts = _doubts(store, args.question, lambda: registry_of(args))
        texts = {a.answer_id: a.text for a in store.answers(args.question)}
        state = store.state(args.question)
    # Counts of what is listed: the group's when --group names one, the question's else.
    scope = doubts if args.group is None else [d for d in doubts if d.group_id == args.group]
    checked = sum(1 for d in scope if d.checked_by is not None)
    listed = scope if args.all else [d for d in scope if d.checked_by is None]
    shown = listed if args.top == 0 else listed[: args.top]
    if args.json:
        print(
            json.dumps(
                {"question_id": args.question, "group_id": args.group, "graded": len(scope), "checked": checked,
                 "doubts": [_as_json(d) for d in shown]},
                indent=2,
            )
        )
        return 0
    if not doubts:
        print(f"question {args.question}: nothing is graded yet")
        return 0
    twins = sum(1 for d in listed if d.twins)
    left_out = f"; {checked} checked as right" + ("" if args.all else " are left out (--all lists them)") if checked else ""
    among = "" if args.group is None else f" ({len(scope)} in group {args.group})"
    print(
        f"question {args.question}: {len(doubts)} graded answer(s){among}, the {len(shown)} most doubtful first"
        + (f"; {twins} graded unlike an identical answer" if twins else "")
        + left_out
    )
    for doubt in shown:
        print(_doubt_line(doubt, texts[doubt.answer_id], state))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``check`` command."""
    check = sub.add_parser("check", help="the graded answers most likely to carry the wrong grade, most doubtful first")
    add_db_option(check)
    check.add_argument("--question", "-q", required=True, help="the question")
    check.add_argument("--top", type=int, default=10, help="how many to list (default: 10; 0 lists every graded answer)")
    check.add_argument("--group", type=int, metavar="GROUP", help="only the answers in this group")
    check.add_argument("--all", action="store_true", help="also list the answers whose grade a grader checked as right")
    check.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_models_option(check)
    check.set_defaults(func=_cmd_check)
