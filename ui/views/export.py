"""Export page: grades (CSV, safe to open in a spreadsheet), one question's rubric grading
(CSV, a column per item), the edit log (JSONL) and the training pairs derived from it
(JSONL), as downloads. Instructors only.

The files are written by ``grouper.exports`` and ``grouper.feedback``, exactly as
``grouper export`` writes them; they are built when the page is drawn, from the store.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO

import streamlit as st

import ui_common
from grouper.access import Action
from grouper.exports import (
    grade_rows,
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

scope = st.segmented_control(
    "Export", ["This question", "All questions"], default="This question", key="export-scope"
)
store = ui_common.store()
question_ids = [question_id] if scope != "All questions" else store.question_ids()
suffix = question_id if len(question_ids) == 1 else "all"


def _render(write: Callable[[IO[str]], int]) -> tuple[bytes, int]:
    buffer = io.StringIO(newline="")
    count = write(buffer)
    return buffer.getvalue().encode("utf-8"), count


# Each question's state and answers are read once: the grades and the rubric file share them.
states = {q: store.state(q) for q in question_ids}
answers = {q: store.answers(q) for q in question_ids}
rows = [r for q in question_ids for r in grade_rows(states[q], answers[q])]
graded = sum(r.score is not None for r in rows)
grades, _ = _render(lambda out: write_grades_csv(rows, out))
by_student, students = _render(lambda out: write_grades_by_student_csv(rows, out))
log = [e for q in question_ids for e in store.edits(q)]
log_bytes, _ = _render(lambda out: write_edit_log_jsonl(log, out))
pairs = training_pairs(store, select=PairFilter(question_ids=frozenset(question_ids)))
pairs_bytes, _ = _render(lambda out: write_pairs_jsonl(pairs, out))

st.subheader("Grades")
st.text(f"{len(rows)} answers, {graded} graded, {len(rows) - graded} not graded yet.")
conflicts = {q: found for q in question_ids if (found := grade_conflicts(states[q], answers[q]))}
if conflicts:
    # Question ids are the instructor's, but may carry Markdown: the details go as plain text.
    st.warning("Some answers are graded unlike most of their identical answers. Check them before exporting.")
    for q, found in conflicts.items():
        st.text(f"Question {q}: {len(found)} answer(s): " + ", ".join(list(found)[:10]) + (" ..." if len(found) > 10 else ""))
    st.page_link("views/check.py", label="Check grades")
cols = st.columns(2)
cols[0].download_button(
    "Grades (CSV, one row per answer)",
    grades,
    file_name=f"grades-{suffix}.csv",
    mime="text/csv",
    key="download-grades",
    icon=":material/download:",
)
cols[1].download_button(
    f"Grades by student (CSV, {students} students)",
    by_student,
    file_name=f"grades-by-student-{suffix}.csv",
    mime="text/csv",
    key="download-grades-by-student",
    icon=":material/download:",
)
rubric_question = question_ids[0] if len(question_ids) == 1 else None
rubric_state = None if rubric_question is None else states[rubric_question]
if rubric_state is not None and rubric_state.rubric:
    rubric_bytes, _ = _render(lambda out: write_rubric_csv(rubric_state, answers[rubric_question], out))
    st.download_button(
        f"Rubric grading (CSV, a column per item: {len(rubric_state.rubric)} items)",
        rubric_bytes,
        file_name=f"rubric-{suffix}.csv",
        mime="text/csv",
        key="download-rubric",
        icon=":material/download:",
        help="1 where an answer's grade has the item, 0 where its rubric grade lacks it, empty where the "
        "rubric was not used; with each grade's point adjustment",
    )
st.subheader("Edit log and training signal")
st.text(f"{len(log)} edits; {len(pairs)} training pairs (must-link / cannot-link) derived from them.")
cols = st.columns(2)
cols[0].download_button(
    "Edit log (JSONL)",
    log_bytes,
    file_name=f"edit-log-{suffix}.jsonl",
    mime="application/jsonl",
    key="download-log",
    icon=":material/download:",
)
cols[1].download_button(
    "Training pairs (JSONL)",
    pairs_bytes,
    file_name=f"pairs-{suffix}.jsonl",
    mime="application/jsonl",
    key="download-pairs",
    icon=":material/download:",
)
