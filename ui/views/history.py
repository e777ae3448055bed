"""History page: every edit of the open question, newest first, who made it and whether it
still stands; filter by who and what, and undo one edit.

The rows come from ``grouper.history`` (the log in words). Anyone may undo their own edits;
instructors may undo anyone's. An undo is an edit like any other (``Undo(edit_id)``, logged
and attributed), and the fold refuses it when later edits depend on what it would take back,
naming the edits to undo first; the page then offers to make those undos, in that order, and
the one asked for, with one click (each still an edit of its own, checked as any other).
"""

from __future__ import annotations

import zlib

import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action, canonical_author, same_author
from grouper.edits import AddAnswers, Undo, listed_edits, undo_plan
from grouper.history import history

identity = ui_common.require(Action.REVIEW)
st.title("History")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
SHOW_AT_MOST = 1000  # rows drawn; the filters reach older edits


def _selected_edit(key: str, rows: list) -> object | None:
    event = st.session_state.get(key)
    picked = [] if event is None else list(event["selection"]["rows"])
    return rows[picked[0]] if picked and picked[0] < len(rows) else None


_PLAN = f"history-plan-{question_id}"  # (version, edit, the undos it waits on) after a refusal


def _undo(edit_id: int) -> None:
    st.session_state.pop(_PLAN, None)
    if ui_common.submit(question_id, Undo(edit_id), f"Undid edit {edit_id}."):
        return
    state = ui_common.load_state(question_id)
    plan = undo_plan(state, edit_id, identity.author)
    if plan:
        st.session_state[_PLAN] = (state.version, edit_id, plan)


def _undo_in_order(edit_id: int, plan: tuple[int, ...], version: int) -> None:
    """The undos an undo waits on, then it: one edit each, stopping at the first refusal or
    as soon as the question is not at the version the plan expects (someone else's edit came
    in, before the first step or between two: the plan was worked out without it)."""
    st.session_state.pop(_PLAN, None)
    steps = (*plan, edit_id)
    for done, step in enumerate(steps):
        if ui_common.load_state(question_id).version != version + done:
            saved = f"{done} of the {len(steps)} undos were saved; " if done else "nothing was undone; "
            ui_common.flash("info", f"Another edit came in since the undos were worked out: {saved}look at the history again.")
            return
        ui_common.remember_version(question_id, version + done)  # the plan's, or this session's last undo
        if not ui_common.submit(question_id, Undo(step), f"Undid edit {step}."):
            if done:
                ui_common.flash("info", f"{done} of the {len(steps)} undos were saved before the refusal above.")
            return


@st.fragment
def page() -> None:
    """Filters, the table and the undo; reruns alone on every click inside it."""
    ui_common.require_fresh(Action.REVIEW)
    store = ui_common.store()
    state = ui_common.load_state(question_id)
    ui_common.remember_version(question_id, state.version)
    ui_common.show_flashes()
    edits = store.edits(question_id)
    authors = sorted({canonical_author(e.author) for e in edits})  # one entry per person
    kinds = sorted({e.kind for e in edits})
    cols = st.columns(2)
    who = cols[0].multiselect("Who", authors, key=f"history-who-{question_id}", placeholder="everyone")
    what = cols[1].multiselect("What", kinds, key=f"history-what-{question_id}", placeholder="every kind of edit")
    rows = history(edits, state, authors=set(who) or None, kinds=set(what) or None)
    shown = rows[:SHOW_AT_MOST]
    st.text(
        f"{len(rows)} of {len(edits)} edits" + (f" (showing the newest {len(shown)})" if len(shown) < len(rows) else "")
        + f". Version {state.version}."
    )
    if not shown:
        return
    # The filters' contents, not their sizes, are in the key: a tick must never carry over to
    # another edit at the same row when "Who" changes from one grader to another.
    key = f"history-{question_id}-v{state.version}-{zlib.crc32(repr((sorted(who), sorted(what))).encode()):08x}"
    st.dataframe(
        pd.DataFrame(
            {
                "Edit": [r.edit_id for r in shown],
                "When (UTC)": [f"{r.at:%Y-%m-%d %H:%M:%S}" for r in shown],
                "Who": [r.author for r in shown],
                "What": [r.summary for r in shown],  # titles in it may be student text: a cell is plain
                "Undone by": ["" if r.undone_by is None else str(r.undone_by) for r in shown],
            }
        ),
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        height=min(35 * (len(shown) + 1) + 3, 560),
        column_config={
            "Edit": st.column_config.NumberColumn(width=55),
            "What": st.column_config.TextColumn(width=420),
        },
    )
    row = _selected_edit(key, shown)
    if row is None:
        st.text("Tick an edit to undo it.")
        return
    mine = same_author(row.author, identity.author)
    # What the click will be checked for: the edit's own kind (an undo of an undo, the kind of
    # the edit it brings back) and, for another's edit, the right to undo it.
    allowed = ui_common.may_log(identity, Undo(row.edit_id), state)
    late = row.kind == AddAnswers.kind
    st.button(
        f"Undo edit {row.edit_id}",
        key=f"history-undo-{question_id}",
        on_click=_undo,
        args=(row.edit_id,),
        disabled=not allowed or row.undone_by is not None or late,
        help=(
            "Late answers stay once submitted: move or grade them instead" if late
            else "Already undone; undo the undo to apply it again" if row.undone_by is not None
            else ("Only instructors undo other graders' edits" if not allowed and not mine
                  else f"Your role ({identity.role.value}) cannot make this change" if not allowed
                  else "Logged as a new edit, by you")
        ),
    )
    planned = st.session_state.get(_PLAN)
    if planned is not None and planned[0] == state.version and planned[1] == row.edit_id:
        version, edit_id, plan = planned
        # every step, the asked-for undo too: the rights are those of each undo on its own
        others = [e for e in (*plan, edit_id) if not same_author(state.records[e].author, identity.author)]
        may = all(ui_common.may_log(identity, Undo(e), state) for e in (*plan, edit_id))
        st.button(
            f"Undo {listed_edits(plan)}, then edit {edit_id}",
            key=f"history-undo-chain-{question_id}",
            on_click=_undo_in_order,
            args=(edit_id, plan, version),
            disabled=not may,
            help=(
                "Each is logged as a new edit, by you, in this order; grades they change are named"
                if may
                else f"Only instructors undo other graders' edits ({listed_edits(others)})"
                if others
                else f"Your role ({identity.role.value}) cannot make one of these changes"
            ),
        )


page()
