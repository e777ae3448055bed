"""Grouping of answer embeddings: reduction, HDBSCAN, confidence, titles, member order.

The math lives in small private functions; :func:`group_embeddings` is the one entry point.
Exact duplicate texts are clustered once (their vectors are identical, and HDBSCAN's cost
grows with the number of points), and a text repeated at least ``min_cluster_size`` times is
a group of its own even when HDBSCAN calls the point noise: many students writing the very
same thing is the strongest grouping signal there is.

When the question's reference answers are known, they drive the grouping instead
(:mod:`grouper.references`): answers are grouped by how much of a reference they say, which
keeps grades apart where content clustering mixes them. Answers HDBSCAN leaves out form one
group of "other answers" by default: graded at once, they never cost more than one by one.
Why these defaults, with the numbers: ``docs/grouping.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from grouper.references import References

__all__ = ["UNGROUPED", "Group", "Grouping", "GroupingSettings", "group_embeddings"]

#: Label of an answer that belongs to no group.
UNGROUPED = -1

_TITLE_CHARS = 60
_LEFTOVERS_TITLE = "(other answers)"


@dataclass(frozen=True)
class GroupingSettings:
    """Parameters of the grouping, validated on use.

    Attributes
    ----------
    min_cluster_size : int
        Smallest group HDBSCAN may form (>= 2).
    min_samples : int
        HDBSCAN's density smoothing; 1 keeps small tight groups.
    reduce_to : int or None
        PCA dimensions before clustering; ``None`` clusters the raw embeddings. A few dozen
        dimensions keep almost all the neighbourhood structure and make the space-tree
        searches of HDBSCAN fast.
    cluster_selection_method : {"eom", "leaf"}
        HDBSCAN's choice of clusters from its tree.
    cluster_selection_epsilon : float
        Merge clusters closer than this (in the reduced space).
    use_references : bool
        When the question's reference answers are given, group answers that say about as much
        of a reference, in meaning and in wording (:mod:`grouper.references`), instead of by
        HDBSCAN: on answers where right and wrong share vocabulary this is what keeps grades
        apart (``docs/grouping.md``).
    group_scale : float
        With references, the number of groups is ``round(sqrt(n_answers) / group_scale)``;
        larger gives fewer, bigger groups.
    leftovers : {"group", "ungrouped"}
        What happens to the answers HDBSCAN leaves out: ``"group"`` puts them in one group of
        other answers (when there are at least ``min_cluster_size``), so that their most
        common grade is given at once rather than one by one; ``"ungrouped"`` leaves them.
    quantities : bool
        On a question that asks for a number (:func:`grouper.quantities.is_numeric_question`),
        answers that are just a quantity and state the same one ("19.6 m/s") form one group when at least
        ``min_cluster_size`` students wrote it, before the rest is grouped as usual: there the
        final quantity decides the grade, and embeddings and reference signals barely see it.
    """

    min_cluster_size: int = 3
    min_samples: int = 1
    reduce_to: int | None = 32
    cluster_selection_method: str = "eom"
    cluster_selection_epsilon: float = 0.0
    use_references: bool = True
    group_scale: float = 3.0
    leftovers: str = "group"
    quantities: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the rule."""
        if self.min_cluster_size < 2:
            raise ValueError(f"min_cluster_size ({self.min_cluster_size}) must be at least 2")
        if self.min_samples < 1:
            raise ValueError(f"min_samples ({self.min_samples}) must be at least 1")
        if self.reduce_to is not None and self.reduce_to < 2:
            raise ValueError(f"reduce_to ({self.reduce_to}) must be at least 2, or None for no reduction")
        if self.cluster_selection_method not in ("eom", "leaf"):
            raise ValueError(
                f"cluster_selection_method ({self.cluster_selection_method!r}) must be 'eom' or 'leaf'"
            )
        if self.cluster_selection_epsilon < 0:
            raise ValueError(f"cluster_selection_epsilon ({self.cluster_selection_epsilon}) must be >= 0")
        if not self.group_scale > 0:
            raise ValueError(f"group_scale ({self.group_scale}) must be > 0")
        if self.leftovers not in ("group", "ungrouped"):
            raise ValueError(f"leftovers ({self.leftovers!r}) must be 'group' or 'ungrouped'")


@dataclass(frozen=True)
class Group:
    """One group of answers.

    Attributes
    ----------
    group_id : int
        Unique within the grouping, from 1; larger groups get smaller ids.
    title : str
        A short title: the group's most typical answer, shortened.
    members : tuple of int
        Indices into the input, most typical first.
    blank : bool
        True for the group of empty answers.
    """

    group_id: int
    title: str
    members: tuple[int, ...]
    blank: bool = False


@dataclass(frozen=True)
class Grouping:
    """The grouping of one question's answers.

    Attributes
    ----------
    labels : ndarray of shape (n_answers,), int
        Group id of each answer, or ``UNGROUPED``.
    confidence : ndarray of shape (n_answers,), float
        In [0, 1]: how firmly each answer belongs to its group (0 for ungrouped answers).
    groups : tuple of Group
        Ordered largest first, the blank group last.
    """

    labels: np.ndarray
    confidence: np.ndarray
    groups: tuple[Group, ...] = field(default_factory=tuple)

    @property
    def ungrouped(self) -> np.ndarray:
        """Indices of the ungrouped answers."""
        return np.flatnonzero(self.labels == UNGROUPED)


def group_embeddings(
    vectors: np.ndarray,
    texts: Sequence[str],
    settings: GroupingSettings | None = None,
    *,
    references: References | None = None,
) -> Grouping:
    """Group answers by their embeddings, and by their reference answers when given.

    Parameters
    ----------
    vectors : ndarray of shape (n_answers, dim)
        L2-normalised embeddings; rows of identical texts must be identical.
    texts : sequence of str, length n_answers
        The normalised texts: empty ones form the blank group, identical ones are
        clustered once, and the most typical member titles its group.
    settings : GroupingSettings, optional
    references : References, optional
        The question's reference answers (embedded by the same encoder) and its text. With
        them (and ``settings.use_references``), answers are grouped by how much of a
        reference they say; without them, by HDBSCAN.

    Returns
    -------
    Grouping
        Deterministic for the same inputs and settings.
    """
    settings = settings or GroupingSettings()
    settings.validate()
    n = len(texts)
    if vectors.shape[0] != n:
        raise ValueError(f"vectors has {vectors.shape[0]} rows but there are {n} texts")
    labels = np.full(n, UNGROUPED, dtype=np.int64)
    confidence = np.zeros(n, dtype=np.float64)
    if n == 0:
        return Grouping(labels, confidence, ())

    blank = np.fromiter((not t for t in texts), dtype=bool, count=n)
    content = np.flatnonzero(~blank)
    numeric = settings.quantities and _is_numeric([texts[i] for i in content])
    # Texts that differ only in case are one text (the encoder is uncased), except where a
    # question asks for a number: there a unit's case is its meaning ("0.5 M", "0.5 m").
    keys = list(texts) if numeric else [t.casefold() for t in texts]
    # Cluster each distinct text once; np.unique sorts, which also makes the result
    # independent of the order the answers arrived in.
    unique_keys, first, inverse, counts = np.unique(
        np.asarray([keys[i] for i in content], dtype=object),
        return_index=True,
        return_inverse=True,
        return_counts=True,
    )
    # Each key's vector is its smallest spelling's, not its first's: spellings equal after
    # casefold may still embed apart ("der Fuß", "DER FUSS"), and the first depends on the order.
    spellings = [texts[i] for i in content]
    chosen = first.copy()
    for j, k in enumerate(np.asarray(inverse).ravel().tolist()):
        if spellings[j] < spellings[chosen[k]]:
            chosen[k] = j
    unique_vectors = vectors[content[chosen]].astype(np.float64)
    unique_texts = [str(k) for k in unique_keys]
    unique_labels = np.full(len(unique_texts), UNGROUPED, dtype=np.int64)
    unique_conf = np.zeros(len(unique_texts), dtype=np.float64)
    titles: dict[int, str] = {}
    rest = np.arange(len(unique_texts))
    if numeric:
        # On a question that asks for a number, the final value and unit decide the grade:
        # answers stating the same quantity (and nothing else) are one group.
        rest = _quantity_groups(unique_texts, counts, settings.min_cluster_size, unique_labels, titles)
        unique_conf[unique_labels != UNGROUPED] = 1.0
    if len(rest):
        offset = int(unique_labels.max()) + 1
        rest_texts = [unique_texts[i] for i in rest]
        if references is not None and settings.use_references and counts[rest].sum() >= settings.min_cluster_size:
            rest_labels, rest_conf = _reference_groups(unique_vectors[rest], rest_texts, counts[rest], references, settings)
        else:
            rest_labels, rest_conf = _cluster_unique(unique_vectors[rest], counts[rest], settings)
        unique_labels[rest] = np.where(rest_labels == UNGROUPED, UNGROUPED, rest_labels + offset)
        unique_conf[rest] = rest_conf
    labels[content] = unique_labels[inverse]
    confidence[content] = unique_conf[inverse]

    leftover_label = None
    left = content[labels[content] == UNGROUPED]
    if settings.leftovers == "group" and len(left) >= settings.min_cluster_size:
        # Graded at once by their most common grade, a pile of unrelated answers costs the
        # grader one decision plus one per exception, never more than grading them one by one.
        leftover_label = int(labels.max()) + 1
        labels[left] = leftover_label
    labels, groups = _renumber_and_describe(labels, vectors, texts, confidence, leftover_label, titles)
    if blank.any():
        blank_id = len(groups) + 1
        labels[blank] = blank_id
        confidence[blank] = 1.0
        groups.append(Group(blank_id, "(blank)", tuple(np.flatnonzero(blank).tolist()), blank=True))
    return Grouping(labels, confidence, tuple(groups))


def _cluster_unique(
    vectors: np.ndarray, counts: np.ndarray, settings: GroupingSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (arbitrary non-negative ids or UNGROUPED) and confidences of distinct texts."""
    m = len(vectors)
    labels = np.full(m, UNGROUPED, dtype=np.int64)
    conf = np.zeros(m, dtype=np.float64)
    if m >= max(settings.min_cluster_size, settings.min_samples + 1, 3):
        labels, conf = _hdbscan(_reduce(vectors, settings.reduce_to), settings)
    # A text written by at least min_cluster_size students is a group even when HDBSCAN saw
    # only one point there.
    next_label = labels.max() + 1 if m else 0
    for i in np.flatnonzero((labels == UNGROUPED) & (counts >= settings.min_cluster_size)):
        labels[i] = next_label
        conf[i] = 1.0
        next_label += 1
    return labels, conf


def _quantity_groups(
    texts: Sequence[str], counts: np.ndarray, min_size: int, labels: np.ndarray, titles: dict[int, str]
) -> np.ndarray:
    """On a numeric question, label the distinct texts that state a quantity at least
    ``min_size`` students wrote (ids 0, 1, ...; ``labels`` and ``titles`` are filled in);
    return the indices of the other texts, for the usual grouping."""
    from grouper.quantities import quantity_classes, quantity_title

    for label, (quantity, members) in enumerate(quantity_classes(texts, counts, min_size)):
        labels[members] = label
        titles[label] = quantity_title(quantity)
    return np.flatnonzero(labels == UNGROUPED)


def _is_numeric(texts: Sequence[str]) -> bool:
    from grouper.quantities import is_numeric_question

    return is_numeric_question(texts)


def _reference_groups(
    vectors: np.ndarray,
    texts: Sequence[str],
    counts: np.ndarray,
    references: References,
    settings: GroupingSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Group ids (0 = closest to the references) and confidences of distinct texts."""
    from grouper.references import group_count, reference_groups, reference_signals

    weights = counts.astype(np.float64)
    signals = reference_signals(vectors, texts, references, weights)
    k = group_count(int(counts.sum()), settings.group_scale, settings.min_cluster_size)
    return reference_groups(signals, weights, k, settings.min_cluster_size)


def _reduce(vectors: np.ndarray, dims: int | None) -> np.ndarray:
    """PCA to ``dims`` dimensions, re-normalised so Euclidean distance tracks cosine."""
    if dims is None or dims >= min(vectors.shape) - 1:
        return vectors
    import sklearn
    from sklearn.decomposition import PCA

    # Many answers: the eigenvectors of the dim x dim covariance are the same components
    # (to 1e-13 here) ten times faster than an SVD of the whole matrix (sklearn >= 1.5).
    # Few answers keep the SVD, the accurate choice when samples are not >> dimensions.
    many = len(vectors) >= 10 * vectors.shape[1]
    has_eigh = tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit()) >= (1, 5)
    solver = "covariance_eigh" if many and has_eigh else "full"
    reduced = PCA(n_components=dims, svd_solver=solver, random_state=0).fit_transform(vectors)
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return reduced / np.maximum(norms, 1e-12)


def _hdbscan(points: np.ndarray, settings: GroupingSettings) -> tuple[np.ndarray, np.ndarray]:
    from grouper.knn_hdbscan import EXACT_MAX_POINTS, knn_hdbscan

    if len(points) > EXACT_MAX_POINTS:
        # hdbscan's space trees prune almost nothing in 32-d: minutes at 30k distinct answers,
        # an hour at 100k. The neighbour-graph tree gives the same groups (ARI ~0.997) in
        # seconds and O(n) memory; see grouper.knn_hdbscan.
        raw_labels, raw_probabilities = knn_hdbscan(
            points,
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
            cluster_selection_method=settings.cluster_selection_method,
            cluster_selection_epsilon=settings.cluster_selection_epsilon,
        )
    else:
        import hdbscan

        clusterer = hdbscan.HDBSCAN(
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
            cluster_selection_method=settings.cluster_selection_method,
            cluster_selection_epsilon=settings.cluster_selection_epsilon,
            metric="euclidean",
            core_dist_n_jobs=1,  # parallel core distances reorder float sums: keep it deterministic
        )
        clusterer.fit(points)
        raw_labels, raw_probabilities = clusterer.labels_, clusterer.probabilities_
    labels = np.asarray(raw_labels, dtype=np.int64)
    probabilities = np.clip(np.asarray(raw_probabilities, dtype=np.float64), 0.0, 1.0)
    probabilities[labels < 0] = 0.0
    labels[labels < 0] = UNGROUPED
    return labels, probabilities


def _renumber_and_describe(
    labels: np.ndarray,
    vectors: np.ndarray,
    texts: Sequence[str],
    confidence: np.ndarray,
    leftover_label: int | None = None,
    titles: dict[int, str] | None = None,
) -> tuple[np.ndarray, list[Group]]:
    """Give groups ids 1..k by size (ties: earliest member), order members, pick titles.

    The group of leftovers (``leftover_label``) is titled as such: no one answer stands for
    it; so are the groups with a title given in ``titles`` (by their label).
    """
    titles = titles or {}
    raw_ids = [int(g) for g in np.unique(labels) if g != UNGROUPED]
    members_of = {g: np.flatnonzero(labels == g) for g in raw_ids}
    raw_ids.sort(key=lambda g: (-len(members_of[g]), int(members_of[g][0])))
    new_labels = np.full_like(labels, UNGROUPED)
    groups: list[Group] = []
    for new_id, raw in enumerate(raw_ids, start=1):
        members = members_of[raw]
        new_labels[members] = new_id
        ordered = _most_typical_first(members, vectors)
        if raw == leftover_label:
            title = _LEFTOVERS_TITLE
        else:
            title = titles.get(raw) or _title(texts[ordered[0]])
        groups.append(Group(new_id, title, tuple(ordered.tolist())))
    return new_labels, groups


def _most_typical_first(members: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Members sorted by cosine similarity to the group's mean direction, highest first."""
    block = vectors[members].astype(np.float64)
    centroid = block.mean(axis=0)
    similarity = block @ (centroid / max(np.linalg.norm(centroid), 1e-12))
    # Round so that float noise between identical texts cannot reorder them; then index.
    order = np.lexsort((members, -np.round(similarity, 9)))
    return members[order]


def _title(text: str) -> str:
    return text if len(text) <= _TITLE_CHARS else text[: _TITLE_CHARS - 1].rstrip() + "…"
