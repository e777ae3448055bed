"""Check grades: the graded answers most likely to carry the wrong grade, to look at again.

A whole group graded at once can carry a member that does not belong; this page lists the
graded answers most doubtful first (``grouper.grade_check.grade_doubts``): identical answers
graded differently (another score, or other rubric items), then members least like their
group and least like what the other groups' grades predict. A grader reads the first few, gives a wrong one the likely grade
in one click (a ``GradeAnswer`` edit, logged like any other) or another grade, and marks a
right one "Looks right" (a ``CheckGrades`` edit: logged and attributed, so the answer leaves
the list for every grader until its grade changes).
"""

from __future__ import annotations

import streamlit as st

import rubric_panel
import ui_common
from grouper.access import Action
from grouper.edits import CheckGrades, Edit, Grade, GradeAnswer, QuestionState, Undo
from grouper.grade_check import GradeDoubt, grade_doubts
from grouper.references import question_references
from grouper.rubric import rubric_text
from grouper.review import GradeInUse, grades_in_use

identity = ui_common.require(Action.REVIEW)
st.title("Check grades")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
texts = ui_common.answer_texts(question_id)
PAGE_SIZE = 10
#: Edits after which a ranking still holds: they change no grade but the answers' own.
_KEEPS_RANKING = frozenset({GradeAnswer.kind, CheckGrades.kind})


def _grade_text(grade: Grade | GradeInUse, state: QuestionState | None = None) -> str:
    """``"2 [explains why (+2)] (right)"``: the rubric items too when the state is given, since
    two grades of the same points may be other items."""
    items = f" [{rubric_text(state, grade.items, grade.adjustment)}]" if state is not None and grade.items else ""
    return f"{grade.score:g}{items}" + (f" ({ui_common.shorten(grade.comment, 40)})" if grade.comment else "")


def _doubts(state: QuestionState) -> tuple[list[GradeDoubt], set[str]]:
    """The ranking of this state, and the answers graded on their own since it was made.

    Ranking refits the grade model (seconds on 10,000 answers), so it is remembered per
    question. When every edit since is an answer's own grade or a grade check (what this
    page's buttons make), the remembered ranking is kept and the answers graded leave it: a
    grade given to one answer changes no other answer's grade, so every grade still listed is
    the current one (checks are read from the state on every run), unless that answer is the
    identical twin a listed doubt rests on. An undo of such an edit
    (the page's U) keeps it the same way. Any other edit, or "Rank again", ranks afresh.
    """
    references = ui_common.store().reference_answers(question_id)
    cached = st.session_state.get("check-doubts")
    if cached is not None and cached[0] == (question_id, references) and not st.session_state.pop("check-rerank", False):
        version, found = cached[1], cached[2]
        if version == state.version:
            return found, set()
        since = ui_common.store().edits(question_id, since=version)
        regraded = _regraded_only(since, state)
        # An answer's own grade is evidence for its identical answers ("graded otherwise"):
        # when one listed as such is regraded, their doubts and likely grades are weighed again.
        if since and regraded is not None and not any(regraded.intersection(d.twins) for d in found):
            return [d for d in found if d.answer_id not in regraded], regraded
    vectors = ui_common.answer_vectors(question_id)
    answers = ui_common.answers_of(question_id)
    question = ui_common.store().question(question_id)
    known = question_references(question, ui_common.question_encoder(question_id), cache=ui_common.store().embeddings)
    with st.spinner("Weighing the grades"):
        found = grade_doubts(state, answers, [vectors[a.answer_id] for a in answers], known)
    st.session_state["check-doubts"] = ((question_id, references), state.version, found)
    return found, set()


def _regraded_only(edits: list[Edit], state: QuestionState) -> set[str] | None:
    """The answers these edits gave (or took back) a grade of their own, when they changed
    nothing else but grade checks; ``None`` when some edit changed more."""
    regraded: set[str] = set()
    for e in edits:
        if isinstance(e.payload, GradeAnswer):
            regraded.add(e.payload.answer_id)
            continue
        if e.payload.kind in _KEEPS_RANKING:
            continue
        target = state.records.get(e.payload.edit_id) if isinstance(e.payload, Undo) else None
        if target is None or target.kind not in _KEEPS_RANKING:
            return None
        regraded.update(target.overrides_before)  # an own grade undone: that answer's grade changed
    return regraded


def _rank_again() -> None:
    st.session_state["check-rerank"] = True


def _looks_right(answer_ids: tuple[str, ...], version: int) -> None:
    what = f"Answer {answer_ids[0]}'s grade" if len(answer_ids) == 1 else f"The grades of {len(answer_ids)} answers"
    ui_common.submit(question_id, CheckGrades(answer_ids), f"{what} checked as right.", base=version)


def _give(answer_id: str, grade: GradeInUse, version: int) -> None:
    payload = GradeAnswer(answer_id, grade.score, grade.comment, items=grade.items, adjustment=grade.adjustment)
    ui_common.submit(question_id, payload, f"Answer {answer_id} graded {_grade_text(grade)}.", base=version)


def _reasons(doubt: GradeDoubt, state: QuestionState) -> str:
    parts = []
    if doubt.twins:
        shown = ", ".join(doubt.twins[:3]) + (" …" if len(doubt.twins) > 3 else "")
        parts.append(f"identical to {shown}, graded otherwise")
    if not doubt.graded_alone and doubt.group_id is not None:
        parts.append(f"typicality in its group {doubt.typicality:.2f}")
    if doubt.probability is not None:
        parts.append(f"the other groups' grades give its score {doubt.probability:.0%}")
    if doubt.likely is not None:
        parts.append(f"likely grade {_grade_text(doubt.likely, state)}")
    return "; ".join(parts)


def _row(doubt: GradeDoubt, state: QuestionState, first: bool, presets: list[GradeInUse]) -> None:
    """One answer and its actions; the first row's answer to the keys G and L. ``presets``: the
    grades given in the question, for the row's own-grade form."""
    answer_id = doubt.answer_id
    with st.container(border=True):
        ui_common.plain(texts[answer_id])
        where = "graded on its own" if doubt.graded_alone else ui_common.group_label(state, doubt.group_id)
        st.text(f"{answer_id} · {where} · graded {_grade_text(doubt.grade, state)} · doubt {doubt.doubt:.2f}")
        st.text(_reasons(doubt, state))
        may_grade = identity.may(Action.GRADE)
        cols = st.columns([3, 2, 5], vertical_alignment="center")  # the last keeps the buttons left
        if doubt.likely is not None:
            # The label shows the score only: a widget label is Markdown, and the comment is
            # a grader's text; the reasons line above gives the whole grade as plain text.
            chance = "" if doubt.likely_probability is None else f" ({doubt.likely_probability:.0%})"
            # The same points as other rubric items: the reasons line names them.
            other = "the other rubric items" if doubt.likely.score == doubt.grade.score else f"{doubt.likely.score:g}"
            cols[0].button(
                f"Give it {other}{chance}",
                key=f"check-give-{question_id}-{answer_id}",
                on_click=_give,
                args=(answer_id, doubt.likely, state.version),
                disabled=not may_grade,
                shortcut="G" if first else None,
            )
        cols[1].button(
            "Looks right", key=f"check-keep-{question_id}-{answer_id}", on_click=_looks_right, args=((answer_id,), state.version),
            disabled=not may_grade,
            shortcut="L" if first else None,
            help="Log that its grade is right as it stands: it leaves this list for every grader until its grade "
            "changes (undo it from History)" + (" (key L)" if first else ""),
        )
        if may_grade:
            with st.expander("Another grade"):
                rubric_panel.answer_grade_form(question_id, state, answer_id, "check", presets)


def _in_one_group(listed: list[GradeDoubt], state: QuestionState) -> tuple[list[GradeDoubt], int | None]:
    """The doubts of the group the grader picks (every group by default): a TA who has just
    graded a group checks its members here, in the same order."""
    counts: dict[int, int] = {}
    for d in listed:
        if d.group_id is not None and d.group_id in state.groups:
            counts[d.group_id] = counts.get(d.group_id, 0) + 1
    if len(counts) < 2:
        return listed, None
    chosen = st.selectbox(
        "Group",
        [None, *sorted(counts)],
        format_func=lambda g: "Every group" if g is None else f"{ui_common.group_label(state, g)} · {counts[g]} to check",
        key=f"check-group-{question_id}",
    )
    if chosen is None or chosen not in counts:
        return listed, None
    return [d for d in listed if d.group_id == chosen], chosen


@st.fragment
def check() -> None:
    """The list, most doubtful first; reruns alone on every click."""
    ui_common.require_fresh(Action.REVIEW)
    global texts
    state = ui_common.load_state(question_id)
    ui_common.remember_version(question_id, state.version)
    texts = ui_common.answer_texts(question_id)  # late answers come in while a grader stays here
    ui_common.show_flashes()
    doubts, regraded = _doubts(state)
    if not doubts and not regraded:
        st.info("Nothing is graded yet: grade some groups first.")
        return
    if regraded:
        cols = st.columns([5, 1], vertical_alignment="center")
        cols[0].text(
            f"{len(regraded)} answer(s) graded on their own since this list was ranked are left out of it; "
            "rank again to weigh the new grades."
        )
        cols[1].button("Rank again", key=f"check-rerank-{question_id}", on_click=_rank_again)
    # Checks are read from the state, not the ranking: another grader's check counts at once,
    # and one that lapsed (the grade changed since) puts the answer back.
    listed = [d for d in doubts if state.grade_check(d.answer_id) is None]
    checked = len(doubts) - len(listed)
    twins = sum(1 for d in listed if d.twins)
    st.text(
        f"{len(doubts) + len(regraded)} graded answers, the most doubtful first"
        + (f"; {twins} graded unlike an identical answer" if twins else "")
        + (f"; {checked} checked as right by a grader, left out" if checked else "")
        + ". On the benchmark corpora, checking the first tenth found 21 % to 46 % of the wrong grades a hurried"
        " review left, 1.1 to 2.1 times as many as checking each group's least typical members."
    )
    # Keys act on the first answer listed: each one it settles brings up the next, so a grader
    # goes down the list with G and L alone. Undo stays when the list is empty: the last
    # "all look right" may need taking back.
    keys = st.columns([5, 1], vertical_alignment="center")
    keys[0].text("Keys: G gives the first answer its likely grade · L: its grade looks right · A: all on this page look "
                 "right · U: undo your last edit")
    keys[1].button(
        "Undo", key=f"check-undo-{question_id}", on_click=ui_common.undo_last, args=(question_id,), shortcut="U",
        help="Undo your latest edit of this question still in effect (key U)",
    )
    if not listed:
        st.success("Every graded answer has been checked as right.")
        return
    listed, where = _in_one_group(listed, state)
    pages = max(1, -(-len(listed) // PAGE_SIZE))
    page_key = f"check-page-{question_id}-{where}"  # each group's list starts at its first page
    page = st.number_input("Page", min_value=1, max_value=pages, value=1, key=page_key) if pages > 1 else 1
    shown = listed[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    presets = grades_in_use(state)
    for n, doubt in enumerate(shown):
        _row(doubt, state, first=n == 0, presets=presets)
    if len(shown) > 1:
        st.button(
            f"All {len(shown)} above look right",
            key=f"check-keep-page-{question_id}",
            on_click=_looks_right,
            args=(tuple(d.answer_id for d in shown), state.version),
            disabled=not identity.may(Action.GRADE),
            shortcut="A",
            help="One logged check of every answer on this page, once you have read them (key A)",
        )


check()
