"""Ungrouped queue: answers in no group, then doubtful members of unconfirmed groups, each
with the nearest group suggested and one click to accept the suggestion.

The suggestions come from ``grouper.review.review_queue`` (centres of the current groups,
computed from the cached embeddings); accepting one appends a ``Move`` edit like any other.
"""

from __future__ import annotations

import streamlit as st

import ui_common
from grouper.access import Action
from grouper.edits import CONFIRMED, Move, QuestionState
from grouper.review import review_queue

identity = ui_common.require(Action.REVIEW)
st.title("Ungrouped queue")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
texts = ui_common.answer_texts(question_id)
vectors = ui_common.answer_vectors(question_id)
PAGE_SIZE = 15  # enough to work through without scrolling far; buttons are per row


def _accept(answer_id: str, group_id: int) -> None:
    ui_common.submit(
        question_id, Move((answer_id,), group_id), f"Answer {answer_id} moved to group {group_id}."
    )


@st.fragment
def queue() -> None:
    """The queue, one row per answer; reruns alone on every accept."""
    state: QuestionState = ui_common.load_state(question_id)
    ui_common.remember_version(question_id, state.version)
    ui_common.show_flashes()
    settled = {g for g, group in state.groups.items() if group.status == CONFIRMED or group.blank}
    items = review_queue(
        {g: group.members for g, group in state.groups.items()}, state.ungrouped, vectors, settled=settled
    )
    ungrouped = sum(item.reason == "ungrouped" for item in items)
    st.text(
        f"{ungrouped} ungrouped answers, {len(items) - ungrouped} doubtful members of unconfirmed groups."
    )
    if not items:
        st.success("Nothing waiting: every answer is in a group.")
        return
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = (
        st.number_input("Page", min_value=1, max_value=pages, value=1, key=f"queue-page-{question_id}")
        if pages > 1
        else 1
    )
    may_edit = identity.may(Action.EDIT)
    header = st.columns([5, 3, 2])
    header[0].text("Answer")
    header[1].text("Suggested group")
    for item in items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
        with st.container(border=True):
            row = st.columns([5, 3, 2], vertical_alignment="center")
            with row[0]:
                ui_common.plain(texts[item.answer_id])
                where = "ungrouped" if item.current_group is None else f"now in group {item.current_group}"
                st.text(f"{item.answer_id} · {where}")
            if item.suggested_group is None:
                row[1].text("no group is close")
                continue
            suggested = state.groups[item.suggested_group]
            with row[1]:
                ui_common.plain(f"Group {item.suggested_group}: {ui_common.shorten(suggested.title, 80)}")
                st.text(f"similarity {item.similarity:.2f}")
            row[2].button(
                f"Move to group {item.suggested_group}",
                key=f"accept-{question_id}-{item.answer_id}",
                on_click=_accept,
                args=(item.answer_id, item.suggested_group),
                disabled=not may_edit,
            )


queue()
