"""The fast encoder paths (grouper.embedding): length batches, reduced precision, the
embedding cache, and the GPU path. Correctness only; speed is for benchmarks/embed.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from grouper.embedding import (
    EmbeddingCache,
    Encoder,
    InMemoryEmbeddingCache,
    _cpu_has_native_bf16,
    _LowPrecisionLinears,
    text_sha256,
)

TEXTS = [
    "Canberra",
    "The capital of Australia is Canberra.",
    "Plants need sunlight to make food by photosynthesis.",
    "The bulb is in a closed path with the battery.",
    "Bulb A is in a closed path with the battery.",
    "café",
    "An answer that goes on and on. " * 60,  # beyond the 256-token limit
]


def _record_batches(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    batches: list[list[str]] = []
    original = encoder._embed_batch

    def recording(batch: list[str]) -> torch.Tensor:
        batches.append(list(batch))
        return original(batch)

    monkeypatch.setattr(encoder, "_embed_batch", recording)
    return batches


# --------------------------------------------------------------------------- batching


def test_every_batch_holds_one_token_count_within_the_budgets(
    encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(encoder, "batch_size", 3)
    monkeypatch.setattr(encoder, "tokens_per_batch", 40)
    batches = _record_batches(encoder, monkeypatch)
    texts = [" ".join(["x"] * n) for n in (1, 1, 1, 1, 5, 5, 12, 12, 12, 300)]
    encoder.encode(texts)
    assert sorted(t for b in batches for t in b) == sorted(set(texts))
    for batch in batches:
        lengths = {min(int(c), encoder.max_tokens) for c in encoder.token_counts(batch)}
        assert len(lengths) == 1, batch  # nothing to pad
        (length,) = lengths
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * length <= 40
    # Longest first: an out-of-memory error shows on the first batch, not the last.
    firsts = [min(int(encoder.token_counts(b)[0]), encoder.max_tokens) for b in batches]
    assert firsts == sorted(firsts, reverse=True)


def test_a_text_gets_the_same_vector_in_any_batch(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit for bit, in the encoder's own precision: a cached vector equals a recomputed one."""
    together = encoder.encode(TEXTS).vectors
    monkeypatch.setattr(encoder, "batch_size", 1)
    alone = encoder.encode(TEXTS).vectors
    if encoder.dtype == torch.float32:
        np.testing.assert_allclose(alone, together, atol=1e-6)
    else:
        np.testing.assert_array_equal(alone, together)


# --------------------------------------------------------------------------- precision


@pytest.mark.skipif(not _cpu_has_native_bf16(), reason="this CPU has no native bfloat16 (AMX)")
def test_auto_precision_uses_bfloat16_on_a_cpu_with_amx(encoder: Encoder) -> None:
    assert encoder.dtype == torch.bfloat16


def test_reduced_precision_stays_within_a_hair_of_float32(
    encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    if encoder.dtype == torch.float32:
        pytest.skip("the encoder already computes in float32 here")
    texts = TEXTS + [f"Answer {i}: the current flows through bulb {i % 3}." for i in range(20)]
    reduced = encoder.encode(texts).vectors
    monkeypatch.setattr(encoder, "dtype", torch.float32)  # the same weights, in float32
    cosine = np.sum(encoder.encode(texts).vectors * reduced, axis=1)
    assert np.all(1.0 - cosine < 1e-3), cosine


def test_unknown_or_impossible_precisions_are_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        Encoder(device=torch.device("cpu"), precision="int4")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        Encoder(device=torch.device("cpu"), precision="float16")


def test_low_precision_linears_recast_weights_that_changed() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(5, 8)
    cache: dict = {}
    with torch.inference_mode(), _LowPrecisionLinears(torch.bfloat16, 4, cache):
        before = layer(x)
    expected = torch.nn.functional.linear(x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16())
    torch.testing.assert_close(before, expected)
    with torch.no_grad():
        layer.weight.mul_(2.0)  # as fine-tuning would, in place
    with torch.inference_mode(), _LowPrecisionLinears(torch.bfloat16, 4, cache):
        after = layer(x)
    expected = torch.nn.functional.linear(x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16())
    torch.testing.assert_close(after, expected)


# --------------------------------------------------------------------------- cache


def test_the_in_memory_cache_follows_the_protocol() -> None:
    assert isinstance(InMemoryEmbeddingCache(), EmbeddingCache)


def test_a_second_encode_with_a_cache_embeds_nothing(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = InMemoryEmbeddingCache()
    first = encoder.encode(TEXTS + [""], cache=cache)
    assert len(cache) == len(TEXTS)  # the empty text is never stored
    batches = _record_batches(encoder, monkeypatch)
    second = encoder.encode(TEXTS + [""], cache=cache)
    assert batches == []
    np.testing.assert_array_equal(second.vectors, first.vectors)
    # Truncation flags do not come from the cache; they are recounted.
    np.testing.assert_array_equal(second.truncated, first.truncated)


def test_only_new_texts_are_embedded_and_stored(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = InMemoryEmbeddingCache()
    encoder.encode(TEXTS[:3], cache=cache)
    batches = _record_batches(encoder, monkeypatch)
    mixed = encoder.encode([TEXTS[0], "a new answer", TEXTS[1], "a new answer"], cache=cache)
    assert [t for b in batches for t in b] == ["a new answer"]
    assert len(cache) == 4
    fresh = encoder.encode([TEXTS[0], "a new answer"]).vectors
    np.testing.assert_array_equal(mixed.vectors[[0, 1]], fresh)


def test_the_cache_is_keyed_by_model_and_text_sha256(encoder: Encoder) -> None:
    assert encoder.model_key == f"{encoder.weights_sha256}-t{encoder.max_tokens}"
    cache = InMemoryEmbeddingCache()
    vector = np.ones(encoder.dim, dtype=np.float32) / np.sqrt(encoder.dim)
    cache.put_many("another model", {"Canberra": vector})
    assert cache.get_many(encoder.model_key, ["Canberra"]) == {}
    assert list(cache.get_many("another model", ["Canberra", "Perth"])) == ["Canberra"]
    assert ("another model", text_sha256("Canberra")) in cache._vectors


def test_a_cache_returning_the_wrong_shape_is_an_error(encoder: Encoder) -> None:
    class Broken:
        def get_many(self, model_key, texts):
            return {t: np.zeros(3, dtype=np.float32) for t in texts}

        def put_many(self, model_key, vectors):
            pass

    with pytest.raises(ValueError, match="shape"):
        encoder.encode(["Canberra"], cache=Broken())


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_the_gpu_matches_the_cpu_and_waits_once() -> None:
    """On CUDA: 16-bit autocast within 1e-2 cosine of float32 on the CPU, and the batch loop
    never makes the host wait for the device (the one wait is the final copy)."""
    gpu = Encoder(device=torch.device("cuda"))
    cpu = Encoder(device=torch.device("cpu"), precision="float32")
    texts = TEXTS + [f"Answer {i}: the current flows through bulb {i % 7}." for i in range(300)]
    gpu.encode(texts[:5])  # warm-up: CUDA context, kernels
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            on_gpu = gpu.encode(texts).vectors
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) <= 2, [str(w.message) for w in syncs]
    cosine = np.sum(on_gpu * cpu.encode(texts).vectors, axis=1)
    assert np.all(1.0 - cosine < 1e-2), cosine.min()
    assert gpu.dtype in (torch.bfloat16, torch.float16)
