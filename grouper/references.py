"""The instructor's reference answers as a grouping signal.

On explanation-style answers, correct and incorrect answers talk about the same things, so
grouping by content alone mixes grades (see ``docs/grouping.md``). What separates them best,
without any grade seen, is how much of a reference answer an answer says. Each answer gets two
*reference signals*, each standardised over the question's answers:

- meaning: the cosine similarity of its embedding to the closest reference answer;
- wording: the share of a reference's content words it contains, after *question demoting*:
  words that the question itself uses are dropped from the reference first, since repeating
  the question earns nothing. Words match after light suffix stripping, and words of five
  letters or more also match with one letter wrong, so misspellings still count.

The answers are then grouped by weighted k-means in the plane of the two signals, into about
``sqrt(n) / 3`` groups: a group is big enough that grading it at once saves work, and its
answers say about as much of the reference, in meaning and in wording, so they tend to
deserve the same grade.

Everything here is a pure function of the answers' texts and vectors; nothing is learned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from grouper.answers import Question
    from grouper.embedding import EmbeddingCache, Encoder

__all__ = [
    "References",
    "content_words",
    "embedded_references",
    "group_count",
    "question_references",
    "reference_groups",
    "reference_scores",
    "reference_signals",
]

# English function words that carry no meaning a grade depends on (articles, pronouns,
# auxiliaries, conjunctions): a reference's recall should not be earned by writing "the" and
# "is". Negations ("no", "not"), comparisons ("more", "same") and relations ("between",
# "above", "against") are kept: they are often exactly what makes an answer right or wrong.
# A file in another language simply keeps all its words.
_STOPWORDS = frozenset(
    """a about am an and any are as at be because been being both but by can could did do does
    doing during each for from had has have having he her here hers him his how i if in into is
    it its itself just me my of on once or other our own she should so some such than that the
    their them then there these they this those through to until was we were what when where
    which while who whom why will with would you your yours""".split()
)
_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ing", "ed", "es", "s", "ly")
_MIN_STEM = 3
_FUZZY_FROM = 5  # words this long also match with one letter wrong


@dataclass(frozen=True)
class References:
    """What the instructor supplied about a correct answer.

    Attributes
    ----------
    texts : tuple of str
        The reference answers (normalised), at least one.
    vectors : ndarray of shape (n_references, dim)
        Their L2-normalised embeddings, by the same encoder as the answers.
    question : str
        The question's text; its words are not credited to an answer (question demoting).
    """

    texts: tuple[str, ...]
    vectors: np.ndarray = field(repr=False)
    question: str = ""

    def __post_init__(self) -> None:
        if not self.texts:
            raise ValueError("References needs at least one reference answer")
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.texts):
            raise ValueError(
                f"References has {len(self.texts)} texts but vectors of shape {self.vectors.shape}; "
                "give one embedding row per reference answer"
            )


def question_references(
    question: Question, encoder: Encoder, *, cache: EmbeddingCache | None = None
) -> References | None:
    """The question's reference answers, embedded; ``None`` when it has no non-blank one.

    Parameters
    ----------
    question : Question
    encoder : Encoder
        The encoder that embeds the answers (references must live in the same space).
    cache : EmbeddingCache, optional
        Passed to ``encoder.encode``.

    Returns
    -------
    References or None
    """
    return embedded_references(question, lambda texts: encoder.encode(texts, cache=cache).vectors)


def embedded_references(question: Question, embed: Callable[[list[str]], np.ndarray]) -> References | None:
    """:func:`question_references` with any way of embedding: the references' normalised,
    non-blank texts, their vectors from ``embed`` (one row per text given), and the question's
    text; ``None`` when it has no non-blank reference answer."""
    from grouper.answers import normalize_text

    texts = tuple(t for t in (normalize_text(r) for r in question.reference_answers) if t)
    if not texts:
        return None
    return References(texts, embed(list(texts)), normalize_text(question.text))


# --------------------------------------------------------------------------- words


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The stemmed content words of a text.

    Parameters
    ----------
    text : str

    Returns
    -------
    set of str
        Lower-cased (casefolded) words without function words, suffixes ``-ing -ed -es -s
        -ly`` stripped when at least three letters remain.
    """
    return {_stem(w) for w in _WORD.findall(text.casefold()) if w not in _STOPWORDS}


def _variants(word: str) -> set[str]:
    """The word and, when long enough, every form of it with one letter deleted: two words
    within one substitution, insertion or deletion of each other share one of these."""
    if len(word) < _FUZZY_FROM:
        return {word}
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def _reference_words(reference: str, question: str) -> set[str]:
    words = content_words(reference)
    demoted = words - content_words(question)
    return demoted or words  # a reference made only of question words still counts them


def _recall(answers: Sequence[str], references: Sequence[str], question: str) -> np.ndarray:
    """Per answer, the largest share of one reference's (demoted) content words it contains.

    Matching goes through the vocabulary, not the answers: each distinct answer word is looked
    up once, so the cost grows with the words written, not with their pairs.
    """
    ref_sets = [_reference_words(r, question) for r in references]
    variant_to_ref_words: dict[str, set[tuple[int, str]]] = {}
    for j, words in enumerate(ref_sets):
        for w in words:
            for v in _variants(w):
                variant_to_ref_words.setdefault(v, set()).add((j, w))
    sizes = np.array([max(len(s), 1) for s in ref_sets], dtype=np.float64)
    matches_of: dict[str, frozenset[tuple[int, str]]] = {}
    out = np.zeros(len(answers), dtype=np.float64)
    for i, text in enumerate(answers):
        matched: set[tuple[int, str]] = set()
        for w in content_words(text):
            found = matches_of.get(w)
            if found is None:
                hits: set[tuple[int, str]] = set()
                for v in _variants(w):
                    hits |= variant_to_ref_words.get(v, set())
                found = matches_of[w] = frozenset(hits)
            matched |= found
        if matched:
            counts = np.bincount([j for j, _ in matched], minlength=len(ref_sets))
            out[i] = float(np.max(counts / sizes))
    return out


# --------------------------------------------------------------------------- signals


def _standardise(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    mean = np.average(values, weights=weights)
    std = math.sqrt(float(np.average((values - mean) ** 2, weights=weights)))
    return (values - mean) / std if std > 1e-12 else np.zeros_like(values)


def reference_signals(
    vectors: np.ndarray,
    texts: Sequence[str],
    references: References,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """How much of a reference answer each answer says, in meaning and in wording.

    Parameters
    ----------
    vectors : ndarray of shape (n, dim)
        L2-normalised answer embeddings.
    texts : sequence of str, length n
        The answers' (normalised) texts.
    references : References
    weights : ndarray of shape (n,), optional
        How many answers each row stands for (distinct texts are grouped once); the signals
        are standardised over the answers, not over the distinct texts.

    Returns
    -------
    ndarray of shape (n, 2), float64
        Column 0: the largest cosine similarity to a reference answer; column 1: the largest
        share of one reference's demoted content words the answer contains. Each is
        standardised (zero mean, unit variance over the question's answers) so that neither
        scale dominates, and rounded so that float noise cannot reorder equal answers.
    """
    n = len(texts)
    if vectors.shape[0] != n:
        raise ValueError(f"vectors has {vectors.shape[0]} rows but there are {n} texts")
    if n == 0:
        return np.zeros((0, 2))
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    cosine = (np.asarray(vectors, dtype=np.float64) @ np.asarray(references.vectors, dtype=np.float64).T).max(axis=1)
    recall = _recall(texts, references.texts, references.question)
    return np.round(np.column_stack([_standardise(cosine, weights), _standardise(recall, weights)]), 9)


def reference_scores(
    vectors: np.ndarray,
    texts: Sequence[str],
    references: References,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """One number per answer: the sum of its two :func:`reference_signals`; higher says more
    of a reference answer.

    Returns
    -------
    ndarray of shape (n,), float64
    """
    return reference_signals(vectors, texts, references, weights).sum(axis=1)


# --------------------------------------------------------------------------- groups

# Above this many distinct answers, k-means runs over cells of a grid this fine (in standard
# deviations of the signals) instead of over the answers: bounded time for any class size.
_POOL_ABOVE = 4096
_POOL_CELL = 0.05


def group_count(n_answers: int, scale: float, min_size: int) -> int:
    """How many groups to make of ``n_answers``: ``round(sqrt(n) / scale)``, at least one and
    at most as many as hold ``min_size`` answers each.

    Parameters
    ----------
    n_answers : int
    scale : float
        Larger gives fewer, bigger groups.
    min_size : int
        Smallest group.

    Returns
    -------
    int
    """
    if n_answers <= 0:
        return 0
    wanted = max(1, round(math.sqrt(n_answers) / scale))
    return max(1, min(wanted, n_answers // max(min_size, 1)))


def reference_groups(
    signals: np.ndarray, weights: np.ndarray, k: int, min_size: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Group answers that say about as much of a reference, in meaning and in wording.

    Weighted k-means on the two :func:`reference_signals`; a group lighter than ``min_size``
    is dissolved into the nearest remaining ones, so that every group is worth reviewing.

    Parameters
    ----------
    signals : ndarray of shape (m, 2)
        One row per distinct text.
    weights : ndarray of shape (m,)
        Answers per distinct text.
    k : int
        Groups wanted.
    min_size : int
        Least total weight of a group.
    seed : int
        Seeds k-means; the same inputs (in the same order) give the same groups.

    Returns
    -------
    labels : ndarray of shape (m,), int64
        Group of each row, 0..k'-1, numbered by decreasing mean signal (0: closest to the
        references).
    confidence : ndarray of shape (m,), float64
        In [0, 1]: ``(d2 - d1) / (d2 + d1)`` with d1 and d2 the distances to the nearest and
        the second nearest group centre; 1 with one group.
    """
    m = len(signals)
    if m == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    weights = np.asarray(weights, dtype=np.float64)
    points, point_weights, point_of_row = _pool(signals, weights)
    k = max(1, min(k, len(points)))
    point_labels = np.zeros(len(points), dtype=np.int64)
    if k > 1:
        from sklearn.cluster import KMeans

        fitted = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(points, sample_weight=point_weights)
        point_labels = _dissolve_light_groups(points, point_weights, fitted.labels_.astype(np.int64), min_size)
    labels = point_labels[point_of_row]
    ids = np.unique(labels)
    centres = np.stack([np.average(signals[labels == g], axis=0, weights=weights[labels == g]) for g in ids])
    order = np.argsort(-centres.sum(axis=1), kind="stable")
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    labels = rank[np.searchsorted(ids, labels)]
    centres = centres[order]
    return labels, _margin_confidence(signals, labels, centres)


def _pool(signals: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows, or for many rows the occupied cells of a fine grid: (points, weights,
    point of each row). A cell is far smaller than any group, so k-means over cells groups
    as it would over rows, in time bounded by the number of cells instead of answers."""
    if len(signals) <= _POOL_ABOVE:
        points, inverse = np.unique(signals, axis=0, return_inverse=True)
    else:
        _, inverse = np.unique(np.round(signals / _POOL_CELL), axis=0, return_inverse=True)
        points = None
    inverse = inverse.reshape(-1)
    point_weights = np.bincount(inverse, weights=weights)
    if points is None:
        points = np.column_stack(
            [np.bincount(inverse, weights=weights * signals[:, j]) / point_weights for j in range(signals.shape[1])]
        )
    return points, point_weights, inverse


def _dissolve_light_groups(signals: np.ndarray, weights: np.ndarray, labels: np.ndarray, min_size: int) -> np.ndarray:
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        mass = np.array([weights[labels == g].sum() for g in ids])
        if len(ids) < 2 or mass.min() >= min_size:
            return labels
        light = ids[int(np.argmin(mass))]
        keep = ids[ids != light]
        centres = np.stack([np.average(signals[labels == g], axis=0, weights=weights[labels == g]) for g in keep])
        rows = np.flatnonzero(labels == light)
        distances = ((signals[rows, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels[rows] = keep[np.argmin(distances, axis=1)]


def _margin_confidence(signals: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    if len(centres) < 2:
        return np.ones(len(signals))
    distances = np.sqrt(((signals[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))
    own = distances[np.arange(len(signals)), labels]
    distances[np.arange(len(signals)), labels] = np.inf
    other = distances.min(axis=1)
    return np.clip((other - own) / np.maximum(other + own, 1e-12), 0.0, 1.0)
