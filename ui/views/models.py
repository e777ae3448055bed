"""Models page: the encoder's versions, and (instructors) retraining on the graders' edits.

Retraining is ``grouper.training.retrain_from_store``, what ``grouper retrain`` runs: the
graders' work becomes training pairs (each graded answer against the reference answers where
questions have them, else the must-link / cannot-link pairs of the edit log), the active model
is fine-tuned on them, and the candidate is published and activated only if it beats its
parent on held-out questions. "Regroup waiting answers" then regroups, with the active
version, what nobody has confirmed or graded (``grouper regroup``).
It takes minutes and runs in this session only; other sessions keep working.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action
from grouper.model_errors import ModelIntegrityError
from grouper.model_versions import BASE_VERSION, ModelRegistry

identity = ui_common.require(Action.REVIEW)
st.title("Models")
ui_common.show_flashes()
registry = ModelRegistry()
try:
    active: str | None = registry.active()
except (ModelIntegrityError, ValueError) as problem:
    # The way out (activating another version, below) must stay open.
    active = None
    st.error("The active version cannot be used: activate another version below.")
    ui_common.plain(str(problem))


def _overall(card, which: str) -> str:
    """The held-out figure (APA: grader actions per answer, lower is better) of a version."""
    value = (card.metrics.get(which) or {}).get("overall") if card.metrics else None
    return "" if value is None else f"{value:.3f}"


def _card_or_problem(version: str):
    """The version's card, or what is wrong with it: one damaged card must not hide the
    others, nor the rollback below."""
    try:
        return registry.card(version)
    except (ModelIntegrityError, ValueError) as problem:
        return str(problem)


cards = {v: _card_or_problem(v) for v in registry.versions()}
readable = {v: c for v, c in cards.items() if not isinstance(c, str)}
st.dataframe(
    pd.DataFrame(
        {
            "Version": list(cards),
            "Active": ["✓" if v == active else "" for v in cards],
            "Parent": [readable[v].parent or "" if v in readable else "" for v in cards],
            "Created": [readable[v].created_at if v in readable else "" for v in cards],
            "APA of parent": [_overall(readable[v], "parent") if v in readable else "" for v in cards],
            "APA": [_overall(readable[v], "candidate") if v in readable else "" for v in cards],
            "Decision": [readable[v].decision if v in readable else f"card unreadable: {c}" for v, c in cards.items()],
        }
    ),
    hide_index=True,
)
if active is not None:
    st.text(f"New questions are grouped with the active version, {active}.")

if not identity.may(Action.RETRAIN):
    st.stop()


def _retrain() -> None:
    from grouper.training import retrain_from_store

    if ui_common.acting_identity(Action.RETRAIN) is None:
        return

    with st.status("Retraining on the graders' corrections", expanded=True) as status:
        try:
            outcome = retrain_from_store(ui_common.store(), rng=np.random.default_rng(0), registry=registry)
        except (ValueError, ModelIntegrityError, OSError) as problem:
            # Nothing to learn from, weights that fail their check, a folder that cannot be
            # written: said, not a traceback.
            status.update(label="Nothing was retrained", state="error")
            ui_common.flash("error", "Nothing was retrained.", str(problem))
            return
        status.update(label="Retrained", state="complete")
    card = outcome.card
    verdict = "and activated" if outcome.activated else "but not activated (it did not beat its parent)"
    ui_common.flash("success", f"Published {card.version} {verdict}.", card.decision)


def _activate() -> None:
    if ui_common.acting_identity(Action.RETRAIN) is None:  # a callback: the role checked again
        return
    version = st.session_state.get("models-activate")
    card = readable.get(version)
    if card is None:
        ui_common.flash("error", f"Version {version} cannot be activated: its card is unreadable.", str(cards.get(version)))
        return
    anyway = bool(st.session_state.get("models-activate-anyway"))
    if version != BASE_VERSION and not card.beats_parent and not anyway:
        # What `grouper models --activate` refuses without --force.
        ui_common.flash(
            "error",
            f"Version {version} did not beat its parent; tick 'Even though it lost' to activate it anyway.",
            card.decision,
        )
        return
    try:
        registry.set_active(version, force=anyway)
    except (ValueError, OSError, ModelIntegrityError) as problem:  # removed meanwhile, not writable, files changed
        ui_common.flash("error", f"Version {version} was not activated.", str(problem))
        return
    ui_common.flash("success", f"Version {version} is now active.")


st.subheader("Retrain")
st.text(
    "Fine-tunes the active version on the grading so far (graded answers against the reference answers where "
    "questions have them, else the links among answers in the edit log); held-out questions decide whether it "
    "becomes active."
)
if st.button("Retrain now", key="models-retrain", type="primary", disabled=active is None):
    _retrain()
    st.rerun()
cols = st.columns([3, 1], vertical_alignment="bottom")
cols[0].selectbox(
    "Roll back or forward to",
    registry.versions(),
    index=registry.versions().index(active) if active in registry.versions() else 0,
    key="models-activate",
)
cols[1].button("Activate", key="models-activate-btn", on_click=_activate)
st.checkbox(
    "Even though it lost to its parent",
    key="models-activate-anyway",
    help="A version that did not beat its parent on the held-out questions is activated only when this is ticked",
)


def _regroup(shown: str) -> None:
    from grouper.regroup import regroup_store

    if ui_common.acting_identity(Action.RETRAIN) is None:
        return
    version = registry.active()
    if version != shown:
        # Another instructor activated a version since the page was drawn: regroup with what
        # the page said, or not at all, never with a version nobody chose here.
        ui_common.flash("error", f"Nothing was regrouped: the active version is now {version}, not {shown}; look again.")
        return
    with st.status(f"Regrouping the waiting answers with {version}", expanded=False) as status:
        try:
            report = regroup_store(ui_common.store(), registry, version=version)
        except (ModelIntegrityError, ValueError, OSError) as problem:
            status.update(label="Nothing was regrouped", state="error")
            ui_common.flash("error", "Nothing was regrouped.", str(problem))
            return
        status.update(label="Regrouped", state="complete")
    edits = sum(done for done, _ in report.values())
    changed = sum(1 for done, _ in report.values() if done)
    stopped = sorted(qid for qid, (_, refused) in report.items() if refused)
    ui_common.flash(
        "success",
        f"Regrouped with {version}: {edits} edit(s) by model:{version} in {changed} of {len(report)} question(s) "
        "(a question already grouped by it, with nothing new, is left as it is).",
        # A grader's edit that came in meanwhile stops that question's plan; nothing is forced.
        ("Stopped early because a grader edited meanwhile: " + ", ".join(stopped)) if stopped else None,
    )


st.subheader("Regroup")
st.text(
    f"Groups again, with the active version {active}, the answers nobody has confirmed or graded, in every "
    "question. Confirmed and graded groups, and groups a grader merged, split, renamed or made, keep their members "
    "and ids; answers a grader moved stay where they were put; every move is logged as the model's edit."
)
# The version this page showed when the button was pressed: the click's run reads the
# registry afresh, and another instructor may have activated another version since.
shown = st.session_state.get("models-shown-active", active)
if st.button("Regroup waiting answers", key="models-regroup", disabled=active is None):
    _regroup(shown)
    st.rerun()
st.session_state["models-shown-active"] = active
