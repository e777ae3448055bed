"""The flywheel reaches new questions: everything that groups answers uses the active version.

A retrain that beats its parent is activated; from then on ``grouper import``, ``grouper
group``, ``grouper ui --import-samples`` and the UI embed with it, a split's missing vectors
come from the version the question was grouped with, and ``grouper regroup`` groups the
waiting answers the way an import does (reference answers included).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from grouper.cli import main
from grouper.embedding import BASE_MODEL_SHA256, file_sha256
from grouper.model_versions import ModelRegistry
from grouper.regroup import regroup_store
from grouper.store import Store
from test_model_versions import publish_tiny

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data" / "q1_capital_australia.csv"


@pytest.fixture
def registry(tmp_path, monkeypatch) -> ModelRegistry:
    """A registry of the test's own, named to the commands by GROUPER_MODELS_DIR."""
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))
    return ModelRegistry(tmp_path / "models")


def weights_of(store: Store, question_id: str) -> str:
    return store.model_version(question_id).rsplit("-t", 1)[0]


def test_import_groups_with_the_base_until_a_version_is_activated(tmp_path, registry, capsys):
    db = tmp_path / "grades.sqlite"
    assert main(["import", str(SAMPLE), "--db", str(db)]) == 0
    card = publish_tiny(registry, tmp_path)  # beats its parent: activated
    assert registry.active() == card.version
    renamed = tmp_path / "q1_again.csv"
    with SAMPLE.open(encoding="utf-8") as src, renamed.open("w", encoding="utf-8", newline="") as dst:
        rows = list(csv.DictReader(src))
        writer = csv.DictWriter(dst, list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "question_id": "q1b"} for r in rows)
    assert main(["import", str(renamed), "--db", str(db)]) == 0
    with Store.open(db) as store:
        assert weights_of(store, "q1") == BASE_MODEL_SHA256
        assert weights_of(store, "q1b") == card.weights_sha256
        # its vectors are cached under that version's key, so nothing re-embeds them
        key = store.model_version("q1b")
        texts = [a.normalized for a in store.answers("q1b") if a.normalized]
        assert len(store.embeddings.get_many(key, texts)) == len(set(texts))


def test_an_explicit_models_folder_wins_over_the_environment(tmp_path, registry):
    other = ModelRegistry(tmp_path / "other-models")
    card = publish_tiny(other, tmp_path)
    db = tmp_path / "grades.sqlite"
    assert main(["import", str(SAMPLE), "--db", str(db), "--models", str(other.root)]) == 0
    with Store.open(db) as store:
        assert weights_of(store, "q1") == card.weights_sha256
    assert registry.active() == "base"  # the environment's registry was not touched


def test_group_command_embeds_with_the_active_version(tmp_path, registry, capsys):
    assert main(["group", str(SAMPLE), "--json"]) == 0
    with_base = json.loads(capsys.readouterr().out)
    publish_tiny(registry, tmp_path)
    assert main(["group", str(SAMPLE), "--json"]) == 0
    with_tiny = json.loads(capsys.readouterr().out)
    assert with_base.keys() == with_tiny.keys()
    # An untrained one-layer model cannot reproduce the real model's grouping of 185 answers.
    assert with_base != with_tiny


def test_a_tampered_active_version_stops_the_import_and_stores_nothing(tmp_path, registry, capsys):
    card = publish_tiny(registry, tmp_path)
    weights = registry.model_dir(card.version) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    db = tmp_path / "grades.sqlite"
    assert main(["import", str(SAMPLE), "--db", str(db)]) == 2  # said, not traced
    assert "changed: model.safetensors" in capsys.readouterr().err
    with Store.open(db) as store:
        assert store.question_ids() == []


def test_split_embeds_missing_vectors_with_the_questions_own_version(tmp_path, registry, capsys):
    db = tmp_path / "grades.sqlite"
    card = publish_tiny(registry, tmp_path)
    assert main(["import", str(SAMPLE), "--db", str(db)]) == 0
    registry.set_active("base")  # a rollback after the import: the question keeps its model
    with Store.open(db) as store:
        with store._engine.begin() as conn:  # forget every cached vector (a test reaching in)
            conn.exec_driver_sql("DELETE FROM embeddings")
        state = store.state("q1")
        group = max(state.groups.values(), key=lambda g: len(g.members))
    status = main(["edit", "--db", str(db), "-q", "q1", "--author", "ada", "split", str(group.group_id), "--k", "2"])
    assert status == 0, capsys.readouterr().err
    with Store.open(db) as store:
        assert store.edits("q1")[-1].kind == "split"
        texts = [a.normalized for a in store.answers("q1") if a.answer_id in group.members and a.normalized]
        # re-embedded under the question's own version, not the base
        assert store.embeddings.get_many(store.model_version("q1"), texts)
        assert not store.embeddings.get_many(f"{BASE_MODEL_SHA256}-t256", texts)
    assert file_sha256(registry.model_dir(card.version) / "model.safetensors") == card.weights_sha256


def reference_question_file(tmp_path: Path) -> Path:
    """A question with a reference answer: some students say it, some half of it, some not."""
    rows = []
    kinds = (
        ["The moon orbits the earth because gravity pulls it toward the earth."] * 4
        + ["Gravity from the earth keeps the moon in orbit.", "gravity pulls the moon", "Earth's gravity"] * 3
        + ["Because it is far away.", "The sun pushes it.", "magnetism", "I do not know", "it floats in space"] * 3
    )
    for i, text in enumerate(kinds):
        rows.append({
            "answer_id": f"m{i:02d}", "question_id": "moon", "question": "Why does the moon stay near the earth?",
            "answer": text, "reference_answer": "Earth's gravity pulls the moon and keeps it in orbit.",
        })
    path = tmp_path / "moon.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_regrouping_with_the_model_that_grouped_changes_nothing(tmp_path, registry):
    # Regrouping groups the waiting answers as an import does, reference answers included;
    # grouping them by content alone instead would move answers for no reason.
    db = tmp_path / "grades.sqlite"
    assert main(["import", str(reference_question_file(tmp_path)), "--db", str(db)]) == 0
    with Store.open(db) as store:
        assert store.question("moon").reference_answers
        before = store.state("moon")
        report = regroup_store(store, registry, device=torch.device("cpu"))
        assert report == {"moon": (0, None)}
        assert store.state("moon").groups == before.groups


def test_an_unknown_or_damaged_version_is_said_plainly_and_changes_nothing(tmp_path, registry, capsys):
    assert main(["models", "--activate", "v0009"]) == 2
    assert "no model version 'v0009'" in capsys.readouterr().err
    card = publish_tiny(registry, tmp_path)
    (registry.model_dir(card.version) / "card.json").write_text("{not json")
    assert main(["models"]) == 2
    assert "card.json: not valid JSON" in capsys.readouterr().err


def test_a_damaged_card_of_another_version_does_not_stop_finding_a_questions_version(tmp_path, registry):
    old, new = publish_tiny(registry, tmp_path), publish_tiny(registry, tmp_path)
    (registry.model_dir(old.version) / "card.json").write_text("{not json")
    assert registry.version_of(f"{new.weights_sha256}-t256") == new.version
