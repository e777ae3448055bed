"""Import page: upload answer files (or pick the sample data), preview them, import and group.

The file is parsed by ``grouper.answers.parse_answers`` with the same rules as the command
line: every problem is listed with the file, row and column, and nothing is imported unless
the whole file is valid. Grouping runs for every question before anything is saved, with a
progress bar, and the questions are saved together, so a failure leaves the store as it was.

Answers of questions already in the store that the store lacks (a file uploaded again with
late submissions) can be added as late answers (``grouper.late_answers``, what ``grouper
import --late`` does).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action
from grouper.answers import AnswerFileError, FileProblem, Question, parse_answers, with_max_score
from grouper.edits import EditRefused
from grouper.intake import truncated_answers, with_stored_ids
from grouper.late_answers import add_late_answers, late_answers_of, resubmissions
from grouper.store import StoreBusy

identity = ui_common.require(Action.IMPORT)
st.title("Import answers")
ui_common.show_flashes()

source = st.segmented_control(
    "Answers from", ["Upload a file", "Sample data"], default="Upload a file", key="import-source"
)
files: list[tuple[str, bytes]]
encoding: str | None = None
if source == "Sample data":
    samples = ui_common.sample_files()
    chosen = st.multiselect(
        "Sample files", samples, default=samples, format_func=lambda p: p.name, key="import-samples"
    )
    if chosen:
        # Several sample files are imported together, each parsed on its own.
        files = [(p.name, p.read_bytes()) for p in chosen]
    else:
        files = []
else:
    uploads = st.file_uploader(
        "Answer files (CSV, JSON or JSONL; one or more)",
        type=["csv", "json", "jsonl"],
        key="import-file",
        accept_multiple_files=True,
    )
    files = [(upload.name, upload.getvalue()) for upload in uploads or []]
    encoding = st.selectbox(
        "File encoding",
        [None, "cp1252", "latin-1", "mac-roman"],
        format_func=lambda e: "detect (UTF-8 or UTF-16)" if e is None else e,
        key="import-encoding",
        help="Files saved by older spreadsheets on Windows are often cp1252",
    )

if not files:
    st.text(
        "Columns: answer_id (or student_id), answer; optionally question_id, question, grade, score, "
        "reference_answers, max_score."
    )
    st.stop()

questions: list[Question] = []
errors: list[AnswerFileError] = []
file_of: dict[str, str] = {}  # question id -> the file that gave it
for file_name, content in files:
    try:
        parsed = parse_answers(content, file_name, encoding=encoding)
    except AnswerFileError as error:
        errors.append(error)
        continue
    # Two files giving one question would be imported as two copies or refused half way:
    # the question is named with both files before anything is done.
    twice = [q.question_id for q in parsed if q.question_id in file_of]
    if twice:
        errors.append(
            AnswerFileError(
                file_name,
                [FileProblem(None, "question_id", f"question {q!r} is also in {file_of[q]}; give each question one file") for q in twice],
            )
        )
        continue
    file_of.update((q.question_id, file_name) for q in parsed)
    questions.extend(parsed)

if errors:
    st.error("Nothing was imported: fix these problems in the file and upload it again.")
    st.dataframe(
        pd.DataFrame(
            [
                {"File": e.path, "Row": "" if p.row is None else p.row, "Column": p.column or "", "Problem": p.message}
                for e in errors
                for p in e.problems
            ]
        ),
        hide_index=True,
        key="import-problems",
    )
    if any(e.truncated for e in errors):
        st.text("Reading stopped after these: the file may have more problems of the same kind.")
    st.stop()

existing = set(ui_common.question_ids())
questions = with_stored_ids(questions, sorted(existing))  # "Übung-1" composed or not is one question
st.subheader("Preview")
st.dataframe(
    pd.DataFrame(
        {
            "Question": [q.question_id for q in questions],
            "Text": [q.text for q in questions],
            "Answers": [len(q.answers) for q in questions],
            "Blank": [sum(a.is_blank for a in q.answers) for q in questions],
            "Reference answers": [len(q.reference_answers) for q in questions],
            "Maximum score": ["" if q.max_score is None else f"{q.max_score:g}" for q in questions],
            "Already in the store": ["yes" if q.question_id in existing else "" for q in questions],
        }
    ),
    hide_index=True,
    key="import-preview-questions",
)
without = [q.question_id for q in questions if q.question_id not in existing and not q.reference_answers]
if without:
    # The reference answer is the strongest grouping signal there is (docs/grouping.md).
    st.info(
        f"{len(without)} question(s) have no reference answer, so their answers are grouped by content "
        "alone. A reference_answers column (the instructor's model answer), or the groups page's "
        "Reference answers after import, groups explanations by how much of it they say, which saves "
        "more grading work."
    )
first = questions[0]
st.text(f"First answers of question {first.question_id}:")
st.dataframe(
    pd.DataFrame(
        {
            "Answer id": [a.answer_id for a in first.answers[:20]],
            "Student": [a.student_id or "" for a in first.answers[:20]],
            "Answer": [a.text for a in first.answers[:20]],
        }
    ),
    hide_index=True,
    key="import-preview-answers",
)

clashes = [q.question_id for q in questions if q.question_id in existing]
late_plans: dict[str, list] = {}  # stored question -> its answers the store lacks (late answers)
late_problems: list[str] = []
for q in questions:
    if q.question_id in existing:
        try:
            late = late_answers_of(ui_common.answers_of(q.question_id), q)
        except ValueError as problem:  # an id stored with another text: never replaced
            late_problems.append(str(problem))
            continue
        if late:
            late_plans[q.question_id] = late
if clashes:
    st.warning(f"{len(clashes)} question(s) are already in the store and will not be imported again.")
if late_problems:
    st.error("Some answers are stored with another text; late answers need ids of their own.")
    for problem in late_problems:
        ui_common.plain(problem)
new = [q for q in questions if q.question_id not in existing]
n_late = sum(len(v) for v in late_plans.values())


def _add_late() -> None:
    """Add the new answers of stored questions, each placed by the model that grouped it."""
    author = ui_common.current_identity().author
    placed = waiting = 0
    refused_in: list[str] = []
    for qid, late in late_plans.items():
        try:
            done = add_late_answers(ui_common.store(), qid, late, ui_common.question_encoder(qid), author)
        except EditRefused as refused:
            # Each question's late answers are one edit: this one's are not added, the others' are.
            refused_in.append(qid)
            ui_common.flash("error", f"Question {qid}'s late answers were not added: a group changed meanwhile. Try again.", str(refused))
            continue
        except StoreBusy as busy:
            refused_in.append(qid)
            ui_common.flash("error", f"Question {qid}'s late answers were not added: the database stayed busy. Try again.", str(busy))
            continue
        placed += len(done.placed)
        waiting += len(done.waiting)
    if placed + waiting:
        ui_common.flash(
            "success",
            f"Added {placed + waiting} late answer(s)"
            + (f" to {len(late_plans) - len(refused_in)} of {len(late_plans)} questions" if refused_in else "")
            + f": {placed} in groups nobody has reviewed, {waiting} waiting in the ungrouped queue for review.",
        )


def _typed(key: str) -> str | None:
    """A name typed in a text field, or None when it was left blank."""
    value = (st.session_state.get(key) or "").strip()
    return value or None


def _import() -> None:
    """Group every new question (progress bar), then save them all."""
    chosen = new
    points = st.session_state.get("import-max-score")
    if points is not None:
        try:
            chosen = with_max_score(new, points, option="the maximum score typed")
        except ValueError as problem:
            ui_common.flash("error", "Nothing was imported.", str(problem))
            return
    course = _typed("import-course")
    exam = _typed("import-exam")
    if exam is not None and course is None:
        ui_common.flash("error", "Nothing was imported.", "an exam is filed under a course: give the course too.")
        return
    bar = st.progress(0.0, text="Loading the model")
    try:
        imported = ui_common.import_and_group(
            chosen,
            # The text names the question, whose id comes from the file: literal, not Markdown.
            progress=lambda fraction, message: bar.progress(
                min(max(fraction, 0.0), 1.0), text=ui_common.literal_markdown(message)
            ),
            author=ui_common.current_identity().author,
            course=course,
            exam=exam,
        )
    except Exception as exc:  # noqa: BLE001 - shown to the instructor
        # Grouping runs before anything is written, so a failure there saved nothing.
        bar.empty()
        ui_common.flash("error", "The import failed.", str(exc))
        return
    bar.progress(1.0, text="Done")
    ui_common.flash("success", f"Imported and grouped {len(imported)} question(s).")
    for question in chosen:
        long = truncated_answers(question, ui_common.encoder())
        if long:
            # Only their beginning was read: a "no" at the end of a long explanation is not
            # in its group's reasons. Ids only (student text is shown as plain text elsewhere).
            ui_common.flash(
                "warning",
                f"Question {question.question_id}: {len(long)} answer(s) are longer than the model reads "
                f"({ui_common.encoder().max_tokens} tokens); they were grouped by their beginning. Read them whole.",
                ", ".join(long[:20]) + (" ..." if len(long) > 20 else ""),
            )
    if imported:
        st.session_state[ui_common.QUESTION] = imported[0]


if new and any(q.max_score is None for q in new):
    st.number_input(
        "Maximum score of the questions whose file gives none (optional; every grade then lies between 0 and it)",
        value=None,
        min_value=0.01,
        step=0.5,
        key="import-max-score",
    )
if new:
    # Filed under a course, the questions' grades export together and their corrections can
    # be chosen by course for retraining. A course typed in other case or spacing is the one
    # stored (grouper.store.filing_key).
    cols = st.columns(2)
    cols[0].text_input("Course (optional)", key="import-course", max_chars=200)
    cols[1].text_input("Exam (optional, needs a course)", key="import-exam", max_chars=200)
    known = ui_common.courses()
    if known:
        st.text("Courses in the store: " + ", ".join(known))
if st.button(f"Import and group {len(new)} question(s)", key="import-go", type="primary", disabled=not new):
    _import()
    st.rerun()

if n_late:
    st.subheader("Late answers")
    st.text(
        f"{n_late} answer(s) to {len(late_plans)} question(s) already in the store are new. Added as late answers, "
        "each joins a group nobody has reviewed yet, or waits in the ungrouped queue: none is graded without a "
        "grader seeing it."
    )
    again = {qid: found for qid, late in late_plans.items() if (found := resubmissions(ui_common.answers_of(qid), late))}
    if again:
        # Both answers would be graded; which one counts is the instructor's call.
        n_students = sum(len(found) for found in again.values())
        st.warning(f"{n_students} of these students already have an answer to the question: each would have two.")
        for qid, found in again.items():
            shown = "; ".join(f"{student}: {', '.join(ids)}" for student, ids in list(found.items())[:10])
            st.text(f"Question {qid}: {shown}" + (" ..." if len(found) > 10 else ""))
    if st.button(f"Add {n_late} late answer(s)", key="import-late"):
        _add_late()
        st.rerun()
