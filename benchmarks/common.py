"""Helpers shared by the benchmarks: the real corpora, timing, peak memory.

The corpora are read from ``../shared/datasets`` (beside the repository) and never copied.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from grouper.answers import normalize_text

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"

T = TypeVar("T")


@dataclass(frozen=True)
class CorpusAnswer:
    """One real answer: its corpus, split, question, normalised text and gold label."""

    dataset: str
    split: str
    question_id: str
    text: str
    label: str


def load_corpora(folder: Path = DATASETS) -> list[CorpusAnswer]:
    """Every answer of every ``*.jsonl`` corpus in ``folder``, in file order."""
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no corpora found in {folder}; the benchmarks read ../shared/datasets")
    answers: list[CorpusAnswer] = []
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    answers.append(
                        CorpusAnswer(
                            row["dataset"], row["split"], str(row["question_id"]),
                            normalize_text(row["answer"]), str(row["label"]),
                        )
                    )
    return answers


def sample_texts(answers: list[CorpusAnswer], n: int, seed: int = 0) -> list[str]:
    """``n`` answer texts drawn without replacement (all of them when there are fewer)."""
    texts = [a.text for a in answers]
    random.Random(seed).shuffle(texts)
    return texts[:n]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Peak resident set size a block adds, in MiB, into the yielded dict's ``peak_mib``.

    Sampled every 2 ms by a thread, against the size before the block. Memory freed earlier
    and kept by the allocator is reused without showing, so run a block in a fresh process
    for its full cost (benchmarks/group.py does).
    """
    result = {"peak_mib": 0.0}
    before = rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        peak[0] = max(peak[0], rss_bytes())
        result["peak_mib"] = (peak[0] - before) / 2**20


@contextmanager
def peak_memory(device: torch.device) -> Iterator[dict[str, float]]:
    """Peak memory a block adds, in MiB, into the yielded dict's ``peak_mib``.

    On CUDA: the peak of memory allocated by torch on the device above what was allocated
    before. On the CPU: :func:`peak_rss`.
    """
    if device.type != "cuda":
        with peak_rss() as result:
            yield result
        return
    import torch

    result = {"peak_mib": 0.0}
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield result
    torch.cuda.synchronize(device)
    result["peak_mib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20


def timed(device: torch.device, fn: Callable[[], T]) -> tuple[T, float, float]:
    """Run ``fn`` once: (its result, seconds, peak MiB), waiting for the device at the end."""
    with peak_memory(device) as memory:
        start = time.perf_counter()
        value = fn()
        if device.type == "cuda":
            import torch

            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
    return value, seconds, memory["peak_mib"]


def describe_device(device: torch.device) -> str:
    """``cuda: <name>`` or ``cpu: <n> cores (<model>)``."""
    import torch

    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return f"cpu: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads" + (f" ({model})" if model else "")


def cache_folder() -> Path:
    """Where benchmarks keep corpus embeddings between runs (outside the repository)."""
    folder = os.environ.get("GROUPER_BENCH_CACHE")
    return Path(folder) if folder else Path.home() / ".cache" / "grouper" / "benchmarks"


def corpus_vectors(encoder, texts: list[str]) -> "np.ndarray":
    """Embeddings of ``texts`` by ``encoder``, kept on disk keyed by the encoder's model key.

    Re-running a benchmark then re-embeds nothing; the file holds the texts' sha256 and the
    vectors (``.npz``, no pickle).
    """
    import hashlib

    import numpy as np

    from grouper.embedding import InMemoryEmbeddingCache

    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache_folder() / f"{encoder.model_key[:16]}-{digest}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            if data["vectors"].shape == (len(texts), encoder.dim):
                return data["vectors"]
    vectors = encoder.encode(texts, cache=InMemoryEmbeddingCache()).vectors
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=vectors)
    os.replace(tmp, path)
    return vectors
