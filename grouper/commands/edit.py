"""``grouper edit``: every edit of a question's groups from the command line.

Each verb appends one attributed edit to the store's log, against the version the caller saw
(``--base-version``; by default the current one), exactly as the UI does::

    grouper edit --db grades.sqlite -q q1 --author ta1 merge 3 7
    grouper edit -q q1 --author ta1 move q1-004,q1-017 --to ungrouped
    grouper edit -q q1 --author ta1 grade 3 2 --comment "correct"
    grouper edit -q q1 --author prof rubric "names the closed path=2" "wrong units=-0.5"
    grouper edit -q q1 --author ta1 grade 3 --items 1,2
    grouper edit -q q2 --author prof rubric --from q1
    grouper edit -q q1 --author ta1 grade-answer q1-004 --items 1 --adjust -0.5 --comment "units"
    grouper edit -q q1 --author ta1 check-grades q1-004,q1-017
    grouper edit -q q1 --author ta1 undo 12

Exit status: 0 applied, 3 refused (the message says what changed and by whom), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grouper.commands._model_options import add_models_option, registry_of, stored_vectors
from grouper.commands._store_options import add_db_option, author_of, fail, open_store, plain, reports_busy
from grouper.edit_codec import edit_to_dict
from grouper.edits import (
    NEW,
    CheckGrades,
    Confirm,
    Delete,
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    Payload,
    QuestionState,
    Rename,
    SetMaxScore,
    SetReferences,
    SetRubric,
    Split,
    Undo,
    apply,
    auto_split_parts,
    replay,
)
from grouper.rubric import copy_rubric, parse_rubric
from grouper.store import Store

if TYPE_CHECKING:
    from grouper.model_versions import ModelRegistry

#: Exit status of a refused edit (bad input is 2).
REFUSED = 3


@dataclass(frozen=True)
class _Named:
    """Answer ids as typed: ``raw``, and the ``ids`` its unescaped commas separate."""

    raw: str
    ids: tuple[str, ...]


def _ids(text: str) -> _Named:
    # "\," is a comma inside an id (import takes ids with commas: "smith,john").
    ids = tuple(a.strip().replace("\\,", ",") for a in re.split(r"(?<!\\),", text) if a.strip())
    if not ids:
        raise argparse.ArgumentTypeError(f"{text!r} names no answer; give answer ids separated by commas")
    return _Named(text, ids)


def _answer_ids(named: _Named, state: QuestionState) -> tuple[str, ...]:
    """The answers ``named`` names in ``state``: an id that is itself the whole text (with
    its commas) is that one answer, unless the parts are answers too, which is refused as
    ambiguous rather than guessed."""
    whole = named.raw.strip()
    if len(named.ids) == 1 or whole not in state.positions:
        return named.ids
    if all(a in state.positions for a in named.ids):
        escaped = whole.replace(",", "\\,")
        raise ValueError(
            f"{whole!r} is an answer id, and its parts {', '.join(map(repr, named.ids))} are answers too: "
            f"write {escaped} for the one answer"
        )
    return (whole,)


def _item_list(text: str) -> tuple[int, ...]:
    try:
        items = tuple(int(i) for i in text.split(",") if i.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--items {text!r}: give rubric item ids separated by commas, e.g. 1,3") from None
    if not items:
        raise argparse.ArgumentTypeError(f"--items {text!r} names no rubric item")
    return items


def _target(text: str) -> int | None | str:
    if text == "ungrouped":
        return None
    if text == NEW:
        return NEW
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--to {text!r}: give a group id, 'ungrouped' or 'new'") from None


def _split_payload(store: Store, state: QuestionState, args: argparse.Namespace) -> Split:
    if args.group not in state.groups:
        mark = state.removed.get(args.group)
        reason = (
            f"group {args.group} was {mark.what} by {mark.author or 'the initial grouping'} at version {mark.version}"
            if mark is not None
            else f"group {args.group} does not exist in question {state.question_id}"
        )
        raise EditRefused(state.question_id, [reason], state.version)
    members = state.groups[args.group].members
    if args.part:
        if args.k is not None:
            raise ValueError("split: give --k K for an automatic split or --part for each part, not both")
        given = [_answer_ids(part, state) for part in args.part]
        named = [a for part in given for a in part]
        rest = tuple(a for a in members if a not in set(named))
        parts = tuple(given) + ((rest,) if rest else ())
        return Split(args.group, parts)
    if args.k is None:
        raise ValueError("split: give --k K for an automatic split, or one --part per part")
    vectors = _member_vectors(store, state, args.group, lambda: registry_of(args))
    return Split(args.group, auto_split_parts(state, args.group, args.k, vectors, seed=args.seed))


def _member_vectors(
    store: Store, state: QuestionState, group_id: int, registry: Callable[[], ModelRegistry]
) -> dict[str, np.ndarray]:
    """Embeddings of a group's members, in the space the question was grouped in."""
    answers = {a.answer_id: a for a in store.answers(state.question_id)}
    texts = {a: answers[a].normalized for a in state.groups[group_id].members}
    found = stored_vectors(store, state.question_id, list(texts.values()), registry, "split with explicit --part lists instead")
    return {a: found[t] for a, t in texts.items()}


def _payload(store: Store, state: QuestionState, args: argparse.Namespace) -> Payload:
    verb = args.verb
    if verb == "confirm":
        return Confirm(args.group)
    if verb == "merge":
        return Merge(args.groups[0], tuple(args.groups[1:]))
    if verb == "split":
        return _split_payload(store, state, args)
    if verb == "move":
        return Move(_answer_ids(args.answers, state), args.to, title=args.title or "")
    if verb == "delete":
        return Delete(args.group)
    if verb == "rename":
        return Rename(args.group, args.title)
    if verb in ("grade", "grade-answer"):
        if args.clear and (args.items or args.score is not None or args.adjust):
            raise ValueError(f"{verb}: --clear takes no SCORE, --items or --adjust")
        if args.adjust and not args.items:
            raise ValueError(f"{verb}: --adjust goes with --items (points on top of the rubric items); without items, give the SCORE itself")
        score = None if args.clear or args.items else _score(args)
        if args.items and args.score is not None:
            score = args.score  # checked against the items' points: what the grader expects
        grading = {"items": args.items or (), "adjustment": args.adjust or 0.0}
        if verb == "grade":
            return GradeGroup(args.group, score, args.comment or "", **grading)
        return GradeAnswer(args.answer, score, args.comment or "", **grading)
    if verb == "rubric":
        if args.from_question is not None:
            if args.items or args.clear:
                raise ValueError("rubric: --from takes no items and no --clear")
            return copy_rubric(store.state(args.from_question), state)
        given = any(line.strip() for line in args.items or ())  # `rubric ""` is no item, not "no rubric"
        if given == args.clear:
            raise ValueError("rubric: give the items as DESCRIPTION=POINTS, --from QUESTION, or --clear for no rubric")
        return SetRubric(()) if args.clear else parse_rubric(state, args.items)
    if verb == "max-score":
        if (args.points is None) == (not args.clear):
            raise ValueError("max-score: give POINTS, or --clear to remove the maximum")
        return SetMaxScore(None if args.clear else args.points)
    if verb == "references":
        if bool(args.texts) == args.clear:
            raise ValueError("references: give the reference answers, or --clear for none")
        return SetReferences(() if args.clear else tuple(args.texts))
    if verb == "check-grades":
        return CheckGrades(_answer_ids(args.answers, state))
    if verb == "undo":
        return Undo(args.edit_id)
    raise AssertionError(verb)


def _score(args: argparse.Namespace) -> float:
    if args.score is None:
        raise ValueError(f"{args.verb}: give a SCORE or --items, or --clear to remove the grade")
    return args.score


@reports_busy
def _cmd_edit(args: argparse.Namespace) -> int:
    author = author_of(args)
    store = open_store(args)
    try:
        state = store.state(args.question)
        base = state.version if args.base_version is None else args.base_version
        try:
            edit = store.append(args.question, author, base, _payload(store, state, args))
        except EditRefused as refused:
            return fail(str(refused), REFUSED)
        after = store.state(args.question)
        if after.version != edit.edit_id:
            # Others' edits landed before or after ours: describe ours, on the state it was
            # applied to (the fold is deterministic), not whichever edit came last.
            missed = [e for e in store.edits(args.question, since=state.version) if e.edit_id < edit.edit_id]
            ours = apply(replay(state, missed), edit)
        else:
            ours = after
    finally:
        store.close()
    if args.json:
        json.dump(edit_to_dict(edit), sys.stdout)  # ASCII: no raw control or bidi character reaches a terminal
        print()
        return 0
    change = ours.last_change
    print(f"edit {edit.edit_id} applied: {edit.kind} by {edit.author} (question {edit.question_id}, now version {after.version})")
    if change is not None and change.groups_created:
        print("  new group(s): " + ", ".join(str(g) for g in change.groups_created))
    if change is not None and change.grade_changes:
        print(f"  {len(change.grade_changes)} answer(s) changed grade:")
        for gc in change.grade_changes[:10]:
            before = "ungraded" if gc.before is None else f"{gc.before.score:g}"
            now = "ungraded" if gc.after is None else f"{gc.after.score:g}"
            print(f"    {plain(gc.answer_id, 40)}: {before} -> {now}")
        if len(change.grade_changes) > 10:
            print(f"    ... and {len(change.grade_changes) - 10} more")
    if change is not None and isinstance(edit.payload, CheckGrades):
        checked, named = change.grades_checked, edit.payload.answer_ids
        already = len(named) - len(checked)
        print(f"  {len(checked)} answer(s) checked as right" + (f"; {already} already were" if already else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``edit`` command and its verbs."""
    edit = sub.add_parser(
        "edit",
        help="edit a question's groups (confirm, merge, split, move, delete, rename, grade, check grades, undo)",
        description="Append one edit to a question's log. Exit status 3: refused (stale or impossible).",
    )
    add_db_option(edit)
    edit.add_argument("--question", "-q", required=True, help="the question to edit")
    edit.add_argument("--author", help="who makes the edit (default: $GROUPER_AUTHOR)")
    edit.add_argument(
        "--base-version", type=int, help="the version you looked at (default: the current one); stale edits are refused"
    )
    edit.add_argument("--json", action="store_true", help="print the logged edit as JSON")
    verbs = edit.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("confirm", help="mark a group as checked")
    p.add_argument("group", type=int)
    p = verbs.add_parser("merge", help="merge groups into the first one named")
    p.add_argument("groups", type=int, nargs="+", metavar="GROUP")
    p = verbs.add_parser("split", help="split a group: --k K automatically, or --part a1,a2 per part")
    p.add_argument("group", type=int)
    p.add_argument("--k", type=int, help="number of parts for an automatic (k-means) split")
    p.add_argument("--seed", type=int, default=0, help="seed of the automatic split (default: 0)")
    add_models_option(p)
    p.add_argument(
        "--part", type=_ids, action="append", metavar="A1,A2", help="answer ids of one part; members not named form one more part"
    )
    p = verbs.add_parser("move", help="move answers to a group, to the ungrouped answers or to a new group")
    p.add_argument("answers", type=_ids, metavar="A1,A2", help="answer ids separated by commas (\\, for a comma inside one)")
    p.add_argument("--to", type=_target, required=True, metavar="GROUP|ungrouped|new")
    p.add_argument("--title", help="title of the new group (with --to new)")
    p = verbs.add_parser("delete", help="delete a group; its members become ungrouped")
    p.add_argument("group", type=int)
    p = verbs.add_parser("rename", help="give a group a new title")
    p.add_argument("group", type=int)
    p.add_argument("title")
    for name, target, help_text in (
        ("grade", "group", "grade every member of a group (answers with an override keep theirs)"),
        ("grade-answer", "answer", "give one answer its own grade, overriding its group's"),
    ):
        p = verbs.add_parser(name, help=help_text)
        p.add_argument(target, type=int if target == "group" else str)
        p.add_argument("score", type=float, nargs="?")
        p.add_argument("--comment", help="comment shown with the grade")
        p.add_argument(
            "--items", type=_item_list, metavar="I1,I2", help="grade with these rubric items: the score is their points' sum"
        )
        p.add_argument(
            "--adjust", type=float, metavar="POINTS", help="with --items: points added to their sum (negative deducts)"
        )
        p.add_argument("--clear", action="store_true", help="remove the grade instead")
    p = verbs.add_parser("max-score", help="set the question's maximum score: every grade then lies in [0, POINTS]")
    p.add_argument("points", type=float, nargs="?", metavar="POINTS")
    p.add_argument("--clear", action="store_true", help="remove the maximum instead")
    p = verbs.add_parser(
        "references", help="set the question's reference answers (then `grouper regroup -q Q` regroups what nobody reviewed)"
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="one argument per reference answer")
    p.add_argument("--clear", action="store_true", help="no reference answers (group by content alone)")
    p = verbs.add_parser(
        "rubric",
        help="set the question's whole rubric; an item given new points regrades everyone who has it",
        description="Items as DESCRIPTION=POINTS (negative points deduct). An item keeps its id when its "
        "description is unchanged; write ID:DESCRIPTION=POINTS to reword an item and keep its id.",
    )
    p.add_argument("items", nargs="*", metavar="ITEM", help="one argument per item: DESCRIPTION=POINTS")
    p.add_argument("--clear", action="store_true", help="no rubric")
    p.add_argument(
        "--from", dest="from_question", metavar="QUESTION", help="add the items of this question's rubric that this one lacks"
    )
    p = verbs.add_parser(
        "check-grades",
        help="say that these answers' grades are right as they stand (`grouper check` then leaves them out)",
    )
    p.add_argument("answers", type=_ids, metavar="A1,A2", help="answer ids separated by commas (\\, for a comma inside one)")
    p = verbs.add_parser("undo", help="undo an earlier edit (as a new edit)")
    p.add_argument("edit_id", type=int, metavar="EDIT_ID")
    edit.set_defaults(func=_cmd_edit)
