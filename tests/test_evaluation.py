"""The APA benchmark: its arithmetic on hand-made cases, the oracle through the edit log, the
runner and the ``grouper evaluate`` command."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.cli import main
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edits import CONFIRMED, Confirm, GradeAnswer, GradeGroup, Merge, Move
from grouper.evaluation import (
    ORACLE_AUTHOR,
    count_review,
    evaluate_questions,
    exact_text_key,
    floor_apa,
    majority_label,
    review_question,
    summarise,
)
from grouper.evaluation.apa import groups_from_keys
from grouper.evaluation.oracle import grade_scale, review_order
from grouper.store import Store

# --------------------------------------------------------------------------- arithmetic

GOLD = ["right"] * 6 + ["wrong"] * 3 + ["partly"]


def test_a_perfect_grouping_costs_the_floor() -> None:
    groups = [[g for g in GOLD if g == label] for label in ("right", "wrong", "partly")]
    count = count_review(groups, ungrouped=0)
    assert count.actions == 3 and count.moves == 0
    assert count.apa == pytest.approx(floor_apa(GOLD)) == pytest.approx(0.3)


def test_one_group_costs_one_review_plus_every_minority_answer() -> None:
    count = count_review([GOLD], ungrouped=0)
    assert (count.group_reviews, count.moves, count.singles) == (1, 4, 0)
    assert count.apa == pytest.approx(0.5)


def test_all_singletons_cost_one_action_per_answer() -> None:
    assert count_review([], ungrouped=len(GOLD)).apa == 1.0
    # A group of one is confirmed and graded: one action, the same as grading it alone.
    assert count_review([[g] for g in GOLD], ungrouped=0).apa == 1.0


def test_ungrouped_answers_and_groups_add_up() -> None:
    count = count_review([["right", "right", "wrong"], ["wrong", "wrong"]], ungrouped=4)
    assert (count.answers, count.group_reviews, count.moves, count.singles) == (9, 2, 1, 4)
    assert count.actions == 7


def test_a_majority_tie_goes_to_the_label_listed_first() -> None:
    assert majority_label(["b", "a", "a", "b"]) == "b"
    assert majority_label(["a", "b", "b"]) == "b"
    # The count does not depend on how the tie is broken.
    assert count_review([["a", "b"]], 0).actions == count_review([["b", "a"]], 0).actions == 2
    with pytest.raises(ValueError, match="without members"):
        majority_label([])


def test_exact_text_keys_fold_case_width_and_punctuation() -> None:
    assert exact_text_key("The Sun!") == exact_text_key("the  sun") == "the sun"
    assert exact_text_key("ＦＵＬＬ width") == "full width"
    assert exact_text_key("it's") == "it s" and exact_text_key("") == exact_text_key("?!") == ""
    assert groups_from_keys(["x", "y", "x", "z", "y", "x"]) == [[0, 2, 5], [1, 4], [3]]


# --------------------------------------------------------------------------- oracle


def _question(gold: list[str], qid: str = "q1") -> Question:
    answers = tuple(Answer(f"{qid}-a{i}", qid, f"answer {i}", gold=g) for i, g in enumerate(gold))
    return Question(qid, "Why?", answers, dataset="hand", split="train")


# group 1 (4 members): right right right wrong; group 2 (3): wrong wrong right;
# blank group 3 (2): wrong wrong; answers 9 and 10 ungrouped.
HAND_GOLD = ["right", "right", "right", "wrong", "wrong", "wrong", "right", "wrong", "wrong", "right", "wrong"]


def _hand_grouping() -> Grouping:
    labels = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, UNGROUPED, UNGROUPED])
    groups = (Group(1, "g1", (0, 1, 2, 3)), Group(2, "g2", (4, 5, 6)), Group(3, "(blank)", (7, 8), blank=True))
    return Grouping(labels, np.ones(11), groups)


def test_the_oracle_grades_through_the_edit_log() -> None:
    question = _question(HAND_GOLD)
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q1", _hand_grouping(), model_version="test")
        count = review_question(store, "q1", gold)

        expected = count_review([[HAND_GOLD[i] for i in g.members] for g in _hand_grouping().groups], 2)
        assert count == expected
        assert (count.group_reviews, count.moves, count.singles, count.actions) == (3, 2, 2, 7)

        log = store.edits("q1")
        assert log and all(e.author == ORACLE_AUTHOR for e in log)
        kinds = Counter(type(e.payload) for e in log)
        assert kinds[Move] == 2 and kinds[Confirm] == 3 and kinds[GradeGroup] == 3
        assert kinds[GradeAnswer] == 2 + 2  # the answers moved out, then the ungrouped ones
        moved = [e.payload.answer_ids[0] for e in log if isinstance(e.payload, Move)]
        assert moved == ["q1-a3", "q1-a6"] and all(e.payload.to is None for e in log if isinstance(e.payload, Move))

        # The log is the truth: replaying it gives the state, and every answer has its gold grade.
        state = store.replay("q1")
        assert state.content() == store.state("q1").content()
        assert all(state.grade_of(a).comment == g for a, g in gold.items())
        assert all(g.status == CONFIRMED for g in state.groups.values())


def test_groups_are_reviewed_in_the_order_the_ui_lists_them() -> None:
    question = _question(HAND_GOLD)
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q1", _hand_grouping(), model_version="test")
        assert review_order(store.state("q1")) == [1, 2, 3]
        review_question(store, "q1", {a.answer_id: str(a.gold) for a in question.answers})
        confirmed = [e.payload.group_id for e in store.edits("q1") if isinstance(e.payload, Confirm)]
        assert confirmed == [1, 2, 3]


def test_the_next_group_is_taken_from_the_state_after_each_review() -> None:
    """The flywheel's hook: whatever happens between reviews (here another edit that merges
    the remaining groups, as a regrouping would) is followed by the next review."""
    question = _question(HAND_GOLD)
    gold = {a.answer_id: str(a.gold) for a in question.answers}
    calls: list[str] = []
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q1", _hand_grouping(), model_version="test")

        def regroup(question_id: str) -> None:
            calls.append(question_id)
            if len(calls) == 1:
                store.append(question_id, "model:test", None, Merge(2, (3,)))

        count = review_question(store, "q1", gold, after_review=regroup)
        assert calls == ["q1", "q1"]  # groups 1 and 2 (group 3 merged into 2): two reviews
        assert (count.group_reviews, count.moves, count.singles) == (2, 1 + 1, 2)
        assert all(store.state("q1").grade_of(a).comment == g for a, g in gold.items())


def test_grades_are_numbered_labels() -> None:
    assert grade_scale(["wrong", "right", "wrong"]) == {"right": 0.0, "wrong": 1.0}


def test_the_oracle_needs_every_gold_grade() -> None:
    question = _question(HAND_GOLD)
    with Store("sqlite://") as store:
        store.import_question(question)
        store.save_grouping("q1", _hand_grouping(), model_version="test")
        with pytest.raises(ValueError, match="no gold grade"):
            review_question(store, "q1", {"q1-a0": "right"})


# --------------------------------------------------------------------------- runner and command

CAPITAL = (
    ["Canberra", "canberra", "It is Canberra.", "Canberra, in the ACT", "The capital is Canberra"] * 3
    + ["Sydney", "sydney", "Sydney is the capital", "Melbourne", "Melbourne, Victoria"] * 2
    + ["", "I don't know"]
)


def _capital_question(qid: str = "cap") -> Question:
    def gold(text: str) -> str:
        return "correct" if "anberra" in text else "incorrect"

    answers = tuple(Answer(f"{qid}-{i}", qid, t, gold=gold(t)) for i, t in enumerate(CAPITAL))
    return Question(qid, "What is the capital of Australia?", answers, ("Canberra is the capital of Australia.",), "capital", "train")


def test_evaluate_runs_the_protocol_through_the_edit_log(encoder) -> None:
    small = Question("small", "", _capital_question().answers[:5], dataset="capital", split="train")
    with Store("sqlite://") as store:
        results = evaluate_questions([_capital_question(), small], encoder, store=store)
        # Questions below 20 answers are left out, as the protocol says.
        assert [r.question_id for r in results] == ["cap"] and store.question_ids() == ["cap"]
        (result,) = results
        log = store.edits("cap")
        moves = sum(isinstance(e.payload, Move) for e in log)
        reviews = sum(isinstance(e.payload, Confirm) for e in log)
        singles = len(store.initial_state("cap").ungrouped)
        assert result.actions == reviews + moves + singles
        assert result.answers == len(CAPITAL) and result.classes == 2
        # Correct and incorrect answers are told apart here: far fewer actions than one group.
        assert result.actions < result.one_group
    (split,) = summarise(results)
    assert (split.dataset, split.split, split.questions, split.answers) == ("capital", "train", 1, len(CAPITAL))
    assert split.ratio == pytest.approx(split.apa / min(split.one_group, split.exact))


def test_evaluate_takes_a_file_with_maximum_scores(encoder) -> None:
    from dataclasses import replace

    (result,) = evaluate_questions([replace(_capital_question(), max_score=2.0)], encoder)
    assert result.answers == len(CAPITAL)


def test_evaluate_refuses_answers_without_gold(encoder) -> None:
    q = _capital_question()
    bare = Question("bare", "", tuple(Answer(a.answer_id, "bare", a.text) for a in q.answers))
    with pytest.raises(ValueError, match="no gold grade"):
        evaluate_questions([bare], encoder)


def test_flywheel_mode_learns_from_the_train_questions_only(encoder, tmp_path) -> None:
    from dataclasses import replace

    from grouper.evaluation.runner import FlywheelSettings
    from grouper.grade_adaptation import ADAPTATION_AUTHOR
    from grouper.training.finetune import FineTuneSettings

    train = _capital_question("cap-train")
    unseen = replace(_capital_question("cap-new"), split="unseen-questions")
    tiny = FineTuneSettings(max_steps=2, batch_size=4, validation_fraction=0.0, mixed_precision=False)
    summaries: list[dict] = []
    with Store("sqlite://") as store:
        results = evaluate_questions(
            [unseen, train], encoder, mode="flywheel", store=store,
            flywheel=FlywheelSettings(fine_tune=tiny, keep_models=tmp_path), on_retrained=summaries.append,
        )
        # Reported in the order given, though the train question is graded first.
        assert [r.question_id for r in results] == ["cap-new", "cap-train"]
        assert store.question_ids() == ["cap-train", "cap-new"]
        (summary,) = summaries
        assert summary["steps"] == 2 and summary["pairs"] > 0
        # The model is kept where asked, as safetensors only, and is the one that grouped.
        kept = tmp_path / "capital"
        assert (kept / "model.safetensors").is_file() and not list(kept.glob("*.bin"))
        # The unseen question was grouped by the new model, the train one by the parent.
        assert store.model_version("cap-train") == encoder.model_key
        assert store.model_version("cap-new") != encoder.model_key
        for result in results:
            state = store.state(result.question_id)
            gold = {a.answer_id: a.gold for a in _capital_question(result.question_id).answers}
            assert all(state.grade_of(a).comment == g for a, g in gold.items())
            log = store.edits(result.question_id)
            # The oracle's actions are counted from its own edits; the flywheel's are a model's.
            oracle = [e for e in log if e.author == ORACLE_AUTHOR]
            reviews = sum(isinstance(e.payload, Confirm) for e in oracle)
            assert all(e.author in (ORACLE_AUTHOR, ADAPTATION_AUTHOR) for e in log)
            assert result.actions >= reviews and result.actions <= result.one_group


def test_flywheel_mode_learns_per_corpus_and_goes_on_without_pairs(encoder) -> None:
    from dataclasses import replace

    from grouper.evaluation.runner import FlywheelSettings
    from grouper.training.finetune import FineTuneSettings

    def question(qid, dataset, split, one_grade=False):
        q = replace(_capital_question(qid), dataset=dataset, split=split)
        if one_grade:  # every answer graded alike: nothing to learn from
            q = replace(q, answers=tuple(replace(a, gold="correct") for a in q.answers))
        return q

    questions = [
        question("a-train", "alpha", "train"), question("a-new", "alpha", "unseen-questions"),
        question("b-new", "beta", "unseen-questions"),  # no train question of its own
        question("c-train", "gamma", "train", one_grade=True), question("c-new", "gamma", "unseen-questions"),
    ]
    tiny = FineTuneSettings(max_steps=2, batch_size=4, validation_fraction=0.0, mixed_precision=False)
    summaries: list[dict] = []
    with Store("sqlite://") as store:
        results = evaluate_questions(
            questions, encoder, mode="flywheel", store=store,
            flywheel=FlywheelSettings(fine_tune=tiny), on_retrained=summaries.append,
        )
        assert [r.question_id for r in results] == [q.question_id for q in questions]
        # Alpha's unseen question is grouped by alpha's model; beta's, with no train question,
        # and gamma's, whose train question gives no pair, by the parent: nothing is mixed.
        assert store.model_version("a-new") != encoder.model_key
        assert store.model_version("b-new") == store.model_version("c-new") == encoder.model_key
    assert [(s["dataset"], s["used"]) for s in summaries] == [("alpha", True), ("gamma", False)]
    assert "no references pairs" in summaries[1]["reason"]


def test_flywheel_mode_without_retraining_trains_nothing(encoder) -> None:
    from grouper.evaluation.runner import FlywheelSettings

    summaries: list[dict] = []
    results = evaluate_questions(
        [_capital_question()], encoder, mode="flywheel",
        flywheel=FlywheelSettings(retrain=False), on_retrained=summaries.append,
    )
    assert summaries == [] and len(results) == 1


def test_the_evaluate_command_refuses_a_bad_pair_cap(tmp_path, capsys) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"question_id": "q", "answer_id": "a", "answer": "x", "label": "y"}) + "\n")
    assert main(["evaluate", str(path), "--mode", "flywheel", "--max-pairs", "1"]) == 2
    assert "--max-pairs (1) must be at least 2" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--no-retrain"]) == 2
    assert "need --mode flywheel" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--pairs", "answers"]) == 2
    assert "need --mode flywheel" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--pairs", "references"]) == 2  # the default, named: still flywheel-only
    assert "need --mode flywheel" in capsys.readouterr().err


def test_the_evaluate_command_checks_files_and_options_before_loading_the_model(tmp_path, capsys, monkeypatch) -> None:
    import torch

    def no_model(device=None):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr("grouper.embedding.Encoder", no_model)
    rows = [{"question_id": "q", "answer_id": f"a{i}", "answer": f"answer {i}", "label": "right"} for i in range(25)]
    rows[6]["label"] = None
    bad = tmp_path / "gold.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(bad)]) == 2
    assert f'{bad}, row 7, column "label": no gold grade' in capsys.readouterr().err
    rows[6]["label"] = "wrong"
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cases = [
        (["--log-db", f"sqlite:///{tmp_path}/missing/log.sqlite"], "does not exist; create it first"),
        (["--cache", str(tmp_path)], "is a folder"),
        (["--min-answers", "0"], "--min-answers (0) must be at least 1"),
        (["--min-answers", "30"], "no question in the file(s) has 30 or more answers"),
        (["--device", "tpu"], "'tpu' is not a device"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "no CUDA device is available"))
    for options, message in cases:
        assert main(["evaluate", str(good), *options]) == 2, options
        assert message in capsys.readouterr().err, options
    # One --log-db store holds each question once: a question in two files, or one already in
    # the store, was refused only after the files before it were measured.
    copy = tmp_path / "again.jsonl"
    copy.write_text(good.read_text())
    log = tmp_path / "log.sqlite"
    assert main(["evaluate", str(good), str(copy), "--log-db", str(log)]) == 2
    assert f"question 'q' is in {good} and again in {copy}" in capsys.readouterr().err
    from grouper.answers import Answer, Question
    from grouper.store import Store

    with Store.open(log) as store:
        store.import_question(Question("q", "Q?", (Answer("x", "q", "x"),)))
    assert main(["evaluate", str(good), "--log-db", str(log)]) == 2
    assert f"{good}: question 'q' is already in {log}" in capsys.readouterr().err


def test_the_evaluate_command_prints_the_promised_json(tmp_path, capsys, monkeypatch, encoder) -> None:
    # The command builds its own encoder; hand it the session's, already loaded.
    monkeypatch.setattr("grouper.embedding.Encoder", lambda device=None: encoder)
    path = tmp_path / "capital.jsonl"
    q = _capital_question()
    rows = [
        {
            "dataset": "capital",
            "split": "train",
            "question_id": q.question_id,
            "question": q.text,
            "reference_answers": list(q.reference_answers),
            "answer_id": a.answer_id,
            "answer": a.text,
            "label": a.gold,
        }
        for a in q.answers
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"splits", "questions"}
    (split,) = out["splits"]
    assert set(split) == {"dataset", "split", "questions", "answers", "apa", "one_group", "exact"}
    assert (split["dataset"], split["split"], split["questions"], split["answers"]) == ("capital", "train", 1, len(CAPITAL))
    assert 0 < split["apa"] < min(split["one_group"], split["exact"])
    (question,) = out["questions"]
    assert question == {"question_id": "cap", "split": "train", "answers": len(CAPITAL), "apa": split["apa"]}


def test_the_flywheel_command_prints_the_same_json(tmp_path, capsys, monkeypatch, encoder) -> None:
    monkeypatch.setattr("grouper.embedding.Encoder", lambda device=None: encoder)
    path = tmp_path / "capital.jsonl"
    q = _capital_question()
    rows = [
        {"split": "train", "question_id": q.question_id, "question": q.text,
         "reference_answers": list(q.reference_answers), "answer_id": a.answer_id, "answer": a.text, "label": a.gold}
        for a in q.answers
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", str(path), "--mode", "flywheel", "--no-retrain", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"splits", "questions"}
    (split,) = out["splits"]
    assert split["split"] == "train" and 0 < split["apa"] <= split["one_group"]


def test_the_oracle_scores_labels_as_an_instructor_would(encoder) -> None:
    from dataclasses import replace

    from grouper.evaluation.runner import label_scores
    from grouper.references import question_references

    q = _capital_question()
    vectors = encoder.encode([a.normalized for a in q.answers]).vectors
    # No scores in the file: the label whose answers are most like the reference scores highest.
    scale = label_scores(q, vectors, question_references(q, encoder))
    assert scale["correct"] > scale["incorrect"]
    # Scores in the file win (here the opposite of the references, to tell the two apart).
    scored = replace(q, answers=tuple(replace(a, score=0.0 if a.gold == "correct" else 1.0) for a in q.answers))
    scale = label_scores(scored, vectors, question_references(q, encoder))
    assert scale["incorrect"] > scale["correct"]
    # Neither: sorted order.
    assert label_scores(q, vectors, None) == grade_scale([a.gold for a in q.answers])
    with Store("sqlite://") as store:
        store.import_question(_question(HAND_GOLD))
        store.save_grouping("q1", _hand_grouping(), model_version="test")
        with pytest.raises(ValueError, match=r"no score for gold label\(s\) \['wrong'\]"):
            review_question(store, "q1", {f"q1-a{i}": g for i, g in enumerate(HAND_GOLD)}, scale={"right": 1.0})


def test_corrections_model_learns_from_the_pairs_asked_for(encoder, tmp_path) -> None:
    from grouper.evaluation.flywheel import corrections_model
    from grouper.training.finetune import FineTuneSettings

    tiny = FineTuneSettings(max_steps=1, batch_size=4, validation_fraction=0.0, mixed_precision=False)
    with Store("sqlite://") as store:
        evaluate_questions([_capital_question()], encoder, store=store)
        with pytest.raises(ValueError, match="must be one or more of answers, references"):
            corrections_model(store, ["cap"], encoder, tiny, sources=("grades",))
        sizes = {}
        for sources in (("references",), ("answers",), ("references", "answers")):
            _, summary = corrections_model(store, ["cap"], encoder, tiny, sources=sources, folder=tmp_path / "-".join(sources))
            sizes[sources] = summary["pairs"]
        # One reference pair per graded, non-blank answer; answer pairs are many more.
        assert sizes[("references",)] == len([t for t in CAPITAL if t])
        assert sizes[("answers",)] > sizes[("references",)]
        assert sizes[("references", "answers")] == sizes[("references",)] + sizes[("answers",)]


def test_a_fine_tuned_model_that_does_not_beat_its_parent_is_not_used(encoder) -> None:
    from grouper.evaluation.flywheel import _beats_parent

    with Store("sqlite://") as store:
        evaluate_questions([_capital_question()], encoder, store=store)
        # The same model twice: no lower APA on the validation question, so it is not used.
        used, reason, figures = _beats_parent(store, ["cap"], encoder, encoder, store.embeddings)
        assert not used and figures["parent"] == figures["candidate"] > 0
        assert reason
        used, reason, figures = _beats_parent(store, [], encoder, encoder, store.embeddings)
        assert used and figures == {} and "unchecked" in reason
