"""The encoder (grouper.embedding): offline, verified weights, explicit device, and vectors
that match sentence-transformers' encoding of the same weights."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from grouper.answers import Question, parse_answers
from grouper.embedding import (
    BASE_MODEL_SHA256,
    Encoder,
    ModelIntegrityError,
    base_model_dir,
    choose_device,
    file_sha256,
)
from grouper.pipeline import group_question

TEXTS = [
    "Canberra",
    "The capital of Australia is Canberra.",
    "Plants need sunlight to make food by photosynthesis.",
    "v = gt = 9.8 * 2 = 19.6 m/s",
    "café",
    "An answer that goes on and on. " * 60,  # beyond the 256-token limit
]


def _tampered_copy(tmp_path: Path) -> Path:
    """The packaged model folder copied to tmp_path with one byte of the weights flipped."""
    copy = tmp_path / "model"
    shutil.copytree(base_model_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside a tensor: the file still parses, the values differ
    weights.write_bytes(bytes(data))
    return copy


# --------------------------------------------------------------------------- loading


def test_the_base_model_is_loaded_from_the_package_folder_with_verified_weights(encoder: Encoder) -> None:
    assert encoder.model_dir == base_model_dir()
    assert encoder.weights_sha256 == BASE_MODEL_SHA256
    assert file_sha256(base_model_dir() / "model.safetensors") == BASE_MODEL_SHA256
    assert encoder.max_tokens == 256 and encoder.dim == 384


def test_loading_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the encoder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = Encoder(device=torch.device("cpu"))
    assert fresh.encode(["offline"]).vectors.shape == (1, 384)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    copy = _tampered_copy(tmp_path)
    with pytest.raises(ModelIntegrityError, match="sha256 .* does not match"):
        Encoder(copy, device=torch.device("cpu"), expected_sha256=BASE_MODEL_SHA256)


def test_a_tampered_package_is_refused_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if the installed package's weights had been changed: the default encoder refuses.
    copy = _tampered_copy(tmp_path)
    monkeypatch.setattr("grouper.embedding.base_model_dir", lambda: copy)
    with pytest.raises(ModelIntegrityError):
        Encoder(device=torch.device("cpu"))
    # Naming the package folder explicitly is the same base model and is checked the same way.
    with pytest.raises(ModelIntegrityError):
        Encoder(copy, device=torch.device("cpu"))


def test_a_different_small_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ModelIntegrityError):
        Encoder(folder, device=torch.device("cpu"), expected_sha256=BASE_MODEL_SHA256)


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="no safetensors weights"):
        Encoder(tmp_path, device=torch.device("cpu"))


# --------------------------------------------------------------------------- device


def test_the_device_is_the_one_passed(encoder: Encoder) -> None:
    assert encoder.device == torch.device("cpu")
    assert {p.device.type for p in encoder.model.parameters()} == {"cpu"}


def test_choose_device_honours_the_request_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("GROUPER_DEVICE", "cpu")
    assert choose_device() == torch.device("cpu")
    # Devices torch knows but the encoder does not run on are refused up front, not mid-run.
    for name in ("mps", "meta", "xla"):
        with pytest.raises(ValueError, match=f"device '{name}' is not supported: use cpu, cuda or cuda:N"):
            choose_device(name)
    monkeypatch.setenv("GROUPER_DEVICE", "mps")
    with pytest.raises(ValueError, match="'mps' is not supported"):
        choose_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the machine without CUDA")
def test_asking_for_cuda_without_it_is_an_error() -> None:
    with pytest.raises(ValueError, match="no CUDA device"):
        choose_device("cuda")


# --------------------------------------------------------------------------- vectors


def test_vectors_match_sentence_transformers(encoder: Encoder) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    peer = sentence_transformers.SentenceTransformer(
        str(base_model_dir()), device="cpu", local_files_only=True
    )
    expected = peer.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    ours = encoder.encode(TEXTS).vectors
    cosine = np.sum(expected.astype(np.float64) * ours.astype(np.float64), axis=1)
    assert np.all(np.abs(1.0 - cosine) < 1e-4), cosine


def test_vectors_are_unit_length_float32(encoder: Encoder) -> None:
    encoded = encoder.encode(TEXTS)
    assert encoded.vectors.dtype == np.float32
    assert encoded.vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(encoded.vectors, axis=1), 1.0, atol=1e-5)


def test_no_texts_give_an_empty_array(encoder: Encoder) -> None:
    encoded = encoder.encode([])
    assert encoded.vectors.shape == (0, 384) and encoded.truncated.shape == (0,)


def test_an_empty_text_is_the_zero_vector(encoder: Encoder) -> None:
    encoded = encoder.encode(["", "Canberra", ""])
    assert not encoded.vectors[[0, 2]].any()
    assert np.linalg.norm(encoded.vectors[1]) == pytest.approx(1.0, abs=1e-5)


def test_input_order_is_restored(encoder: Encoder) -> None:
    forward = encoder.encode(TEXTS).vectors
    backward = encoder.encode(TEXTS[::-1]).vectors
    np.testing.assert_allclose(backward[::-1], forward, atol=1e-5)
    # Each row is its own text's vector, whatever batch it was embedded in.
    for i, text in enumerate(TEXTS[:3]):
        np.testing.assert_allclose(encoder.encode([text]).vectors[0], forward[i], atol=1e-5)


def _record_batches(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record every batch that reaches the model."""
    batches: list[list[str]] = []
    original = encoder._embed_batch

    def recording(batch: list[str]) -> np.ndarray:
        batches.append(list(batch))
        return original(batch)

    monkeypatch.setattr(encoder, "_embed_batch", recording)
    return batches


def test_exact_duplicates_are_embedded_once(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = _record_batches(encoder, monkeypatch)
    texts = ["Canberra", "Sydney", "Canberra", "Canberra", "Sydney", "Perth"]
    encoded = encoder.encode(texts)
    seen = [t for batch in batches for t in batch]
    assert sorted(seen) == ["Canberra", "Perth", "Sydney"]
    # ... and every copy gets the vector.
    assert np.array_equal(encoded.vectors[0], encoded.vectors[2])
    assert np.array_equal(encoded.vectors[1], encoded.vectors[4])


def test_batches_are_sorted_by_length(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder, "batch_size", 2)
    batches = _record_batches(encoder, monkeypatch)
    texts = ["a b c d e f g", "a", "a b c", "a b c d e f g h i j k", "a b", "a b c d e"]
    encoder.encode(texts)
    assert sum(len(b) for b in batches) == len(texts)
    assert all(len(b) <= 2 for b in batches)
    lengths = [int(n) for batch in batches for n in encoder.token_counts(batch)]
    # Texts of like length share a batch, so each pads little: the lengths, read batch after
    # batch, are monotonic.
    assert lengths in (sorted(lengths), sorted(lengths, reverse=True))


def test_long_texts_are_flagged_as_truncated_at_the_limit(encoder: Encoder) -> None:
    # "x" is one token; [CLS] and [SEP] make two more: 254 words fit 256 tokens exactly.
    fits = " ".join(["x"] * 254)
    over = " ".join(["x"] * 255)
    assert list(encoder.token_counts([fits, over])) == [256, 257]
    encoded = encoder.encode([fits, over, "short"])
    assert encoded.truncated.tolist() == [False, True, False]


def test_the_pipeline_reports_truncated_answers(encoder: Encoder) -> None:
    long_answer = "Photosynthesis turns light into chemical energy. " * 40
    data = "answer_id,answer\n" + f"short,Canberra\nlong,{long_answer}\n"
    (question,) = parse_answers(data.encode(), "q.csv")
    result = group_question(question, encoder)
    assert result.truncated.tolist() == [False, True]
    # The answer itself is kept whole, for display.
    assert result.question.answers[1].text == long_answer


def test_the_pipeline_handles_a_question_without_answers(encoder: Encoder) -> None:
    result = group_question(Question("q", "", ()), encoder)
    assert result.vectors.shape == (0, 384) and result.group_of() == {}


def test_an_import_names_the_answers_longer_than_the_encoder_reads(encoder):
    from grouper.answers import Answer, Question
    from grouper.intake import truncated_answers

    long = "the bulb lights because the circuit is closed " * 60
    question = Question("q", "", (Answer("a1", "q", "short"), Answer("a2", "q", long), Answer("a3", "q", "")))
    assert truncated_answers(question, encoder) == ["a2"]
