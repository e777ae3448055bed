"""Late answers: answers submitted after a question was grouped, added to it without regrouping.

A late answer lands where an instructor would put it, or waits ungrouped for review: it is
placed by :class:`grouper.placement.PlacementIndex` against the question's *current* groups
(edits included), by the model version that grouped the question, so that it is compared in
the space the groups were made in. It joins a group only when nobody has reviewed that group:
a confirmed or graded group is never given an answer no grader has seen, since that would
grade it silently. Such an answer waits ungrouped, with that group as its suggestion (the
ungrouped queue offers the move in one click). On a question that asks for a number, an
answer stating the quantity all of one group's quantity answers state goes to that group
(:mod:`grouper.quantities`), under the same rule.

Adding is one :class:`grouper.edits.AddAnswers` edit, logged with the new answer rows in one
transaction (:meth:`grouper.store.Store.add_answers`), so the log still replays to the state.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED
from grouper.edits import CONFIRMED, Edit, QuestionState
from grouper.placement import PlacementIndex, PlacementSettings
from grouper.quantities import QUANTITY_CLASS_SIZE, Quantity, final_quantity, is_numeric_question

if TYPE_CHECKING:
    from grouper.embedding import Encoder
    from grouper.store import Store

__all__ = ["LateAnswers", "add_late_answers", "late_answers_of", "place_late_answers", "resubmissions"]


@dataclass(frozen=True)
class LateAnswers:
    """What adding late answers did.

    Attributes
    ----------
    edit : Edit
        The logged ``AddAnswers`` edit.
    placed : dict of str to int
        Answers that joined a group, and the group.
    waiting : dict of str to int or None
        Answers left ungrouped, and the group they are closest to (``None``: none close, or
        no group), which is often a reviewed one they could not join.
    """

    edit: Edit
    placed: dict[str, int]
    waiting: dict[str, int | None]


def _reviewed(state: QuestionState, group_id: int) -> bool:
    group = state.groups[group_id]
    return group.status == CONFIRMED or group.grade is not None


def _quantity_groups(texts: Sequence[str], labels: np.ndarray) -> dict[Quantity, int]:
    """Of a numeric question, each quantity that at least ``QUANTITY_CLASS_SIZE``
    grouped answers state, all of them in one group, and that group."""
    where: dict[Quantity, set[int]] = {}
    count: dict[Quantity, int] = {}
    parsed: dict[str, Quantity | None] = {}  # each distinct text read once
    for text, label in zip(texts, labels.tolist(), strict=True):
        if text not in parsed:
            parsed[text] = final_quantity(text)
        quantity = parsed[text]
        if quantity is not None and label != UNGROUPED:
            where.setdefault(quantity, set()).add(label)
            count[quantity] = count.get(quantity, 0) + 1
    return {
        q: next(iter(groups)) for q, groups in where.items() if len(groups) == 1 and count[q] >= QUANTITY_CLASS_SIZE
    }


def place_late_answers(
    state: QuestionState,
    answers: Sequence[Answer],
    vectors: np.ndarray,
    late: Sequence[Answer],
    late_vectors: np.ndarray,
    settings: PlacementSettings | None = None,
) -> tuple[list[int | None], list[int | None]]:
    """Where each late answer goes, and the group it is closest to; pure.

    Parameters
    ----------
    state : QuestionState
        The question now.
    answers : sequence of Answer
        Its answers, in the order of ``state.answer_ids``.
    vectors : ndarray of shape (len(answers), dim)
        Their embeddings by the model that grouped the question.
    late : sequence of Answer
    late_vectors : ndarray of shape (len(late), dim)
        By the same model.
    settings : PlacementSettings, optional

    Returns
    -------
    places : list of int or None
        A group nobody has reviewed, or ``None`` (ungrouped).
    suggestions : list of int or None
        The closest group whatever its state (``None`` when there is none).
    """
    if [a.answer_id for a in answers] != list(state.answer_ids):
        raise ValueError("answers must be the question's answers in the order of its state")
    if not late:
        return [], []
    labels = np.array([UNGROUPED if state.location[a.answer_id] is None else state.location[a.answer_id] for a in answers])
    texts = [a.normalized for a in answers]
    late_texts = [a.normalized for a in late]
    placement = PlacementIndex(vectors, texts, labels, settings).place(late_vectors, late_texts)
    numeric = is_numeric_question(texts)
    by_quantity = _quantity_groups(texts, labels) if numeric else {}
    written = set(texts) if numeric else set()
    places: list[int | None] = []
    suggestions: list[int | None] = []
    for i, (label, suggestion) in enumerate(zip(placement.labels.tolist(), placement.suggestion.tolist(), strict=True)):
        best = None if suggestion == UNGROUPED else int(suggestion)
        chosen = None if label == UNGROUPED else int(label)
        quantity = final_quantity(late_texts[i]) if numeric else None
        # The placement takes texts equal but for case as repeats; stating a quantity, they
        # are not ("1 MW" is not "1 mW"): then only the quantity may place the answer.
        repeat = placement.duplicate[i] and (quantity is None or late_texts[i] in written)
        if quantity is not None and not repeat:
            # On a numeric question the final quantity says more than the embedding: an
            # answer stating a group's quantity goes there (an exact repeat still follows
            # its copies, which a grader may have moved).
            same = by_quantity.get(quantity)
            if same is not None:
                chosen = best = same
            elif placement.duplicate[i]:
                chosen = None
        places.append(chosen if chosen is not None and not _reviewed(state, chosen) else None)
        suggestions.append(chosen if chosen is not None else best)
    return places, suggestions


def late_answers_of(stored: Sequence[Answer], question: Question) -> list[Answer]:
    """The answers of a (re-)uploaded question that the store does not have yet.

    An answer whose id is stored with the same text is the same answer, left as it is.

    Raises
    ------
    ValueError
        An answer id is stored with a different text: the file and the store disagree, and
        which text is the student's is not for this function to guess.
    """
    # Ids and texts are compared in one Unicode form: a file saved on another machine (macOS
    # writes decomposed "ë") names the same answers, with the same words.
    known = {_nfc(a.answer_id): a for a in stored}
    changed = [
        a.answer_id
        for a in question.answers
        if _nfc(a.answer_id) in known and _nfc(known[_nfc(a.answer_id)].text) != _nfc(a.text)
    ]
    if changed:
        shown = ", ".join(repr(a) for a in changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise ValueError(
            f"question {question.question_id}: answer(s) {shown} are stored with another text; "
            "late answers need ids of their own, and stored answers are never replaced"
        )
    return [a for a in question.answers if _nfc(a.answer_id) not in known]


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def resubmissions(stored: Sequence[Answer], late: Sequence[Answer]) -> dict[str, list[str]]:
    """The late answers of students who already have an answer to the question (stored, or
    another late one): a resubmission under a new answer id, which the instructor should
    know of before adding it (both would be graded, and a by-student table has one cell).

    Parameters
    ----------
    stored : sequence of Answer
        The question's stored answers.
    late : sequence of Answer
        Its late answers (:func:`late_answers_of`).

    Returns
    -------
    dict of str to list of str
        Student id to all their answer ids (stored first), for each such student.
    """
    by_student: dict[str, list[str]] = {}
    for answer in [*stored, *late]:
        if answer.student_id:
            by_student.setdefault(answer.student_id, []).append(answer.answer_id)
    late_students = {a.student_id for a in late if a.student_id}
    return {s: ids for s, ids in by_student.items() if s in late_students and len(ids) > 1}


def add_late_answers(
    store: Store,
    question_id: str,
    late: Sequence[Answer],
    encoder: Encoder,
    author: str,
    settings: PlacementSettings | None = None,
) -> LateAnswers:
    """Place late answers into a stored question's current groups and log them.

    Parameters
    ----------
    store : Store
    question_id : str
    late : sequence of Answer
        New answers to the question (ids it does not have).
    encoder : Encoder
        The model version that grouped the question (``store.model_version``); its vectors
        of the stored answers are read from the store's cache.
    author : str
        Who adds them.
    settings : PlacementSettings, optional

    Returns
    -------
    LateAnswers

    Raises
    ------
    EditRefused
        A grader changed a chosen group in the meantime (nothing is written: add again).
    """
    state = store.state(question_id)
    answers = store.answers(question_id)
    by_id = {a.answer_id: a for a in answers}
    ordered = [by_id[a] for a in state.answer_ids]
    vectors = encoder.encode([a.normalized for a in ordered], cache=store.embeddings).vectors
    late_vectors = encoder.encode([a.normalized for a in late], cache=store.embeddings).vectors
    places, suggestions = place_late_answers(state, ordered, vectors, late, late_vectors, settings)
    # Against the version the places were chosen from: a group confirmed since is refused.
    edit = store.add_answers(question_id, late, places, author, base_version=state.version)
    placed = {a.answer_id: p for a, p in zip(late, places, strict=True) if p is not None}
    waiting = {a.answer_id: s for a, p, s in zip(late, places, suggestions, strict=True) if p is None}
    return LateAnswers(edit, placed, waiting)
