"""One turn of the data flywheel: pairs -> fine-tuned candidate -> held-out check -> version.

:func:`retrain` is what ``grouper retrain`` and the models page's button call. It fine-tunes
the active version on the corrections' pairs, measures parent and candidate with the same
held-out metric, publishes the candidate as a new version either way (its card says whether
and why it beat its parent), activates it only when it did, and records the run in MLflow.

The held-out metric is any callable from an encoder to lower-is-better figures; the default,
:func:`apa_metric`, is the zero-shot APA of the benchmark protocol (``grouper evaluate``'s
oracle instructor) on questions whose answers carry their final grades.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grouper.answers import Question
from grouper.clustering import GroupingSettings
from grouper.embedding import EmbeddingCache, Encoder, file_sha256
from grouper.model_versions import ModelRegistry, VersionCard, compare_to_parent, utc_now
from grouper.pairs import TrainingPair, pairs_digest
from grouper.reference_pairs import REFERENCE_PREFIX
from grouper.training.finetune import FineTuneResult, FineTuneSettings, fine_tune
from grouper.training.tracking import TrackedRun, TrackingSettings

__all__ = ["HeldOutMetric", "RetrainOutcome", "apa_metric", "graded_question", "retrain", "retrain_from_store"]

#: From an encoder to named, lower-is-better figures on held-out questions; ``"overall"`` is
#: the one that must improve (see :func:`grouper.model_versions.compare_to_parent`).
HeldOutMetric = Callable[[Encoder], Mapping[str, float]]


def apa_metric(
    questions: Sequence[Question],
    *,
    settings: GroupingSettings | None = None,
    min_answers: int = 20,
    cache: EmbeddingCache | None = None,
) -> HeldOutMetric:
    """The held-out metric: the benchmark's zero-shot APA on questions with gold grades.

    Runs :func:`grouper.evaluation.runner.evaluate_questions`, the same grouping the product
    makes and the same oracle instructor as ``grouper evaluate``, in a throw-away store.

    Parameters
    ----------
    questions : sequence of Question
        Held-out questions (never trained on), every answer with its gold grade; those with
        fewer than ``min_answers`` answers are left out, as the protocol does.
    settings : GroupingSettings, optional
    min_answers : int
    cache : EmbeddingCache, optional
        Keeps the embeddings (keyed by each model's weights), so that measuring the parent
        again costs nothing.

    Returns
    -------
    HeldOutMetric
        ``{"overall": APA over all answers, "<dataset>/<split>": APA, ...}``; a candidate
        must lower the first and raise none of the others.
    """
    kept = [q for q in questions if len(q.answers) >= min_answers]
    if not kept:
        raise ValueError(f"no held-out question has at least {min_answers} answers")

    def evaluate(encoder: Encoder) -> dict[str, float]:
        from grouper.evaluation.runner import evaluate_questions, summarise

        results = evaluate_questions(kept, encoder, settings, mode="zero-shot", cache=cache, min_answers=min_answers)
        figures = {"overall": sum(r.actions for r in results) / sum(r.answers for r in results)}
        parts = summarise(results)
        if len(parts) > 1:  # one part would only repeat the overall figure
            figures.update({f"{p.dataset}/{p.split}": p.apa for p in parts})
        return figures

    return evaluate


@dataclass(frozen=True)
class RetrainOutcome:
    """What one retrain did.

    Attributes
    ----------
    card : VersionCard
        The published candidate's card (its decision, metrics, training data snapshot).
    activated : bool
    run_id : str or None
        The MLflow run, when tracked.
    """

    card: VersionCard
    activated: bool
    run_id: str | None


def _training_snapshot(pairs: Sequence[TrainingPair], result: FineTuneResult) -> dict[str, Any]:
    used = result.train_pairs + result.val_pairs
    return {
        "pairs_given": len(pairs),
        "pairs_used": len(used),
        "must_links": sum(p.together for p in used),
        "cannot_links": sum(not p.together for p in used),
        # What the pairs came from: graded answers against a reference answer, or answer links.
        "sources": {
            "references": sum(p.answer_id_a.startswith(REFERENCE_PREFIX) for p in used),
            "answers": sum(not p.answer_id_a.startswith(REFERENCE_PREFIX) for p in used),
        },
        "pairs_sha256": pairs_digest(used),
        # Edit ids are numbered per question, so the edits are listed per question.
        "edits": {
            q: sorted({p.edit_id for p in used if p.question_id == q and p.edit_id is not None}, key=str)
            for q in sorted({p.question_id for p in used})
        },
        "authors": sorted({p.author for p in used if p.author is not None}),
        "questions": sorted({p.question_id for p in used}),
        "validation_questions": sorted({p.question_id for p in result.val_pairs}),
        "settings": result.settings.to_dict(),
        "run": result.summary(),
    }


def retrain(
    pairs: Sequence[TrainingPair],
    evaluate: HeldOutMetric,
    *,
    rng: np.random.Generator,
    registry: ModelRegistry | None = None,
    settings: FineTuneSettings | None = None,
    held_out: Sequence[str] = (),
    metric_name: str = "apa",
    device: torch.device | None = None,
    tracking: TrackingSettings | None = None,
    progress: bool | None = None,
    parent_encoder: Encoder | None = None,
) -> RetrainOutcome:
    """Fine-tune the active version on pairs and publish the result as a new version.

    Parameters
    ----------
    pairs : sequence of TrainingPair
        From the edit log of the training questions (never of the held-out ones).
    evaluate : HeldOutMetric
        Measures a model on held-out questions; lower is better.
    rng : numpy.random.Generator
    registry : ModelRegistry, optional
    settings : FineTuneSettings, optional
    held_out : sequence of str
        Ids of the held-out questions, recorded on the card.
    metric_name : str
        Name of what ``evaluate`` measures, for the card.
    device : torch.device, optional
        Defaults to CUDA when present, else the CPU.
    tracking : TrackingSettings, optional
        Where the run is recorded in MLflow (the default local store when omitted).
    progress : bool, optional
    parent_encoder : Encoder, optional
        The active version, already loaded by the caller (say, to pick reference pairs with
        it), so that it is not loaded twice; loaded here when omitted. It must carry the
        active version's weights.

    Returns
    -------
    RetrainOutcome
        The candidate is published in every case; it is active only when it beats its parent
        and its parent is still the active version when it is published.
    """
    registry = registry or ModelRegistry()
    settings = settings or FineTuneSettings()
    tracking = tracking or TrackingSettings()
    parent = registry.active()
    with TrackedRun(tracking, run_name=f"retrain from {parent}", tags={"grouper.parent": parent}) as run:
        run.log(params={"parent": parent, "n_pairs": len(pairs), "metric": metric_name, **settings.to_dict()})
        if parent_encoder is None:
            parent_encoder = registry.load(parent, device=device)
        elif parent_encoder.weights_sha256 != registry.card(parent).weights_sha256:
            raise ValueError(f"the parent encoder given does not carry the active version {parent}'s weights")
        # Made first: a models folder that cannot be written to fails now, not after the training.
        staging = registry.staging_dir()
        try:
            before = dict(evaluate(parent_encoder))
            result = fine_tune(parent_encoder, pairs, settings, rng=rng, device=parent_encoder.device, progress=progress)
            del parent_encoder  # its weights are copied into result.model; free them (unless the caller holds them)
            sha = file_sha256(result.save(staging))
            candidate = Encoder(staging, device=torch.device(result.device), expected_sha256=sha)
            after = dict(evaluate(candidate))
            decision = compare_to_parent(before, after)
            card = VersionCard(
                version="v0000",  # the registry allocates the number when publishing
                parent=parent,
                created_at=utc_now(),
                weights_sha256=sha,
                training=_training_snapshot(pairs, result),
                metrics={"metric": metric_name, "held_out": list(held_out), "parent": before, "candidate": after},
                beats_parent=decision.beats_parent,
                decision=decision.reason,
                tracking=run.describe(),
            )
            published = registry.publish(staging, card)
        except BaseException:
            registry.discard_staging(staging)
            raise
        # Not beats_parent: a rollback made while it trained keeps the candidate inactive.
        activated = registry.active() == published.version
        card_path = registry.root / published.version / "card.json"
        run.log(
            metrics={
                **{f"parent_{k}": v for k, v in before.items()},
                **{f"candidate_{k}": v for k, v in after.items()},
                "training_seconds": result.seconds,
                "steps": result.steps,
                "best_step": result.best_step,
                "activated": float(activated),
            },
            curves={
                "train_loss": [(r.step, r.train_loss) for r in result.history],
                "val_loss": [(r.step, r.val_loss) for r in result.history],
            },
            artifacts=[card_path],
            tags={"grouper.version": published.version, "grouper.decision": published.decision[:250]},
        )
        return RetrainOutcome(published, activated, run.run_id)


#: Questions with fewer answers are not held out: their APA is too noisy to decide on.
MIN_HELD_OUT_ANSWERS = 20


def graded_question(store: Any, question_id: str) -> Question | None:
    """A stored question with each answer's final grade as its gold label.

    Parameters
    ----------
    store : Store
    question_id : str

    Returns
    -------
    Question or None
        ``None`` while some answer is ungraded (APA needs every answer's grade). The gold
        label is the score written plainly (``"1"``, ``"0.5"``).
    """
    from dataclasses import replace

    question = store.question(question_id)
    state = store.state(question_id)
    answers = []
    for answer in question.answers:
        grade = state.grade_of(answer.answer_id)
        if grade is None:
            return None
        answers.append(replace(answer, gold=f"{grade.score:g}", score=grade.score))
    return replace(question, answers=tuple(answers))


def retrain_from_store(
    store: Any,
    *,
    rng: np.random.Generator,
    registry: ModelRegistry | None = None,
    settings: FineTuneSettings | None = None,
    questions: Sequence[str] | None = None,
    authors: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    held_out: Sequence[str] = (),
    held_out_questions: Sequence[Question] = (),
    held_out_fraction: float = 0.25,
    min_answers: int = MIN_HELD_OUT_ANSWERS,
    device: torch.device | None = None,
    tracking: TrackingSettings | None = None,
    progress: bool | None = False,
    pair_sources: Sequence[str] | None = None,
) -> RetrainOutcome:
    """One flywheel turn from a store's edit log: what ``grouper retrain`` and the models
    page's button run.

    Parameters
    ----------
    store : Store
    rng : numpy.random.Generator
        Draws the held-out questions (when not named) and drives the training.
    registry : ModelRegistry, optional
    settings : FineTuneSettings, optional
    questions : sequence of str, optional
        Train on these questions' edits only (default: every question not held out).
    authors : sequence of str, optional
        Learn from these graders' edits only.
    since, until : datetime, optional
        Edits at or after ``since`` and before ``until``.
    held_out : sequence of str
        Stored, fully graded questions to check on; never trained on.
    held_out_questions : sequence of Question
        Further questions with gold grades to check on (a graded file, say).
    held_out_fraction : float
        When neither ``held_out`` nor ``held_out_questions`` is given: hold out this share of
        the fully graded questions with at least ``min_answers`` answers (drawn with ``rng``).
    min_answers : int
    device : torch.device, optional
    tracking : TrackingSettings, optional
    progress : bool, optional
    pair_sources : sequence of {"answers", "references"}, optional
        What to learn from (:func:`grouper.feedback.correction_pairs`): the links among answers
        in the log, and/or each graded answer against its nearest reference answer. By default
        the reference pairs when the training questions give
        any and no author or date filter is asked for, else the answer pairs: in ``grouper
        evaluate --mode flywheel`` reference pairs alone transferred best to unseen questions,
        answer pairs or both together did worse.

    Returns
    -------
    RetrainOutcome

    Raises
    ------
    ValueError
        No held-out question, or no pair to learn from; the message says what to do.
    """
    from grouper.feedback import PairFilter, correction_pairs

    # Said before the model loads and the parent is measured, not after.
    (settings or FineTuneSettings()).validate()
    if not 0 <= held_out_fraction < 1:
        raise ValueError(f"held_out_fraction ({held_out_fraction!r}) must be in [0, 1)")
    unknown = sorted(set(questions or ()) - set(store.question_ids()))
    if unknown:
        raise ValueError(f"no question {', '.join(map(repr, unknown))} in the store; nothing was trained")
    held = list(held_out_questions)
    for qid in held_out:
        question = graded_question(store, qid)
        if question is None:
            raise ValueError(f"held-out question {qid} has ungraded answers; APA needs every answer's grade")
        if len(question.answers) < min_answers:
            raise ValueError(
                f"held-out question {qid} has {len(question.answers)} answers, fewer than the {min_answers} "
                "a held-out question needs to be measured (--min-answers)"
            )
        held.append(question)
    if not held and held_out_fraction > 0:
        graded = [q for q in (graded_question(store, qid) for qid in store.question_ids()) if q is not None]
        graded = [q for q in graded if len(q.answers) >= min_answers]
        # Questions asked to be trained on are held out only when no other graded one can be.
        outside = [q for q in graded if questions and q.question_id not in questions]
        pool = outside or graded
        if outside or len(graded) >= 2:  # one question cannot be both trained on and held out
            n = min(max(1, round(held_out_fraction * len(pool))), len(pool) if outside else len(pool) - 1)
            held = [pool[i] for i in sorted(rng.choice(len(pool), size=n, replace=False))]
    if not held:
        raise ValueError(
            "no held-out questions to check a new model on: name fully graded questions to hold out, give "
            f"graded answer files, or grade at least two questions of {min_answers}+ answers"
        )
    held_ids = {q.question_id for q in held}  # never trained on
    train_ids = [q for q in (questions or store.question_ids()) if q not in held_ids]
    # The card lists the questions the check measures: a file's question below min_answers is not.
    held = [q for q in held if len(q.answers) >= min_answers]
    select = PairFilter(
        question_ids=frozenset(train_ids),
        authors=frozenset(authors) if authors else None,
        since=since,
        until=until,
    )
    registry = registry or ModelRegistry()
    filtered = authors or since is not None or until is not None
    wanted = tuple(pair_sources) if pair_sources is not None else (("answers",) if filtered else ("references",))
    encoder = registry.load(registry.active(), device=device) if "references" in wanted else None
    pairs = correction_pairs(store, select=select, sources=wanted, encoder=encoder)
    if not pairs and pair_sources is None and wanted == ("references",):
        # No reference answers (or no graded spread) among the training questions: the links
        # among answers in the log are what there is to learn from.
        pairs = correction_pairs(store, select=select, sources=("answers",))
    if not pairs:
        if pair_sources is not None and "references" in pair_sources and "answers" not in pair_sources:
            raise ValueError(
                "the training questions give no reference pairs: they need reference answers and graded "
                "answers with at least two different scores"
            )
        asked = ", ".join(
            part
            for part in (
                f"questions {', '.join(train_ids) or 'none (all held out)'}" if questions else "",
                f"authors {', '.join(authors)}" if authors else "",
                f"since {since.isoformat()}" if since is not None else "",
                f"until {until.isoformat()}" if until is not None else "",
            )
            if part
        )
        within = f" ({asked})" if asked else ""
        raise ValueError(
            f"the edit log of the training questions{within} gives no pairs: confirm, merge, move or grade "
            "first, or widen the filters"
        )
    return retrain(
        pairs, apa_metric(held, min_answers=min_answers, cache=store.embeddings), rng=rng, registry=registry,
        settings=settings, held_out=sorted(q.question_id for q in held), device=device, tracking=tracking, progress=progress,
        parent_encoder=encoder,
    )
