"""Contrastive fine-tuning of the sentence encoder on must-link / cannot-link answer pairs.

The encoder's transformer is trained so that answers an instructor put together (merged,
confirmed, graded alike) get closer and answers put apart (moved out, split, graded
differently) get at least a margin apart. The forward pass is the encoder's own (mean pooling
over the attention mask), so the trained weights drop into :class:`grouper.embedding.Encoder`
unchanged.

A validation slice of the pairs, held out by question where there are enough questions, stops
training early once its loss stops improving, and the best weights seen are the ones kept.
Runs on the encoder's device (CUDA when present) with a progress bar; randomness comes only
from the generator passed in.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from grouper.embedding import Encoder
from grouper.pairs import TrainingPair, balance_pairs
from grouper.training.losses import ContrastiveLoss

__all__ = ["EvalRecord", "FineTuneResult", "FineTuneSettings", "fine_tune", "pair_loss", "split_pairs"]

# Files of a sentence-transformers model folder that describe pooling and the token limit;
# copied to every new version so that it loads in sentence-transformers too.
_SBERT_FILES = ("sentence_bert_config.json", "modules.json", "config_sentence_transformers.json")
_MIN_VALIDATION_PAIRS = 8  # fewer give a loss too noisy to stop on


@dataclass(frozen=True)
class FineTuneSettings:
    """Parameters of one fine-tuning run, validated on use.

    Attributes
    ----------
    epochs : int
        Passes over the training pairs (early stopping may end sooner).
    batch_size : int
        Pairs per step (two texts each).
    learning_rate : float
        AdamW's peak rate; 2e-5 is the usual rate for fine-tuning a small BERT.
    weight_decay : float
        AdamW's decoupled weight decay (not applied to biases and LayerNorm weights).
    warmup_fraction : float
        Share of the steps over which the rate rises linearly from 0; it then falls
        linearly to 0.
    margin : float
        Cosine distance the loss pushes cannot-links beyond.
    online_loss : bool
        Train only on the hard pairs of each batch (OnlineContrastiveLoss).
    max_pairs : int or None
        Cap on the training pairs after balancing must-links and cannot-links.
    validation_fraction : float
        Share of the pairs (of the questions, when there are at least 4) held out to stop on;
        0 trains for all epochs without validation.
    eval_every : int or None
        Validate every this many steps; ``None`` once per epoch.
    patience : int
        Stop after this many validations without an improvement of at least ``min_delta``.
    min_delta : float
        Smallest fall of the validation loss that counts as an improvement.
    max_steps : int or None
        Hard cap on optimisation steps (tiny test runs, time-boxed retrains).
    max_tokens : int or None
        Token limit while training; ``None`` uses the encoder's. Short answers rarely reach
        it, and a lower limit bounds the memory of an odd long answer.
    grad_clip : float or None
        Clip the gradient norm to this; ``None`` for no clipping.
    mixed_precision : bool
        bfloat16 autocast where the hardware does bfloat16 natively: CUDA devices that
        support it, and CPUs with AMX (a training step of 64 answers took 3.6 s instead of
        6.6 s on this project's Xeon). Elsewhere float32, where emulated bfloat16 is slower.
    length_grouping : bool
        Batch pairs of similar text length together (within windows of 50 batches, in
        random batch order), so that a long answer does not pad a whole batch to its length.
    """

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    margin: float = 0.5
    online_loss: bool = False
    max_pairs: int | None = 20_000
    validation_fraction: float = 0.1
    eval_every: int | None = None
    patience: int = 2
    min_delta: float = 1e-4
    max_steps: int | None = None
    max_tokens: int | None = 128
    grad_clip: float | None = 1.0
    mixed_precision: bool = True
    length_grouping: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the rule."""
        checks: list[tuple[str, bool, str]] = [
            ("epochs", self.epochs >= 1, "must be at least 1"),
            ("batch_size", self.batch_size >= 2, "must be at least 2"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("warmup_fraction", 0 <= self.warmup_fraction < 1, "must be in [0, 1)"),
            ("margin", 0 < self.margin <= 2, "must be in (0, 2]"),
            ("max_pairs", self.max_pairs is None or self.max_pairs >= 2, "must be at least 2, or None"),
            ("validation_fraction", 0 <= self.validation_fraction < 1, "must be in [0, 1)"),
            ("eval_every", self.eval_every is None or self.eval_every >= 1, "must be at least 1, or None"),
            ("patience", self.patience >= 1, "must be at least 1"),
            ("min_delta", self.min_delta >= 0, "must be >= 0"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "must be at least 1, or None"),
            ("max_tokens", self.max_tokens is None or self.max_tokens >= 8, "must be at least 8, or None"),
            ("grad_clip", self.grad_clip is None or self.grad_clip > 0, "must be > 0, or None"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name} ({getattr(self, name)!r}) {rule}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the version card and the tracker's parameters."""
        return asdict(self)


@dataclass(frozen=True)
class EvalRecord:
    """One point of the training curve.

    Attributes
    ----------
    step : int
        Optimisation steps done (0: before training).
    epoch : int
    train_loss : float or None
        Mean training loss since the previous record (``None`` at step 0).
    val_loss : float or None
        Loss on the validation pairs (``None`` without validation).
    """

    step: int
    epoch: int
    train_loss: float | None
    val_loss: float | None


@dataclass
class FineTuneResult:
    """A fine-tuned transformer and what happened while training it.

    Attributes
    ----------
    model : torch.nn.Module
        The transformer with the best weights seen, in eval mode, on ``device``.
    tokenizer
        The tokenizer it was trained with (unchanged from the parent's).
    source_dir : Path
        The parent model's folder (for the files a version copies from it).
    settings : FineTuneSettings
    train_pairs, val_pairs : list of TrainingPair
        The pairs trained on and validated on, after balancing.
    history : list of EvalRecord
    best_step : int
        Step of the weights kept (0 when no step improved on the validation loss).
    stopped_early : bool
    steps : int
        Optimisation steps taken.
    seconds : float
        Wall time of the training loop, validation included.
    device : str
    precision : str
        ``"bfloat16"`` (autocast) or ``"float32"``.
    """

    model: nn.Module
    tokenizer: Any
    source_dir: Path
    settings: FineTuneSettings
    train_pairs: list[TrainingPair]
    val_pairs: list[TrainingPair]
    history: list[EvalRecord] = field(default_factory=list)
    best_step: int = 0
    stopped_early: bool = False
    steps: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    precision: str = "float32"

    @property
    def val_loss_before(self) -> float | None:
        """Validation loss of the parent model."""
        return self.history[0].val_loss if self.history else None

    @property
    def val_loss_best(self) -> float | None:
        """Validation loss of the weights kept."""
        losses = [r.val_loss for r in self.history if r.step == self.best_step and r.val_loss is not None]
        return losses[0] if losses else None

    def summary(self) -> dict[str, Any]:
        """Plain values for the version card and the tracker."""
        return {
            "device": self.device,
            "precision": self.precision,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "best_step": self.best_step,
            "stopped_early": self.stopped_early,
            "n_train_pairs": len(self.train_pairs),
            "n_val_pairs": len(self.val_pairs),
            "val_loss_before": self.val_loss_before,
            "val_loss_best": self.val_loss_best,
        }

    def save(self, folder: Path) -> Path:
        """Write the model as a version folder: safetensors weights, config, tokenizer.

        Only tensors are written (safetensors); nothing here can be unpickled. The
        sentence-transformers description files of the parent are copied, so the folder also
        loads in sentence-transformers.

        Parameters
        ----------
        folder : Path
            Created if missing; files already there are overwritten.

        Returns
        -------
        Path
            The weights file, ``folder / "model.safetensors"``.
        """
        import shutil

        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        weights = folder / "model.safetensors"
        save_file(state, str(weights), metadata={"format": "pt"})
        self.model.config.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        for name in _SBERT_FILES:
            if (self.source_dir / name).is_file():
                shutil.copy2(self.source_dir / name, folder / name)
        pooling = self.source_dir / "1_Pooling"
        if pooling.is_dir():
            shutil.copytree(pooling, folder / "1_Pooling", dirs_exist_ok=True)
        return weights


def split_pairs(
    pairs: Sequence[TrainingPair], fraction: float, rng: np.random.Generator
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """Hold out a validation slice of the pairs.

    By question when there are at least 4 questions: validating on questions the model did
    not train on measures what retraining is for (the next question), where a random slice of
    pairs would reward memorising the training questions. Otherwise a random slice of pairs.

    Parameters
    ----------
    pairs : sequence of TrainingPair
    fraction : float
        Share to hold out, in [0, 1).
    rng : numpy.random.Generator

    Returns
    -------
    (train, val) : lists of TrainingPair
        ``val`` is empty when ``fraction`` is 0 or too few pairs would be held out.
    """
    if fraction <= 0 or len(pairs) < 2 * _MIN_VALIDATION_PAIRS:
        return list(pairs), []
    questions = sorted({p.question_id for p in pairs})
    if len(questions) >= 4:
        n_val = max(1, round(fraction * len(questions)))
        held = {questions[i] for i in rng.choice(len(questions), size=n_val, replace=False)}
        train = [p for p in pairs if p.question_id not in held]
        val = [p for p in pairs if p.question_id in held]
        if len(val) >= _MIN_VALIDATION_PAIRS and train:
            return train, val
    n_val = max(_MIN_VALIDATION_PAIRS, round(fraction * len(pairs)))
    order = rng.permutation(len(pairs))
    val_idx = set(order[:n_val].tolist())
    return (
        [p for i, p in enumerate(pairs) if i not in val_idx],
        [p for i, p in enumerate(pairs) if i in val_idx],
    )


def _embed(model: nn.Module, tokenizer: Any, texts: Sequence[str], max_tokens: int, device: torch.device) -> torch.Tensor:
    """Mean-pooled, L2-normalised embeddings, as :meth:`Encoder.encode` computes them, with
    gradients when called outside ``inference_mode``."""
    encoded = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
    ).to(device)
    hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return nn.functional.normalize(pooled.float(), p=2, dim=1)


def pair_loss(
    model: nn.Module,
    tokenizer: Any,
    pairs: Sequence[TrainingPair],
    loss_fn: nn.Module,
    *,
    device: torch.device,
    max_tokens: int,
    batch_size: int = 64,
) -> float:
    """Loss of a model on pairs, without dropout or gradients.

    Each distinct text is embedded once (validation pairs share texts heavily: a group of
    ten answers gives 45 must-links over ten texts).

    Parameters
    ----------
    model : torch.nn.Module
        The transformer (its train/eval mode is restored afterwards).
    tokenizer
    pairs : sequence of TrainingPair
    loss_fn : nn.Module
        Takes (a, b, together) as :class:`ContrastiveLoss` does.
    device : torch.device
    max_tokens : int
    batch_size : int

    Returns
    -------
    float
        The loss over all pairs at once (``nan`` without pairs).
    """
    if not pairs:
        return math.nan
    texts = sorted({t for p in pairs for t in (p.text_a, p.text_b)}, key=len)
    index = {t: i for i, t in enumerate(texts)}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            vectors = torch.cat(
                [
                    _embed(model, tokenizer, texts[s : s + batch_size], max_tokens, device)
                    for s in range(0, len(texts), batch_size)
                ]
            )
            a = vectors[[index[p.text_a] for p in pairs]]
            b = vectors[[index[p.text_b] for p in pairs]]
            together = torch.tensor([p.together for p in pairs], device=vectors.device)
            return float(loss_fn(a, b, together))
    finally:
        model.train(was_training)


def _batches(
    pairs: Sequence[TrainingPair], batch_size: int, rng: np.random.Generator, by_length: bool
) -> list[list[int]]:
    """One epoch's batches (indices into ``pairs``), in random order.

    With ``by_length``, pairs are shuffled, then sorted by their longer text within windows of
    50 batches, cut into batches, and the batches shuffled: each batch pads to a similar
    length while every epoch still sees a different mix (sentence-transformers' and
    Hugging Face's "group by length").
    """
    order = rng.permutation(len(pairs))
    if by_length:
        window = 50 * batch_size
        chunks = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            lengths = np.array([max(len(pairs[i].text_a), len(pairs[i].text_b)) for i in chunk])
            chunks.append(chunk[np.argsort(lengths, kind="stable")])
        order = np.concatenate(chunks) if chunks else order
    batches = [order[s : s + batch_size].tolist() for s in range(0, len(order), batch_size)]
    if by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the device computes it natively, else ``None`` (stay in float32)."""
    from grouper.embedding import _resolve_precision  # the encoder's own hardware check

    try:
        dtype = _resolve_precision(device, "auto")
    except (RuntimeError, ValueError):
        return None
    # float16 (older GPUs) would need loss scaling; those train in float32.
    return torch.bfloat16 if dtype == torch.bfloat16 else None


def _optimizer(model: nn.Module, settings: FineTuneSettings) -> torch.optim.Optimizer:
    # Decay the weight matrices only: decaying biases and LayerNorm gains pulls them toward 0,
    # which is not a prior anyone holds for them (the BERT recipe).
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
    )


def _linear_schedule(optimizer: torch.optim.Optimizer, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fine_tune(
    encoder: Encoder,
    pairs: Sequence[TrainingPair],
    settings: FineTuneSettings | None = None,
    *,
    rng: np.random.Generator,
    validation: Sequence[TrainingPair] | None = None,
    device: torch.device | None = None,
    progress: bool | None = None,
) -> FineTuneResult:
    """Fine-tune a copy of the encoder's transformer on answer pairs.

    The encoder passed in is left untouched (it may be the model every user of the app is
    grouping with); a deep copy is trained.

    Parameters
    ----------
    encoder : Encoder
        The parent model.
    pairs : sequence of TrainingPair
        Must-links and cannot-links; balanced and capped here (``settings.max_pairs``).
    settings : FineTuneSettings, optional
    rng : numpy.random.Generator
        The only source of randomness: the balancing sample, the validation split, the batch
        order and the dropout seed.
    validation : sequence of TrainingPair, optional
        Pairs to stop on, instead of a slice of ``pairs`` (say, those of chosen questions).
    device : torch.device, optional
        Where to train; defaults to the encoder's device (CUDA when present).
    progress : bool, optional
        Show a progress bar; by default when stderr is a terminal.

    Returns
    -------
    FineTuneResult
    """
    settings = settings or FineTuneSettings()
    settings.validate()
    device = device if device is not None else encoder.device
    if not pairs:
        raise ValueError("no training pairs: log some corrections (merge, move, grade) first")
    balanced = balance_pairs(pairs, settings.max_pairs, rng)
    if validation is None:
        train, val = split_pairs(balanced, settings.validation_fraction, rng)
    else:
        train, val = balanced, list(validation)
    max_tokens = min(settings.max_tokens or encoder.max_tokens, encoder.max_tokens)

    model = copy.deepcopy(encoder.model).to(device)
    loss_fn = ContrastiveLoss(settings.margin, online=settings.online_loss)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    optimizer = _optimizer(model, settings)
    scheduler = _linear_schedule(optimizer, total, int(settings.warmup_fraction * total))
    eval_every = settings.eval_every or steps_per_epoch
    amp_dtype = _autocast_dtype(device) if settings.mixed_precision else None

    result = FineTuneResult(
        model=model, tokenizer=encoder.tokenizer, source_dir=encoder.model_dir, settings=settings,
        train_pairs=train, val_pairs=val, device=str(device),
        precision="bfloat16" if amp_dtype is not None else "float32",
    )

    def validate() -> float | None:
        if not val:
            return None
        return pair_loss(model, encoder.tokenizer, val, loss_fn, device=device, max_tokens=max_tokens)

    started = time.perf_counter()
    best_loss = validate()
    result.history.append(EvalRecord(0, 0, None, best_loss))
    # The best weights live on the CPU: a second copy on a small GPU would halve the batch
    # that fits.
    best_state: dict[str, torch.Tensor] | None = None
    bad_evals = 0
    running: list[float] = []
    bar = _progress_bar(total, progress)
    dropout_seed = int(rng.integers(2**31 - 1))
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # seed dropout without touching global state
        torch.manual_seed(dropout_seed)
        model.train()
        step = 0
        for epoch in range(1, settings.epochs + 1):
            for indices in _batches(train, settings.batch_size, rng, settings.length_grouping):
                if step >= total:
                    break
                batch = [train[i] for i in indices]
                together = torch.tensor([p.together for p in batch], device=device)
                autocast = (
                    torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
                )
                with autocast:
                    vectors = _embed(
                        model, encoder.tokenizer,
                        [p.text_a for p in batch] + [p.text_b for p in batch], max_tokens, device,
                    )
                loss = loss_fn(vectors[: len(batch)], vectors[len(batch) :], together)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if settings.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                running.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{running[-1]:.4f}")
                if step % eval_every == 0 or step == total:
                    val_loss = validate()
                    result.history.append(EvalRecord(step, epoch, float(np.mean(running)), val_loss))
                    running = []
                    if val_loss is None:
                        continue
                    bar.set_postfix(loss=f"{result.history[-1].train_loss:.4f}", val=f"{val_loss:.4f}")
                    if best_loss is None or val_loss < best_loss - settings.min_delta:
                        best_loss, bad_evals = val_loss, 0
                        result.best_step = step
                        best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                    else:
                        bad_evals += 1
                        if bad_evals >= settings.patience and step < total:
                            result.stopped_early = True
                            break
            if result.stopped_early or step >= total:
                break
    bar.close()
    result.steps = step
    if not val:
        result.best_step = step  # nothing to choose by: keep the last weights
    elif best_state is not None:
        model.load_state_dict(best_state)
    else:
        # No step beat the parent on validation: keep the parent's weights, so the version
        # registry sees an honest "no better" rather than a drifted model.
        model.load_state_dict(encoder.model.state_dict())
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def _progress_bar(total: int, progress: bool | None):
    from tqdm.auto import tqdm

    if progress is None:
        progress = os.isatty(2)
    return tqdm(total=total, desc="fine-tuning", unit="step", leave=False, disable=not progress)
