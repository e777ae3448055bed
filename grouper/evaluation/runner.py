"""The APA benchmark over answer files: group every question, let the oracle grade it.

For every question with at least ``min_answers`` answers (20 in the protocol), the product
groups the answers exactly as ``grouper import`` would (:func:`grouper.pipeline.group_question`,
reference answers included), the grouping is saved in a store, and the oracle instructor grades
the question through the store's edit log (:mod:`grouper.evaluation.oracle`). The trivial
baselines (one group; exact normalised text) are counted on the same questions with the pure
arithmetic of :mod:`grouper.evaluation.apa`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from grouper.answers import Question
from grouper.clustering import GroupingSettings
from grouper.embedding import EmbeddingCache, Encoder, InMemoryEmbeddingCache
from grouper.evaluation.apa import MIN_ANSWERS, MODES, count_review, exact_text_key, groups_from_keys
from grouper.evaluation.oracle import review_question
from grouper.grade_adaptation import ADAPTATION_AUTHOR, GradeAdaptationSettings, adapt_to_grades
from grouper.pipeline import group_question
from grouper.references import References
from grouper.store import Store

if TYPE_CHECKING:
    from grouper.training.finetune import FineTuneSettings

__all__ = [
    "MODES",
    "TRAIN_SPLIT",
    "FlywheelSettings",
    "QuestionResult",
    "SplitResult",
    "evaluate_questions",
    "summarise",
]

#: The split whose corrections a model may learn from; every other split measures transfer.
TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class FlywheelSettings:
    """What the flywheel mode learns, and from what.

    Attributes
    ----------
    adaptation : GradeAdaptationSettings
        The within-question model refitted after each reviewed group.
    retrain : bool
        Fine-tune the encoder on the corrections logged on the train questions before the
        other questions are grouped (:mod:`grouper.evaluation.flywheel`); ``False`` keeps the
        parent model, so that only within-question adaptation is measured.
    fine_tune : FineTuneSettings or None
        The fine-tuning run's settings; the defaults of :mod:`grouper.evaluation.flywheel`
        when ``None``.
    seed : int
        Seeds the pair sampling and the training.
    pair_sources : tuple of str
        What the fine-tuning learns from (:data:`grouper.feedback.PAIR_SOURCES`).
    keep_models : Path or None
        Save each fine-tuned model in a folder of this one named after the dataset (to group
        with it later, or to check it on zero-shot grouping); temporary when ``None``.
    """

    adaptation: GradeAdaptationSettings = field(default_factory=GradeAdaptationSettings)
    retrain: bool = True
    fine_tune: FineTuneSettings | None = None
    seed: int = 0
    pair_sources: tuple[str, ...] = ("references",)
    keep_models: Path | None = None


@dataclass(frozen=True)
class QuestionResult:
    """One question's result.

    Attributes
    ----------
    question_id, dataset, split : str
    answers : int
    actions : int
        The oracle's actions on the product's grouping.
    one_group, exact : int
        Actions with everything in one group, and with identical normalised texts grouped.
    classes : int
        Distinct gold labels (the floor is ``classes / answers``).
    """

    question_id: str
    dataset: str
    split: str
    answers: int
    actions: int
    one_group: int
    exact: int
    classes: int

    @property
    def apa(self) -> float:
        """Actions per answer."""
        return self.actions / self.answers


@dataclass(frozen=True)
class SplitResult:
    """APA of one corpus split, weighted by answers.

    Attributes
    ----------
    dataset, split : str
    questions, answers : int
    apa, one_group, exact, floor : float
        Actions per answer of the product, of the two baselines, and the least possible.
    """

    dataset: str
    split: str
    questions: int
    answers: int
    apa: float
    one_group: float
    exact: float
    floor: float

    @property
    def ratio(self) -> float:
        """APA over the better of the two trivial baselines (the target is at most 0.8)."""
        return self.apa / min(self.one_group, self.exact)


def evaluate_questions(
    questions: Iterable[Question],
    encoder: Encoder,
    settings: GroupingSettings | None = None,
    *,
    mode: str = "zero-shot",
    cache: EmbeddingCache | None = None,
    store: Store | None = None,
    min_answers: int = MIN_ANSWERS,
    default_dataset: str = "",
    on_question: Callable[[QuestionResult], None] | None = None,
    flywheel: FlywheelSettings | None = None,
    on_retrained: Callable[[dict], None] | None = None,
) -> list[QuestionResult]:
    """Run the protocol on every question with at least ``min_answers`` answers.

    In flywheel mode the questions of the ``train`` split are graded first, each with the
    within-question adaptation after every reviewed group; then, when ``flywheel.retrain``,
    the encoder is fine-tuned on the corrections their edit log holds; then every other
    question is grouped with that model and graded, adapting likewise. Questions of other
    splits never feed any training.

    Parameters
    ----------
    questions : iterable of Question
        Every answer of an evaluated question needs a gold label.
    encoder : Encoder
    settings : GroupingSettings, optional
        The grouping's settings; the product's defaults when omitted.
    mode : {"zero-shot", "flywheel"}
    cache : EmbeddingCache, optional
        Embeddings are looked up and kept there; an in-memory one is used when omitted.
    store : Store, optional
        Where questions, groupings and the oracle's edit log go; a fresh in-memory store when
        omitted. Question ids must not be in it already.
    min_answers : int
    default_dataset : str
        Dataset name of questions whose file does not say (the file's name, usually).
    on_question : callable, optional
        Called with each question's result as soon as it is known (progress).
    flywheel : FlywheelSettings, optional
        Flywheel mode's settings (defaults when omitted); ignored in zero-shot mode.
    on_retrained : callable, optional
        Called with the fine-tuning run's summary (pairs, steps, seconds, device) in flywheel
        mode, once the model for the other splits is trained.

    Returns
    -------
    list of QuestionResult
        In the order of the questions.
    """
    if mode not in MODES:
        raise ValueError(f"mode ({mode!r}) must be one of {', '.join(MODES)}")
    selected = [q for q in questions if len(q.answers) >= min_answers]
    for question in selected:
        _require_gold(question)
    cache = cache if cache is not None else InMemoryEmbeddingCache()
    _embed_all(encoder, selected, cache)
    store = store if store is not None else Store("sqlite://")
    if mode == "zero-shot":
        return [
            _report(_evaluate_question(q, encoder, settings, cache, store, default_dataset), on_question)
            for q in selected
        ]
    flywheel = flywheel or FlywheelSettings()
    train = [q for q in selected if q.split == TRAIN_SPLIT]
    results = {
        q.question_id: _report(
            _evaluate_question(q, encoder, settings, cache, store, default_dataset, flywheel.adaptation),
            on_question,
        )
        for q in train
    }
    rest = [q for q in selected if q.split != TRAIN_SPLIT]

    def dataset(q: Question) -> str:
        return q.dataset or default_dataset or "model"

    # Each corpus learns from its own train questions only: a file may hold several, and a
    # model fine-tuned on one course's corrections says nothing of another's questions.
    for name in dict.fromkeys(dataset(q) for q in rest):
        its_train = [q for q in train if dataset(q) == name]
        its_rest = [q for q in rest if dataset(q) == name]
        model = encoder
        if its_train and flywheel.retrain:
            model = _corrections_model(store, its_train, encoder, flywheel, cache, name, on_retrained)
            if model is not encoder:
                _embed_all(model, its_rest, cache)
        for q in its_rest:
            results[q.question_id] = _report(
                _evaluate_question(q, model, settings, cache, store, default_dataset, flywheel.adaptation), on_question
            )
    return [results[q.question_id] for q in selected]


def _corrections_model(
    store: Store,
    train: Sequence[Question],
    encoder: Encoder,
    flywheel: FlywheelSettings,
    cache: EmbeddingCache,
    dataset: str,
    on_retrained: Callable[[dict], None] | None,
) -> Encoder:
    """The encoder fine-tuned on the corrections of one corpus's train questions, or the
    parent when it loses to it or when those questions give nothing to learn from (the other
    splits are still measured, with the parent, and the summary says why)."""
    from grouper.evaluation.flywheel import NoTrainingPairs, corrections_model

    folder = None if flywheel.keep_models is None else Path(flywheel.keep_models) / dataset
    try:
        model, summary = corrections_model(
            store, [q.question_id for q in train], encoder, flywheel.fine_tune, seed=flywheel.seed, folder=folder,
            sources=flywheel.pair_sources, cache=cache,
        )
    except NoTrainingPairs as exc:
        model, summary = encoder, {"used": False, "reason": str(exc), "pairs": 0}
    if on_retrained is not None:
        on_retrained({**summary, "dataset": dataset})
    return model


def _report(result: QuestionResult, on_question: Callable[[QuestionResult], None] | None) -> QuestionResult:
    if on_question is not None:
        on_question(result)
    return result


def _embed_all(encoder: Encoder, questions: Sequence[Question], cache: EmbeddingCache) -> None:
    """Embed every answer and reference text of the questions in one call: large batches are
    what make the encoder fast, and each question's own calls then find their vectors cached."""
    texts = {a.normalized for q in questions for a in q.answers} | {r for q in questions for r in _reference_texts(q)}
    encoder.encode(sorted(t for t in texts if t), cache=cache)


def _reference_texts(question: Question) -> list[str]:
    from grouper.answers import normalize_text

    return [normalize_text(r) for r in question.reference_answers]


def _require_gold(question: Question) -> None:
    missing = [a.answer_id for a in question.answers if a.gold is None]
    if missing:
        raise ValueError(
            f"question {question.question_id}: answer(s) {', '.join(missing[:3])} have no gold grade; "
            "the benchmark needs a label (grade) column for every answer"
        )


def _evaluate_question(
    question: Question,
    encoder: Encoder,
    settings: GroupingSettings | None,
    cache: EmbeddingCache,
    store: Store,
    default_dataset: str,
    adaptation: GradeAdaptationSettings | None = None,
) -> QuestionResult:
    """Group, store and grade one question; with ``adaptation``, the answers not reviewed yet
    are re-cut after every reviewed group (flywheel mode)."""
    grouped = group_question(question, encoder, settings, cache=cache)
    # The oracle grades with the gold labels: a file's maximum score plays no part in APA.
    store.import_question(replace(question, max_score=None))
    store.save_grouping(question.question_id, grouped.grouping, model_version=encoder.model_key)
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    references = grouped.references
    after_review = None
    if adaptation is not None:
        use_references = (settings or GroupingSettings()).use_references
        signals = references if use_references else None

        def after_review(question_id: str) -> None:
            # Planned from one state and appended in order: nobody else edits the question here.
            state = store.state(question_id)
            for payload in adapt_to_grades(state, question.answers, grouped.vectors, signals, adaptation):
                store.append(question_id, ADAPTATION_AUTHOR, None, payload)

    scale = label_scores(question, grouped.vectors, references)
    count = review_question(store, question.question_id, gold, after_review=after_review, scale=scale)
    # The oracle and the arithmetic must agree; a difference is a bug in one of them. (When
    # the flywheel regroups between reviews, the groups reviewed are not the initial ones:
    # the oracle's own final check, every answer with its gold grade, still holds.)
    labels = [str(a.gold) for a in question.answers]
    expected = count_review(
        [[labels[i] for i in g.members] for g in grouped.grouping.groups], len(grouped.grouping.ungrouped)
    )
    if after_review is None and expected.actions != count.actions:
        raise RuntimeError(
            f"question {question.question_id}: the oracle took {count.actions} actions through the edit log "
            f"but the protocol's arithmetic counts {expected.actions}"
        )
    exact_groups = groups_from_keys([exact_text_key(a.text) for a in question.answers])
    return QuestionResult(
        question_id=question.question_id,
        dataset=question.dataset or default_dataset,
        split=question.split or "all",
        answers=len(labels),
        actions=count.actions,
        one_group=count_review([labels], 0).actions,
        exact=count_review([[labels[i] for i in g] for g in exact_groups], 0).actions,
        classes=len(set(labels)),
    )


def label_scores(question: Question, vectors: np.ndarray, references: References | None) -> dict[str, float]:
    """The score the oracle gives with each gold label: what an instructor's marks would say.

    An instructor knows which grade is full marks; a file of gold labels may not say. The
    mean gold score of each label's answers when every answer has one (saf-en); otherwise the
    mean similarity of each label's answers to the nearest reference answer, so that the
    label most like the references scores highest (``correct`` on SemEval); otherwise the
    labels in sorted order (:func:`grouper.evaluation.oracle.grade_scale`). Only the order
    matters: it tells which answers have the top score (:mod:`grouper.reference_pairs`).

    Parameters
    ----------
    question : Question
    vectors : ndarray of shape (n_answers, dim)
    references : References or None

    Returns
    -------
    dict of str to float
    """
    from grouper.evaluation.oracle import grade_scale

    labels = [str(a.gold) for a in question.answers]
    if all(a.score is not None for a in question.answers):
        values = np.array([float(a.score) for a in question.answers])
    elif references is not None:
        values = (np.asarray(vectors, dtype=np.float64) @ np.asarray(references.vectors, dtype=np.float64).T).max(axis=1)
    else:
        return grade_scale(labels)
    means = {label: float(np.mean([v for v, lab in zip(values, labels) if lab == label])) for label in set(labels)}
    ranked = sorted(means, key=lambda label: (means[label], label))
    return {label: float(rank) for rank, label in enumerate(ranked)}


def summarise(results: Sequence[QuestionResult]) -> list[SplitResult]:
    """APA per dataset and split, weighted by answers, in order of first appearance.

    Parameters
    ----------
    results : sequence of QuestionResult

    Returns
    -------
    list of SplitResult
    """
    keys: dict[tuple[str, str], list[QuestionResult]] = {}
    for r in results:
        keys.setdefault((r.dataset, r.split), []).append(r)
    out = []
    for (dataset, split), rs in keys.items():
        n = sum(r.answers for r in rs)
        out.append(
            SplitResult(
                dataset=dataset,
                split=split,
                questions=len(rs),
                answers=n,
                apa=sum(r.actions for r in rs) / n,
                one_group=sum(r.one_group for r in rs) / n,
                exact=sum(r.exact for r in rs) / n,
                floor=sum(r.classes for r in rs) / n,
            )
        )
    return out
