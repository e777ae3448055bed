"""Late answers: place new answers into an existing grouping without regrouping.

A student who submits after the grouping was made, or an answer added after the instructor
started reviewing, must land in the group an instructor would put it in, or stay ungrouped
for review one by one; the groups already there (confirmed, graded, edited) are not touched
and nothing is refitted. This is the role of hdbscan's ``approximate_predict``, but the
grouping a late answer joins is the instructor's current one, edits included, which no
clusterer has seen; so placement looks only at the groups' members:

1. An answer whose text is exactly that of existing answers (compared as the grouping
   compares them: normalised and case-folded) goes where those answers are now, with
   confidence 1 when they all agree.
2. Otherwise it is compared with every group's members by cosine similarity. Its score for a
   group is the mean similarity to its ``neighbours`` nearest members. The best group is
   taken when the answer is about as close to that group as the group's own members are to
   each other (``closeness``) and clearly closer to it than to any other group
   (``distinctness``); the confidence is the product of the two, and below
   ``min_confidence`` the answer stays ungrouped, with the best group still reported as a
   suggestion. Only a few contending groups are scored in full: those with the answer's most
   similar members (or, in groupings of tens of thousands, the most similar centroids).

Build a :class:`PlacementIndex` once per grouping and place any number of answers with it;
memory stays linear in the number of answers (similarities are computed in blocks). The new
answers of a block are scored together, and a group's radius is computed only once an answer
lands there: placing 1,000 late answers into 100,000, index build included, takes about
0.55 s on one core (``place 1k`` in ``benchmarks/group.py``; 0.2 s into 10,000).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grouper.clustering import UNGROUPED

__all__ = ["Placement", "PlacementIndex", "PlacementSettings", "place_answers"]

# Similarity blocks are (new answers x existing members) float32: this many cells at most.
_BLOCK_CELLS = 1 << 23  # 32 MiB
# Members sampled per group to estimate how close its members are to each other.
_RADIUS_SAMPLE = 256
# Groups scored in full per new answer: those with its most similar single members.
_CONTENDERS = 4
# Above this many grouped answers, contenders are chosen by centroid (see _by_similarity):
# placing 1,000 late answers among 100,000 (index build included) took 2.2 s against every
# member, 0.55 s by centroid, with 99.7% of the answers placed alike.
_EXACT_MEMBERS = 20_000
_CENTROID_CONTENDERS = 16
# Scoring, (answer, group) pairs of groups up to this size are done together, padded; larger
# groups one at a time (see _pair_scores). 8 to 128 all took about 0.1 s for 1,000 answers
# among 100,000; 0 (every group one at a time) twice that.
_GATHER_MAX = 64
# Gathered members are (pairs x width x dim) float32: this many cells at a time.
_GATHER_CELLS = 1 << 22  # 16 MiB


@dataclass(frozen=True)
class PlacementSettings:
    """Parameters of the placement, validated on use.

    Attributes
    ----------
    neighbours : int
        A group's score is the mean similarity to this many of its nearest members (fewer
        in smaller groups): one member alone is a noisy witness.
    min_similarity : float
        Cosine score at which ``closeness`` is 0: an answer less similar than this to every
        group is never placed.
    margin : float
        Cosine lead over the second-best group at which ``distinctness`` reaches 1.
    radius_quantile : float
        A group's radius is this quantile of its members' own scores for the group
        (leave-one-out); an answer scoring at least the radius has ``closeness`` 1.
    min_confidence : float
        Confidence in [0, 1] needed to place an answer; below it the answer is ungrouped.
    """

    neighbours: int = 3
    min_similarity: float = 0.5
    margin: float = 0.05
    radius_quantile: float = 0.1
    min_confidence: float = 0.5

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the rule."""
        if self.neighbours < 1:
            raise ValueError(f"neighbours ({self.neighbours}) must be at least 1")
        if not -1.0 <= self.min_similarity < 1.0:
            raise ValueError(f"min_similarity ({self.min_similarity}) must be in [-1, 1)")
        if self.margin <= 0:
            raise ValueError(f"margin ({self.margin}) must be > 0")
        if not 0.0 <= self.radius_quantile <= 1.0:
            raise ValueError(f"radius_quantile ({self.radius_quantile}) must be in [0, 1]")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence ({self.min_confidence}) must be in [0, 1]")


@dataclass(frozen=True)
class Placement:
    """Where each new answer goes.

    Attributes
    ----------
    labels : ndarray of shape (n_new,), int64
        Group id, or ``UNGROUPED``.
    confidence : ndarray of shape (n_new,), float64
        In [0, 1]: how firmly each answer belongs to the group it was placed in (0 for an
        ungrouped answer, 1 for an exact repeat of answers that share one group).
    suggestion : ndarray of shape (n_new,), int64
        The best group even when the confidence was too low to place the answer there
        (``UNGROUPED`` when there is no group at all, or an exact repeat's copies are
        ungrouped).
    suggestion_confidence : ndarray of shape (n_new,), float64
        In [0, 1]: the confidence of ``suggestion``.
    duplicate : ndarray of shape (n_new,), bool
        True where the answer repeats the text of an existing answer.
    """

    labels: np.ndarray
    confidence: np.ndarray
    suggestion: np.ndarray
    suggestion_confidence: np.ndarray
    duplicate: np.ndarray


def _text_keys(texts: Sequence[str]) -> list[str]:
    # The grouping clusters case-folded texts once; a repeat is the same key. (Mapping the
    # method itself, not a function calling it: 100,000 Python calls fewer.)
    return list(map(str.casefold, texts))


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale the rows of a float32 array to unit length, in place, and return it."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    # A zero vector (an empty text) stays zero: similar to nothing. Dividing it by 1 rather
    # than masking the division halves the cost at 100,000 rows.
    norms[norms == 0] = 1.0
    vectors /= norms[:, None]
    return vectors


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return _normalise_rows(np.array(vectors, dtype=np.float32))


def _top_mean(similarities: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values of each row (all of them when a row has fewer)."""
    k = min(k, similarities.shape[1])
    if k == similarities.shape[1]:
        return similarities.mean(axis=1)
    top = np.partition(similarities, similarities.shape[1] - k, axis=1)[:, -k:]
    return top.mean(axis=1)


def _padded_top_mean(values: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``min(k, size)`` largest values of each row of a padded block.

    Parameters
    ----------
    values : ndarray of shape (n, width), float32
        Row ``i`` holds ``sizes[i]`` values, then ``-inf`` padding.
    sizes : ndarray of shape (n,), int
        At least 1 each.
    k : int

    Returns
    -------
    ndarray of shape (n,), float64
    """
    width = values.shape[1]
    if width > k:
        values = np.partition(values, width - k, axis=1)[:, -k:]
    # Summed in float64, as one answer's scores were; padding (rows with fewer than k values)
    # counts as nothing.
    top = values.astype(np.float64)
    top[np.isneginf(top)] = 0.0
    return top.sum(axis=1) / np.minimum(sizes, k)


def _widths(sizes: np.ndarray) -> np.ndarray:
    """Padded width of each group size: the next power of two, so padding at most doubles
    the work and a few widths cover every size."""
    return (1 << np.ceil(np.log2(np.maximum(sizes, 1))).astype(np.int64)).astype(np.int64)


class PlacementIndex:
    """An existing grouping, prepared for placing new answers into it.

    Parameters
    ----------
    vectors : ndarray of shape (n_answers, dim)
        The existing answers' embeddings (L2-normalised, as the encoder returns them).
    texts : sequence of str, length n_answers
        Their normalised texts.
    labels : array-like of shape (n_answers,), int
        Their group ids now (after any edits), ``UNGROUPED`` for ungrouped answers.
    settings : PlacementSettings, optional

    Attributes
    ----------
    group_ids_ : ndarray of shape (n_groups,), int64
        The groups answers can be placed in, ascending.
    radius_ : ndarray of shape (n_groups,), float64
        Each group's radius (see ``PlacementSettings.radius_quantile``). Placement computes
        the radii of the groups it places answers in only; reading this computes them all.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        texts: Sequence[str],
        labels: np.ndarray | Sequence[int],
        settings: PlacementSettings | None = None,
    ):
        self.settings = settings or PlacementSettings()
        self.settings.validate()
        labels = np.asarray(labels, dtype=np.int64)
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts) or labels.shape != (len(texts),):
            raise ValueError(
                f"vectors ({vectors.shape}), texts ({len(texts)}) and labels ({labels.shape}) "
                "must describe the same answers"
            )
        self.dim = vectors.shape[1]
        self._index_copies(texts, labels)
        grouped = np.flatnonzero(labels != UNGROUPED)
        # Members sorted by group, so each group is one contiguous slice of columns. Taking
        # them copies, so the rows are normalised in that copy.
        order = grouped[np.argsort(labels[grouped], kind="stable")]
        self._members = _normalise_rows(np.take(np.asarray(vectors, dtype=np.float32), order, axis=0))
        member_labels = labels[order]
        self.group_ids_, starts = np.unique(member_labels, return_index=True)
        self._bounds = np.append(starts, len(order)).astype(np.int64)
        self._sizes = np.diff(self._bounds)
        self._centroid_cache: np.ndarray | None = None
        # Radii are computed when first needed (NaN until then): placing 1,000 answers among
        # 14,577 groups needs fewer than 1,000 of them, and all of them took 0.15 s.
        self._radius = np.full(len(self.group_ids_), np.nan)
        self._samples = self._radius_samples()

    def _index_copies(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Prepare finding the existing answers with a given text (see :meth:`_copy_labels`).

        Each text's key is hashed and the hashes sorted, so that a new answer's copies are
        found by binary search: a dict of every distinct text took 0.14 s to build at
        100,000 answers, this about half.
        """
        self._keys = _text_keys(texts)
        self._labels = labels
        self._hash_keys()

    def _hash_keys(self) -> None:
        hashes = np.fromiter(map(hash, self._keys), dtype=np.int64, count=len(self._keys))
        self._by_hash = np.argsort(hashes, kind="stable")
        self._sorted_hashes = hashes[self._by_hash]

    def __getstate__(self) -> dict:
        # A str's hash differs from one process to the next (PYTHONHASHSEED): an unpickled
        # index hashes the texts again.
        state = self.__dict__.copy()
        del state["_by_hash"], state["_sorted_hashes"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._hash_keys()

    def _copy_labels(self, keys: list[str]) -> list[list[int]]:
        """The labels of the existing answers whose text key is each of ``keys`` (an empty
        list for a key no existing answer has)."""
        hashes = np.fromiter(map(hash, keys), dtype=np.int64, count=len(keys))
        first = np.searchsorted(self._sorted_hashes, hashes, side="left")
        last = np.searchsorted(self._sorted_hashes, hashes, side="right")
        found: list[list[int]] = [[] for _ in keys]
        for i in np.flatnonzero(last > first).tolist():
            # Equal hashes, then equal texts: a hash collision is no copy.
            rows = self._by_hash[first[i] : last[i]].tolist()
            found[i] = [int(self._labels[r]) for r in rows if self._keys[r] == keys[i]]
        return found

    def _radius_samples(self) -> dict[int, np.ndarray]:
        """The members sampled to estimate each big group's radius, by group index.

        Drawn here for every big group in order from one generator (cheap: no products), so
        that computing radii lazily, in any order, gives the same radii as computing them all.
        """
        rng = np.random.default_rng(0)  # sampling big groups: fixed, so placement is repeatable
        return {
            int(g): np.sort(rng.choice(int(self._sizes[g]), _RADIUS_SAMPLE, replace=False))
            for g in np.flatnonzero(self._sizes > _RADIUS_SAMPLE)
        }

    @property
    def radius_(self) -> np.ndarray:
        """Every group's radius (a copy; computes those not yet known)."""
        return self._radii(np.arange(len(self.group_ids_))).copy()

    def _radii(self, groups: np.ndarray) -> np.ndarray:
        """The radii of ``groups`` (group indices), computing those not yet known.

        A group's radius is a low quantile of its members' leave-one-out scores. Groups of
        one size are done together (one batched product), so that thousands of small groups
        cost a few dozen numpy calls, not thousands.
        """
        s = self.settings
        missing = np.unique(groups[np.isnan(self._radius[groups])])
        sizes = self._sizes[missing]
        self._radius[missing[sizes < 2]] = 1.0 - (1.0 - s.min_similarity) / 4  # one member: a near-repeat
        for size in np.unique(sizes[(sizes >= 2) & (sizes <= _RADIUS_SAMPLE)]):
            batch = missing[sizes == size]
            block = self._members[self._bounds[batch][:, None] + np.arange(size)]  # (g, size, dim)
            sims = block @ block.transpose(0, 2, 1)
            # Leave each member out of its own score.
            sims[:, np.arange(size), np.arange(size)] = -np.inf
            k = min(s.neighbours, int(size) - 1)
            top = np.partition(sims, int(size) - k, axis=2)[:, :, -k:].mean(axis=2)  # (g, size)
            self._radius[batch] = np.quantile(top, s.radius_quantile, axis=1)
        for g in missing[sizes > _RADIUS_SAMPLE].tolist():
            members = self._members[self._bounds[g] : self._bounds[g + 1]]
            pick = self._samples[g]
            sims = members[pick] @ members.T
            sims[np.arange(len(pick)), pick] = -np.inf
            k = min(s.neighbours, len(members) - 1)
            self._radius[g] = float(np.quantile(_top_mean(sims, k), s.radius_quantile))
        return self._radius[groups]

    def place(self, vectors: np.ndarray, texts: Sequence[str]) -> Placement:
        """Place new answers.

        Parameters
        ----------
        vectors : ndarray of shape (n_new, dim)
            Their embeddings.
        texts : sequence of str, length n_new
            Their normalised texts.

        Returns
        -------
        Placement
        """
        vectors = np.asarray(vectors)
        m = len(texts)
        if m == 0:
            empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
            return Placement(empty_i, empty_f, empty_i.copy(), empty_f.copy(), np.zeros(0, dtype=bool))
        if vectors.shape != (m, self.dim):
            raise ValueError(f"vectors has shape {vectors.shape}; expected ({m}, {self.dim}) for {m} texts")
        suggestion = np.full(m, UNGROUPED, dtype=np.int64)
        suggestion_conf = np.zeros(m, dtype=np.float64)
        duplicate = np.zeros(m, dtype=bool)
        for i, labels_of_copies in enumerate(self._copy_labels(_text_keys(texts))):
            if labels_of_copies:
                copies = Counter(labels_of_copies)
                duplicate[i] = True
                # Where most copies are now; ties go to a group rather than to ungrouped,
                # then to the smaller group id.
                label, count = min(copies.items(), key=lambda item: (-item[1], item[0] == UNGROUPED, item[0]))
                suggestion[i] = label
                suggestion_conf[i] = count / sum(copies.values()) if label != UNGROUPED else 0.0
        similar = np.flatnonzero(~duplicate)
        if len(similar) and len(self.group_ids_):
            best, conf = self._by_similarity(_unit_rows(vectors[similar]))
            suggestion[similar] = best
            suggestion_conf[similar] = conf
        placed = (suggestion != UNGROUPED) & (suggestion_conf >= self.settings.min_confidence)
        # An exact repeat goes where its copies are even below the threshold: the instructor
        # put them there (or HDBSCAN did, for the very same text).
        placed |= duplicate & (suggestion != UNGROUPED)
        labels = np.where(placed, suggestion, UNGROUPED)
        confidence = np.where(placed, suggestion_conf, 0.0)
        return Placement(labels, confidence, suggestion, suggestion_conf, duplicate)

    def _by_similarity(self, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best group and its confidence for each row of ``unit`` (new answers).

        A group's score (mean of its nearest members) is at most its nearest member's
        similarity, so only the few groups with the most similar single members can win or
        come second; the score is computed for those (``_CONTENDERS`` per answer) alone. With
        more than ``_EXACT_MEMBERS`` members, comparing every new answer with every member
        costs seconds, so the contenders are the groups with the most similar centroids
        (``_CENTROID_CONTENDERS`` of them) instead. All the answers of a block are scored
        together (see :meth:`_pair_scores`).
        """
        s = self.settings
        n_members, n_groups = len(self._members), len(self.group_ids_)
        by_centroid = n_members > _EXACT_MEMBERS
        contenders = min(_CENTROID_CONTENDERS if by_centroid else _CONTENDERS, n_groups)
        best = np.zeros(len(unit), dtype=np.int64)
        best_score = np.zeros(len(unit), dtype=np.float64)
        runner_up = np.full(len(unit), -np.inf)
        columns = n_groups if by_centroid else n_members
        rows = max(1, _BLOCK_CELLS // max(columns, 1))
        for start in range(0, len(unit), rows):
            block = unit[start : start + rows]
            if by_centroid:
                sims = None
                closest = block @ self._centroids().T  # (rows, groups)
            else:
                sims = block @ self._members.T
                closest = np.maximum.reduceat(sims, self._bounds[:-1], axis=1)  # nearest member per group
            if contenders < n_groups:
                # The largest last: argpartition of -closest would copy the whole block.
                candidates = np.argpartition(closest, n_groups - contenders, axis=1)[:, -contenders:]
            else:
                candidates = np.broadcast_to(np.arange(n_groups), (len(block), n_groups))
            scores = self._pair_scores(block, candidates, sims)  # (rows, contenders)
            top = np.argmax(scores, axis=1)  # the first of equal scores, as a stable sort
            here = slice(start, start + len(block))
            best[here] = candidates[np.arange(len(block)), top]
            best_score[here] = scores[np.arange(len(block)), top]
            if contenders > 1:
                runner_up[here] = np.partition(scores, contenders - 2, axis=1)[:, -2]
        span = np.maximum(self._radii(best) - s.min_similarity, 1e-6)
        closeness = np.clip((best_score - s.min_similarity) / span, 0.0, 1.0)
        lead = best_score - runner_up  # inf with a single group
        distinctness = np.clip(lead / s.margin, 0.0, 1.0)
        return self.group_ids_[best], closeness * distinctness

    def _pair_scores(self, block: np.ndarray, candidates: np.ndarray, sims: np.ndarray | None) -> np.ndarray:
        """Score of each answer of ``block`` for each of its ``candidates`` (group indices):
        the mean similarity to the group's ``neighbours`` most similar members.

        Parameters
        ----------
        block : ndarray of shape (rows, dim)
            New answers, unit rows.
        candidates : ndarray of shape (rows, c), int
            Group indices to score, per answer.
        sims : ndarray of shape (rows, n_members) or None
            Similarities of the answers to every member, when known.

        Returns
        -------
        ndarray of shape (rows, c), float64

        Notes
        -----
        One (answer, group) pair per cell. Pairs are padded to their group's width (see
        :func:`_widths`) and done a width at a time, so a block costs a few dozen numpy
        calls rather than one round per answer (0.2 s for 1,000 answers). Pairs of groups
        larger than ``_GATHER_MAX`` are done one group at a time instead: one product with
        all its answers beats gathering its members once per answer, and its slice of
        ``sims`` needs no padding.
        """
        k = self.settings.neighbours
        rows = np.repeat(np.arange(len(block)), candidates.shape[1])
        groups = np.ascontiguousarray(candidates).ravel()
        sizes = self._sizes[groups]
        widths = _widths(sizes)
        scores = np.empty(len(groups), dtype=np.float64)
        gathered = sizes <= _GATHER_MAX
        for width in np.unique(widths[gathered]).tolist():
            pairs = np.flatnonzero(gathered & (widths == width))
            values = self._pair_values(block, rows[pairs], groups[pairs], width, sims)
            scores[pairs] = _padded_top_mean(values, sizes[pairs], k)
        by_group = np.flatnonzero(~gathered)
        if len(by_group):
            scores[by_group] = self._scores_by_group(block, rows[by_group], groups[by_group], sims)
        return scores.reshape(candidates.shape)

    def _pair_values(
        self, block: np.ndarray, rows: np.ndarray, groups: np.ndarray, width: int, sims: np.ndarray | None
    ) -> np.ndarray:
        """Similarities of answer ``rows[i]`` to the members of group ``groups[i]``, padded
        with ``-inf`` to ``width`` columns: ndarray of shape (len(rows), width), float32."""
        sizes = self._sizes[groups]
        offsets = np.arange(width)
        padding = offsets >= sizes[:, None]
        # Padding points at the group's last member (any real column would do): masked below.
        columns = self._bounds[groups][:, None] + np.minimum(offsets, sizes[:, None] - 1)
        if sims is not None:
            values = sims[rows[:, None], columns]
        else:
            values = np.empty((len(rows), width), dtype=np.float32)
            # Gathered members are (pairs, width, dim): this many pairs at a time.
            step = max(1, _GATHER_CELLS // (width * self.dim))
            for start in range(0, len(rows), step):
                part = slice(start, start + step)
                members = self._members[columns[part]]
                values[part] = np.matmul(members, block[rows[part], :, None])[:, :, 0]
        values[padding] = -np.inf
        return values

    def _scores_by_group(
        self, block: np.ndarray, rows: np.ndarray, groups: np.ndarray, sims: np.ndarray | None
    ) -> np.ndarray:
        """Scores of the pairs (answer ``rows[i]``, group ``groups[i]``), a distinct group at
        a time: its slice of ``sims`` when known, else one product of its members with all
        its answers."""
        k = self.settings.neighbours
        scores = np.empty(len(rows), dtype=np.float64)
        order = np.argsort(groups, kind="stable")
        distinct, starts = np.unique(groups[order], return_index=True)
        for g, pairs in zip(distinct.tolist(), np.split(order, starts[1:]), strict=True):
            lo, hi = self._bounds[g], self._bounds[g + 1]
            if sims is not None:
                values = sims[rows[pairs], lo:hi]  # (answers, size)
            else:
                values = block[rows[pairs]] @ self._members[lo:hi].T
            top = min(k, hi - lo)
            best = np.partition(values, hi - lo - top, axis=1)[:, -top:]
            scores[pairs] = best.astype(np.float64).sum(axis=1) / top
        return scores

    def _centroids(self) -> np.ndarray:
        """Unit mean direction of each group's members, computed once."""
        if self._centroid_cache is None:
            from scipy.sparse import csr_matrix

            # Sum each group's rows as one sparse product (np.add.reduceat over rows took
            # seconds at 100,000 members).
            indicator = csr_matrix(
                (np.ones(len(self._members), dtype=np.float32), np.arange(len(self._members)), self._bounds),
                shape=(len(self._sizes), len(self._members)),
            )
            self._centroid_cache = _normalise_rows(np.asarray(indicator @ self._members, dtype=np.float32))
        return self._centroid_cache


def place_answers(
    new_vectors: np.ndarray,
    new_texts: Sequence[str],
    vectors: np.ndarray,
    texts: Sequence[str],
    labels: np.ndarray | Sequence[int],
    settings: PlacementSettings | None = None,
) -> Placement:
    """Place new answers into an existing grouping (see :class:`PlacementIndex`).

    Parameters
    ----------
    new_vectors : ndarray of shape (n_new, dim)
    new_texts : sequence of str, length n_new
    vectors : ndarray of shape (n_answers, dim)
        The existing answers' embeddings.
    texts : sequence of str, length n_answers
    labels : array-like of shape (n_answers,), int
        The existing answers' group ids now, ``UNGROUPED`` for ungrouped ones.
    settings : PlacementSettings, optional

    Returns
    -------
    Placement
    """
    return PlacementIndex(vectors, texts, labels, settings).place(new_vectors, new_texts)
