"""The fast path: adapt to one question while the instructor is still reviewing it.

Fine-tuning the transformer takes minutes; an instructor reviewing a question produces a
correction every few seconds. Between the two sits a light projection head on the frozen
embeddings: a linear map, started at the identity, trained in well under a second on the CPU
from the must-links and cannot-links among the answers reviewed so far, then applied to every
answer of the question so the ones not yet reviewed can be regrouped in the adapted space.

The head is pulled toward the identity (``anchor``): with a few dozen reviewed answers, an
unconstrained 384 x 384 map could fit them perfectly and scramble everything else, while a map
near the identity only stretches the directions the corrections say matter (the difference
between "because the circuit is closed" and "because the circuit is open", say).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from grouper.clustering import UNGROUPED, Grouping, GroupingSettings, group_embeddings
from grouper.training.losses import ContrastiveLoss

__all__ = [
    "AdaptationSettings",
    "adapt_regroup",
    "FittedHead",
    "ProjectionHead",
    "fit_projection",
    "nearest_reviewed",
    "pairs_from_labels",
    "regroup_unreviewed",
    "reviewed_labels",
]


@dataclass(frozen=True)
class AdaptationSettings:
    """Parameters of the within-question projection head, validated on use.

    Attributes
    ----------
    steps : int
        Full-batch optimisation steps (every pair every step: there are few).
    learning_rate : float
        Adam's rate.
    margin : float
        Cosine distance the loss pushes cannot-links beyond.
    anchor : float
        Weight of ``||W - I||^2 / dim``, which keeps the head near the identity. 1.0 roughly
        halved the loss on held-out pairs of the same question (answers reviewed later) on
        saf-en and Beetle train questions with 30% of the answers reviewed; 0.1 fit the
        reviewed pairs almost perfectly and generalised worse.
    max_pairs : int
        Cap on the pairs trained on, balanced between must- and cannot-links.
    """

    steps: int = 100
    learning_rate: float = 0.01
    margin: float = 0.5
    anchor: float = 1.0
    max_pairs: int = 5000

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the rule."""
        checks = [
            ("steps", self.steps >= 1, "must be at least 1"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("margin", 0 < self.margin <= 2, "must be in (0, 2]"),
            ("anchor", self.anchor >= 0, "must be >= 0"),
            ("max_pairs", self.max_pairs >= 2, "must be at least 2"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name} ({getattr(self, name)!r}) {rule}")


class ProjectionHead(nn.Module):
    """A linear map of embeddings, started at the identity, with L2-normalised output.

    Parameters
    ----------
    dim : int
        Embedding dimension (in and out: the adapted vectors replace the originals).

    Inputs
    ------
    x : Tensor of shape (n, dim)

    Returns a tensor of shape (n, dim), rows of unit length (zero rows stay zero: blank
    answers are embedded as zeros and must not become similar to anything).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.linear(x), p=2, dim=1)

    def distance_from_identity(self) -> torch.Tensor:
        """``||W - I||_F^2``: the anchor penalty."""
        return (self.linear.weight - torch.eye(self.linear.weight.shape[0], device=self.linear.weight.device)).pow(2).sum()


def pairs_from_labels(labels: np.ndarray, rng: np.random.Generator, max_pairs: int | None = None) -> np.ndarray:
    """Index pairs among labelled answers: same label together, different labels apart.

    Parameters
    ----------
    labels : ndarray of shape (n_answers,), int
        A label per reviewed answer (its grade class, or its confirmed group), ``UNGROUPED``
        (-1) for answers not reviewed yet, which give no pair.
    rng : numpy.random.Generator
    max_pairs : int, optional
        Cap, balanced between the two kinds as far as they allow.

    Returns
    -------
    ndarray of shape (n_pairs, 3), int64
        Rows ``(i, j, together)`` with ``i < j``; never ``i == j``.
    """
    labels = np.asarray(labels)
    reviewed = np.flatnonzero(labels != UNGROUPED)
    if len(reviewed) < 2:
        return np.zeros((0, 3), dtype=np.int64)
    i, j = np.triu_indices(len(reviewed), k=1)
    i, j = reviewed[i], reviewed[j]
    together = (labels[i] == labels[j]).astype(np.int64)
    pairs = np.stack([i, j, together], axis=1)
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    pos, neg = np.flatnonzero(together == 1), np.flatnonzero(together == 0)
    n_pos = min(len(pos), max(max_pairs // 2, max_pairs - len(neg)))
    n_neg = min(len(neg), max_pairs - n_pos)
    keep = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)])
    return pairs[np.sort(keep)]


@dataclass
class FittedHead:
    """A projection head fitted to one question's reviewed answers.

    Attributes
    ----------
    head : ProjectionHead
    loss_before, loss_after : float
        Pair loss (without the anchor term) under the identity and under the fitted head.
    n_pairs : int
    seconds : float
    """

    head: ProjectionHead
    loss_before: float
    loss_after: float
    n_pairs: int
    seconds: float

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Adapted embeddings.

        Parameters
        ----------
        vectors : ndarray of shape (n, dim)

        Returns
        -------
        ndarray of shape (n, dim), float32, rows L2-normalised (zero rows stay zero)
        """
        with torch.inference_mode():
            return self.head(torch.as_tensor(np.asarray(vectors, dtype=np.float32))).numpy()


def fit_projection(
    vectors: np.ndarray,
    pairs: np.ndarray,
    settings: AdaptationSettings | None = None,
    *,
    rng: np.random.Generator,
) -> FittedHead:
    """Fit a projection head to must-link / cannot-link pairs among one question's answers.

    Parameters
    ----------
    vectors : ndarray of shape (n_answers, dim)
        The frozen encoder's embeddings of the question's answers.
    pairs : ndarray of shape (n_pairs, 3), int
        Rows ``(i, j, together)`` indexing ``vectors`` (from :func:`pairs_from_labels`, or
        from the edit log's pairs mapped to answer indices).
    settings : AdaptationSettings, optional
    rng : numpy.random.Generator
        Used only to sample pairs down to ``settings.max_pairs``; the fit itself is
        deterministic (full batch, identity start).

    Returns
    -------
    FittedHead
        With the identity head (and equal losses) when there are no pairs.
    """
    settings = settings or AdaptationSettings()
    settings.validate()
    vectors = np.asarray(vectors, dtype=np.float32)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    if len(pairs) and (pairs[:, :2].min() < 0 or pairs[:, :2].max() >= len(vectors)):
        raise ValueError(f"pair indices must lie in [0, {len(vectors)}), the number of answers")
    if np.any(pairs[:, 0] == pairs[:, 1]):
        raise ValueError("a pair must join two different answers")
    if len(pairs) > settings.max_pairs:
        pairs = pairs[np.sort(rng.choice(len(pairs), settings.max_pairs, replace=False))]
    started = time.perf_counter()
    head = ProjectionHead(vectors.shape[1])
    if len(pairs) == 0:
        return FittedHead(head.eval(), float("nan"), float("nan"), 0, time.perf_counter() - started)
    # Only the answers that appear in a pair go through the head each step.
    used, inverse = np.unique(pairs[:, :2], return_inverse=True)
    x = torch.as_tensor(vectors[used])
    a_idx = torch.as_tensor(inverse.reshape(-1, 2)[:, 0])
    b_idx = torch.as_tensor(inverse.reshape(-1, 2)[:, 1])
    together = torch.as_tensor(pairs[:, 2].astype(bool))
    loss_fn = ContrastiveLoss(settings.margin)
    optimizer = torch.optim.Adam(head.parameters(), lr=settings.learning_rate)

    def pair_term() -> torch.Tensor:
        # Distances from the Gram matrix of the few hundred answers in play, rather than by
        # gathering thousands of (a, b) rows: ten times less arithmetic per step.
        z = head(x)
        distance = 1.0 - (z @ z.T)[a_idx, b_idx]
        return loss_fn.from_distance(distance, together)

    with torch.no_grad():
        before = float(pair_term())
    for _ in range(settings.steps):
        optimizer.zero_grad(set_to_none=True)
        loss = pair_term() + settings.anchor * head.distance_from_identity() / x.shape[1]
        loss.backward()
        optimizer.step()
    head.eval()
    with torch.no_grad():
        after = float(pair_term())
    return FittedHead(head, before, after, len(pairs), time.perf_counter() - started)


def regroup_unreviewed(
    vectors: np.ndarray,
    texts: Sequence[str],
    reviewed: np.ndarray,
    fitted: FittedHead | None = None,
    settings: GroupingSettings | None = None,
) -> tuple[np.ndarray, Grouping]:
    """Group the answers not yet reviewed, in the adapted space.

    Parameters
    ----------
    vectors : ndarray of shape (n_answers, dim)
        The frozen encoder's embeddings of all the question's answers.
    texts : sequence of str, length n_answers
        Normalised texts.
    reviewed : ndarray of shape (n_answers,), bool
        True for answers already in a confirmed group (they stay where they are).
    fitted : FittedHead, optional
        The adapted head; ``None`` groups in the encoder's own space.
    settings : GroupingSettings, optional

    Returns
    -------
    (indices, grouping)
        ``indices``: the unreviewed answers' positions in the question, shape (m,);
        ``grouping``: their grouping, whose member indices refer to ``indices``. Group ids
        start at 1 here; :func:`grouper.edits` gives them fresh ids when the regrouping is
        applied, so confirmed groups keep theirs.
    """
    reviewed = np.asarray(reviewed, dtype=bool)
    if reviewed.shape != (len(texts),) or len(vectors) != len(texts):
        raise ValueError(
            f"vectors ({len(vectors)} rows), texts ({len(texts)}) and reviewed ({reviewed.shape}) must agree"
        )
    indices = np.flatnonzero(~reviewed)
    sub = np.asarray(vectors, dtype=np.float32)[indices]
    if fitted is not None and len(sub):
        sub = fitted.transform(sub)
    return indices, group_embeddings(sub, [texts[i] for i in indices], settings)


def nearest_reviewed(
    vectors: np.ndarray,
    labels: np.ndarray,
    fitted: FittedHead | None = None,
    *,
    k: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Suggest, for each answer not reviewed yet, the label of its reviewed neighbours.

    A k-nearest-neighbour vote in the adapted space, weighted by cosine similarity: the way
    to say "these unreviewed answers look like the ones you graded 'correct'" once a few
    groups are confirmed, without refitting any clustering.

    Parameters
    ----------
    vectors : ndarray of shape (n_answers, dim)
    labels : ndarray of shape (n_answers,), int
        Label of each reviewed answer, ``UNGROUPED`` for the others.
    fitted : FittedHead, optional
    k : int
        Neighbours that vote.

    Returns
    -------
    (suggested, confidence) : ndarrays of shape (n_answers,)
        ``suggested``: the winning label for unreviewed answers, the answer's own label for
        reviewed ones, ``UNGROUPED`` where nothing is reviewed yet or the answer is blank;
        ``confidence``: the winner's share of the vote's weight, in [0, 1] (1 for reviewed).
    """
    if k < 1:
        raise ValueError(f"k ({k}) must be at least 1")
    labels = np.asarray(labels)
    vectors = np.asarray(vectors, dtype=np.float32)
    space = fitted.transform(vectors) if fitted is not None else vectors
    suggested = labels.copy()
    confidence = (labels != UNGROUPED).astype(np.float64)
    reviewed = np.flatnonzero(labels != UNGROUPED)
    pending = np.flatnonzero((labels == UNGROUPED) & np.any(space != 0, axis=1))
    if len(reviewed) == 0 or len(pending) == 0:
        return suggested, confidence
    sims = space[pending] @ space[reviewed].T
    k = min(k, len(reviewed))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    for row, answer in enumerate(pending):
        neighbours = top[row]
        weights = np.clip(sims[row, neighbours], 0.0, None) + 1e-6
        votes: dict[int, float] = {}
        for label, w in zip(labels[reviewed[neighbours]], weights):
            votes[int(label)] = votes.get(int(label), 0.0) + float(w)
        best = max(votes, key=lambda lab: (votes[lab], -lab))
        suggested[answer] = best
        confidence[answer] = votes[best] / sum(votes.values())
    return suggested, confidence


def reviewed_labels(state, answer_ids: Sequence[str]) -> np.ndarray:
    """A label per answer from a question's state: the grade of every reviewed answer.

    An answer counts as reviewed when it is in a confirmed group that has a grade, or has a
    grade of its own; answers with the same grade (:func:`grouper.edits.grade_kind`: score and
    rubric items, not the comment, which graders word freely) share a label.

    Parameters
    ----------
    state : QuestionState
    answer_ids : sequence of str
        The question's answers, in the order of the vectors.

    Returns
    -------
    ndarray of shape (n_answers,), int
        ``UNGROUPED`` for answers not reviewed.
    """
    from grouper.edits import CONFIRMED, grade_kind

    keys: dict[tuple, int] = {}
    labels = np.full(len(answer_ids), UNGROUPED, dtype=np.int64)
    for i, answer_id in enumerate(answer_ids):
        group_id = state.location[answer_id]
        confirmed = group_id is not None and state.groups[group_id].status == CONFIRMED
        if answer_id in state.overrides or confirmed:
            grade = state.grade_of(answer_id)
            if grade is not None:
                labels[i] = keys.setdefault(grade_kind(grade), len(keys))
    return labels


def adapt_regroup(
    state,
    answers: Sequence,
    vectors: np.ndarray,
    settings: AdaptationSettings | None = None,
    *,
    rng: np.random.Generator,
    grouping: GroupingSettings | None = None,
    assign_confidence: float | None = 0.6,
    k: int = 5,
):
    """The fast path as edits: fit the head to what is reviewed, regroup what is not.

    What the flywheel mode of the benchmark (and the UI, after each reviewed group) calls:
    labels from the state (:func:`reviewed_labels`), a projection head fitted to their pairs,
    then the free answers (see :func:`grouper.regroup.fixed_answers`) grouped in the adapted
    space: first, when ``assign_confidence`` is set, one group per reviewed grade of the free
    answers whose reviewed neighbours agree on that grade at least that strongly, then the
    rest clustered.

    Parameters
    ----------
    state : QuestionState
    answers : sequence of Answer
        The question's answers in import order (the rows of ``vectors``).
    vectors : ndarray of shape (n_answers, dim)
        The encoder's embeddings.
    settings : AdaptationSettings, optional
    rng : numpy.random.Generator
    grouping : GroupingSettings, optional
    assign_confidence : float or None
        ``None`` skips the grade-suggested groups (clustering only).
    k : int
        Neighbours that vote for a grade.

    Returns
    -------
    (payloads, fitted) : list of Payload, FittedHead
        Apply the payloads in order (as ``model:<version>`` edits); empty when nothing moves.
    """
    from grouper.regroup import fixed_answers, plan_regroup

    ids = [a.answer_id for a in answers]
    labels = reviewed_labels(state, ids)
    fitted = fit_projection(vectors, pairs_from_labels(labels, rng, (settings or AdaptationSettings()).max_pairs),
                            settings, rng=rng)
    fixed = fixed_answers(state)
    free = np.array([i for i, a in enumerate(ids) if a not in fixed], dtype=np.int64)
    if len(free) == 0:
        return [], fitted
    texts = [a.normalized for a in answers]
    clusters: list[list[str]] = []
    titles: list[str] = []
    rest = free
    if assign_confidence is not None and np.any(labels != UNGROUPED):
        suggested, confidence = nearest_reviewed(vectors, labels, fitted, k=k)
        taken = np.zeros(len(ids), dtype=bool)
        for label in np.unique(labels[labels != UNGROUPED]):
            members = free[(suggested[free] == label) & (confidence[free] >= assign_confidence)
                           & (labels[free] == UNGROUPED)]
            if len(members) >= 2:
                # Most typical first: nearest to the reviewed answers of that grade.
                space = fitted.transform(vectors[members])
                centre = fitted.transform(vectors[labels == label]).mean(axis=0)
                order = members[np.argsort(-(space @ centre), kind="stable")]
                clusters.append([ids[i] for i in order])
                titles.append(texts[order[0]][:60])
                taken[members] = True
        rest = free[~taken[free]]
    if len(rest):
        sub = regroup_unreviewed(vectors[rest], [texts[i] for i in rest], np.zeros(len(rest), dtype=bool),
                                 fitted, grouping)[1]
        for g in sub.groups:
            if not g.blank:
                clusters.append([ids[rest[m]] for m in g.members])
                titles.append(g.title)
    order = sorted(range(len(clusters)), key=lambda c: -len(clusters[c]))
    return plan_regroup(state, [clusters[c] for c in order], [titles[c] for c in order]), fitted
