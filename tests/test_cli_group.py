"""``grouper group`` and ``grouper demo`` through ``grouper.cli.main``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from grouper.answers import load_answers
from grouper.cli import main
from grouper.embedding import Encoder
from grouper.pipeline import QuestionGrouping

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
SAMPLE_FILES = sorted(SAMPLE_DATA.glob("*.csv"))

GROUP_LINE = re.compile(r"^  \[(\d+)\]\s+(\d+)  (.*)$")
MEMBER_LINE = re.compile(r"^          - (.*?): (.*)$")
COUNTS_LINE = re.compile(r"^  (\d+) answers, (\d+) groups, (\d+) ungrouped")


@pytest.fixture
def devices(encoder: Encoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[torch.device]:
    """Let the command use the session's real encoder (loading it once is enough); record the
    device each command asked for. The command loads the registry's active version: in a
    registry of the test's own, that is the packaged base model."""
    asked: list[torch.device] = []
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))

    def shared_encoder(self, version: str | None = None, *, device: torch.device | None = None, **kwargs) -> Encoder:
        assert (version or self.active()) == "base" and not kwargs, "the command asks for the active version"
        asked.append(device)
        return encoder

    monkeypatch.setattr("grouper.model_versions.ModelRegistry.load", shared_encoder)
    return asked


@pytest.fixture
def results(monkeypatch: pytest.MonkeyPatch) -> list[QuestionGrouping]:
    """Every QuestionGrouping the command computes, to compare its output with (recording
    them costs nothing; computing them again would embed every answer twice)."""
    import grouper.pipeline

    computed: list[QuestionGrouping] = []
    original = grouper.pipeline.group_question

    def recording(*args, **kwargs) -> QuestionGrouping:
        result = original(*args, **kwargs)
        computed.append(result)
        return result

    monkeypatch.setattr(grouper.pipeline, "group_question", recording)
    return computed


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _parse_summary(out: str) -> dict[str, dict]:
    """Summary text -> {question id: {"counts": (answers, groups, ungrouped), "groups": [...]}}."""
    questions: dict[str, dict] = {}
    current: dict | None = None
    for line in out.splitlines():
        if line.startswith("Question "):
            qid = line.removeprefix("Question ").split(":", 1)[0]
            current = questions[qid] = {"groups": [], "ungrouped_line": None, "lines": []}
        elif current is None:
            continue
        current["lines"].append(line)
        if m := COUNTS_LINE.match(line):
            current["counts"] = tuple(int(x) for x in m.groups())
        elif m := GROUP_LINE.match(line):
            current["groups"].append({"id": int(m[1]), "size": int(m[2]), "title": m[3], "members": []})
        elif m := MEMBER_LINE.match(line):
            current["groups"][-1]["members"].append(m[1])
        elif line.startswith("  ungrouped: "):
            current["ungrouped_line"] = int(line.removeprefix("  ungrouped: "))
    return questions


# --------------------------------------------------------------------------- --json


def test_json_maps_every_answer_of_every_question(
    devices: list[torch.device], results: list[QuestionGrouping], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, "group", *SAMPLE_FILES, "--json", "--device", "cpu")
    assert status == 0, err
    mapping = json.loads(out)
    assert devices == [torch.device("cpu")]
    questions = [q for path in SAMPLE_FILES for q in load_answers(path)]
    assert set(mapping) == {a.answer_id for q in questions for a in q.answers}
    assert [r.question.question_id for r in results] == ["q1", "q2", "q3"]
    for result in results:
        # Each question's own group ids, exactly as the pipeline grouped it.
        got = {a.answer_id: mapping[a.answer_id] for a in result.question.answers}
        assert got == result.group_of()
        assert all(g is None or (isinstance(g, int) and g >= 1) for g in got.values())
        assert len({g for g in got.values() if g is not None}) == len(result.grouping.groups)


def test_json_for_a_file_with_many_questions(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"answer_id": f"{q}-{i}", "question_id": q, "answer": text}
        for q, texts in {"q1": ["Canberra"] * 3 + ["Sydney"], "q2": ["", "photosynthesis"]}.items()
        for i, text in enumerate(texts)
    ]
    path = _write(tmp_path, "exam.jsonl", "\n".join(json.dumps(line) for line in lines))
    status, out, _ = _run(capsys, "group", path, "--json")
    assert status == 0
    mapping = json.loads(out)
    assert set(mapping) == {line["answer_id"] for line in lines}
    assert mapping["q1-0"] == mapping["q1-1"] == mapping["q1-2"] == 1
    assert mapping["q1-3"] is None and mapping["q2-1"] is None
    assert mapping["q2-0"] == 1  # the blank group: ids restart in each question


# --------------------------------------------------------------------------- summary


def test_summary_lists_groups_by_size_with_three_members_each(
    devices: list[torch.device], results: list[QuestionGrouping], capsys: pytest.CaptureFixture[str]
) -> None:
    path = SAMPLE_DATA / "q1_capital_australia.csv"
    status, out, _ = _run(capsys, "group", path)
    assert status == 0
    (result,) = results
    question = result.question
    summary = _parse_summary(out)
    assert list(summary) == ["q1"]
    q1 = summary["q1"]
    assert q1["lines"][0] == "Question q1: What is the capital city of Australia?"
    n_ungrouped = len(result.grouping.ungrouped)
    assert q1["counts"] == (185, len(result.grouping.groups), n_ungrouped)
    # The count line always says how many are ungrouped; the closing line only when any are.
    assert q1["ungrouped_line"] == (n_ungrouped or None)
    printed = q1["groups"]
    assert [g["id"] for g in printed] == [g.group_id for g in result.grouping.groups]
    content_sizes = [g["size"] for g in printed if g["title"] != "(blank)"]
    assert content_sizes == sorted(content_sizes, reverse=True)
    assert printed[-1]["title"] == "(blank)"
    for shown, group in zip(printed, result.grouping.groups, strict=True):
        assert shown["size"] == len(group.members)
        assert shown["title"] == group.title
        assert shown["members"] == [question.answers[i].answer_id for i in group.members[:3]]


def test_summary_of_many_questions(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = "".join(f"a{i},q1,What?,Canberra\n" for i in range(4)) + "b1,q2,Why?,because\n"
    path = _write(tmp_path, "exam.csv", "answer_id,question_id,question,answer\n" + rows)
    status, out, _ = _run(capsys, "group", path)
    assert status == 0
    summary = _parse_summary(out)
    assert list(summary) == ["q1", "q2"]
    assert summary["q1"]["counts"] == (4, 1, 0) and summary["q1"]["groups"][0]["size"] == 4
    assert len(summary["q1"]["groups"][0]["members"]) == 3  # three shown of four
    assert summary["q2"]["counts"] == (1, 0, 1) and summary["q2"]["ungrouped_line"] == 1


def test_summary_escapes_control_characters_of_student_text(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    red = "\x1b[31mCanberra\x1b[0m"
    records = [{"answer_id": f"id{i}\x1b[2J", "question": "Capital?\x07", "answer": red} for i in range(3)]
    records.append({"answer_id": "x", "answer": "line one\nline two\rover\u202eevil"})
    path = _write(tmp_path, "q.json", json.dumps(records))
    status, out, _ = _run(capsys, "group", path)
    assert status == 0
    assert not any(ch in out for ch in "\x1b\x07\r\u202e")
    assert "\\u001b[31mCanberra\\u001b[0m" in out
    assert "id0\\u001b[2J" in out and "Capital?\\u0007" in out
    assert out.count("\n") == len(out.splitlines())  # no stray line breaks from the answers

    status, out, _ = _run(capsys, "group", path, "--json")
    assert status == 0 and "\x1b" not in out
    assert set(json.loads(out)) == {"id0\x1b[2J", "id1\x1b[2J", "id2\x1b[2J", "x"}


def test_summary_reports_truncated_answers(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_answer = "Light gives the energy that photosynthesis stores as sugar. " * 40
    path = _write(tmp_path, "q.csv", f"answer_id,answer\nshort,sugar\nlong-one,{long_answer}\n")
    status, out, _ = _run(capsys, "group", path)
    assert status == 0
    assert "1 truncated" in out
    assert re.search(r"truncated .*: long-one$", out, re.MULTILINE)


def test_blank_answers_are_shown_as_their_own_group(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "q.csv", 'answer_id,answer\n1,\n2,"   "\n3,Canberra\n')
    status, out, _ = _run(capsys, "group", path)
    assert status == 0
    (question,) = _parse_summary(out).values()
    assert question["groups"] == [{"id": 1, "size": 2, "title": "(blank)", "members": ["1", "2"]}]
    assert question["ungrouped_line"] == 1


def test_demo_groups_every_sample_file(
    devices: list[torch.device],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The sample data itself is grouped by the --json test above; two small files stand in
    # for it here, which is enough to see that demo finds and summarises every file.
    assert SAMPLE_FILES  # the real sample folder has CSV files for demo to find
    _write(tmp_path, "b.csv", "answer_id,question_id,answer\nb1,qb,yes\n")
    _write(tmp_path, "a.csv", "answer_id,question_id,answer\na1,qa,no\n")
    monkeypatch.setattr("grouper.commands.group.SAMPLE_DATA", tmp_path)
    status, out, _ = _run(capsys, "demo", "--device", "cpu")
    assert status == 0
    assert list(_parse_summary(out)) == ["qa", "qb"]


# --------------------------------------------------------------------------- errors


def test_a_bad_file_exits_2_naming_the_row(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "bad.csv", "answer_id,answer,score\n1,x,1\n2,y,lots\n")
    status, out, err = _run(capsys, "group", path, "--json")
    assert status == 2
    assert out == ""
    assert f'{path}, row 3, column "score"' in err and "nothing imported" in err
    assert devices == []  # refused before any model was loaded


def test_legacy_bytes_need_the_encoding_option(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("answer_id,answer\n1,café\n".encode("cp1252"))
    status, _, err = _run(capsys, "group", path, "--json")
    assert status == 2 and "row 2" in err and "--encoding" in err
    status, out, _ = _run(capsys, "group", path, "--json", "--encoding", "cp1252")
    assert status == 0 and json.loads(out) == {"1": None}


def test_an_answer_id_in_two_files_is_refused(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The --json mapping is keyed by answer id: a second "1" would silently replace the first.
    first = _write(tmp_path, "a.csv", "answer_id,answer\n1,x\n")
    second = _write(tmp_path, "b.csv", "answer_id,answer\n1,y\n")
    status, out, err = _run(capsys, "group", first, second, "--json")
    assert status == 2 and out == ""
    assert "'1'" in err and str(first) in err and str(second) in err


def test_invalid_settings_exit_2_naming_the_parameter(
    devices: list[torch.device], capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, "group", SAMPLE_FILES[0], "--min-cluster-size", "1")
    assert status == 2 and "min_cluster_size (1)" in err
    assert devices == []  # refused before the model was loaded


def test_a_mistyped_models_folder_is_refused_not_made(
    devices: list[torch.device], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It became a new registry, and the answers were grouped with the base model unseen.
    typo = tmp_path / "no-such" / "models"
    status, out, err = _run(capsys, "group", SAMPLE_FILES[0], "--json", "--models", str(typo))
    assert status == 2 and out == "" and f"--models {typo}: its folder {typo.parent} does not exist" in err
    assert not typo.parent.exists() and devices == []


# --------------------------------------------------------------------------- a real corpus


@pytest.mark.slow
def test_json_for_a_real_corpus_maps_every_answer(
    datasets_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real command end to end: its own encoder, built from the packaged model.
    path = datasets_dir / "saf-en.jsonl"
    status, out, err = _run(capsys, "group", path, "--json", "--device", "cpu")
    assert status == 0, err
    mapping = json.loads(out)
    ids = [json.loads(line)["answer_id"] for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == 2112
    assert set(mapping) == set(ids)
    assert all(g is None or (isinstance(g, int) and g >= 1) for g in mapping.values())
    assert sum(g is not None for g in mapping.values()) > len(ids) // 2  # it does group
