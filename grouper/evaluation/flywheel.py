"""Flywheel mode's training step: a model fine-tuned on the corrections of the train questions.

After the oracle has graded the ``train`` questions through the edit log, the store holds what
a real course's would: moves out of groups, confirmations and grades. :func:`corrections_model`
turns them into training pairs and fine-tunes a copy of the encoder on them
(:func:`grouper.training.finetune.fine_tune`, early stopping on a slice held out by question):

- ``"references"`` (the default): each graded answer with its nearest reference answer,
  together when it got the question's top score (:mod:`grouper.reference_pairs`). What makes an
  answer right transfers to the next question; on the benchmark corpora these pairs lowered
  APA on the unseen splits where answer pairs raised it on two of four;
- ``"answers"``: the must-links and cannot-links among answers that ``grouper retrain`` uses
  (:func:`grouper.feedback.training_pairs`, a model's own regrouping edits left out).

The new model is used only if it beats its parent on the train questions held out for
validation (zero-shot APA, :func:`grouper.model_versions.compare_to_parent`): the rule that
activates a model version in the product. The questions of the other splits are then grouped
with the model chosen: they never feed training nor that choice, so what they measure is
transfer to questions the model has not seen.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grouper.embedding import Encoder
from grouper.training.finetune import FineTuneSettings, fine_tune

__all__ = ["DEFAULT_FINE_TUNE", "NoTrainingPairs", "corrections_model"]

#: The flywheel's fine-tuning run: one epoch over at most 4,000 pairs (a corpus's train questions
#: give 1,700 to 5,500 reference pairs), which takes minutes on two CPU cores; validation every
#: 25 steps so that early stopping can act within the epoch.
DEFAULT_FINE_TUNE = FineTuneSettings(epochs=1, max_pairs=4000, eval_every=25, patience=3)


class NoTrainingPairs(ValueError):
    """The train questions' log gives no pair to fine-tune on (e.g. one grade throughout)."""


def corrections_model(
    store: Any,
    question_ids: Sequence[str],
    encoder: Encoder,
    settings: FineTuneSettings | None = None,
    *,
    seed: int = 0,
    folder: Path | None = None,
    sources: Sequence[str] = ("references",),
    cache: Any = None,
) -> tuple[Encoder, dict[str, Any]]:
    """Fine-tune the encoder on the corrections logged on some questions.

    Parameters
    ----------
    store : Store
        Holds the questions and their edit logs.
    question_ids : sequence of str
        The questions to learn from.
    encoder : Encoder
        The parent model (left untouched).
    settings : FineTuneSettings, optional
        Defaults to :data:`DEFAULT_FINE_TUNE`.
    seed : int
        Seeds the pair sampling, the validation split and the batch order.
    folder : Path, optional
        Where the new weights are written; a temporary folder (removed at exit) when omitted.
    sources : sequence of {"references", "answers"}
        The kinds of pairs to learn from (:func:`grouper.feedback.correction_pairs`).
    cache : EmbeddingCache, optional
        Where the check on the validation questions keeps embeddings (the store's when omitted).

    Returns
    -------
    (Encoder, dict)
        The fine-tuned model on the parent's device, loaded back from its safetensors file
        (so it is exactly what a saved model version would give), or the parent when the new
        one does not beat it on the validation questions; and the run's summary
        (:meth:`FineTuneResult.summary` plus ``"pairs"``, ``"held_out_apa"`` of parent and
        candidate, ``"used"`` and ``"reason"``).

    Raises
    ------
    NoTrainingPairs
        The questions' log gives no pair to learn from.
    """
    from grouper.feedback import PairFilter, correction_pairs

    pairs = correction_pairs(
        store, select=PairFilter(question_ids=frozenset(question_ids)), sources=sources, encoder=encoder
    )
    if not pairs:
        raise NoTrainingPairs(
            f"the train questions give no {' or '.join(sources)} pairs to learn from: grade answers "
            "(with at least two different scores per question, for reference pairs) first"
        )
    started = time.perf_counter()
    result = fine_tune(
        encoder, pairs, settings or DEFAULT_FINE_TUNE, rng=np.random.default_rng(seed), progress=False
    )
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="grouper-flywheel-"))
        import atexit
        import shutil

        atexit.register(shutil.rmtree, folder, True)
    weights = result.save(Path(folder))
    from grouper.embedding import file_sha256

    model = Encoder(Path(folder), device=encoder.device, expected_sha256=file_sha256(weights))
    used, reason, figures = _beats_parent(
        store, sorted({p.question_id for p in result.val_pairs}), encoder, model, cache or store.embeddings
    )
    summary = {
        **result.summary(),
        "pairs": len(pairs),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "held_out_apa": figures,
        "used": used,
        "reason": reason,
    }
    return (model if used else encoder), summary


def _beats_parent(
    store: Any, question_ids: Sequence[str], parent: Encoder, candidate: Encoder, cache: Any
) -> tuple[bool, str, dict[str, float]]:
    """Whether the candidate's zero-shot APA on these graded questions beats the parent's."""
    from grouper.model_versions import compare_to_parent
    from grouper.training.retrain import apa_metric, graded_question

    held = [q for q in (graded_question(store, qid) for qid in question_ids) if q is not None]
    held = [q for q in held if len(q.answers) >= 20]
    if not held:
        return True, "no validation question of 20 or more graded answers: the new model is used unchecked", {}
    metric = apa_metric(held, cache=cache)
    before, after = metric(parent), metric(candidate)
    decision = compare_to_parent(before, after)
    return decision.beats_parent, decision.reason, {"parent": before["overall"], "candidate": after["overall"]}
