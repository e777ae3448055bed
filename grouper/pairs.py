"""Training pairs: two answers that an instructor's edits put together or apart.

The edit log says which answers belong together for grading (a merge, a confirm, one grade)
and which do not (a move out, a split, different grades). :mod:`grouper.feedback` derives
these pairs from the log; :mod:`grouper.training` and :mod:`grouper.adaptation` learn from
them. This module holds only the shared pair type and the sampling that both sides need, so
that neither has to import the other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["TrainingPair", "balance_pairs", "pairs_digest"]


@dataclass(frozen=True, slots=True)
class TrainingPair:
    """Two answers to the same question, and whether they belong together for grading.

    Attributes
    ----------
    question_id : str
        The question both answers answer (pairs never span questions: a grade means
        something only relative to its question).
    answer_id_a, answer_id_b : str
        The two answers; never the same answer.
    text_a, text_b : str
        Their normalised texts (``Answer.normalized``): what the encoder sees.
    together : bool
        True for a must-link (same group, same grade), False for a cannot-link.
    edit_id : int or str or None
        The edit that gave this pair (the latest one, when several did), for tracing.
    author : str or None
        Who made that edit.
    """

    question_id: str
    answer_id_a: str
    answer_id_b: str
    text_a: str
    text_b: str
    together: bool
    edit_id: int | str | None = None
    author: str | None = None

    def __post_init__(self) -> None:
        if self.answer_id_a == self.answer_id_b:
            raise ValueError(
                f"a pair must join two different answers, but both are {self.answer_id_a!r} "
                f"(question {self.question_id!r})"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the JSONL export of training pairs writes one per line), keys in
        field order. Read field by field: ``dataclasses.asdict`` deep-copies, and was two thirds
        of the time to write half a million pairs."""
        return {name: getattr(self, name) for name in _PAIR_FIELDS}

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> TrainingPair:
        """Inverse of :meth:`to_dict`; unknown keys are an error, so typos do not pass."""
        return cls(**row)


_PAIR_FIELDS = tuple(f.name for f in fields(TrainingPair))


def pairs_digest(pairs: Iterable[TrainingPair]) -> str:
    """sha256 of the pairs, independent of their order: the training data snapshot's id.

    Parameters
    ----------
    pairs : iterable of TrainingPair

    Returns
    -------
    str
        Hex digest of the sorted JSON lines of the pairs.
    """
    lines = sorted(json.dumps(p.to_dict(), sort_keys=True, ensure_ascii=False) for p in pairs)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def balance_pairs(
    pairs: Sequence[TrainingPair], max_pairs: int | None, rng: np.random.Generator
) -> list[TrainingPair]:
    """Sample as many must-links as cannot-links, at most ``max_pairs`` in all.

    Like SetFit's sampler: a model trained on a log where almost every pair is a must-link
    (a confirm of a group of 40 gives 780) learns to call everything similar. The rarer kind
    is kept whole when it fits, and the commoner kind is sampled down to the same count.

    Parameters
    ----------
    pairs : sequence of TrainingPair
    max_pairs : int or None
        Cap on the number returned; ``None`` for no cap beyond the balance.
    rng : numpy.random.Generator
        The only source of randomness, so that a seed gives the same sample.

    Returns
    -------
    list of TrainingPair
        As many must-links as cannot-links (an odd cap leaves one slot unused), shuffled.
        When one kind is absent, the other alone, capped.
    """
    if max_pairs is not None and max_pairs < 0:
        raise ValueError(f"max_pairs ({max_pairs}) must be >= 0, or None for no cap")
    pos = [p for p in pairs if p.together]
    neg = [p for p in pairs if not p.together]
    if pos and neg:
        per_kind = min(len(pos), len(neg))
        if max_pairs is not None:
            per_kind = min(per_kind, max_pairs // 2)
        chosen = _sample(pos, per_kind, rng) + _sample(neg, per_kind, rng)
    else:
        only = pos or neg
        chosen = _sample(only, len(only) if max_pairs is None else min(max_pairs, len(only)), rng)
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order]


def _sample(items: list[TrainingPair], k: int, rng: np.random.Generator) -> list[TrainingPair]:
    if k >= len(items):
        return list(items)
    return [items[i] for i in np.sort(rng.choice(len(items), size=k, replace=False))]
