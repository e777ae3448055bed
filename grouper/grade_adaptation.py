"""Adapting to the grades given so far, within one question, after each reviewed group.

Once an instructor has graded a few groups of a question, the grades say something the
zero-shot signals cannot: which of the answers' features separate *this* question's grades.
:func:`adapt_to_grades` learns that in milliseconds and re-cuts the answers nobody has reviewed
yet:

1. a multinomial logistic regression (scikit-learn) is fitted to the reviewed answers, from
   their reference signals (:func:`grouper.references.reference_signals`) and embeddings to
   the grades they got; it needs at least two different grades;
2. the free answers (see :func:`grouper.regroup.fixed_answers`) are placed in a plane made of
   their two reference signals and the model's centred log-probabilities of each grade
   (scaled by ``weight``), and cut by k-means into as many groups as were still waiting; on
   a question asking for a number, answers stating the same quantity stay one group
   (:mod:`grouper.quantities`);
3. the regrouping is planned as ordinary edits (:func:`grouper.regroup.plan_regroup`), so the
   grouping stays a fold of the log and confirmed work never moves.

Measured with the oracle of ``benchmarks/`` on the three corpora (``docs/grouping.md``): this
moves APA by at most about 0.006 either way per split. What one reviewed group says about the
others is little on these corpora: within a question, even a classifier trained on 80% of its
answers gets a third to a quarter of the rest wrong (5-fold accuracy 0.67 to 0.84 on the seven
splits). The weight is kept low so that the learned direction refines the reference signals
rather than replacing them; ``weight=0`` reproduces the zero-shot cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grouper.answers import Answer
from grouper.clustering import UNGROUPED
from grouper.edits import Payload, QuestionState
from grouper.quantities import QUANTITY_CLASS_SIZE, is_numeric_question, quantity_classes, quantity_title
from grouper.references import References, reference_signals

if TYPE_CHECKING:
    from grouper.embedding import Encoder
    from grouper.store import Store

__all__ = [
    "ADAPTATION_AUTHOR",
    "GradeAdaptationSettings",
    "adapt_question",
    "adapt_to_grades",
    "grade_log_probabilities",
]

#: Author of the regrouping edits: a model's, so that training never learns from its guesses.
ADAPTATION_AUTHOR = "model:grades"


@dataclass(frozen=True)
class GradeAdaptationSettings:
    """Parameters of the within-question grade model, validated on use.

    Attributes
    ----------
    regularisation : float
        Inverse L2 strength ``C`` of the logistic regression. 10 gave the best 5-fold accuracy
        within questions (0.72 against 0.71 at 1 on Beetle train); the k-means cut, not the
        fit, is what keeps a small sample from deciding too much.
    weight : float
        Scale of the grade log-probabilities beside the two standardised reference signals in
        the plane that is cut; 0 ignores the grades. 0.5 was the best of 0.3, 0.5 and 1.
    min_reviewed : int
        Reviewed answers needed before anything is learned.
    """

    regularisation: float = 10.0
    weight: float = 0.5
    min_reviewed: int = 4

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the rule."""
        checks = [
            ("regularisation", self.regularisation > 0, "must be > 0"),
            ("weight", self.weight >= 0, "must be >= 0"),
            ("min_reviewed", self.min_reviewed >= 2, "must be at least 2"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name} ({getattr(self, name)!r}) {rule}")


def grade_log_probabilities(
    features: np.ndarray, labels: np.ndarray, settings: GradeAdaptationSettings | None = None
) -> np.ndarray | None:
    """Each answer's log-probability of each reviewed grade, from the reviewed answers.

    Parameters
    ----------
    features : ndarray of shape (n_answers, d)
    labels : ndarray of shape (n_answers,), int
        From :func:`grouper.adaptation.reviewed_labels`; ``UNGROUPED`` rows are not trained on.
    settings : GradeAdaptationSettings, optional

    Returns
    -------
    ndarray of shape (n_answers, n_grades), float64, or None
        Rows centred to mean zero (only differences between grades matter); ``None`` with
        fewer than ``settings.min_reviewed`` reviewed answers or a single grade among them.
    """
    from sklearn.linear_model import LogisticRegression

    settings = settings or GradeAdaptationSettings()
    settings.validate()
    labels = np.asarray(labels)
    if features.shape[0] != len(labels):
        raise ValueError(f"features has {features.shape[0]} rows but there are {len(labels)} labels")
    reviewed = labels != UNGROUPED
    if reviewed.sum() < settings.min_reviewed or len(np.unique(labels[reviewed])) < 2:
        return None
    model = LogisticRegression(C=settings.regularisation, max_iter=300)
    model.fit(features[reviewed], labels[reviewed])
    logp = np.log(np.clip(model.predict_proba(features), 1e-4, 1.0))
    return logp - logp.mean(axis=1, keepdims=True)


def adapt_to_grades(
    state: QuestionState,
    answers: Sequence[Answer],
    vectors: np.ndarray,
    references: References | None = None,
    settings: GradeAdaptationSettings | None = None,
) -> list[Payload]:
    """Re-cut the answers nobody has reviewed yet, using the grades given so far.

    Parameters
    ----------
    state : QuestionState
        The question as it is now.
    answers : sequence of Answer
        The question's answers in import order (the rows of ``vectors``).
    vectors : ndarray of shape (n_answers, dim)
        Their embeddings.
    references : References, optional
        The question's reference answers; without them the cut uses the grade model alone.
    settings : GradeAdaptationSettings, optional

    Returns
    -------
    list of Payload
        Edits to append in order (as a ``model:`` author); empty when nothing is learned
        yet or nothing would move.
    """
    from sklearn.cluster import KMeans

    from grouper.adaptation import reviewed_labels
    from grouper.regroup import fixed_answers, plan_regroup

    settings = settings or GradeAdaptationSettings()
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(answers) != len(vectors):
        raise ValueError(f"{len(answers)} answers but {len(vectors)} vectors")
    ids = [a.answer_id for a in answers]
    texts = [a.normalized for a in answers]
    signals = (
        reference_signals(vectors, texts, references) if references is not None else np.zeros((len(ids), 0))
    )
    logp = grade_log_probabilities(np.column_stack([signals, vectors]), reviewed_labels(state, ids), settings)
    if logp is None:
        return []
    fixed = fixed_answers(state)
    # Blank answers stay where they are: the blank group is never regrouped.
    free = np.array([i for i, a in enumerate(ids) if a not in fixed and texts[i]], dtype=np.int64)
    if len(free) < 2:
        return []
    clusters: list[list[str]] = []
    titles: list[str] = []
    if is_numeric_question(texts):
        # Answers stating the same quantity stay one group, as the grouping made them: on a
        # question asking for a number, that is surer than anything the grade model learns.
        in_class = np.zeros(len(free), dtype=bool)
        for quantity, members in quantity_classes([texts[i] for i in free], min_size=QUANTITY_CLASS_SIZE):
            in_class[members] = True
            clusters.append([ids[i] for i in free[members]])
            titles.append(quantity_title(quantity))
        free = free[~in_class]
    if len(free):
        # As many groups as still wait for review (a kept group's members are all fixed).
        waiting = sum(1 for g in state.groups.values() if any(m not in fixed for m in g.members))
        k = min(max(1, waiting - len(clusters)), len(free))
        points = np.column_stack([signals[free], settings.weight * logp[free]])
        if k > 1:
            cut = KMeans(n_clusters=k, n_init=4, random_state=0).fit(points)
            labels, centres = cut.labels_, cut.cluster_centers_
        else:
            labels, centres = np.zeros(len(free), dtype=np.int64), points.mean(axis=0, keepdims=True)
        for c in range(len(centres)):
            members = free[labels == c]
            if len(members) == 0:
                continue
            # Most typical first: nearest to the cut's centre.
            distance = np.linalg.norm(points[labels == c] - centres[c], axis=1)
            ordered = members[np.argsort(distance, kind="stable")]
            clusters.append([ids[i] for i in ordered])
            titles.append(texts[ordered[0]][:60])
    order = sorted(range(len(clusters)), key=lambda c: (-len(clusters[c]), c))
    return plan_regroup(state, [clusters[c] for c in order], [titles[c] for c in order])


def adapt_question(
    store: Store,
    question_id: str,
    encoder: Encoder,
    settings: GradeAdaptationSettings | None = None,
    *,
    author: str = ADAPTATION_AUTHOR,
) -> int:
    """Re-cut a stored question's unreviewed answers from its grades, as logged edits.

    What the groups page's "Regroup the rest from my grades" button runs. The edits are made
    against the version the plan was made from, so that a grader's edit in between makes the
    rest of the plan refused rather than applied blindly.

    Parameters
    ----------
    store : Store
    question_id : str
    encoder : Encoder
        Embeds the answers (from the store's embedding cache when they were imported with it).
    settings : GradeAdaptationSettings, optional
    author : str
        A model's name (``model:...``): the training pairs leave a model's edits out.

    Returns
    -------
    int
        Edits appended; 0 when fewer than two different grades are given yet, or nothing
        would move.

    Raises
    ------
    grouper.regroup.StalePlan
        Someone else's edit came in since the plan was made: the plan stopped at the first
        edit that conflicted with it, or after the next one (``done`` says how many were
        made, ``reason`` why).
    """
    from grouper.references import question_references
    from grouper.regroup import StalePlan, append_plan

    question = store.question(question_id)
    state = store.state(question_id)
    vectors = encoder.encode([a.normalized for a in question.answers], cache=store.embeddings).vectors
    references = question_references(question, encoder, cache=store.embeddings)
    payloads = adapt_to_grades(state, question.answers, vectors, references, settings)
    done, stopped = append_plan(store, question_id, author, state.version, payloads)
    if stopped is not None:
        raise StalePlan(question_id, done, stopped)
    return done
