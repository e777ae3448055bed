"""``grouper import`` and ``grouper show``: put answer files into a store, look at a question."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from grouper.clustering import GroupingSettings
from grouper.commands._model_options import active_encoder, add_models_option, question_encoder
from grouper.commands._store_options import add_db_option, author_of, fail, open_store, plain, reports_busy
from grouper.edits import CONFIRMED, EditRefused, QuestionState
from grouper.rubric import item_label, item_use, rubric_text

if TYPE_CHECKING:
    from grouper.answers import Question
    from grouper.store import Store


def _add_late(store: Store, args: argparse.Namespace, stored: list[Question]) -> int | None:
    """Add the answers of already stored questions that the store lacks, as late answers.

    Returns an exit status when it must stop the command (bad input), else ``None``.
    """
    from grouper.late_answers import add_late_answers, late_answers_of, resubmissions

    plans = []
    for question in stored:
        try:
            plans.append((question.question_id, late_answers_of(store.answers(question.question_id), question)))
        except ValueError as problem:  # checked for every question before anything is added
            return fail(str(problem), 2)
    author = ""
    if any(late for _, late in plans):  # an author is needed only when something is added
        try:
            author = author_of(args)
        except ValueError as problem:
            return fail(f"adding late answers: {problem}", 2)
    for qid, late in plans:
        if not late:
            print(f"question {qid}: no new answers")
            continue
        again = resubmissions(store.answers(qid), late)
        try:
            done = add_late_answers(store, qid, late, question_encoder(args, store.model_version(qid)), author)
        except EditRefused as refused:  # a grader changed a chosen group meanwhile: nothing of it was written
            return fail(f"question {qid}: late answers not added: {refused}; run the import again", 3)
        print(
            f"question {qid}: {len(late)} late answer(s) added (edit {done.edit.edit_id}): "
            f"{len(done.placed)} in groups nobody has reviewed, {len(done.waiting)} waiting ungrouped"
        )
        if again:
            shown = "; ".join(f"{plain(s, 30)}: {', '.join(plain(i, 30) for i in ids)}" for s, ids in list(again.items())[:5])
            print(f"  note: {len(again)} student(s) now have two answers or more (a resubmission?): {shown}")
        for answer_id, group in done.waiting.items():
            hint = f" (closest: group {group})" if group is not None else ""
            print(f"  {plain(answer_id, 40)} waits for review{hint}")
    return None


@reports_busy
def _cmd_import(args: argparse.Namespace) -> int:
    from grouper.answers import load_answers, with_max_score
    from grouper.intake import import_questions, truncated_answers, with_stored_ids

    questions = []
    first_file: dict[str, str] = {}
    for path in args.files:
        for question in load_answers(path, encoding=args.encoding, file_format=args.format):
            if question.question_id in first_file:
                # The second copy would be refused after the first was stored: a half import.
                return fail(
                    f"question {plain(question.question_id, 40)} is in {first_file[question.question_id]} and again "
                    f"in {path}; nothing was imported. Give it one file, or other ids", 2,
                )
            first_file[question.question_id] = str(path)
            questions.append(question)
    if args.exam is not None and args.course is None:
        return fail("--exam needs --course (an exam is filed under a course); nothing was imported", 2)
    settings = GroupingSettings(min_cluster_size=args.min_cluster_size)
    try:
        settings.validate()
    except ValueError as problem:
        return fail(f"--min-cluster-size: {problem}; nothing was imported", 2)
    store = open_store(args, create=True)
    known = set(store.question_ids())
    questions = with_stored_ids(questions, sorted(known))  # "Übung-1" composed or not is one question
    late_ones = [q for q in questions if q.question_id in known] if args.late else []
    if args.late:
        questions = [q for q in questions if q.question_id not in known]
    if args.skip_existing:
        skipped = [q.question_id for q in questions if q.question_id in known]
        questions = [q for q in questions if q.question_id not in known]
        for qid in skipped:
            print(f"question {plain(qid, 40)}: already in the store, left as it is")
    if questions and args.max_score is not None:
        # Checked before anything is written, late answers included.
        try:
            given = with_max_score(questions, args.max_score)
        except ValueError as problem:
            store.close()
            return fail(str(problem), 2)
        for q in questions:
            if q.max_score is not None and q.max_score != args.max_score:
                print(f"question {plain(q.question_id, 40)}: the file's maximum score {q.max_score:g} is kept, not --max-score")
        questions = given
    # The model new questions need is loaded before late answers are written: a model that
    # cannot load stops the command with nothing added.
    encoder = active_encoder(args) if questions else None
    if args.late:
        added = _add_late(store, args, late_ones)
        if added is not None:
            store.close()
            return added
    if questions:
        try:
            author = author_of(args)
        except ValueError:
            author = "import"  # the maximum scores' edits need a name; no person was given
        imported = import_questions(
            store, questions, encoder, settings, course=args.course, exam=args.exam, author=author
        )
        by_id = {q.question_id: q for q in questions}
        for qid in imported:
            state = store.state(qid)
            long = truncated_answers(by_id[qid], encoder)
            print(
                f"question {plain(qid, 40)}: {len(state.positions)} answers in {len(state.groups)} groups, "
                f"{len(state.ungrouped)} ungrouped"
                + (f", {len(long)} longer than the encoder reads (grouped by their beginning: read them whole)" if long else "")
            )
    store.close()
    return 0


def _summary(state: QuestionState, members_shown: int) -> dict:
    use = item_use(state)
    return {
        "question_id": state.question_id,
        "version": state.version,
        "max_score": state.max_score,
        "rubric": [
            {"item_id": i.item_id, "description": i.description, "points": i.points, "answers": use[i.item_id]}
            for i in state.rubric
        ],
        "groups": [
            {
                "group_id": g.group_id,
                "title": g.title,
                "size": len(g.members),
                "status": g.status,
                "score": None if g.grade is None else g.grade.score,
                "comment": None if g.grade is None else g.grade.comment,
                "rubric_items": [] if g.grade is None else list(g.grade.items),
                "adjustment": None if g.grade is None else g.grade.adjustment,
                "blank": g.blank,
                "members": list(g.members[:members_shown]),
            }
            for g in state.groups.values()
        ],
        "ungrouped": list(state.ungrouped),
        "overrides": {
            a: {"score": g.score, "comment": g.comment, "rubric_items": list(g.items), "adjustment": g.adjustment}
            for a, g in state.overrides.items()
        },
    }


@reports_busy
def _cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    if args.question is None:
        infos = store.questions()
        if args.json:
            json.dump([vars(i) for i in infos], sys.stdout)  # ASCII: no raw control or bidi character reaches a terminal
            print()
        for info in [] if args.json else infos:
            print(f"{plain(info.question_id, 40)}: {info.n_answers} answers, {info.n_edits} edits  {plain(info.text, 70)}")
        if not infos and not args.json:
            print(f"no questions in {store.where}; add some with `grouper import FILE`")
        return 0
    state = store.state(args.question)
    if args.json:
        json.dump(_summary(state, args.members), sys.stdout)  # ASCII: no raw control or bidi character reaches a terminal
        print()
        return 0
    texts = {a.answer_id: a.text for a in store.answers(args.question)}
    graded = state.graded_count()
    print(
        f"Question {plain(state.question_id, 40)}, version {state.version}: {len(state.positions)} answers, "
        f"{len(state.groups)} groups, {len(state.ungrouped)} ungrouped, {graded} graded"
        + ("" if state.max_score is None else f", out of {state.max_score:g} points")
    )
    for g in state.groups.values():
        flags = ("confirmed" if g.status == CONFIRMED else "") + (" blank" if g.blank else "")
        grade = "" if g.grade is None else f"  score {g.grade.score:g}" + (f" ({plain(g.grade.comment, 30)})" if g.grade.comment else "")
        if g.grade is not None and g.grade.items:
            grade += f"  rubric: {plain(rubric_text(state, g.grade.items, g.grade.adjustment), 60)}"
        print(f"  [{g.group_id}] {len(g.members):>4}  {plain(g.title, 60)}{grade}  {flags.strip()}")
        for a in g.members[: args.members]:
            print(f"          - {plain(a, 40)}: {plain(texts[a], 80)}")
    if state.ungrouped:
        print(f"  ungrouped: {len(state.ungrouped)}")
        for a in state.ungrouped[: args.members]:
            print(f"          - {plain(a, 40)}: {plain(texts[a], 80)}")
    use = item_use(state)
    for item in state.rubric:
        print(f"  rubric item {item.item_id}: {plain(item_label(item), 80)}  ({use[item.item_id]} answer(s))")
    return 0


def _history_kinds(asked: list[str] | None) -> set[str] | None:
    """Edit kinds to list, spelled as stored or as the edit verbs are ("grade-answer")."""
    from grouper.edit_codec import PAYLOAD_TYPES

    if not asked:
        return None
    kinds = {k.replace("-", "_") for k in asked}
    unknown = sorted(kinds - set(PAYLOAD_TYPES))
    if unknown:
        raise ValueError(f"unknown edit kind(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(PAYLOAD_TYPES))}")
    return kinds


def _count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is below 0")
    return value


@reports_busy
def _cmd_history(args: argparse.Namespace) -> int:
    from grouper.history import history

    store = open_store(args)
    try:
        edits = store.edits(args.question)  # raises, naming the store, for an unknown question
        rows = history(
            edits,
            store.state(args.question),
            authors=set(args.authors) if args.authors else None,
            kinds=_history_kinds(args.kinds),
        )[: args.limit or None]
    finally:
        store.close()
    if args.json:
        out = [
            {"edit_id": r.edit_id, "at": r.at.isoformat(), "author": r.author, "kind": r.kind,
             "summary": r.summary, "undone_by": r.undone_by}
            for r in rows
        ]
        json.dump(out, sys.stdout)  # ASCII: no raw control or bidi character reaches a terminal
        print()
        return 0
    for r in rows:
        undone = "" if r.undone_by is None else f"  (undone by edit {r.undone_by})"
        print(f"{r.edit_id:>5}  {r.at:%Y-%m-%d %H:%M:%S}  {plain(r.author, 30)}: {plain(r.summary, 100)}{undone}")
    if not rows:
        print(f"question {args.question}: no edits" + (" match" if args.authors or args.kinds else ""))
    return 0


@reports_busy
def _cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not Path(args.target).expanduser().resolve().parent.is_dir():
        return fail(f"the folder of {args.target} does not exist; create it first", 2)
    store = open_store(args)  # a store that is not there is an error, not an empty "backup"
    try:
        summary = store.backup(args.target, overwrite=args.force)
    except (ValueError, FileExistsError) as problem:
        return fail(str(problem), 2)
    finally:
        store.close()
    print(f"backed up {store.where} to {args.target}: {summary['questions']} question(s), {summary['edits']} edit(s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import``, ``show``, ``history`` and ``backup`` commands."""
    imp = sub.add_parser("import", help="import answer files into the store and group them")
    imp.add_argument("files", nargs="+", metavar="FILE", help="CSV, JSON or JSONL answer file")
    add_db_option(imp)
    imp.add_argument("--course", help="file the questions under this course")
    imp.add_argument("--exam", help="and this exam of the course")
    imp.add_argument("--skip-existing", action="store_true", help="leave questions already in the store as they are")
    imp.add_argument(
        "--late", action="store_true",
        help="add the answers of questions already in the store that it lacks (late submissions), placed in "
        "groups nobody has reviewed or left ungrouped; needs --author",
    )
    imp.add_argument(
        "--author", help="who imports: adds late answers (needed with --late), sets maximum scores (default: $GROUPER_AUTHOR)"
    )
    imp.add_argument(
        "--max-score",
        type=float,
        metavar="POINTS",
        help="every new question's maximum score, unless its file gives one (column max_score); grades then lie in [0, POINTS]",
    )
    imp.add_argument("--encoding", help="decode input with this codec instead of detecting UTF-8/UTF-16")
    imp.add_argument("--format", choices=["csv", "json", "jsonl"], help="input format (default: from the suffix)")
    imp.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present)")
    add_models_option(imp)
    imp.add_argument("--min-cluster-size", type=int, default=GroupingSettings.min_cluster_size)
    imp.set_defaults(func=_cmd_import)

    show = sub.add_parser("show", help="list the stored questions, or show one question's groups")
    add_db_option(show)
    show.add_argument("--question", "-q", help="the question to show (default: list them all)")
    show.add_argument("--members", type=_count, default=3, help="members shown per group (default: 3)")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    show.set_defaults(func=_cmd_show)

    hist = sub.add_parser("history", help="a question's edits, newest first: who did what, and what is undone")
    add_db_option(hist)
    hist.add_argument("--question", "-q", required=True, help="the question")
    hist.add_argument("--author", dest="authors", action="append", help="only this author's edits (repeatable)")
    hist.add_argument("--kind", dest="kinds", action="append", help="only edits of this kind, e.g. merge, grade (repeatable)")
    hist.add_argument("--limit", type=_count, default=0, help="at most this many (default: all)")
    hist.add_argument("--json", action="store_true", help="print JSON instead of text")
    hist.set_defaults(func=_cmd_history)

    back = sub.add_parser("backup", help="copy a SQLite store consistently, while graders keep working")
    add_db_option(back)
    back.add_argument("target", metavar="FILE", help="the backup file to write")
    back.add_argument("--force", action="store_true", help="replace FILE when it exists")
    back.set_defaults(func=_cmd_backup)
