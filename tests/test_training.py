"""Fine-tuning on answer pairs: the pair type, the loss, the training loop, early stopping."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from grouper.answers import load_answers
from grouper.embedding import Encoder, base_model_dir, file_sha256
from grouper.pairs import TrainingPair, balance_pairs, pairs_digest
from grouper.training import ContrastiveLoss, FineTuneSettings, fine_tune, pair_loss
from grouper.training.finetune import split_pairs

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run this module's torch work on one thread, restoring the setting afterwards.

    On a CPU shared by several busy processes, two intra-op threads spin-wait on each other
    and a forward pass of the encoder took 25 times longer than on one thread (58 s against
    2.4 s for 90 answers, measured here); the tiny runs of these tests gain nothing from two.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    """A one-layer, 32-wide BERT with the base model's tokenizer: trains and saves in
    milliseconds, so tests of the machinery do not pay for the real model."""
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128,
    )
    model = BertModel(config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    config.save_pretrained(folder)
    base = base_model_dir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy2(base / name, folder / name)
    return folder


def pair(q: str, a: str, b: str, ta: str, tb: str, together: bool, edit: int = 1) -> TrainingPair:
    return TrainingPair(q, a, b, ta, tb, together, edit_id=edit, author="ada")


def sample_pairs(n_per_question: int = 40) -> list[TrainingPair]:
    """Pairs from the sample data's gold grades: what a complete review would have logged."""
    pairs = []
    for path in sorted(SAMPLE_DATA.glob("*.csv")):
        for q in load_answers(path):
            answers = [a for a in q.answers if a.normalized][:12]
            for a, b in itertools.islice(itertools.combinations(answers, 2), n_per_question):
                pairs.append(pair(q.question_id, a.answer_id, b.answer_id, a.normalized, b.normalized, a.gold == b.gold))
    return pairs


# -- pairs ------------------------------------------------------------------------------------
def test_pair_refuses_a_self_pair():
    with pytest.raises(ValueError, match="two different answers"):
        pair("q", "a1", "a1", "x", "x", True)


def test_pair_round_trips_through_a_dict():
    p = pair("q", "a1", "a2", "x", "y", False, edit=7)
    assert TrainingPair.from_dict(p.to_dict()) == p


def test_balance_pairs_is_balanced_capped_and_seeded():
    pos = [pair("q", f"a{i}", f"b{i}", "x", "y", True) for i in range(50)]
    neg = [pair("q", f"c{i}", f"d{i}", "x", "z", False) for i in range(8)]
    chosen = balance_pairs(pos + neg, None, np.random.default_rng(0))
    assert sum(p.together for p in chosen) == 8 and sum(not p.together for p in chosen) == 8
    capped = balance_pairs(pos + neg, 10, np.random.default_rng(0))
    assert len(capped) == 10 and sum(p.together for p in capped) == 5
    again = balance_pairs(pos + neg, 10, np.random.default_rng(0))
    assert capped == again
    assert balance_pairs(pos, 4, np.random.default_rng(0)) and len(balance_pairs(pos, 4, np.random.default_rng(0))) == 4


def test_pairs_digest_ignores_order_but_not_content():
    pairs = sample_pairs(5)
    assert pairs_digest(pairs) == pairs_digest(list(reversed(pairs)))
    changed = [pair(pairs[0].question_id, pairs[0].answer_id_a, pairs[0].answer_id_b, pairs[0].text_a,
                    pairs[0].text_b, not pairs[0].together)] + pairs[1:]
    assert pairs_digest(changed) != pairs_digest(pairs)


def test_split_pairs_holds_out_whole_questions_when_there_are_enough():
    pairs = [pair(f"q{q}", f"a{q}-{i}", f"b{q}-{i}", "x", "y", i % 2 == 0) for q in range(10) for i in range(10)]
    train, val = split_pairs(pairs, 0.2, np.random.default_rng(0))
    assert len(train) + len(val) == len(pairs)
    assert {p.question_id for p in train}.isdisjoint({p.question_id for p in val})
    assert len({p.question_id for p in val}) == 2


# -- loss -------------------------------------------------------------------------------------
def test_contrastive_loss_pulls_must_links_and_pushes_cannot_links():
    loss = ContrastiveLoss(margin=0.5)
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    same, orthogonal = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    together, apart = torch.tensor([1, 1]), torch.tensor([0, 0])
    assert float(loss(a, same, together)) == pytest.approx(0.0)
    assert float(loss(a, orthogonal, together)) == pytest.approx(0.5)  # 0.5 * d**2, d = 1
    assert float(loss(a, same, apart)) == pytest.approx(0.5 * 0.25)  # 0.5 * (margin - 0)**2
    assert float(loss(a, orthogonal, apart)) == pytest.approx(0.0)  # beyond the margin


def test_online_contrastive_loss_keeps_only_hard_pairs():
    loss = ContrastiveLoss(margin=0.5, online=True)
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    # an easy must-link (d=0), a hard must-link (d=1), an easy cannot-link (d=1)
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    together = torch.tensor([1, 1, 0])
    # no must-link is further than the closest cannot-link (1) and no cannot-link is closer
    # than the furthest must-link (1): nothing is hard
    assert float(loss(a, b, together)) == pytest.approx(0.0)
    # a cannot-link at d=0.4 is now closer than the far must-link (d=1): both are hard, the
    # easy must-link (d=0) is left out; the sum is averaged over the batch of 3
    b_hard = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert float(loss(a, b_hard, together)) == pytest.approx((1.0**2 + (0.5 - 0.4) ** 2) / 3, abs=1e-5)


def test_contrastive_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="expected a, b"):
        ContrastiveLoss()(torch.zeros(2, 3), torch.zeros(3, 3), torch.zeros(2))


# -- fine-tuning ------------------------------------------------------------------------------
def test_settings_name_the_bad_parameter():
    with pytest.raises(ValueError, match=r"batch_size \(1\) must be at least 2"):
        FineTuneSettings(batch_size=1).validate()


def test_tiny_fine_tuning_on_cpu_lowers_the_loss_on_its_pairs(encoder):
    pairs = sample_pairs(2)  # 6 pairs over the three sample questions
    settings = FineTuneSettings(batch_size=6, learning_rate=2e-4, max_steps=2, epochs=2, validation_fraction=0.0)
    parent_weight = encoder.model.embeddings.word_embeddings.weight.detach().clone()
    result = fine_tune(encoder, pairs, settings, rng=np.random.default_rng(0), device=torch.device("cpu"), progress=False)
    loss_fn = ContrastiveLoss(settings.margin)
    kw = dict(device=torch.device("cpu"), max_tokens=128)
    before = pair_loss(encoder.model, encoder.tokenizer, result.train_pairs, loss_fn, **kw)
    after = pair_loss(result.model, encoder.tokenizer, result.train_pairs, loss_fn, **kw)
    assert result.steps == 2 and result.device == "cpu"
    assert after < before
    # the parent encoder is untouched: a copy was trained
    assert torch.equal(encoder.model.embeddings.word_embeddings.weight, parent_weight)
    assert not torch.equal(result.model.embeddings.word_embeddings.weight, parent_weight)


def test_fine_tuned_weights_load_back_as_an_encoder(tmp_path):
    parent = Encoder(make_tiny_model(tmp_path / "tiny"), device=torch.device("cpu"))
    pairs = sample_pairs(4)
    settings = FineTuneSettings(batch_size=4, learning_rate=1e-3, max_steps=2, validation_fraction=0.0)
    result = fine_tune(parent, pairs, settings, rng=np.random.default_rng(1), progress=False)
    weights = result.save(tmp_path / "out")
    loaded = Encoder(tmp_path / "out", device=torch.device("cpu"), expected_sha256=file_sha256(weights))
    texts = [pairs[0].text_a, pairs[1].text_b]
    with torch.inference_mode():
        from grouper.training.finetune import _embed

        direct = _embed(result.model, parent.tokenizer, texts, 128, torch.device("cpu")).numpy()
    np.testing.assert_allclose(loaded.encode(texts).vectors, direct, atol=1e-4)  # padding differs
    assert not any(p.suffix in {".bin", ".pt", ".pkl"} for p in (tmp_path / "out").iterdir())


def test_early_stopping_stops_and_keeps_the_best_validated_weights(tmp_path):
    parent = Encoder(make_tiny_model(tmp_path / "tiny"), device=torch.device("cpu"))
    train = sample_pairs(6)
    # Validation says the opposite of training about the same texts, so fitting the training
    # pairs soon makes validation worse and training must stop.
    contrary = [pair(p.question_id, p.answer_id_a, p.answer_id_b, p.text_a, p.text_b, not p.together) for p in train]
    settings = FineTuneSettings(batch_size=8, learning_rate=5e-3, epochs=20, eval_every=1, patience=2, max_pairs=None)
    result = fine_tune(parent, train, settings, rng=np.random.default_rng(0), validation=contrary, progress=False)
    assert result.stopped_early
    assert result.steps < 20 * 3
    val_losses = [r.val_loss for r in result.history]
    assert result.val_loss_best == pytest.approx(min(val_losses))
    # the weights kept are the best validated ones, not the last ones
    kept = pair_loss(result.model, parent.tokenizer, contrary, ContrastiveLoss(settings.margin),
                     device=torch.device("cpu"), max_tokens=128)
    assert kept == pytest.approx(min(val_losses), rel=1e-4)
    assert kept < val_losses[-1]


def test_fine_tuning_refuses_no_pairs(tmp_path):
    parent = Encoder(make_tiny_model(tmp_path / "tiny"), device=torch.device("cpu"))
    with pytest.raises(ValueError, match="no training pairs"):
        fine_tune(parent, [], rng=np.random.default_rng(0), progress=False)


@pytest.mark.gpu
def test_fine_tuning_runs_on_cuda(tmp_path):
    parent = Encoder(make_tiny_model(tmp_path / "tiny"), device=torch.device("cuda"))
    settings = FineTuneSettings(batch_size=4, max_steps=2, validation_fraction=0.0)
    result = fine_tune(parent, sample_pairs(4), settings, rng=np.random.default_rng(0), progress=False)
    assert result.device.startswith("cuda") and result.steps == 2
    assert next(result.model.parameters()).device.type == "cuda"


def test_length_grouped_batches_cover_every_pair_once_and_pad_less():
    from grouper.training.finetune import _batches

    rng = np.random.default_rng(0)
    pairs = [pair("q", f"a{i}", f"b{i}", "x" * int(n), "y", True) for i, n in enumerate(rng.integers(1, 300, 400))]
    grouped = _batches(pairs, 8, np.random.default_rng(1), by_length=True)
    plain = _batches(pairs, 8, np.random.default_rng(1), by_length=False)
    assert sorted(i for b in grouped for i in b) == list(range(400))

    def padding(batches):
        return sum(len(b) * max(len(pairs[i].text_a) for i in b) - sum(len(pairs[i].text_a) for i in b) for b in batches)

    assert padding(grouped) < padding(plain) / 4
