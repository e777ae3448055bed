"""Export page: grades (CSV, safe to open in a spreadsheet), one question's rubric grading
(CSV, a column per item), the edit log (JSONL) and the training pairs derived from it
(JSONL), as downloads. Instructors only.

The files are written by ``grouper.exports`` and ``grouper.feedback``, exactly as
``grouper export`` writes them, from the store. Each is built when its button is clicked, not
when the page is drawn: on a question of 10,000 answers with 1,000 corrections the training
pairs alone are half a million and took 9 s to derive and write, on every draw of the page
(``benchmarks/export_page.py``). The page itself reads only what its counts need.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO

import streamlit as st

import ui_common
from grouper.access import Action
from grouper.exports import (
    EXCEL_BOM,
    grade_rows,
    resubmissions,
    student_of,
    write_edit_log_jsonl,
    write_grades_by_student_csv,
    write_grades_csv,
    write_pairs_jsonl,
    write_rubric_csv,
)
from grouper.feedback import PairFilter, training_pairs
from grouper.grade_check import grade_conflicts

identity = ui_common.require(Action.EXPORT)
st.title("Export")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()

course = ui_common.course_of(question_id)
# A course's questions export together: one by-student table for the whole exam or term.
scopes = ["This question"] + (["This course"] if course is not None else []) + ["All questions"]
scope = st.segmented_control("Export", scopes, default="This question", key="export-scope")
store = ui_common.store()
if scope == "All questions":
    question_ids, suffix = store.question_ids(), "all"
elif scope == "This course" and course is not None:
    question_ids = [i.question_id for i in store.questions() if i.course == course]
    suffix = "course-" + "".join(c if c.isalnum() else "-" for c in course)
else:
    question_ids, suffix = [question_id], question_id


# Who may export is checked again when a file is built: the click runs no page, and someone
# removed from the staff list since the page was drawn must get nothing.
_may_still_export = ui_common.later_check(Action.EXPORT)


def _deferred(write: Callable[[IO[str]], object], mark: str = "") -> Callable[[], bytes]:
    """The file ``write`` makes, after ``mark``, as Streamlit's deferred download data: run on
    the click.

    Its buttons are ``on_click="ignore"``: a rerun on the click would register the files again
    under new ids while the browser is still fetching the old one (a download lost in CI)."""

    def render() -> bytes:
        _may_still_export()  # raises: the browser's download fails, and nothing is handed out
        buffer = io.StringIO(newline="")
        buffer.write(mark)
        write(buffer)
        return buffer.getvalue().encode("utf-8")

    return render


def _pairs(out: IO[str]) -> int:
    pairs = training_pairs(store, select=PairFilter(question_ids=frozenset(question_ids)))
    return write_pairs_jsonl(pairs, out)


# Each question's state and answers are read once: the counts, the grades files and the rubric
# file share them (those files match the counts shown; the pairs are derived from the log as it
# is at the click).
states = {q: store.state(q) for q in question_ids}
answers = {q: store.answers(q) for q in question_ids}
rows = [r for q in question_ids for r in grade_rows(states[q], answers[q])]
graded = sum(r.score is not None for r in rows)
students = len({student_of(r) for r in rows})
log = [e for q in question_ids for e in store.edits(q)]

st.subheader("Grades")
st.text(
    f"{len(rows)} answers, {graded} graded, {len(rows) - graded} not graded yet"
    + (" (empty score cells; a by-student total counts them as 0)." if graded < len(rows) else ".")
)
conflicts = {q: found for q in question_ids if (found := grade_conflicts(states[q], answers[q]))}
if conflicts:
    # Question ids are the instructor's, but may carry Markdown: the details go as plain text.
    st.warning("Some answers are graded unlike most of their identical answers. Check them before exporting.")
    for q, found in conflicts.items():
        st.text(f"Question {q}: {len(found)} answer(s): " + ", ".join(list(found)[:10]) + (" ..." if len(found) > 10 else ""))
    st.page_link("views/check.py", label="Check grades")
# Excel reads a CSV as UTF-8 only after a byte-order mark; other readers take the mark for part
# of the first column's name, so it is the instructor's choice (as grouper export --excel).
for_excel = st.checkbox(
    "For Excel",
    key="export-excel",
    help="Begin the CSV files with a UTF-8 byte-order mark, so that Excel shows accented names "
    "and comments right (without it, Zoë reads ZoÃ«). Leave it off for other gradebooks and scripts.",
)
csv_mark = EXCEL_BOM if for_excel else ""
cols = st.columns(2)
cols[0].download_button(
    "Grades (CSV, one row per answer)",
    _deferred(lambda out: write_grades_csv(rows, out), csv_mark),
    file_name=f"grades-{suffix}.csv",
    mime="text/csv",
    key="download-grades",
    icon=":material/download:",
    on_click="ignore",
)
twice = resubmissions(rows)
cols[1].download_button(
    f"Grades by student (CSV, {students} students)",
    _deferred(lambda out: write_grades_by_student_csv(rows, out), csv_mark),
    file_name=f"grades-by-student-{suffix}.csv",
    mime="text/csv",
    key="download-grades-by-student",
    icon=":material/download:",
    on_click="ignore",
    disabled=bool(twice),
    help="Some students have several answers to one question: see below" if twice else None,
)
if twice:
    # A by-student table has one cell per student and question: which answer counts is the
    # instructor's call. Ids may carry Markdown: plain text.
    st.warning("Some students have several answers to one question, so there is no by-student table.")
    shown = [f"{student} ({q}): {', '.join(ids)}" for (student, q), ids in list(twice.items())[:10]]
    st.text("; ".join(shown) + (" ..." if len(twice) > 10 else ""))
rubric_question = question_ids[0] if len(question_ids) == 1 else None
rubric_state = None if rubric_question is None else states[rubric_question]
if rubric_state is not None and rubric_state.rubric:
    st.download_button(
        f"Rubric grading (CSV, a column per item: {len(rubric_state.rubric)} items)",
        _deferred(lambda out: write_rubric_csv(rubric_state, answers[rubric_question], out), csv_mark),
        file_name=f"rubric-{suffix}.csv",
        mime="text/csv",
        key="download-rubric",
        icon=":material/download:",
        on_click="ignore",
        help="1 where an answer's grade has the item, 0 where its rubric grade lacks it, empty where the "
        "rubric was not used; with each grade's point adjustment",
    )
st.subheader("Edit log and training signal")
st.text(
    f"{len(log)} edits. The training pairs (must-link / cannot-link) are derived from them when you "
    "download them: on a long log they are many."
)
cols = st.columns(2)
cols[0].download_button(
    "Edit log (JSONL)",
    _deferred(lambda out: write_edit_log_jsonl(log, out)),
    file_name=f"edit-log-{suffix}.jsonl",
    mime="application/jsonl",
    key="download-log",
    icon=":material/download:",
    on_click="ignore",
)
cols[1].download_button(
    "Training pairs (JSONL)",
    _deferred(_pairs),
    file_name=f"pairs-{suffix}.jsonl",
    mime="application/jsonl",
    key="download-pairs",
    icon=":material/download:",
    on_click="ignore",
)
