"""The instructor's reference answers as a grouping signal: score bands.

On explanation-style answers, correct and incorrect answers talk about the same things, so
grouping by content alone mixes grades (see ``docs/grouping.md``). What separates them best,
without any grade seen, is how much of a reference answer an answer says. Each answer gets a
*reference score*, the sum of two standardised signals:

- the cosine similarity of its embedding to the closest reference answer (meaning);
- the share of the reference's content words it contains (wording), after *question
  demoting*: words that the question itself uses are dropped from the reference first, since
  repeating the question earns nothing. Words match after light suffix stripping, and words of
  five letters or more also match with one letter wrong, so misspellings still count.

The answers are then cut into a few *bands* of similar score (an optimal one-dimensional
segmentation, like Jenks' natural breaks), about ``sqrt(n) / 3`` of them: each band becomes a
group. A band is big enough that grading it at once saves work, and answers in one band say
about as much of the reference, so they tend to deserve the same grade.

Everything here is a pure function of the answers' texts and vectors; nothing is learned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from grouper.answers import Question
    from grouper.embedding import EmbeddingCache, Encoder

__all__ = [
    "References",
    "band_confidence",
    "band_count",
    "content_words",
    "question_references",
    "reference_scores",
    "score_bands",
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
# Segments are found exactly over at most this many distinct scores; above, over this many
# quantiles of them (the cost then stays bounded for any number of answers).
_MAX_SEGMENT_POINTS = 1024


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
    from grouper.answers import normalize_text

    texts = tuple(t for t in (normalize_text(r) for r in question.reference_answers) if t)
    if not texts:
        return None
    vectors = encoder.encode(list(texts), cache=cache).vectors
    return References(texts, vectors, normalize_text(question.text))


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


# --------------------------------------------------------------------------- scores


def _standardise(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    mean = np.average(values, weights=weights)
    std = math.sqrt(float(np.average((values - mean) ** 2, weights=weights)))
    return (values - mean) / std if std > 1e-12 else np.zeros_like(values)


def reference_scores(
    vectors: np.ndarray,
    texts: Sequence[str],
    references: References,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """How much of a reference answer each answer says: higher is closer.

    Parameters
    ----------
    vectors : ndarray of shape (n, dim)
        L2-normalised answer embeddings.
    texts : sequence of str, length n
        The answers' (normalised) texts.
    references : References
    weights : ndarray of shape (n,), optional
        How many answers each row stands for (distinct texts clustered once); the signals are
        standardised over the answers, not over the distinct texts.

    Returns
    -------
    ndarray of shape (n,), float64
        ``z(max cosine to a reference) + z(demoted reference recall)``, each signal
        standardised over the question's answers so that neither scale dominates.
    """
    n = len(texts)
    if vectors.shape[0] != n:
        raise ValueError(f"vectors has {vectors.shape[0]} rows but there are {n} texts")
    if n == 0:
        return np.zeros(0)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    cosine = (np.asarray(vectors, dtype=np.float64) @ np.asarray(references.vectors, dtype=np.float64).T).max(axis=1)
    recall = _recall(texts, references.texts, references.question)
    # Rounded so that float noise (summation order) cannot reorder equal answers.
    return np.round(_standardise(cosine, weights) + _standardise(recall, weights), 9)


# --------------------------------------------------------------------------- bands


def band_count(n_answers: int, scale: float, min_size: int) -> int:
    """How many bands to cut ``n_answers`` into: ``round(sqrt(n) / scale)``, at least one and
    at most as many as hold ``min_size`` answers each.

    Parameters
    ----------
    n_answers : int
    scale : float
        Larger gives fewer, bigger bands.
    min_size : int
        Smallest band.

    Returns
    -------
    int
    """
    if n_answers <= 0:
        return 0
    wanted = max(1, round(math.sqrt(n_answers) / scale))
    return max(1, min(wanted, n_answers // max(min_size, 1)))


def score_bands(scores: np.ndarray, weights: np.ndarray, k: int, min_size: int = 1) -> np.ndarray:
    """Cut scores into ``k`` contiguous bands with the least within-band variance.

    Parameters
    ----------
    scores : ndarray of shape (m,)
        One score per distinct text.
    weights : ndarray of shape (m,)
        Answers per distinct text (their counts).
    k : int
        Bands wanted (fewer are returned when the scores cannot fill them).
    min_size : int
        Least total weight of a band.

    Returns
    -------
    ndarray of shape (m,), int64
        Band of each score, 0 for the highest scores. Equal scores share a band.
    """
    m = len(scores)
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    values, inverse = np.unique(-np.asarray(scores, dtype=np.float64), return_inverse=True)  # highest first
    value_weights = np.bincount(inverse, weights=weights, minlength=len(values))
    points, point_of_value = _pool(values, value_weights)
    cuts = _segment(points[0], points[1], k, min_size)
    band_of_point = np.searchsorted(cuts, np.arange(len(points[0])), side="right")
    return band_of_point[point_of_value][inverse].astype(np.int64)


def _pool(values: np.ndarray, weights: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Pool sorted values into at most ``_MAX_SEGMENT_POINTS`` consecutive runs of about equal
    weight: ((run means, run weights), run of each value). Exact when there are few values."""
    n = len(values)
    if n <= _MAX_SEGMENT_POINTS:
        return (values, weights), np.arange(n)
    cumulative = np.cumsum(weights)
    edges = cumulative[-1] * np.arange(1, _MAX_SEGMENT_POINTS) / _MAX_SEGMENT_POINTS
    run = np.searchsorted(edges, cumulative - weights / 2)
    run = np.unique(run, return_inverse=True)[1]
    run_weights = np.bincount(run, weights=weights)
    run_means = np.bincount(run, weights=weights * values) / run_weights
    return (run_means, run_weights), run


def _segment(values: np.ndarray, weights: np.ndarray, k: int, min_size: int) -> np.ndarray:
    """Dynamic programming over prefix sums; returns the start index of bands 1..k'-1."""
    n = len(values)
    k = max(1, min(k, n))
    cw = np.concatenate([[0.0], np.cumsum(weights)])
    c1 = np.concatenate([[0.0], np.cumsum(weights * values)])
    c2 = np.concatenate([[0.0], np.cumsum(weights * values * values)])
    i = np.arange(n + 1)[:, None]
    j = np.arange(n + 1)[None, :]
    w = cw[j] - cw[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = c2[j] - c2[i] - np.where(w > 0, (c1[j] - c1[i]) ** 2 / w, 0.0)
    cost = np.where((j > i) & (w >= min_size - 1e-9), np.maximum(cost, 0.0), np.inf)
    best = cost[0].copy()  # best[j]: one band over points [0, j)
    back: list[np.ndarray] = []
    bands = 1
    for _ in range(1, k):
        total = best[:, None] + cost
        arg = np.argmin(total, axis=0)
        candidate = total[arg, np.arange(n + 1)]
        if not np.isfinite(candidate[n]) or candidate[n] >= best[n] - 1e-12:
            break  # another band cannot be filled, or explains nothing more
        back.append(arg)
        best = candidate
        bands += 1
    cuts: list[int] = []
    end = n
    for arg in reversed(back):
        end = int(arg[end])
        cuts.append(end)
    return np.array(sorted(cuts), dtype=np.int64)


def band_confidence(scores: np.ndarray, bands: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """How firmly each score sits in its band rather than a neighbouring one.

    For a neighbouring band, the margin is ``(|s - m_other| - |s - m_own|) / |m_other - m_own|``
    with ``m`` the bands' mean scores: 1 at (or beyond) the band's own mean, 0 halfway to the
    neighbour's. The confidence is the smallest margin over the neighbours, clipped to [0, 1].

    Parameters
    ----------
    scores : ndarray of shape (m,)
    bands : ndarray of shape (m,), int
        Consecutive band ids, 0 for the highest scores.
    weights : ndarray of shape (m,), optional
        Answers per score, for the bands' means.

    Returns
    -------
    ndarray of shape (m,), float64, in [0, 1]
    """
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.ones(len(scores)) if weights is None else np.asarray(weights, dtype=np.float64)
    conf = np.ones(len(scores), dtype=np.float64)
    ids = np.unique(bands)
    if len(ids) < 2:
        return conf
    means = {int(b): float(np.average(scores[bands == b], weights=weights[bands == b])) for b in ids}
    for b in ids:
        members = bands == b
        own = means[int(b)]
        margins = []
        for other in (int(b) - 1, int(b) + 1):
            if other in means and abs(means[other] - own) > 1e-12:
                s = scores[members]
                margins.append((np.abs(s - means[other]) - np.abs(s - own)) / abs(means[other] - own))
        if margins:
            conf[members] = np.clip(np.min(margins, axis=0), 0.0, 1.0)
    return conf
