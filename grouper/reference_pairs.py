"""Training signal from grades against the reference answers: which answers say what they say.

The answer pairs of :mod:`grouper.feedback` teach the encoder which answers to one question
belong together; that structure is the question's own and transfers little to the next
question. A grade says something that does transfer: an answer with full marks says what the
instructor's reference answer says, and an answer with fewer marks does not. So each graded,
non-blank answer of a question with reference answers gives one pair with the reference answer
its embedding is nearest to: *together* when its grade is full marks, *apart* otherwise. Full
marks are the question's maximum score when it has one, else the best score given; a question
without a maximum whose graded answers all have the same score gives no pair (nothing tells
full marks from the rest there). Each pair names the edit that gave the answer its grade, and
its author, as the pairs from the log do.

On the benchmark corpora, an encoder fine-tuned on these pairs from a corpus's train questions
lowered zero-shot APA on its unseen questions and domains by 0.003 to 0.008 on Beetle and
SciEntsBank, and raised it by 0.007 on saf-en's four unseen questions, where the flywheel's
activation check keeps the parent (``benchmarks/results/flywheel_experiments.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from grouper.answers import normalize_text
from grouper.pairs import TrainingPair

if TYPE_CHECKING:
    from grouper.embedding import Encoder

__all__ = ["REFERENCE_PREFIX", "question_reference_pairs", "reference_pairs"]

#: A reference answer's id in a pair: ``"reference:<its index in the question's list>"``.
REFERENCE_PREFIX = "reference:"


def question_reference_pairs(
    question_id: str,
    texts: Sequence[str],
    scores: Sequence[float | None],
    vectors: np.ndarray,
    references: Sequence[str],
    reference_vectors: np.ndarray,
    answer_ids: Sequence[str],
    *,
    max_score: float | None = None,
    graded_by: Sequence[tuple[int, str | None] | None] | None = None,
) -> list[TrainingPair]:
    """Pairs of one question's graded answers with their nearest reference answer.

    Parameters
    ----------
    question_id : str
    texts : sequence of str
        The answers' normalised texts; blank ones give no pair.
    scores : sequence of float or None
        Each answer's grade score, ``None`` when ungraded (no pair).
    vectors : ndarray of shape (n_answers, dim)
        The answers' embeddings (L2-normalised).
    references : sequence of str
        The question's reference answers, normalised.
    reference_vectors : ndarray of shape (n_references, dim)
    answer_ids : sequence of str
    max_score : float, optional
        The question's maximum score: full marks. Without it, the best score given is.
    graded_by : sequence of (int, str or None) or None, optional
        For each answer, the edit id and author that gave its grade (carried in its pair).

    Returns
    -------
    list of TrainingPair
        ``text_a`` the reference, ``text_b`` the answer; together when the answer has full
        marks. Empty without references, or without a maximum and with fewer than two scores.
    """
    if not (len(texts) == len(scores) == len(vectors) == len(answer_ids)) or (
        graded_by is not None and len(graded_by) != len(texts)
    ):
        raise ValueError(
            f"texts ({len(texts)}), scores ({len(scores)}), vectors ({len(vectors)}), answer ids "
            f"({len(answer_ids)}) and graders must describe the same answers"
        )
    graded = [i for i, (t, s) in enumerate(zip(texts, scores, strict=True)) if t and s is not None]
    distinct = {scores[i] for i in graded}
    if not references or not graded or (max_score is None and len(distinct) < 2):
        return []
    top = max(distinct) if max_score is None else max_score
    nearest = (np.asarray(vectors)[graded] @ np.asarray(reference_vectors).T).argmax(axis=1)
    pairs = []
    for i, r in zip(graded, nearest.tolist(), strict=True):
        edit_id, author = (None, None) if graded_by is None or graded_by[i] is None else graded_by[i]
        full = math.isclose(scores[i], top, rel_tol=0.0, abs_tol=1e-9)  # a rubric sum: 0.1 + 0.2 is 0.3
        pairs.append(TrainingPair(question_id, f"{REFERENCE_PREFIX}{r}", answer_ids[i], references[r], texts[i], full, edit_id, author))
    return pairs


def reference_pairs(store: Any, question_ids: Sequence[str], encoder: Encoder) -> list[TrainingPair]:
    """Reference pairs of stored questions, from their current grades.

    Parameters
    ----------
    store : Store
    question_ids : sequence of str
    encoder : Encoder
        Chooses each answer's nearest reference (through the store's embedding cache).

    Returns
    -------
    list of TrainingPair
        Question by question, in the order given.
    """
    out: list[TrainingPair] = []
    for qid in question_ids:
        question = store.question(qid)
        references = [t for t in (normalize_text(r) for r in question.reference_answers) if t]
        if not references:
            continue
        state = store.state(qid)
        texts = [a.normalized for a in question.answers]
        grades = [state.grade_of(a.answer_id) for a in question.answers]
        scores = [None if g is None else g.score for g in grades]
        graded_by = [None if g is None else (g.version, g.by) for g in grades]  # a grade's version is its edit's id
        vectors = encoder.encode(texts, cache=store.embeddings).vectors
        ref_vectors = encoder.encode(references, cache=store.embeddings).vectors
        ids = [a.answer_id for a in question.answers]
        out.extend(
            question_reference_pairs(
                qid, texts, scores, vectors, references, ref_vectors, ids, max_score=state.max_score, graded_by=graded_by
            )
        )
    return out
