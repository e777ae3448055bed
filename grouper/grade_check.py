"""A second look at the grades given: the answers most likely to carry the wrong grade.

Grading a whole group at once is what saves the work, and its one risk is a member that does
not belong there and silently gets the group's grade with the rest. After grading, an
instructor can check a few answers, not all of them; this module says which to check first.

Each graded answer gets a *doubt* in [0, 1], the mean of two rank percentiles over the
question's graded answers:

1. how untypical the answer is of the group whose grade it carries
   (:func:`grouper.review.typicality` among the members graded with the group); an answer
   graded on its own was looked at on its own, and ranks as the most typical;
2. how much less likely its score is than its groupmates' under a model of the grades given
   to the *other* groups: a multinomial logistic regression on the embeddings and the
   reference signals, fitted with the answer's own group held out (grouped k-fold). Holding
   the group out is what matters: fitted on every answer, the group's own members vouch for
   the grade they were all given. Comparing with the groupmates is what makes it safe: the
   raw probability also ranks whole groups whose score is rare elsewhere, and on one split
   of the benchmark it ranked the wrong grades below chance.

Ranks rather than raw values, because the two are on unrelated scales and the mean of ranks
needs no weights fitted to a corpus. Measured on the real corpora with a simulated grader who
misses 30 % of the members that do not belong (``benchmarks/grade_check.py``), the ranking
finds more of the wrong grades in its first tenth than typicality alone on every split, 1.1
to 2.1 times as many (``benchmarks/results/grade_check.md``).

Identical answers (the same text once case, punctuation and spacing are ignored) graded with
different grades are certain inconsistencies: the ones graded unlike most of their identical
answers are listed first, with those twins, whatever the signals say.

Grades count as the same when their scores and rubric items are equal: a different comment is
not a different grade for this purpose, but another rubric item of the same points is (each
item is feedback of its own, as in the training signal of ``grouper.feedback``).

An answer whose grade a grader has checked and found right (``grouper.edits.CheckGrades``,
"Looks right") comes after every unchecked one, saying who checked it: the list is of what is
left to look at, and any TA's check counts for all of them.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from grouper.answers import Answer
from grouper.edits import Grade, GradeKind, QuestionState, grade_kind
from grouper.references import References, reference_signals
from grouper.review import GradeInUse, grades_in_use, typicality

if TYPE_CHECKING:
    from grouper.embedding import Encoder
    from grouper.store import Store

__all__ = [
    "GradeCheckSettings",
    "GradeDoubt",
    "check_question",
    "conflicts_among",
    "grade_conflicts",
    "grade_doubts",
    "identical_answers",
    "identity_key",
]

T = TypeVar("T")


@dataclass(frozen=True)
class GradeCheckSettings:
    """Parameters of the grade model, validated on use.

    Attributes
    ----------
    folds : int
        Folds of the grouped k-fold (fewer when there are fewer groups).
    regularisation : float
        Inverse L2 strength ``C`` of the logistic regression; 1 was better than 10 at finding
        the wrong grades in the benchmark (a smoother model trusts one group's grade less).
    reduce_to : int or None
        PCA dimensions of the embeddings before the model (``None`` keeps them all): what
        keeps the check fast on thousands of answers.
    """

    folds: int = 5
    regularisation: float = 1.0
    reduce_to: int | None = 32

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the rule."""
        if self.folds < 2:
            raise ValueError(f"folds ({self.folds!r}) must be at least 2")
        if not self.regularisation > 0:
            raise ValueError(f"regularisation ({self.regularisation!r}) must be > 0")
        if self.reduce_to is not None and self.reduce_to < 1:
            raise ValueError(f"reduce_to ({self.reduce_to!r}) must be at least 1, or None")


@dataclass(frozen=True)
class GradeDoubt:
    """One graded answer, and why its grade may be wrong.

    Attributes
    ----------
    answer_id : str
    grade : Grade
        Its grade now.
    group_id : int or None
        The group it is in.
    graded_alone : bool
        True when the grade is its own (given to it alone), not its group's.
    doubt : float
        In [0, 1]; higher is more doubtful. 1.0 for an answer whose twin has another grade.
    typicality : float
        Cosine to the mean direction of the members graded with its group (1.0 when graded
        alone).
    probability : float or None
        The other groups' grade model's probability of its grade (its score and rubric items);
        ``None`` when there is no such model (fewer than two grades given, or a single group).
    group_probability : float or None
        The median of that probability over the members graded with its group: the doubt
        rises as the answer's probability falls below it (``None`` when graded alone or
        without a model).
    likely : GradeInUse or None
        The grade the evidence points to, when it is another one: its twins' most common
        grade, else the model's most probable grade, as given most often
        (:func:`grouper.review.grades_in_use`), so that its comment comes with it.
    likely_probability : float or None
        The model's probability of ``likely`` (``None`` for twins or no model).
    twins : tuple of str
        Identical answers graded otherwise, when this answer is graded unlike most of its
        identical answers (or there is no most common grade among them).
    checked_by : str or None
        Who checked the grade it has and found it right (``None``: nobody has).
    """

    answer_id: str
    grade: Grade
    group_id: int | None
    graded_alone: bool
    doubt: float
    typicality: float
    probability: float | None
    group_probability: float | None
    likely: GradeInUse | None
    likely_probability: float | None
    twins: tuple[str, ...] = ()
    checked_by: str | None = None


def grade_doubts(
    state: QuestionState,
    answers: Sequence[Answer],
    vectors: np.ndarray,
    references: References | None = None,
    settings: GradeCheckSettings | None = None,
) -> list[GradeDoubt]:
    """Every graded answer of a question, most doubtful grade first.

    Parameters
    ----------
    state : QuestionState
        The question as it is now.
    answers : sequence of Answer
        The question's answers (the rows of ``vectors``); answers the state lacks are ignored.
    vectors : ndarray of shape (n_answers, dim)
        Their embeddings.
    references : References, optional
        The question's reference answers: their signals join the model's features.
    settings : GradeCheckSettings, optional

    Returns
    -------
    list of GradeDoubt
        One per graded answer: the answers whose grade nobody has checked first, and among
        them those with twins graded otherwise, then by doubt, ties in the question's order;
        then the checked answers in the same order. Empty when nothing is graded.
    """
    settings = settings or GradeCheckSettings()
    settings.validate()
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(answers) != len(vectors):
        raise ValueError(f"{len(answers)} answers but {len(vectors)} vectors")
    rows = [i for i, a in enumerate(answers) if a.answer_id in state.location and state.grade_of(a.answer_id) is not None]
    if not rows:
        return []
    ids = [answers[i].answer_id for i in rows]
    grades = [state.grade_of(a) for a in ids]
    kinds = [grade_kind(g) for g in grades]  # type: ignore[arg-type]
    alone = np.array([state.grade_source(a) == "override" for a in ids])
    block = vectors[rows]

    # 1. Typicality among the members that carry the group's grade.
    typical = np.ones(len(ids))
    carried_by: dict[int, list[int]] = {}
    for j, answer_id in enumerate(ids):
        if not alone[j]:  # so graded by its group
            carried_by.setdefault(state.location[answer_id], []).append(j)  # type: ignore[arg-type]
    for carried in carried_by.values():
        typical[carried] = typicality(block[carried])

    # 2. The grade's probability under a model of the other groups' grades.
    signals = reference_signals(vectors, [a.normalized for a in answers], references)[rows] if references else None
    reduced = _reduced(block, settings.reduce_to)
    features = reduced if signals is None else np.column_stack([signals, reduced])
    folds = np.array([f"g{state.location[a]}" if not alone[j] else f"a{j}" for j, a in enumerate(ids)])
    probability, predicted = _held_out_probabilities(features, kinds, folds, settings)

    doubt = _rank_percentile(-typical)
    usual_probability = np.full(len(ids), np.nan)
    if probability is not None:
        # Compared with its groupmates, not with every answer: a group whose score no other
        # group was given has a low probability for all its members, right or wrong alike.
        relative = np.zeros(len(ids))  # an answer graded alone is neither for nor against
        for carried in carried_by.values():
            usual_probability[carried] = np.median(probability[carried])
            relative[carried] = probability[carried] - usual_probability[carried]
        doubt = (doubt + _rank_percentile(-relative)) / 2

    twins = grade_conflicts(state, answers)
    usual = _usual_grade_per_kind(state)
    row_of = {answer_id: j for j, answer_id in enumerate(ids)}
    found = []
    for j, answer_id in enumerate(ids):
        own_twins = twins.get(answer_id, ())
        likely, likely_p = None, None
        if own_twins:
            twin_kinds = Counter(kinds[row_of[t]] for t in own_twins)
            likely = usual[twin_kinds.most_common(1)[0][0]]
        elif predicted is not None and predicted[j][0] != kinds[j]:
            likely, likely_p = usual[predicted[j][0]], predicted[j][1]
        found.append(
            GradeDoubt(
                answer_id=answer_id,
                grade=grades[j],  # type: ignore[arg-type]
                group_id=state.location[answer_id],
                graded_alone=bool(alone[j]),
                doubt=1.0 if own_twins else round(float(doubt[j]), 9),
                typicality=float(typical[j]),
                probability=None if probability is None else float(probability[j]),
                group_probability=None if np.isnan(usual_probability[j]) else float(usual_probability[j]),
                likely=likely,
                likely_probability=likely_p,
                twins=own_twins,
                checked_by=None if (check := state.grade_check(answer_id)) is None else check.by,
            )
        )
    order = sorted(range(len(found)), key=lambda j: (found[j].checked_by is not None, not found[j].twins, -found[j].doubt, j))
    return [found[j] for j in order]


def grade_conflicts(state: QuestionState, answers: Sequence[Answer]) -> dict[str, tuple[str, ...]]:
    """The graded answers graded unlike most of their identical answers, with those answers.

    The cheap part of :func:`grade_doubts` (no embeddings, no model): what the exports warn
    about before grades leave the tool.

    Parameters
    ----------
    state : QuestionState
    answers : sequence of Answer
        The question's answers; answers the state lacks are ignored.

    Returns
    -------
    dict of str to tuple of str
        Answer id to the ids of its identical answers graded otherwise, in the
        question's order; empty when there is no such answer.
    """
    identical = identical_answers(answers)
    found = conflicts_among(state, identical, identical)
    return {a.answer_id: found[a.answer_id] for a in answers if a.answer_id in found}


def _held_out_probabilities(
    features: np.ndarray, kinds: Sequence[GradeKind], folds: np.ndarray, settings: GradeCheckSettings
) -> tuple[np.ndarray | None, list[tuple[GradeKind, float]] | None]:
    """Each answer's probability of its kind of grade, and the most probable kind, from models
    fitted with its fold (its group) held out; ``(None, None)`` when no model can be fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    n_folds = min(settings.folds, len(set(folds)))
    values = sorted(set(kinds))
    code = {kind: i for i, kind in enumerate(values)}
    classes = np.array([code[k] for k in kinds])  # class indices: 0.5 is not a label to sklearn
    if len(values) < 2 or n_folds < 2:
        return None, None
    probability = np.zeros(len(kinds))
    predicted: list[tuple[GradeKind, float]] = [(k, 1.0) for k in kinds]
    for train, test in GroupKFold(n_splits=n_folds).split(features, classes, folds):
        if len(np.unique(classes[train])) < 2:
            continue  # nothing to tell grades apart with: no evidence either way
        model = LogisticRegression(C=settings.regularisation, max_iter=500)
        model.fit(features[train], classes[train])
        known = list(model.classes_)
        proba = model.predict_proba(features[test])
        for row, j in zip(proba, test, strict=True):
            # A score no other group was given has probability 0: nothing else vouches for it.
            probability[j] = row[known.index(classes[j])] if classes[j] in known else 0.0
            best = int(np.argmax(row))
            predicted[j] = (values[known[best]], float(row[best]))
    return probability, predicted


def _reduced(block: np.ndarray, dimensions: int | None) -> np.ndarray:
    """The embeddings' first principal components (fitted without the grades, so that no
    grade leaks into a held-out fold), or the embeddings when they are few enough."""
    if dimensions is None or min(block.shape) <= dimensions:
        return block
    from sklearn.decomposition import PCA

    return PCA(n_components=dimensions, random_state=0).fit_transform(block)


def _rank_percentile(values: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1]: the largest value gets 1, ties share a rank."""
    from scipy.stats import rankdata

    if len(values) == 1:
        return np.zeros(1)
    return (rankdata(values, method="average") - 1) / (len(values) - 1)


def _odd_ones(members: Sequence[T], kinds: Sequence[GradeKind]) -> dict[T, tuple[T, ...]]:
    """Among identical answers, each one graded unlike most of them, with those graded otherwise.

    The grade most of them got is taken as the intended one: one "Canberra" graded 0 beside
    seventy-five graded 1 is the doubtful one, not the seventy-five. With no single most common
    grade (one 1 and one 0), every member is doubtful.
    """
    counts = Counter(kinds).most_common()
    if len(counts) < 2:
        return {}
    settled = counts[0][0] if counts[0][1] > counts[1][1] else None
    return {
        m: tuple(o for o, other in zip(members, kinds, strict=True) if other != kind)
        for m, kind in zip(members, kinds, strict=True)
        if kind != settled
    }


def identical_answers(answers: Sequence[Answer]) -> dict[str, tuple[str, ...]]:
    """Each non-blank answer that has identical answers (the same text once case, spacing and
    the punctuation that carries no value are ignored: :func:`identity_key`), with all of
    them, itself included, in the question's order.

    Answers never change, so a page computes this once per question and then checks only the
    answers an edit graded (:func:`conflicts_among`).
    """
    by_key: dict[str, list[str]] = {}
    for a in answers:
        key = identity_key(a.normalized)
        if key:  # an answer of punctuation only ("?", "...") is identical to nothing
            by_key.setdefault(key, []).append(a.answer_id)
    return {a: tuple(same) for same in by_key.values() if len(same) > 1 for a in same}


def identity_key(text: str) -> str:
    """What two answers must share to be the same answer for grading: NFKC, casefolded, spaces
    collapsed, sentence marks at the end dropped, and punctuation ignored unless it touches a
    digit. A grade given to one is the grade the other deserves, so a mark that changes a
    value is kept: "-5" is not "5", "50%" not "50", "1.5" not "15" ("Canberra." is
    "canberra"). Stricter than the exact-text baseline's key
    (:func:`grouper.answers.exact_text_key`), which groups rather than judges.
    """
    folded = unicodedata.normalize("NFKC", text).casefold().strip().rstrip(".!?;:")
    kept = []
    for i, ch in enumerate(folded):
        if unicodedata.category(ch).startswith("P"):
            touches_digit = (i > 0 and folded[i - 1].isdigit()) or (i + 1 < len(folded) and folded[i + 1].isdigit())
            kept.append(ch if touches_digit else " ")
        else:
            kept.append(" " if ch.isspace() or unicodedata.category(ch).startswith("Z") else ch)
    return " ".join("".join(kept).split())


def conflicts_among(
    state: QuestionState, identical: Mapping[str, Sequence[str]], answer_ids: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """:func:`grade_conflicts` restricted to the identical answers of ``answer_ids``: what an
    edit that graded those answers leaves inconsistent, in time proportional to them.

    Parameters
    ----------
    state : QuestionState
    identical : mapping of str to sequence of str
        From :func:`identical_answers`.
    answer_ids : iterable of str
        The answers to look around (those an edit graded, say).

    Returns
    -------
    dict of str to tuple of str
        As :func:`grade_conflicts`, for those answers' sets of identical answers only.
    """
    out: dict[str, tuple[str, ...]] = {}
    seen: set[tuple[str, ...]] = set()
    for answer_id in answer_ids:
        same = tuple(identical.get(answer_id, ()))
        if not same or same in seen:
            continue
        seen.add(same)
        graded = [a for a in same if a in state.location and state.grade_of(a) is not None]
        out.update(_odd_ones(graded, [grade_kind(state.grade_of(a)) for a in graded]))  # type: ignore[arg-type]
    return out


def _usual_grade_per_kind(state: QuestionState) -> dict[GradeKind, GradeInUse]:
    """For each kind of grade given, the grade given most often as it (the groups page's
    "Grade as before" order), so that a suggested grade comes with its comment."""
    usual: dict[GradeKind, GradeInUse] = {}
    for grade in grades_in_use(state):
        usual.setdefault(grade_kind(grade), grade)
    return usual


def check_question(
    store: Store, question_id: str, encoder: Encoder, settings: GradeCheckSettings | None = None
) -> list[GradeDoubt]:
    """:func:`grade_doubts` of a stored question, as it is now.

    Parameters
    ----------
    store : Store
    question_id : str
    encoder : Encoder
        The model version that grouped the question, so that the vectors are the stored ones
        (from the store's embedding cache).
    settings : GradeCheckSettings, optional

    Returns
    -------
    list of GradeDoubt
    """
    from grouper.references import question_references

    question = store.question(question_id)
    state = store.state(question_id)
    vectors = encoder.encode([a.normalized for a in question.answers], cache=store.embeddings).vectors
    references = question_references(question, encoder, cache=store.embeddings)
    return grade_doubts(state, question.answers, vectors, references, settings)
