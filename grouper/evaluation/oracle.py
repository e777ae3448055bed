"""The oracle instructor: grades a question through the product's own edit log.

The instructor of ``../shared/benchmark-protocol.md`` knows every answer's gold grade. It
reviews the groups in the order the grading UI shows them (blank group last, larger groups
first, then by id); in each group it moves every answer whose gold grade is not the group's
majority grade out to the ungrouped answers and gives it its grade, then confirms the group and
grades it with the majority grade; at the end it grades the answers that were never in a group,
one by one. Every step is an edit appended to the question's log in a
:class:`~grouper.store.Store` (``Move``, ``GradeAnswer``, ``Confirm``, ``GradeGroup``), exactly
what the UI appends, and the final state is checked: every answer must carry its gold grade.

Actions are counted as the protocol's table counts them (``grouper.evaluation.apa``): one per
group reviewed (its confirmation and grade are one decision), one per answer moved out of a
group (reading it, seeing it does not belong, and grading it are one decision: the move and its
grade are two edits in the log), one per ungrouped answer graded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from grouper.edits import CONFIRMED, Confirm, GradeAnswer, GradeGroup, Move, QuestionState
from grouper.evaluation.apa import ReviewCount, majority_label
from grouper.store import Store

__all__ = ["ORACLE_AUTHOR", "OracleError", "grade_scale", "review_order", "review_question"]

#: Author of the oracle's edits in the log.
ORACLE_AUTHOR = "oracle"


class OracleError(RuntimeError):
    """The oracle's edits did not leave every answer with its gold grade (a bug somewhere)."""


def grade_scale(labels: Sequence[str]) -> dict[str, float]:
    """A score for each gold label, so that labels can be given as grades.

    Parameters
    ----------
    labels : sequence of str

    Returns
    -------
    dict of str to float
        The sorted distinct labels numbered 0, 1, ...; the label itself goes in the grade's
        comment, which is what the final check compares.
    """
    return {label: float(i) for i, label in enumerate(sorted(set(labels)))}


def review_order(state: QuestionState) -> list[int]:
    """Group ids in the order the grading UI lists them: content groups before the blank
    group, larger groups first, then by id (``ui/views/groups.py``).

    Parameters
    ----------
    state : QuestionState

    Returns
    -------
    list of int
    """
    return sorted(state.groups, key=lambda g: (state.groups[g].blank, -len(state.groups[g].members), g))


def review_question(
    store: Store,
    question_id: str,
    gold: Mapping[str, str],
    *,
    author: str = ORACLE_AUTHOR,
    after_review: Callable[[str], None] | None = None,
    scale: Mapping[str, float] | None = None,
) -> ReviewCount:
    """Grade one stored question as the oracle instructor, through ``store.append``.

    Parameters
    ----------
    store : Store
        Holds the question and its grouping (``save_grouping``).
    question_id : str
    gold : mapping of str to str
        Gold label of every answer id of the question.
    author : str
        Who the edits are attributed to.
    after_review : callable, optional
        Called with the question id after each group is reviewed: where a flywheel would
        regroup the answers not reviewed yet (through the log too). The next group is always
        taken from the state as it is then, so a regrouping is followed.
    scale : mapping of str to float, optional
        The score given with each gold label (higher is better, as an instructor's marks);
        :func:`grade_scale` numbers them in sorted order when omitted.

    Returns
    -------
    ReviewCount

    Raises
    ------
    OracleError
        When an answer does not end with its gold grade.
    """
    state = store.state(question_id)
    missing = [a for a in state.answer_ids if a not in gold]
    if missing:
        raise ValueError(f"question {question_id}: no gold grade for answer(s) {missing[:5]}")
    if scale is None:
        scale = grade_scale([gold[a] for a in state.answer_ids])
    unscored = sorted({gold[a] for a in state.answer_ids} - set(scale))
    if unscored:
        raise ValueError(f"question {question_id}: no score for gold label(s) {unscored[:5]}")
    reviews = moves = 0
    while (group_id := _next_group(state)) is not None:
        members = state.groups[group_id].members
        label = majority_label([gold[a] for a in members])
        for answer_id in (a for a in members if gold[a] != label):
            store.append(question_id, author, None, Move((answer_id,), None))
            store.append(question_id, author, None, GradeAnswer(answer_id, scale[gold[answer_id]], gold[answer_id]))
            moves += 1
        store.append(question_id, author, None, Confirm(group_id))
        store.append(question_id, author, None, GradeGroup(group_id, scale[label], label))
        reviews += 1
        if after_review is not None:
            after_review(question_id)
        state = store.state(question_id)
    singles = [a for a in state.ungrouped if a not in state.overrides]
    for answer_id in singles:
        store.append(question_id, author, None, GradeAnswer(answer_id, scale[gold[answer_id]], gold[answer_id]))
    _check_graded(store.state(question_id), gold)
    return ReviewCount(answers=len(state.answer_ids), group_reviews=reviews, moves=moves, singles=len(singles))


def _next_group(state: QuestionState) -> int | None:
    """The first group, in the UI's order, that still waits for review."""
    for group_id in review_order(state):
        group = state.groups[group_id]
        if group.status != CONFIRMED and group.members:
            return group_id
    return None


def _check_graded(state: QuestionState, gold: Mapping[str, str]) -> None:
    wrong = [a for a in state.answer_ids if (g := state.grade_of(a)) is None or g.comment != gold[a]]
    if wrong:
        raise OracleError(
            f"question {state.question_id}: {len(wrong)} answer(s) do not carry their gold grade after "
            f"the oracle's review, e.g. {wrong[:3]}"
        )
