"""From a question's answers to its grouping: embed the normalised texts (and the reference
answers), then group them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grouper.answers import Question
from grouper.clustering import UNGROUPED, Grouping, GroupingSettings, group_embeddings
from grouper.embedding import EmbeddingCache, Encoder
from grouper.references import References, question_references

__all__ = ["QuestionGrouping", "group_question"]


@dataclass(frozen=True)
class QuestionGrouping:
    """A question, its grouping and what the encoder saw of each answer.

    Attributes
    ----------
    question : Question
    grouping : Grouping
        Indices in it refer to ``question.answers``.
    vectors : ndarray of shape (n_answers, dim), float32
    truncated : ndarray of shape (n_answers,), bool
        Answers longer than the encoder's limit: only their beginning was embedded.
    references : References or None
        The question's reference answers as embedded for the grouping (``None`` without any).
    """

    question: Question
    grouping: Grouping
    vectors: np.ndarray
    truncated: np.ndarray
    references: References | None = None

    def group_of(self) -> dict[str, int | None]:
        """Map answer id to group id, ``None`` for ungrouped."""
        return {
            a.answer_id: (None if label == UNGROUPED else int(label))
            for a, label in zip(self.question.answers, self.grouping.labels, strict=True)
        }


def group_question(
    question: Question,
    encoder: Encoder,
    settings: GroupingSettings | None = None,
    *,
    cache: EmbeddingCache | None = None,
) -> QuestionGrouping:
    """Embed and group one question's answers, using its reference answers when it has any.

    Parameters
    ----------
    question : Question
    encoder : Encoder
    settings : GroupingSettings, optional
    cache : EmbeddingCache, optional
        Where embeddings are looked up and kept (``store.embeddings``, for example).

    Returns
    -------
    QuestionGrouping
    """
    texts = [a.normalized for a in question.answers]
    encoded = encoder.encode(texts, cache=cache)
    references = question_references(question, encoder, cache=cache)
    grouping = group_embeddings(encoded.vectors, texts, settings, references=references)
    return QuestionGrouping(question, grouping, encoded.vectors, encoded.truncated, references)
