"""The rubric on the groups page: the instructors' editor, and grading by ticking items.

A grade given as rubric items follows the items: when an instructor gives an item other
points, every group and answer that has it is regraded in the same edit, and the page says
whose grades changed. Item descriptions are shown as plain text (widget labels and
``st.text``), never as Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action
from grouper.edits import GradeAnswer, GradeGroup, QuestionState
from grouper.review import GradeInUse, chosen_preset, grades_in_use, preset_key, rubric_suggestion
from grouper.rubric import copy_rubric, item_label, item_use, parse_rubric, rubric_lines, rubric_text


def editor(question_id: str, state: QuestionState) -> None:
    """Instructors write the rubric, one ``DESCRIPTION=POINTS`` line per item."""
    if not ui_common.current_identity().may(Action.SET_RUBRIC):
        return
    with st.expander(f"Rubric ({len(state.rubric)} item{'' if len(state.rubric) == 1 else 's'})"):
        if state.rubric:
            use = item_use(state)
            st.dataframe(
                pd.DataFrame(
                    {
                        "Item": [i.item_id for i in state.rubric],
                        "Description": [i.description for i in state.rubric],
                        "Points": [i.points for i in state.rubric],
                        "Answers": [use[i.item_id] for i in state.rubric],
                    }
                ),
                hide_index=True,
                key=f"rubric-use-{question_id}-v{state.version}",
            )
        with st.form(f"rubric-form-{question_id}", border=False):
            st.text_area(
                "One item per line: DESCRIPTION=POINTS (negative points deduct)",
                value="\n".join(rubric_lines(state)),
                key=f"rubric-{question_id}-v{state.version}",
                help="Keep an item's number to keep the item when rewording it. Giving an item other points "
                "regrades every group and answer graded with it.",
            )
            st.form_submit_button("Save rubric", key=f"rubric-save-{question_id}", on_click=_save, args=(question_id, state))
        others = [q for q in ui_common.question_ids() if q != question_id]
        if others:
            cols = st.columns([3, 2], vertical_alignment="bottom")
            cols[0].selectbox("Copy the rubric of another question", others, index=None, key=f"rubric-source-{question_id}")
            cols[1].button(
                "Add its items",
                key=f"rubric-copy-{question_id}",
                on_click=_copy,
                args=(question_id, state),
                help="Adds the items this question lacks (same description, any case: already here); "
                "this question's own items and grades stay as they are",
            )


def _save(question_id: str, state: QuestionState) -> None:
    typed = st.session_state.get(f"rubric-{question_id}-v{state.version}", "")
    try:
        payload = parse_rubric(state, typed.splitlines())
    except ValueError as exc:
        ui_common.flash("error", "The rubric was not saved.", str(exc))
        return
    n = len(payload.items)
    ui_common.submit(question_id, payload, f"The rubric now has {n} item{'' if n == 1 else 's'}.", base=state.version)


def _copy(question_id: str, state: QuestionState) -> None:
    source = st.session_state.get(f"rubric-source-{question_id}")
    if source is None:
        ui_common.flash("error", "Choose the question whose rubric to copy.")
        return
    try:
        payload = copy_rubric(ui_common.store().state(source), state)
    except ValueError as exc:
        ui_common.flash("error", "Nothing was copied.", str(exc))
        return
    n = len(payload.items) - len(state.rubric)
    ui_common.submit(
        question_id, payload, f"Added {n} item{'' if n == 1 else 's'} of question {source}'s rubric.", base=state.version
    )


#: Items 1-9 are ticked with the number keys, and "G" grades: a group graded in a few keys.
_KEYED_ITEMS = 9


def group_form(question_id: str, state: QuestionState, gid: int, vectors: Mapping[str, np.ndarray]) -> None:
    """Grade the group by ticking rubric items; the score is their points' sum, plus a point
    adjustment for what no item names.

    The picker lists the items; keys 1-9 tick or untick the first nine (their numbers are
    their places in the rubric), T ticks the items of the most similar group graded by the
    rubric (when one is close), and G applies the grade. The comment and the adjustment are
    typed in a form, so that no key typed there can reach a shortcut.
    """
    if not state.rubric:
        return
    group = state.groups[gid]
    labels = {i.item_id: item_label(i) for i in state.rubric}
    key = _items_key(question_id, gid, state.version)
    if key not in st.session_state:
        current = group.grade.items if group.grade is not None else ()
        st.session_state[key] = [i for i in current if i in labels]
    chosen = st.multiselect("Rubric items", list(labels), format_func=labels.__getitem__, key=key)
    keyed = state.rubric[:_KEYED_ITEMS]
    cols = st.columns(len(keyed))
    for n, (col, item) in enumerate(zip(cols, keyed, strict=True), start=1):
        col.button(
            f"{'✓ ' if item.item_id in chosen else ''}Item {n}",
            key=f"rubric-toggle-{question_id}-{gid}-{item.item_id}",
            on_click=_toggle,
            args=(key, item.item_id),
            shortcut=str(n),
            help=f"Tick or untick rubric item {n} (key {n})",
            width="stretch",
        )
    suggestion = rubric_suggestion(state, vectors, gid) if group.grade is None else None
    if suggestion is not None and set(suggestion.items) <= set(labels):
        named = "; ".join(labels[i] for i in suggestion.items)
        st.button(
            f"Tick group {suggestion.group_id}'s items",
            key=f"rubric-suggested-{question_id}-{gid}",
            on_click=_tick,
            args=(key, suggestion.items),
            shortcut="T",
            help=f"The most similar group graded by the rubric (similarity {suggestion.similarity:.2f}) "
            "has these items; tick them here, then check before grading (key T)",
        )
        st.text(f"Group {suggestion.group_id}, the most like this one, has: {named}")
    st.text("Keys: " + " · ".join(f"{n} {labels[i.item_id]}" for n, i in enumerate(keyed, start=1)) + " · G grade")
    points = {i.item_id: i.points for i in state.rubric}
    rubric_grade = group.grade if group.grade is not None and group.grade.items else None
    # The button says what the click gives: the ticked items and the adjustment shown (the
    # field starts from the current rubric grade's).
    adjustment = st.session_state.get(
        f"rubric-adjust-{question_id}-{gid}-v{state.version}", 0.0 if rubric_grade is None else rubric_grade.adjustment
    )
    total = math.fsum([*(points[i] for i in chosen), adjustment or 0.0])
    with st.form(f"rubric-grade-form-{question_id}-{gid}", border=False):
        cols = st.columns([3, 1], vertical_alignment="bottom")
        cols[0].text_input(
            "Comment with the rubric grade",
            value="" if rubric_grade is None else rubric_grade.comment,
            key=f"rubric-comment-{question_id}-{gid}-v{state.version}",
        )
        cols[1].number_input(
            "Point adjustment",
            value=0.0 if rubric_grade is None else rubric_grade.adjustment,
            step=0.5,
            key=f"rubric-adjust-{question_id}-{gid}-v{state.version}",
            help="Points added to the ticked items' (negative deducts), for what no item names",
        )
        st.form_submit_button(
            f"Grade {total:g} by the rubric",
            key=f"rubric-grade-{question_id}-{gid}",
            on_click=_grade_group,
            args=(question_id, state.version, gid),
            disabled=not chosen,
            type="primary",
            shortcut="G",
            help="The ticked items' points, plus the point adjustment",
        )


def _items_key(question_id: str, gid: int, version: int) -> str:
    return f"rubric-items-{question_id}-{gid}-v{version}"


def _tick(key: str, items: tuple[int, ...]) -> None:
    st.session_state[key] = list(items)


def _toggle(key: str, item_id: int) -> None:
    chosen = list(st.session_state.get(key) or [])
    st.session_state[key] = [i for i in chosen if i != item_id] if item_id in chosen else [*chosen, item_id]


def _grade_group(question_id: str, version: int, gid: int) -> None:
    if not ui_common.still_open(question_id, gid):
        return
    items = tuple(st.session_state.get(_items_key(question_id, gid, version)) or ())
    comment = st.session_state.get(f"rubric-comment-{question_id}-{gid}-v{version}", "")
    adjustment = float(st.session_state.get(f"rubric-adjust-{question_id}-{gid}-v{version}") or 0.0)
    if not items:
        ui_common.flash("error", "Tick at least one rubric item first.")
        return
    adjusted = f" with an adjustment of {adjustment:+g}" if adjustment else ""
    ui_common.submit(
        question_id,
        GradeGroup(gid, None, comment, items=items, adjustment=adjustment),
        f"Group {gid} graded by the rubric{adjusted}.",
        base=version,
    )


def items_field(question_id: str, state: QuestionState, key: str) -> None:
    """A rubric-item picker, with its point adjustment, inside another form (an answer's own
    grade, the selected members')."""
    if state.rubric:
        labels = {i.item_id: item_label(i) for i in state.rubric}
        cols = st.columns([3, 1], vertical_alignment="bottom")
        cols[0].multiselect("Or rubric items", list(labels), format_func=labels.__getitem__, key=key)
        cols[1].number_input(
            "Point adjustment", value=0.0, step=0.5, key=_adjust_key(key), help="Added to the ticked items' points"
        )


def _adjust_key(items_key: str) -> str:
    return f"{items_key}-adjust"


class GradingFields(NamedTuple):
    """What a grading form holds, as a grading edit takes it."""

    score: float | None  # None: left empty (a rubric grade is worth its items)
    items: tuple[int, ...]
    adjustment: float


def score_or_items(score_key: str, items_key: str) -> GradingFields | None:
    """What a grading form holds: its score (``None``: left empty), its ticked rubric items and
    their point adjustment.

    ``None``, with the reason shown, when it holds neither a score nor items, or an adjustment
    without items. With a score and items, the store checks that the score is the items' sum
    plus the adjustment: what the grader expects.
    """
    score = st.session_state.get(score_key)
    items = tuple(st.session_state.get(items_key) or ())
    adjustment = float(st.session_state.get(_adjust_key(items_key)) or 0.0)
    if score is None and not items:
        ui_common.flash("error", "Enter a score or tick rubric items first.")
        return None
    if adjustment and not items:
        ui_common.flash("error", "A point adjustment goes with rubric items; without items, enter the score itself.")
        return None
    return GradingFields(None if score is None else float(score), items, adjustment)


def preset_label(state: QuestionState, preset: GradeInUse) -> str:
    """``"2 · rubric: names the closed path (+2) · right (3×)"``: plain text for a selectbox
    (its options are never rendered as Markdown; comments are the graders')."""
    label = f"{preset.score:g}"
    if preset.items:
        label += f" · rubric: {ui_common.shorten(rubric_text(state, preset.items, preset.adjustment), 60)}"
    if preset.comment:
        label += f" · {ui_common.shorten(preset.comment, 60)}"
    return label + f" ({preset.uses}×)"


def preset_options(state: QuestionState, presets: list[GradeInUse]) -> dict[str, str]:
    """The presets as a box's options: :func:`preset_key` to its label (:func:`preset_labels`)."""
    return dict(zip(map(preset_key, presets), preset_labels(state, presets), strict=True))


def preset_labels(state: QuestionState, presets: list[GradeInUse]) -> list[str]:
    """:func:`preset_label` of each preset, told apart when two read alike (a selectbox maps a
    label back to its option: two equal labels would give the second grade for the first).

    Parameters
    ----------
    state : QuestionState
    presets : list of GradeInUse

    Returns
    -------
    list of str
        One label per preset, all different; a repeated label ends in "· #2", "· #3", ...
    """
    labels = [preset_label(state, p) for p in presets]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} · #{seen[label]}")
    return unique


def answer_grade_form(
    question_id: str, state: QuestionState, answer_id: str, prefix: str, presets: list[GradeInUse] | None = None
) -> None:
    """Score (or rubric items) and comment for one answer's own grade, where it is listed (the
    ungrouped queue, Check grades), or one of the grades given before in the question (most
    used first; ``presets``, computed once per page, else here). A form, so typing never
    reruns the page; "Grade" logs a ``GradeAnswer``. ``prefix`` keeps each page's widget keys
    apart."""
    keys = _answer_keys(question_id, answer_id, prefix)
    presets = grades_in_use(state) if presets is None else presets
    bounds = {} if state.max_score is None else {"min_value": 0.0, "max_value": state.max_score}
    with st.form(f"grade-{prefix}-form-{question_id}-{answer_id}", border=False):
        cols = st.columns([2, 5, 2], vertical_alignment="bottom")
        cols[0].number_input("Score", value=None, step=0.5, key=keys["score"], **bounds)
        cols[1].text_input("Comment", key=keys["comment"])
        cols[2].form_submit_button(
            "Grade", key=f"grade-{prefix}-{question_id}-{answer_id}", on_click=_grade_answer,
            args=(question_id, answer_id, prefix, presets, state.version),
        )
        if presets:
            options = preset_options(state, presets)
            st.selectbox(
                "Or a grade given before",
                list(options),
                index=None,
                format_func=options.__getitem__,
                placeholder="a grade given in this question",
                key=keys["again"],
            )
        items_field(question_id, state, keys["items"])


def _answer_keys(question_id: str, answer_id: str, prefix: str) -> dict[str, str]:
    return {field: f"{prefix}-{field}-{question_id}-{answer_id}" for field in ("score", "comment", "items", "again")}


def _grade_answer(question_id: str, answer_id: str, prefix: str, presets: list[GradeInUse], version: int) -> None:
    keys = _answer_keys(question_id, answer_id, prefix)
    comment = st.session_state.get(keys["comment"], "")
    again = st.session_state.get(keys["again"])
    if again is not None:
        if st.session_state.get(keys["score"]) is not None or st.session_state.get(keys["items"]):
            ui_common.flash("error", "Enter a score (or tick rubric items), or choose a grade given before: not both.")
            return
        # Exactly as given (a rubric grade as the same items, worth their points now); a comment
        # typed here is this answer's own.
        chosen = chosen_preset(presets, again)
        if chosen is None:
            ui_common.flash("error", "Choose one of the grades given before again: the list changed.")
            return
        payload = GradeAnswer(
            answer_id, None if chosen.items else chosen.score, comment or chosen.comment,
            items=chosen.items, adjustment=chosen.adjustment,
        )
        ui_common.submit(question_id, payload, f"Answer {answer_id} graded {chosen.score:g}.", base=version)
        return
    fields = score_or_items(keys["score"], keys["items"])
    if fields is None:
        return
    done = "by the rubric" if fields.score is None else f"{fields.score:g}"
    payload = GradeAnswer(answer_id, fields.score, comment, items=fields.items, adjustment=fields.adjustment)
    ui_common.submit(question_id, payload, f"Answer {answer_id} graded {done}.", base=version)
