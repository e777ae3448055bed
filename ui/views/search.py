"""Search page: every answer to the open question that mentions some words or a phrase, the
group each is in, and one edit that moves the ticked ones into a group.

The matching is ``grouper.answer_search`` (words in any order, double-quoted phrases, after
NFKC and case folding) over the question's answers folded once per process. Moving appends
one ``Move`` edit through ``ui_common.submit`` against the version shown, so an edit made on
a state that has changed since is refused with what changed, like on the Groups page.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action
from grouper.answer_search import fold_texts, search_folded
from grouper.edits import NEW, Move, QuestionState
from grouper.review import listing_order

identity = ui_common.require(Action.REVIEW)
st.title("Search")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
#: At most this many matches are listed (and can be ticked); the count says how many match.
SHOW_AT_MOST = 500

QUERY = f"search-query-{question_id}"
#: Bumped by every search, "Select all shown", "Clear" and successful move: part of the
#: table's key, so that the table starts again with its default selection.
GENERATION = f"search-generation-{question_id}"
SELECT_ALL = f"search-select-all-{question_id}"
SHOWN = f"search-shown-{question_id}"
MOVE_TO = f"search-move-to-{question_id}"


@st.cache_resource(show_spinner=False, max_entries=16)
def _folded(path: str, qid: str, count: int, _texts: dict[str, str]) -> dict[str, str]:
    # Keyed like ui_common's answer caches: answers are only ever added, so their number
    # is enough; read-only, shared by all sessions.
    return fold_texts(_texts)


def _table_key() -> str:
    return f"search-results-{question_id}-{st.session_state.get(GENERATION, 0)}"


def _restart_table(select_all: bool = False) -> None:
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1
    st.session_state[SELECT_ALL] = select_all


def _selected() -> list[str]:
    """Answer ids of the ticked rows, as shown."""
    shown = st.session_state.get(SHOWN, [])
    event = st.session_state.get(_table_key())
    rows = [] if event is None else list(event["selection"]["rows"])
    return [shown[i] for i in rows if i < len(shown)]


def _grade(state: QuestionState, answer_id: str) -> str:
    grade = state.grade_of(answer_id)
    if grade is None:
        return ""
    return f"{grade.score:g}" + (" (own)" if state.grade_source(answer_id) == "override" else "")


# --------------------------------------------------------------------------- actions (callbacks)


def _search() -> None:
    _restart_table()


def _move(version: int) -> None:
    chosen = _selected()
    if not chosen:
        ui_common.flash("error", "Tick the answers to move first (or use Select all shown).")
        return
    target = st.session_state.get(MOVE_TO, "ungrouped")
    if (gone := ui_common.pick_gone(MOVE_TO)) is not None:
        ui_common.remember_pick(MOVE_TO)
        ui_common.flash("error", f"Group {gone}, where you chose to move them, is gone (deleted or merged): choose again.")
        return
    to = None if target == "ungrouped" else (NEW if target == NEW else int(target))
    where = "the ungrouped answers" if to is None else ("a new group" if to == NEW else f"group {to}")
    if ui_common.submit(question_id, Move(tuple(chosen), to), f"Moved {len(chosen)} answer(s) to {where}.", base=version):
        _restart_table()


# --------------------------------------------------------------------------- the page


@st.fragment
def search() -> None:
    """The search form, its matches and the move; reruns alone on every click inside it."""
    ui_common.require_fresh(Action.REVIEW)
    state = ui_common.load_state(question_id)
    ui_common.remember_version(question_id, state.version)
    ui_common.show_flashes()
    # Read here, not once per full run: late answers come in while a grader stays on the page.
    texts = ui_common.answer_texts(question_id)

    # A form: typing never reruns the page; the query counts once submitted.
    with st.form(f"search-form-{question_id}", border=False):
        cols = st.columns([5, 1], vertical_alignment="bottom")
        cols[0].text_input(
            "Answers that mention",
            key=QUERY,
            max_chars=500,
            placeholder='words in any order, "an exact phrase"',
            help=(
                "Every word must appear, in any order, ignoring case; "
                "a part in double quotes must appear as one phrase."
            ),
        )
        cols[1].form_submit_button(
            "Search", key=f"search-go-{question_id}", on_click=_search, width="stretch"
        )

    query = st.session_state.get(QUERY, "")
    if not query.strip():
        st.text("Type words or a quoted phrase and press Search.")
        return
    folded = _folded(str(ui_common.db_path()), question_id, len(texts), texts)
    matches = search_folded(folded, query)
    shown = matches[:SHOW_AT_MOST]
    st.session_state[SHOWN] = shown
    count = "1 answer matches" if len(matches) == 1 else f"{len(matches)} answers match"
    st.text(count + (f" (showing first {len(shown)})." if len(shown) < len(matches) else "."))
    if not shown:
        return

    def where(answer_id: str) -> str:
        gid = state.location[answer_id]
        return "ungrouped" if gid is None else f"{gid}: {state.groups[gid].title}"

    def status(answer_id: str) -> str:
        gid = state.location[answer_id]
        return "" if gid is None else state.groups[gid].status

    selection = {"selection": {"rows": list(range(len(shown)))}} if st.session_state.get(SELECT_ALL) else None
    st.dataframe(
        pd.DataFrame(
            {
                "Answer": [texts[a] for a in shown],
                "Answer id": shown,
                "Group": [where(a) for a in shown],
                "Status": [status(a) for a in shown],
                "Grade": [_grade(state, a) for a in shown],
            }
        ),
        key=_table_key(),
        on_select="rerun",
        selection_mode="multi-row",
        selection_default=selection,
        hide_index=True,
        height=min(35 * (len(shown) + 1) + 3, 560),
        column_config={
            "Answer": st.column_config.TextColumn(width=380),
            "Answer id": st.column_config.TextColumn(width=90),
            "Group": st.column_config.TextColumn(width=220, help="The group the answer is in now"),
            "Status": st.column_config.TextColumn(
                width=85, help="The group's status: suggested or confirmed"
            ),
            "Grade": st.column_config.TextColumn(
                width=70, help="The answer's grade: its group's, or its own"
            ),
        },
    )
    chosen = _selected()
    st.text(f"{len(chosen)} of {len(shown)} shown selected.")
    buttons = st.columns(2)
    buttons[0].button(
        "Select all shown",
        key=f"search-all-{question_id}",
        on_click=_restart_table,
        args=(True,),
        width="stretch",
    )
    buttons[1].button(
        "Clear selection", key=f"search-none-{question_id}", on_click=_restart_table, width="stretch"
    )

    if not identity.may(Action.EDIT):
        return
    order = listing_order(state)
    cols = st.columns([3, 1], vertical_alignment="bottom")
    cols[0].selectbox(
        "Move the selected answers to",
        ["ungrouped", NEW, *order],
        format_func=lambda o: ui_common.move_target_label(state, o),
        key=MOVE_TO,
        on_change=ui_common.remember_pick,
        args=(MOVE_TO,),
    )
    cols[1].button("Move", key=f"search-move-{question_id}", on_click=_move, args=(state.version,), type="primary", width="stretch")
    st.button(
        "Undo my last edit",
        key=f"search-undo-{question_id}",
        on_click=ui_common.undo_last,
        args=(question_id,),
        help="Undo your latest edit of this question that is still in effect, made on any page",
    )


search()
