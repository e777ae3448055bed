"""Ungrouped queue: answers in no group, then doubtful members of unconfirmed groups, each
with the nearest group suggested and one click to accept the suggestion, and a score field (or
a grade given before, one choice) to grade an answer on its own where it waits.

The suggestions come from ``grouper.review.question_queue`` (centres of the current groups,
computed from the cached embeddings), following the graders' moves (``grader_moves``): an
answer a grader moved out of a group is not suggested back into it, nor into a group graded as
it is, and neither one a grader moved into its group nor a member of a group a grader merged,
split, renamed or made is listed as doubtful. A doubtful member is offered another group only
when that group's centre leads its own clearly (``DOUBTFUL_LEAD``); otherwise the row says so.
Accepting a suggestion appends a ``Move`` edit like any other.
Grading an answer appends a ``GradeAnswer`` (its own grade, which wins over any group's): an
answer that fits no group is graded in one action instead of being made a group of one. An
ungrouped answer with its own grade is done, so it leaves the queue.
"""

from __future__ import annotations

import streamlit as st

import rubric_panel
import ui_common
from grouper.access import Action
from grouper.edits import Grade, Move, QuestionState
from grouper.review import grader_moves, grades_in_use, no_suggestion_reason, question_queue

identity = ui_common.require(Action.REVIEW)
st.title("Ungrouped queue")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
texts = ui_common.answer_texts(question_id)
vectors = ui_common.answer_vectors(question_id)
PAGE_SIZE = 15  # enough to work through without scrolling far; buttons are per row


def _accept(answer_id: str, group_id: int, version: int) -> None:
    ui_common.submit(
        question_id, Move((answer_id,), group_id), f"Answer {answer_id} moved to group {group_id}.", base=version
    )


@st.fragment
def queue() -> None:
    """The queue, one row per answer; reruns alone on every accept."""
    ui_common.require_fresh(Action.REVIEW)
    global texts, vectors
    state: QuestionState = ui_common.load_state(question_id)
    ui_common.remember_version(question_id, state.version)
    # Read again here, not only once per full run: late answers come in while a grader stays
    # on the page, and each one listed needs its text and vector.
    texts, vectors = ui_common.answer_texts(question_id), ui_common.answer_vectors(question_id)
    ui_common.show_flashes()
    graded_alone = [a for a in state.ungrouped if a in state.overrides]
    moves = grader_moves(state)
    items = question_queue(state, vectors, moves)
    ungrouped = sum(item.reason == "ungrouped" for item in items)
    st.button(
        "Undo my last edit",
        key=f"queue-undo-{question_id}",
        on_click=ui_common.undo_last,
        args=(question_id,),
        disabled=not identity.may(Action.EDIT),
        help="Undo your latest edit of this question that is still in effect, made on any page",
    )
    st.text(
        f"{ungrouped} ungrouped answers, {len(items) - ungrouped} doubtful members of unconfirmed groups."
        + (f" {_graded_alone(len(graded_alone))}, not listed." if graded_alone else "")
    )
    if not items:
        st.success(
            "Nothing waiting: every answer is in a group"
            + (" or graded on its own." if graded_alone else ".")
        )
        return
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = (
        st.number_input("Page", min_value=1, max_value=pages, value=1, key=f"queue-page-{question_id}")
        if pages > 1
        else 1
    )
    may_edit = identity.may(Action.EDIT)
    may_grade = identity.may(Action.GRADE)
    presets = grades_in_use(state)  # once per run: every row offers the grades given before
    header = st.columns([5, 3, 2])
    header[0].text("Answer")
    header[1].text("Suggested group")
    for item in items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
        with st.container(border=True):
            row = st.columns([5, 3, 2], vertical_alignment="center")
            with row[0]:
                ui_common.plain(texts[item.answer_id])
                where = "ungrouped" if item.current_group is None else f"now in group {item.current_group}"
                own = state.overrides.get(item.answer_id)
                st.text(f"{item.answer_id} · {where}" + ("" if own is None else f" · own grade {own.score:g}"))
            if may_grade:
                with row[0]:
                    rubric_panel.answer_grade_form(question_id, state, item.answer_id, "answer", presets)
            if item.suggested_group is None:
                row[1].text(no_suggestion_reason(moves, item))
                continue
            suggested = state.groups[item.suggested_group]
            with row[1]:
                ui_common.plain(f"Group {item.suggested_group}: {ui_common.shorten(suggested.title, 80)}")
                st.text(
                    f"similarity {item.similarity:.2f}"
                    + (f"; {item.current_similarity:.2f} to group {item.current_group}, where it is" if item.reason == "doubtful" else "")
                )
                # What accepting does to the answer's grade, before the click, not only after it.
                st.text(_grade_there(suggested.grade, item.answer_id in state.overrides))
            row[2].button(
                f"Move to group {item.suggested_group}",
                key=f"accept-{question_id}-{item.answer_id}",
                on_click=_accept,
                args=(item.answer_id, item.suggested_group, state.version),
                disabled=not may_edit,
            )


def _grade_there(grade: Grade | None, own: bool) -> str:
    """The suggested group's grade, which the answer gets when it moves there (unless it has
    its own)."""
    if own:
        return "keeps its own grade there"
    if grade is None:
        return "not graded yet"
    return f"gives it grade {grade.score:g}" + (f" ({ui_common.shorten(grade.comment, 40)})" if grade.comment else "")


def _graded_alone(n: int) -> str:
    return "1 ungrouped answer graded on its own" if n == 1 else f"{n} ungrouped answers graded on their own"


queue()
