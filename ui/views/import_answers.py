"""Import page: upload an answer file (or pick the sample data), preview it, import and group.

The file is parsed by ``grouper.answers.parse_answers`` with the same rules as the command
line: every problem is listed with the file, row and column, and nothing is imported unless
the whole file is valid. Grouping runs for every question before anything is saved, with a
progress bar, and the questions are saved together, so a failure leaves the store as it was.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action
from grouper.answers import AnswerFileError, Question, parse_answers

identity = ui_common.require(Action.IMPORT)
st.title("Import answers")
ui_common.show_flashes()

source = st.segmented_control(
    "Answers from", ["Upload a file", "Sample data"], default="Upload a file", key="import-source"
)
files: list[tuple[str, bytes]]
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
    upload = st.file_uploader(
        "Answer file (CSV, JSON or JSONL)", type=["csv", "json", "jsonl"], key="import-file"
    )
    files = [] if upload is None else [(upload.name, upload.getvalue())]

if not files:
    st.text("Columns: answer_id (or student_id), answer; optionally question_id, question, grade, score.")
    st.stop()

questions: list[Question] = []
errors: list[AnswerFileError] = []
for file_name, content in files:
    try:
        questions.extend(parse_answers(content, file_name))
    except AnswerFileError as error:
        errors.append(error)

if errors:
    st.error("Nothing was imported: fix these problems in the file and upload it again.")
    st.dataframe(
        pd.DataFrame(
            [
                {"File": e.path, "Row": p.row, "Column": p.column or "", "Problem": p.message}
                for e in errors
                for p in e.problems
            ]
        ),
        hide_index=True,
        key="import-problems",
    )
    st.stop()

existing = set(ui_common.question_ids())
st.subheader("Preview")
st.dataframe(
    pd.DataFrame(
        {
            "Question": [q.question_id for q in questions],
            "Text": [q.text for q in questions],
            "Answers": [len(q.answers) for q in questions],
            "Blank": [sum(a.is_blank for a in q.answers) for q in questions],
            "Already in the store": ["yes" if q.question_id in existing else "" for q in questions],
        }
    ),
    hide_index=True,
    key="import-preview-questions",
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
if clashes:
    st.warning(f"{len(clashes)} question(s) are already in the store and will not be imported again.")
new = [q for q in questions if q.question_id not in existing]


def _import() -> None:
    """Group every new question (progress bar), then save them all."""
    bar = st.progress(0.0, text="Loading the model")
    try:
        imported = ui_common.import_and_group(
            new, progress=lambda fraction, what: bar.progress(min(max(fraction, 0.0), 1.0), text=what)
        )
    except Exception as exc:  # noqa: BLE001 - shown to the instructor
        # Grouping runs before anything is written, so a failure there saved nothing.
        bar.empty()
        ui_common.flash("error", "The import failed.", str(exc))
        return
    bar.progress(1.0, text="Done")
    ui_common.flash("success", f"Imported and grouped {len(imported)} question(s).")
    if imported:
        st.session_state[ui_common.QUESTION] = imported[0]


if st.button(f"Import and group {len(new)} question(s)", key="import-go", type="primary", disabled=not new):
    _import()
    st.rerun()
