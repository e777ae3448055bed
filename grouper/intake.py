"""Taking questions into a store: import, embed (through the store's cache), group, save.

This is the path from an answer file to a question graders can edit; ``grouper import`` takes
it. Every question is embedded and grouped before anything is written, and then all of them are
written in one transaction, so a failure (or a killed process) at any point leaves the store
untouched. A question's maximum score, when the file gives one, becomes the
first edit of its log (``SetMaxScore``), attributed to whoever imported it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, replace

from grouper.answers import Question
from grouper.clustering import GroupingSettings
from grouper.embedding import Encoder
from grouper.pipeline import group_question
from grouper.store import Store

__all__ = ["import_questions", "truncated_answers", "with_stored_ids"]


def import_questions(
    store: Store,
    questions: Sequence[Question],
    encoder: Encoder,
    settings: GroupingSettings | None = None,
    *,
    course: str | None = None,
    exam: str | None = None,
    author: str = "import",
) -> list[str]:
    """Import questions into ``store``, group their answers and save each grouping.

    Parameters
    ----------
    store : Store
    questions : sequence of Question
    encoder : Encoder
        Its ``model_key`` names the embeddings (cached in ``store.embeddings``) and groupings.
    settings : GroupingSettings, optional
    course, exam : str, optional
    author : str
        Who imports: the author of each question's ``SetMaxScore`` edit.

    Returns
    -------
    list of str
        The imported question ids.

    Raises
    ------
    ValueError
        When a question is already stored; nothing is imported then.
    """
    settings = settings or GroupingSettings()
    settings.validate()
    if exam is not None and course is None:
        raise ValueError("an exam is filed under a course: give course= too; nothing was imported")
    ids = [q.question_id for q in questions]
    twice = sorted({q for q in ids if ids.count(q) > 1})
    if twice:
        # Each question is stored in its own transaction: the second copy would be refused
        # after the first was stored.
        raise ValueError(f"question(s) {', '.join(twice)} are given twice; nothing was imported")
    known = set(store.question_ids())
    clash = [q.question_id for q in questions if q.question_id in known]
    if clash:
        raise ValueError(
            f"question(s) {', '.join(clash)} are already in {store.where}; nothing was imported. "
            "Give them other ids in the file to import them as new questions"
        )
    grouped = []
    for question in questions:
        # The same path as `grouper group` and `grouper evaluate`: reference answers included.
        grouped.append((question, group_question(question, encoder, settings, cache=store.embeddings).grouping))
    # One transaction: a failure or a killed process part-way leaves no question half stored.
    store.import_grouped(
        grouped, model_version=encoder.model_key, settings=asdict(settings), course=course, exam=exam, author=author
    )
    return [q.question_id for q in questions]


def truncated_answers(question: Question, encoder: Encoder) -> list[str]:
    """The ids of the question's answers longer than the encoder reads: only their beginning
    was embedded, so their group says nothing of the rest (a "no" at the end of a long
    explanation, say), and a grader should read them whole.

    Parameters
    ----------
    question : Question
    encoder : Encoder

    Returns
    -------
    list of str
        In answer order.
    """
    counts = encoder.token_counts([a.normalized for a in question.answers])
    return [a.answer_id for a, n in zip(question.answers, counts.tolist(), strict=True) if n > encoder.max_tokens]


def with_stored_ids(questions: Sequence[Question], stored_ids: Sequence[str]) -> list[Question]:
    """The questions, each under the id the store already has for it when the two differ
    only in Unicode form: "Übung-1" composed on one machine and decomposed on another (macOS
    file names) is one question, so its new answers are late answers, not a second copy.

    Parameters
    ----------
    questions : sequence of Question
        As parsed from a file.
    stored_ids : sequence of str
        The store's question ids.

    Returns
    -------
    list of Question
    """
    by_form = {unicodedata.normalize("NFC", q): q for q in stored_ids}
    out = []
    for question in questions:
        stored = by_form.get(unicodedata.normalize("NFC", question.question_id))
        if stored is None or stored == question.question_id:
            out.append(question)
            continue
        # Answer ids made from the question id and a student id ("Übung-1/s1") take the
        # stored form too, so that they are the stored answers' ids.
        prefix = f"{question.question_id}/"
        answers = tuple(
            replace(
                a,
                question_id=stored,
                answer_id=f"{stored}/{a.answer_id[len(prefix):]}" if a.answer_id.startswith(prefix) else a.answer_id,
            )
            for a in question.answers
        )
        out.append(replace(question, question_id=stored, answers=answers))
    return out
