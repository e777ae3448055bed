"""Training signal from grades against the reference answers: which answers say what they say.

The answer pairs of :mod:`grouper.feedback` teach the encoder which answers to one question
belong together; that structure is the question's own and transfers little to the next
question. A grade says something that does transfer: an answer with full marks says what the
instructor's reference answer says, and an answer with fewer marks does not. So each graded,
non-blank answer of a question with reference answers gives one pair with the reference answer
its embedding is nearest to: *together* when its grade has the question's top score, *apart*
otherwise. Questions whose graded answers all have the same score give no pair (nothing tells
full marks from the rest there).

On the benchmark corpora, an encoder fine-tuned on these pairs from a corpus's train questions
lowered zero-shot APA on its unseen questions and domains by 0.003 to 0.008 on Beetle and
SciEntsBank, and raised it by 0.007 on saf-en's four unseen questions, where the flywheel's
activation check keeps the parent (``benchmarks/results/flywheel_experiments.md``).
"""

from __future__ import annotations

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

    Returns
    -------
    list of TrainingPair
        ``text_a`` the reference, ``text_b`` the answer; together when the answer has the
        question's top score. Empty without references or with fewer than two scores.
    """
    if not (len(texts) == len(scores) == len(vectors) == len(answer_ids)):
        raise ValueError(
            f"texts ({len(texts)}), scores ({len(scores)}), vectors ({len(vectors)}) and answer ids "
            f"({len(answer_ids)}) must describe the same answers"
        )
    graded = [i for i, (t, s) in enumerate(zip(texts, scores, strict=True)) if t and s is not None]
    distinct = {scores[i] for i in graded}
    if not references or len(distinct) < 2:
        return []
    top = max(distinct)
    nearest = (np.asarray(vectors)[graded] @ np.asarray(reference_vectors).T).argmax(axis=1)
    return [
        TrainingPair(question_id, f"{REFERENCE_PREFIX}{r}", answer_ids[i], references[r], texts[i], scores[i] == top)
        for i, r in zip(graded, nearest.tolist(), strict=True)
    ]


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
        vectors = encoder.encode(texts, cache=store.embeddings).vectors
        ref_vectors = encoder.encode(references, cache=store.embeddings).vectors
        ids = [a.answer_id for a in question.answers]
        out.extend(question_reference_pairs(qid, texts, scores, vectors, references, ref_vectors, ids))
    return out
