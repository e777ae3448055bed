"""Groups page: review one question's groups, fix them and grade them.

The list of groups sits on the left, the open group on the right with its members least
typical first. Everything below the question picker is one fragment: a click reruns only the
fragment, which reads the question's current state from the store (cheap: a snapshot plus the
edits since) and never recomputes embeddings or groups. Edits go through
``ui_common.submit``, which appends them to the store with the version this session saw, so a
stale edit is refused with what changed instead of overwriting someone else's work.
"""

from __future__ import annotations

import json
import zlib

import pandas as pd
import streamlit as st

import rubric_panel
import ui_common
from grouper.access import Action
from grouper.edits import (
    CONFIRMED,
    NEW,
    Confirm,
    Delete,
    Grade,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    QuestionState,
    Rename,
    SetMaxScore,
    SetReferences,
    Split,
    auto_split_parts,
)
from grouper.grade_adaptation import ADAPTATION_AUTHOR, adapt_question
from grouper.regroup import StalePlan
from grouper.review import GradeInUse, chosen_preset, grades_in_use, least_typical_first, listing_order
from grouper.rubric import rubric_text
from grouper.store import StoreBusy

identity = ui_common.require(Action.REVIEW)
st.title("Groups")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
texts = ui_common.answer_texts(question_id)
vectors = ui_common.answer_vectors(question_id)


# --------------------------------------------------------------------------- helpers


def _grade_text(state: QuestionState, gid: int) -> str:
    grade = state.groups[gid].grade
    return "" if grade is None else f"{grade.score:g}"


def _open_group(state: QuestionState, order: list[int]) -> int | None:
    key = f"open-{question_id}"
    gid = st.session_state.get(key)
    if gid not in state.groups:  # first visit, or the group was merged/deleted meanwhile
        gid = order[0] if order else None
        st.session_state[key] = gid
    return gid


def _step(order: list[int], delta: int) -> None:
    key = f"open-{question_id}"
    if not order:
        return
    current = st.session_state.get(key)
    index = order.index(current) if current in order else -1
    st.session_state[key] = order[(index + delta) % len(order)]


def _selected_rows(key: str) -> list[int]:
    """Rows selected in the dataframe widget ``key`` (its state reads as a mapping)."""
    event = st.session_state.get(key)
    return [] if event is None else list(event["selection"]["rows"])


def _pick_from_table(table_key: str, order: list[int]) -> None:
    """Open the group whose row was just ticked in the list (each new tick once, so that
    "Next group" is not overridden by an old tick)."""
    rows = _selected_rows(table_key)
    seen_key = f"picked-{table_key}"
    if rows and rows != st.session_state.get(seen_key) and rows[0] < len(order):
        st.session_state[f"open-{question_id}"] = order[rows[0]]
    st.session_state[seen_key] = rows


def _selected_members(gid: int, version: int) -> list[str]:
    """Answer ids of the rows selected in the open group's member table, as shown."""
    shown = st.session_state.get(f"shown-{question_id}-{gid}", [])
    rows = _selected_rows(f"members-{question_id}-{gid}-v{version}")
    return [shown[i] for i in rows if i < len(shown)]


# --------------------------------------------------------------------------- actions (callbacks)
# Callbacks run before the fragment reruns, so one click costs one fragment run.


def _confirm(gid: int, version: int) -> None:
    if ui_common.still_open(question_id, gid):
        ui_common.submit(question_id, Confirm(gid), f"Group {gid} confirmed.", base=version)


def _rename(gid: int, version: int) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    title = st.session_state.get(f"rename-{question_id}-{gid}", "").strip()
    if not title:
        ui_common.flash("error", "Type a title first.")
        return
    ui_common.submit(question_id, Rename(gid, title), f"Group {gid} renamed.", base=version)


def _merge(gid: int, version: int) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    others = st.session_state.get(f"merge-{question_id}-{gid}") or []
    if not others:
        ui_common.flash("error", "Choose the group(s) to merge into this one.")
        return
    names = ", ".join(str(o) for o in others)
    ui_common.submit(question_id, Merge(gid, tuple(others)), f"Merged group(s) {names} into group {gid}.", base=version)


def _split_auto(gid: int, state: QuestionState) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    k = int(st.session_state.get(f"split-k-{question_id}-{gid}", 2))
    try:
        parts = auto_split_parts(state, gid, k, vectors)
    except ValueError as exc:
        ui_common.flash("error", "Cannot split this group.", str(exc))
        return
    ui_common.submit(question_id, Split(gid, parts), f"Group {gid} split into {k} groups.", base=state.version)


def _split_selected(gid: int, state: QuestionState) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    chosen = _selected_members(gid, state.version)
    if not chosen:
        ui_common.flash("error", "Select the answers to split out first (tick their rows).")
        return
    ui_common.submit(
        question_id,
        Move(tuple(chosen), NEW),
        f"{len(chosen)} answer(s) split out of group {gid} into a new group.",
        base=state.version,
    )


def _move(gid: int, state: QuestionState) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    chosen = _selected_members(gid, state.version)
    key = f"move-to-{question_id}-{gid}"
    target = st.session_state.get(key, "ungrouped")
    if not chosen:
        ui_common.flash("error", "Select the answers to move first (tick their rows).")
        return
    if (gone := ui_common.pick_gone(key)) is not None:
        ui_common.remember_pick(key)
        ui_common.flash("error", f"Group {gone}, where you chose to move them, is gone (deleted or merged): choose again.")
        return
    to = None if target == "ungrouped" else (NEW if target == NEW else int(target))
    where = "the ungrouped answers" if to is None else ("a new group" if to == NEW else f"group {to}")
    ui_common.submit(question_id, Move(tuple(chosen), to), f"Moved {len(chosen)} answer(s) to {where}.", base=state.version)


def _delete(gid: int, version: int) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    if not st.session_state.get(f"delete-sure-{question_id}-{gid}"):
        ui_common.flash("error", "Tick the box to confirm deleting the group.")
        return
    ui_common.submit(question_id, Delete(gid), f"Group {gid} deleted; its answers are now ungrouped.", base=version)


def _grade(gid: int, version: int, drawn: Grade | None) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    # The fields of the version the form was drawn at: they start from that version's grade.
    score = st.session_state.get(f"score-{question_id}-{gid}-v{version}")
    comment = st.session_state.get(f"comment-{question_id}-{gid}-v{version}", "")
    if score is None:
        earlier = f"score-{question_id}-{gid}-v"
        typed = any(k.startswith(earlier) and k != f"{earlier}{version}" and v is not None for k, v in st.session_state.items())
        # A score typed into the form of an earlier version: the form was drawn anew (the
        # question changed meanwhile), empty, and that score is not applied unseen.
        ui_common.flash(
            "error",
            f"The question changed (now version {version}) and the form was drawn again: type the score again."
            if typed
            else "Enter a score first.",
        )
        return
    payload = GradeGroup(gid, float(score), comment)
    if drawn is not None and drawn.items and float(score) == drawn.score:
        # The rubric grade's score left as shown (a new comment, say): it stays a rubric grade,
        # so that it follows its items when their points change.
        payload = GradeGroup(gid, None, comment, items=drawn.items, adjustment=drawn.adjustment)
    ui_common.submit(question_id, payload, f"Group {gid} graded {float(score):g}.", base=version)


def _grade_again(gid: int, presets: list[GradeInUse], version: int) -> None:
    """Give the open group a grade already given in this question, exactly as given (a rubric
    grade as the same items, worth their current points)."""
    if not ui_common.still_open(question_id, gid):
        return
    chosen = chosen_preset(presets, st.session_state.get(f"grade-again-choice-{question_id}-{gid}"))
    if chosen is None:
        # Nothing chosen, or the grade chosen is no longer one given (the box was cleared).
        ui_common.flash("error", "Choose one of the grades given before.")
        return
    payload = GradeGroup(
        gid, None if chosen.items else chosen.score, chosen.comment, items=chosen.items, adjustment=chosen.adjustment
    )
    ui_common.submit(question_id, payload, f"Group {gid} graded {chosen.score:g}.", base=version)


def _own_grade(gid: int, state: QuestionState) -> None:
    """Give each selected member its own grade (an override), one ``GradeAnswer`` each."""
    if not ui_common.still_open(question_id, gid):
        return
    chosen = _selected_members(gid, state.version)
    comment = st.session_state.get(f"own-comment-{question_id}-{gid}", "")
    if not chosen:
        ui_common.flash("error", "Select the answers to grade first (tick their rows).")
        return
    fields = rubric_panel.score_or_items(f"own-score-{question_id}-{gid}", f"own-items-{question_id}-{gid}")
    if fields is None:
        return
    _submit_each(
        [GradeAnswer(a, fields.score, comment, items=fields.items, adjustment=fields.adjustment) for a in chosen],
        lambda n: f"{n} answer{'' if n == 1 else 's'} given their own grade"
        + (" by the rubric." if fields.score is None else f" {fields.score:g}."),
        base=state.version,
    )


def _clear_own_grade(gid: int, state: QuestionState) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    chosen = [a for a in _selected_members(gid, state.version) if a in state.overrides]
    if not chosen:
        ui_common.flash("error", "None of the selected answers has its own grade.")
        return
    _submit_each(
        [GradeAnswer(a, None) for a in chosen],
        lambda n: f"{n} answer{'' if n == 1 else 's'} back to the group's grade.",
        base=state.version,
    )


def _submit_each(payloads: list, success, *, base: int) -> None:
    """Append one edit per answer, each against ``base`` (the version the grader saw); stop at
    the first refusal, saying how many were saved (each saved one is an edit of its own,
    undone one at a time)."""
    for done, payload in enumerate(payloads):
        if ui_common.submit_quietly(question_id, payload, base=base) is None:
            if done:
                ui_common.flash("info", f"{done} of {len(payloads)} were saved before the refusal above.")
            return
    ui_common.flash("success", success(len(payloads)))


def _set_max_score(key: str, clear: bool = False) -> None:
    points = st.session_state.get(key)
    if not clear and points is None:
        ui_common.flash("error", "Enter the maximum score first.")
        return
    ui_common.submit(
        question_id,
        SetMaxScore(None if clear else float(points)),
        f"Question {question_id} has no maximum score now." if clear else f"Question {question_id} is now out of {float(points):g} points.",
    )


def _set_references(key: str) -> None:
    typed = st.session_state.get(key, "")
    texts = tuple(dict.fromkeys(line.strip() for line in typed.splitlines() if line.strip()))
    done = "no reference answers" if not texts else f"{len(texts)} reference answer(s)"
    ui_common.submit(question_id, SetReferences(texts), f"Question {question_id} now has {done}.")


def _regroup_by_references() -> None:
    from grouper.regroup import regroup_stored_question

    identity = ui_common.acting_identity(Action.SET_REFERENCES)
    if identity is None:
        return
    author = f"model:references:{identity.author}"
    try:
        done, refused = regroup_stored_question(ui_common.store(), question_id, ui_common.question_encoder(question_id), author)
    except StoreBusy as busy:
        ui_common.flash("error", _STOPPED_BUSY, str(busy))
        return
    if refused:
        ui_common.flash("error", f"Regrouping stopped after {done} edit(s): the question was edited meanwhile.", refused)
    elif done:
        ui_common.flash("success", f"Regrouped the answers nobody has reviewed ({done} edits).")
    else:
        ui_common.flash("info", "Nothing to regroup: the answers nobody has reviewed are grouped so already.")


#: A regrouping is several edits: those made before the database stayed busy are kept.
_STOPPED_BUSY = "Regrouping stopped: the database stayed busy. The edits made so far are in the history; press again."


def _undo() -> None:
    ui_common.undo_last(question_id)


def _adapt() -> None:
    # The edits are the model's (so never trained on), named with who asked for them.
    identity = ui_common.acting_identity(Action.EDIT)
    if identity is None:
        return
    author = f"{ADAPTATION_AUTHOR}:{identity.author}"
    try:
        done = adapt_question(ui_common.store(), question_id, ui_common.question_encoder(question_id), author=author)
    except StalePlan as stale:
        ui_common.flash(
            "error", f"Regrouping stopped after {stale.done} edit(s): the question was edited meanwhile.", stale.reason
        )
        return
    except StoreBusy as busy:
        ui_common.flash("error", _STOPPED_BUSY, str(busy))
        return
    if done:
        ui_common.flash("success", f"Regrouped the answers not reviewed yet from the grades given ({done} edits).")
    else:
        ui_common.flash(
            "info", "Nothing to regroup: grade groups with at least two different grades first, or all is reviewed."
        )


# --------------------------------------------------------------------------- the workspace


def _progress_line(done: int, total: int) -> str:
    """How much of the question is graded, e.g. "142 of 185 answers graded, 43 to go"."""
    if done == total:
        return f"All {total} answers graded."
    return f"{done} of {total} answers graded, {total - done} to go."


@st.fragment
def workspace() -> None:
    """The group list and the open group; reruns alone on every click inside it."""
    ui_common.require_fresh(Action.REVIEW)
    global texts, vectors
    state = ui_common.load_state(question_id)
    ui_common.remember_version(question_id, state.version)
    # Read again here, not only once per full run: late answers come in while a grader stays
    # on the page, and the members listed must have their texts.
    texts, vectors = ui_common.answer_texts(question_id), ui_common.answer_vectors(question_id)
    may_edit = identity.may(Action.EDIT)
    may_grade = identity.may(Action.GRADE)
    ui_common.show_flashes()

    order = listing_order(state)
    # The list's widget key holds the version: its rows are the order of that version.
    table_key = f"groups-{question_id}-v{state.version}"
    _pick_from_table(table_key, order)
    gid = _open_group(state, order)
    cues = ui_common.group_cues({g: state.groups[g].members for g in order}, vectors)
    confirmed = sum(state.groups[g].status == CONFIRMED for g in order)
    graded = sum(state.groups[g].grade is not None for g in order)
    st.text(
        f"{len(order)} groups: {confirmed} confirmed, {graded} graded; "
        f"{len(state.ungrouped)} answers ungrouped. Version {state.version}."
    )
    total, done = len(state.location), state.graded_count()
    st.progress(done / total if total else 1.0, text=_progress_line(done, total))
    _max_score_line(state)
    _references_editor(state)
    rubric_panel.editor(question_id, state)

    left, right = st.columns([1, 1], gap="medium")
    with left:
        table = pd.DataFrame(
            {
                "Group": order,
                "Title": [state.groups[g].title for g in order],
                "Size": [len(state.groups[g].members) for g in order],
                "Status": ["✓" if state.groups[g].status == CONFIRMED else "" for g in order],
                "Grade": [_grade_text(state, g) for g in order],
                "Confidence": [cues[g].symbol for g in order],
            }
        )
        st.dataframe(
            table,
            key=table_key,
            on_select="rerun",
            selection_mode="single-row",
            hide_index=True,
            height=min(35 * (len(order) + 1) + 3, 640),
            column_config={
                "Group": st.column_config.NumberColumn(width=55),
                "Title": st.column_config.TextColumn(width=170),
                "Size": st.column_config.NumberColumn(width=50),
                "Status": st.column_config.TextColumn(width=45, help="✓ confirmed by a grader"),
                "Grade": st.column_config.TextColumn(width=55),
                "Confidence": st.column_config.TextColumn(
                    width=60, help="How alike the members are: ●●● all close, ●○○ some look misplaced"
                ),
            },
        )
        nav = st.columns(3)
        nav[0].button(
            "Previous", key="prev-group", on_click=_step, args=(order, -1), shortcut="P", width="stretch"
        )
        nav[1].button(
            "Next group", key="next-group", on_click=_step, args=(order, 1), shortcut="N", width="stretch"
        )
        nav[2].button(
            "Undo",
            key="undo",
            on_click=_undo,
            shortcut="U",
            disabled=not may_edit,
            width="stretch",
            help="Undo your last edit of this question",
        )
        st.button(
            "Regroup the rest from the grades given",
            key="adapt",
            on_click=_adapt,
            disabled=not may_edit,
            width="stretch",
            help=(
                "Learn from the groups graded so far which answers deserve which grade, and re-cut the "
                "groups nobody has reviewed yet; confirmed and graded work, groups a grader merged, split, renamed or "
                "made, and answers a grader moved, never move"
            ),
        )

    with right:
        if gid is None:
            st.info("This question has no groups. Answers waiting for a group are in the ungrouped queue.")
            return
        group = state.groups[gid]
        cue = cues[gid]
        st.subheader(f"Group {gid}")
        ui_common.plain(group.title)  # the title is student text (or a grader's): plain
        grade = "not graded" if group.grade is None else f"grade {group.grade.score:g}"
        st.text(
            f"{len(group.members)} answers · {group.status} · {grade} · confidence {cue.level}"
            + (f" ({cue.doubtful} look misplaced)" if cue.doubtful else "")
            + f" · last change: {group.change}"
            + (f" by {group.changed_by}" if group.changed_by else "")
        )
        if group.grade is not None and group.grade.items:
            ui_common.plain(f"Rubric: {rubric_text(state, group.grade.items, group.grade.adjustment)}")
        if group.grade is not None and group.grade.comment:
            ui_common.plain(f"Comment: {group.grade.comment}")

        buttons = st.columns(2)
        buttons[0].button(
            "Confirm group",
            key=f"confirm-{question_id}-{gid}",
            on_click=_confirm,
            args=(gid, state.version),
            disabled=not may_edit or group.status == CONFIRMED,
            shortcut="Y",
            type="primary",
            width="stretch",
        )
        if group.grade is not None and buttons[1].button(
            "Check its grades",
            key=f"check-group-link-{question_id}-{gid}",
            width="stretch",
            help="Open Check grades on this group's members, the most doubtful grade first",
        ):
            # The Check grades page's group filter is set before the page creates it.
            st.session_state[f"check-group-{question_id}"] = gid
            st.switch_page("views/check.py")

        members = least_typical_first(group.members, vectors)
        shown = [a for a, _ in members]
        st.session_state[f"shown-{question_id}-{gid}"] = shown
        st.dataframe(
            pd.DataFrame(
                {
                    "Answer": [texts[a] for a in shown],
                    "Answer id": shown,
                    "Typicality": [round(s, 3) for _, s in members],
                    "Own grade": [
                        f"{state.overrides[a].score:g}" if a in state.overrides else "" for a in shown
                    ],
                }
            ),
            key=f"members-{question_id}-{gid}-v{state.version}",
            on_select="rerun",
            selection_mode="multi-row",
            hide_index=True,
            height=min(35 * (len(shown) + 1) + 3, 420),
            column_config={
                "Answer": st.column_config.TextColumn(width=330),
                "Answer id": st.column_config.TextColumn(width=75),
                "Typicality": st.column_config.NumberColumn(
                    width=75, help="Similarity to the group's centre: the lowest are listed first"
                ),
                "Own grade": st.column_config.TextColumn(width=70),
            },
        )
        selected = _selected_members(gid, state.version)
        st.text(f"{len(selected)} of {len(shown)} selected (least typical first).")

        if may_edit:
            _edit_actions(state, gid, order)
        if may_grade:
            _grade_action(state, gid)


def _edit_actions(state: QuestionState, gid: int, order: list[int]) -> None:
    others = [g for g in order if g != gid]
    # A segmented control rather than tabs: the chosen action stays chosen across the
    # reruns every click causes, and only its controls are drawn.
    action = st.segmented_control(
        "Action on the open group",
        _ACTIONS,
        default="Move",
        key=f"action-{question_id}",
        label_visibility="collapsed",
    )
    if action == "Move":
        cols = st.columns([3, 1], vertical_alignment="bottom")
        cols[0].selectbox(
            "Move the selected answers to",
            ["ungrouped", NEW, *others],
            format_func=lambda o: ui_common.move_target_label(state, o),
            key=f"move-to-{question_id}-{gid}",
            on_change=ui_common.remember_pick,
            args=(f"move-to-{question_id}-{gid}",),
        )
        cols[1].button(
            "Move", key=f"move-{question_id}-{gid}", on_click=_move, args=(gid, state), width="stretch"
        )
    elif action == "Split":
        # Forms: typing into a field never reruns the page, so focus stays in the field (a
        # rerun could move it away, and the next letters typed would fire shortcuts).
        with st.form(f"split-form-{question_id}-{gid}", border=False):
            cols = st.columns([2, 2], vertical_alignment="bottom")
            cols[0].number_input(
                "Parts", min_value=2, max_value=20, value=2, step=1, key=f"split-k-{question_id}-{gid}"
            )
            cols[1].form_submit_button(
                "Split automatically",
                key=f"split-auto-{question_id}-{gid}",
                on_click=_split_auto,
                args=(gid, state),
            )
        st.button(
            "Split the selected answers out into a new group",
            key=f"split-selected-{question_id}-{gid}",
            on_click=_split_selected,
            args=(gid, state),
        )
    elif action == "Merge":
        with st.form(f"merge-form-{question_id}-{gid}", border=False):
            cols = st.columns([3, 1], vertical_alignment="bottom")
            cols[0].multiselect(
                "Merge these groups into this one",
                others,
                format_func=lambda o: ui_common.group_label(state, o),
                key=f"merge-{question_id}-{gid}",
            )
            cols[1].form_submit_button(
                "Merge", key=f"merge-btn-{question_id}-{gid}", on_click=_merge, args=(gid, state.version), width="stretch"
            )
    elif action == "Rename":
        with st.form(f"rename-form-{question_id}-{gid}", border=False):
            cols = st.columns([3, 1], vertical_alignment="bottom")
            cols[0].text_input("New title", key=f"rename-{question_id}-{gid}", max_chars=200)
            cols[1].form_submit_button(
                "Rename",
                key=f"rename-btn-{question_id}-{gid}",
                on_click=_rename,
                args=(gid, state.version),
                width="stretch",
            )
    elif action == "Delete":
        with st.form(f"delete-form-{question_id}-{gid}", border=False):
            st.checkbox(
                "Yes, delete this group (its answers become ungrouped)",
                key=f"delete-sure-{question_id}-{gid}",
            )
            st.form_submit_button(
                "Delete group", key=f"delete-{question_id}-{gid}", on_click=_delete, args=(gid, state.version)
            )


_ACTIONS = ["Move", "Split", "Merge", "Rename", "Delete"]


def _max_score_line(state: QuestionState) -> None:
    """The scale grades are on; instructors set it (every grade then lies in [0, maximum])."""
    limit = state.max_score
    if limit is not None:
        mark = state.max_score_mark
        st.text(f"Out of {limit:g} points (set by {mark.author} at version {mark.version})." if mark else f"Out of {limit:g} points.")
    if not identity.may(Action.SET_MAX_SCORE):
        return
    # Keyed by the maximum's version: a keyed field keeps what it first showed, so after
    # another instructor's change it would offer the old maximum, and "Set" would put it back.
    key = f"max-score-{question_id}-v{state.max_score_mark.version if state.max_score_mark else 0}"
    with st.expander("Maximum score" if limit is None else "Change the maximum score"):
        with st.form(f"max-score-form-{question_id}", border=False):
            cols = st.columns([2, 1], vertical_alignment="bottom")
            cols[0].number_input("Points possible", value=limit, min_value=0.01, step=0.5, key=key)
            cols[1].form_submit_button("Set", key=f"max-score-set-{question_id}", on_click=_set_max_score, args=(key,))
        if limit is not None:
            st.button("Remove the maximum", key=f"max-score-clear-{question_id}", on_click=_set_max_score, args=(key, True))


def _references_editor(state: QuestionState) -> None:
    """Instructors give (or fix) the reference answers, then regroup what nobody reviewed."""
    if not identity.may(Action.SET_REFERENCES):
        return
    current = ui_common.store().reference_answers(question_id)
    # Keyed by what it shows, like the maximum: another instructor's references replace the box.
    key = f"references-{question_id}-{zlib.crc32(json.dumps(current).encode()):08x}"
    with st.expander(f"Reference answers ({len(current)})"):
        with st.form(f"references-form-{question_id}", border=False):
            st.text_area(
                "One reference answer per line",
                value="\n".join(current),
                key=key,
                help="The instructor's model answers: answers are grouped by how much of one they say",
            )
            st.form_submit_button("Save", key=f"references-save-{question_id}", on_click=_set_references, args=(key,))
        st.button(
            "Regroup the answers nobody has reviewed",
            key=f"references-regroup-{question_id}",
            on_click=_regroup_by_references,
            help=(
                "Confirmed and graded groups, groups a grader merged, split, renamed or made, and answers a "
                "grader moved never move"
            ),
        )


def _score_bounds(state: QuestionState) -> dict:
    """``number_input`` bounds for a score: [0, maximum] when the question has a maximum."""
    return {} if state.max_score is None else {"min_value": 0.0, "max_value": state.max_score}


def _own_grade_action(state: QuestionState, gid: int) -> None:
    """Partial credit for the ticked members without moving them out of the group."""
    with st.expander("Give the selected answers their own grade"):
        with st.form(f"own-grade-form-{question_id}-{gid}", border=False):
            cols = st.columns([1, 3], vertical_alignment="bottom")
            cols[0].number_input(
                "Their score", value=None, step=0.5, key=f"own-score-{question_id}-{gid}", **_score_bounds(state)
            )
            cols[1].text_input("Their comment", key=f"own-comment-{question_id}-{gid}")
            rubric_panel.items_field(question_id, state, f"own-items-{question_id}-{gid}")
            st.form_submit_button(
                "Grade the selected answers", key=f"own-grade-{question_id}-{gid}", on_click=_own_grade, args=(gid, state)
            )
        st.button(
            "Clear their own grades",
            key=f"own-clear-{question_id}-{gid}",
            on_click=_clear_own_grade,
            args=(gid, state),
            help="The selected answers take the group's grade again",
        )


def _grade_action(state: QuestionState, gid: int) -> None:
    group = state.groups[gid]
    _own_grade_action(state, gid)
    st.subheader("Grade this group", divider="gray")
    presets = grades_in_use(state)
    if presets:
        # Option labels are plain text (selectbox does not render Markdown); comments are the graders'.
        cols = st.columns([3, 1], vertical_alignment="bottom")
        options = rubric_panel.preset_options(state, presets)
        cols[0].selectbox(
            "Grade as before",
            list(options),
            index=None,
            format_func=options.__getitem__,
            placeholder="a grade given in this question",
            key=f"grade-again-choice-{question_id}-{gid}",
        )
        cols[1].button(
            "Apply", key=f"grade-again-{question_id}-{gid}", on_click=_grade_again, args=(gid, presets, state.version), width="stretch"
        )
    rubric_panel.group_form(question_id, state, gid, vectors)
    receiving = [a for a in group.members if a not in state.overrides]
    keeping = [a for a in group.members if a in state.overrides]
    with st.form(f"grade-form-{question_id}-{gid}", border=False):
        cols = st.columns([1, 3], vertical_alignment="bottom")
        # Keyed by the version: a keyed field keeps what it first showed, so after another
        # grader's grade it would offer the old score, and "Apply grade" would put it back.
        cols[0].number_input(
            "Score",
            value=None if group.grade is None else group.grade.score,
            step=0.5,
            key=f"score-{question_id}-{gid}-v{state.version}",
            **_score_bounds(state),
        )
        cols[1].text_input(
            "Comment",
            value="" if group.grade is None else group.grade.comment,
            key=f"comment-{question_id}-{gid}-v{state.version}",
        )
        with st.expander(f"Preview: {len(receiving)} answers will receive this grade"):
            st.dataframe(
                pd.DataFrame({"Answer id": receiving, "Answer": [texts[a] for a in receiving]}),
                hide_index=True,
                key=f"grade-preview-{question_id}-{gid}-v{state.version}",
            )
            if keeping:
                st.text(f"{len(keeping)} answers keep their own grade: {', '.join(keeping)}")
        st.form_submit_button(
            "Apply grade", key=f"grade-{question_id}-{gid}", on_click=_grade, args=(gid, state.version, group.grade), type="primary"
        )


workspace()
