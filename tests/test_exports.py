"""Exports: formula injection neutralised, grades round-trip through CSV, the log and the pairs."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import edit_from_dict
from grouper.edits import NEW, CheckGrades, Confirm, GradeAnswer, GradeGroup, Merge, Move, Rename, SetRubric, Split, Undo, initial_state, make_edit, apply
from grouper.exports import (
    EXCEL_BOM,
    GRADE_COLUMNS,
    grade_rows,
    neutralise,
    read_grades_csv,
    write_edit_log_jsonl,
    write_grades_by_student_csv,
    write_grades_csv,
    write_pairs_jsonl,
)
from grouper.feedback import PairFilter, PairSettings, question_pairs, training_pairs
from grouper.pairs import TrainingPair
from grouper.store import Store

INJECTIONS = [
    "=HYPERLINK(\"http://evil.example\",\"click\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width equals sign
    "'=already quoted",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_formula_payloads_are_neutralised(payload):
    cell = neutralise(payload)
    assert cell.startswith("'") and cell[1:] == payload


@pytest.mark.parametrize("value", [-1.5, 2, 0.0, "-1.5", "+3", "12", "Canberra", "", None])
def test_numbers_and_plain_text_are_left_alone(value):
    assert neutralise(value) == value


# --------------------------------------------------------------------------- grades


@pytest.fixture
def store(tmp_path):
    answers = [
        Answer("a0", "q1", "Canberra", "s0"),
        Answer("a1", "q1", "=HYPERLINK(\"x\")", "=evil"),
        Answer("a2", "q1", "Sydney", "-5"),
        Answer("a3", "q1", "Perth", "@s3"),
        Answer("a4", "q1", "", "s4"),
    ]
    with Store.open(tmp_path / "grades.sqlite") as s:
        s.import_question(Question("q1", "Capital?", tuple(answers)))
        labels = np.array([1, 1, 2, UNGROUPED, UNGROUPED])
        s.save_grouping("q1", Grouping(labels, np.ones(5), (Group(1, "Canberra", (0, 1)), Group(2, "Sydney", (2,)))), model_version="m")
        s.import_question(Question("q2", "Why?", (Answer("b0", "q2", "because", "s0"), Answer("b1", "q2", "no", "=evil"))))
        s.save_grouping("q2", Grouping(np.array([1, 1]), np.ones(2), (Group(1, "because", (0, 1)),)), model_version="m")
        s.append("q1", "ta1", 0, GradeGroup(1, 2.0, "=1+1 right"))
        s.append("q1", "ta1", 1, GradeGroup(2, -1.5, "@wrong"))
        s.append("q1", "ta2", 2, Rename(2, "+Sydney"))
        s.append("q1", "ta2", 3, GradeAnswer("a3", 0.25, "-close"))
        s.append("q2", "ta1", 0, GradeGroup(1, 1.0))
        yield s


def _rows(store):
    return [r for q in store.question_ids() for r in grade_rows(store.state(q), store.answers(q))]


def test_grades_round_trip_through_the_csv(store):
    rows = _rows(store)
    buffer = io.StringIO(newline="")
    assert write_grades_csv(rows, buffer) == 7
    assert read_grades_csv(io.StringIO(buffer.getvalue(), newline="")) == rows
    by_answer = {r.answer_id: r for r in rows}
    assert by_answer["a0"].score == 2.0 and by_answer["a0"].source == "group" and by_answer["a0"].graded_by == "ta1"
    assert by_answer["a3"].score == 0.25 and by_answer["a3"].source == "override" and by_answer["a3"].group_id is None
    assert by_answer["a4"].score is None and by_answer["a4"].source == ""


def test_the_grades_csv_says_who_checked_a_grade_while_it_holds_and_reads_older_files(store):
    store.append("q1", "=cy", 4, CheckGrades(("a0", "a3")))
    by_answer = {r.answer_id: r for r in _rows(store)}
    assert by_answer["a0"].checked_by == "=cy" and by_answer["a3"].checked_by == "=cy"
    assert by_answer["a1"].checked_by == "" and by_answer["b0"].checked_by == ""
    buffer = io.StringIO(newline="")
    write_grades_csv(_rows(store), buffer)
    assert read_grades_csv(io.StringIO(buffer.getvalue(), newline="")) == _rows(store)
    assert "'=cy" in buffer.getvalue()  # a grader's name is text like any other: neutralised
    store.append("q1", "ta1", 5, GradeGroup(1, 1.0))  # regraded: a0's check lapses
    assert {r.answer_id: r for r in _rows(store)}["a0"].checked_by == ""
    # A file written before the column existed still reads, with nobody's check.
    lines = buffer.getvalue().splitlines()
    older = "\r\n".join(line.rsplit(",", 1)[0] for line in lines) + "\r\n"
    assert {r.answer_id: r.checked_by for r in read_grades_csv(io.StringIO(older, newline=""))}["a0"] == ""


def test_a_grades_csv_saved_for_excel_reads_back(store):
    # Excel reads UTF-8 only after a byte-order mark; a file saved with one reads back the same.
    rows = _rows(store)
    buffer = io.StringIO(newline="")
    buffer.write(EXCEL_BOM)
    write_grades_csv(rows, buffer)
    assert read_grades_csv(io.StringIO(buffer.getvalue(), newline="")) == rows


def test_the_grades_csv_has_no_live_formula_and_numbers_stay_numbers(store):
    buffer = io.StringIO(newline="")
    write_grades_csv(_rows(store), buffer)
    cells = [cell for row in csv.reader(io.StringIO(buffer.getvalue(), newline="")) for cell in row]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c.startswith("-") and not _is_number(c))]
    assert dangerous == []
    assert "'=1+1 right" in cells and "'=evil" in cells and "'+Sydney" in cells and "'-close" in cells
    assert "-1.5" in cells and "2" in cells and "-5" in cells  # a score and a numeric student id, as numbers


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_grades_by_student_has_a_column_per_question_and_a_total(store):
    buffer = io.StringIO(newline="")
    assert write_grades_by_student_csv(_rows(store), buffer) == 5
    table = {row[0]: row[1:] for row in csv.reader(io.StringIO(buffer.getvalue(), newline=""))}
    assert table["student_id"] == ["q1", "q2", "total"]
    assert table["s0"] == ["2", "1", "3"]
    assert table["'=evil"] == ["2", "1", "3"]
    assert table["-5"] == ["-1.5", "", "-1.5"]


def test_grades_by_student_say_the_points_possible_when_questions_have_a_maximum():
    from grouper.exports import GradeRow

    def row(q, a, student, score, max_score):
        return GradeRow(q, a, student, score, max_score, "", "", "group", 1, "g", "ta", 1)

    rows = [row("q1", "a0", "s0", 2.0, 3.0), row("q2", "b0", "s0", 1.0, None), row("q1", "a1", "s1", 3.0, 3.0)]
    buffer = io.StringIO(newline="")
    assert write_grades_by_student_csv(rows, buffer) == 2  # students, not the points row
    lines = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert lines[:2] == [["student_id", "q1", "q2", "total"], ["points_possible", "3", "", ""]]
    assert lines[2] == ["s0", "2", "1", "3"]
    rows[1] = row("q2", "b0", "s0", 1.0, 2.0)
    buffer = io.StringIO(newline="")
    write_grades_by_student_csv(rows, buffer)
    assert list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))[1] == ["points_possible", "3", "2", "5"]


def test_a_student_with_two_answers_to_one_question_has_no_silent_by_student_cell():
    from grouper.exports import GradeRow, resubmissions

    def row(q, a, student, score):
        return GradeRow(q, a, student, score, None, "", "", "group", 1, "g", "ta", 1)

    # A resubmission is its own answer: graded 3 and not graded. Keeping either cell would
    # turn the other into the student's grade.
    rows = [row("q1", "a1", "s1", 3.0), row("q1", "a2", "s1", None), row("q1", "a3", "s2", 1.0)]
    assert resubmissions(rows) == {("s1", "q1"): ["a1", "a2"]}
    with pytest.raises(ValueError, match=r"student s1 has 2 answers to question q1 \(a1, a2\).*grouper export grades"):
        write_grades_by_student_csv(rows, io.StringIO())
    assert resubmissions(rows[1:]) == {}
    # One student written in two Unicode forms (composed, and decomposed as macOS writes it)
    # is one student: their two answers to q1 are a resubmission, and their q2 answer is on
    # their one row (it had a row of its own, looking the same).
    composed, decomposed = "zo\u00eb", "zoe\u0308"
    twice = [row("q1", "a1", composed, 5.0), row("q1", "a2", decomposed, 0.0)]
    assert resubmissions(twice) == {(composed, "q1"): ["a1", "a2"]}
    buffer = io.StringIO(newline="")
    assert write_grades_by_student_csv([row("q1", "a1", composed, 5.0), row("q2", "b1", decomposed, 1.0)], buffer) == 1
    assert list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))[1] == [composed, "5", "1", "6"]


def test_answers_without_a_student_id_are_one_row_each_across_questions():
    from grouper.exports import GradeRow, student_of

    def row(q, a, score):
        return GradeRow(q, a, None, score, None, "", "", "group", 1, "g", "ta", 1)

    # Answer ids are unique within a question only: answer 1 of q1 is not answer 1 of q2.
    rows = [row("q1", "1", 2.0), row("q1", "2", 1.0), row("q2", "1", 3.0)]
    assert student_of(rows[0]) == "answer:q1/1" != student_of(rows[2])
    buffer = io.StringIO(newline="")
    assert write_grades_by_student_csv(rows, buffer) == 3
    table = {r[0]: r[1:] for r in csv.reader(io.StringIO(buffer.getvalue(), newline=""))}
    assert table["answer:q1/1"] == ["2", "", "2"] and table["answer:q2/1"] == ["", "3", "3"]


def test_sums_of_points_are_written_as_a_grader_reads_them():
    from grouper.exports import GradeRow

    def row(q, a, score, max_score):
        return GradeRow(q, a, "s0", score, max_score, "", "", "group", 1, "g", "ta", 1)

    rows = [row("q1", "a0", 0.1, 0.3), row("q2", "b0", 0.2, 0.1), row("q3", "c0", 0.1 + 0.2, 0.2)]
    buffer = io.StringIO(newline="")
    write_grades_by_student_csv(rows, buffer)
    lines = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert lines[1] == ["points_possible", "0.3", "0.1", "0.2", "0.6"]  # not 0.6000000000000001
    assert lines[2] == ["s0", "0.1", "0.2", "0.3", "0.6"]
    buffer = io.StringIO(newline="")
    write_grades_csv(rows, buffer)
    assert [r["score"] for r in csv.DictReader(io.StringIO(buffer.getvalue(), newline=""))] == ["0.1", "0.2", "0.3"]


def test_a_damaged_grades_csv_is_refused_with_its_row(store):
    buffer = io.StringIO(newline="")
    write_grades_csv(_rows(store), buffer)
    damaged = buffer.getvalue().replace(",2,,'=1+1 right", ",two,,'=1+1 right", 1)
    with pytest.raises(ValueError, match="row 2, column 'score': 'two' is not a number"):
        read_grades_csv(io.StringIO(damaged, newline=""))
    # Cells no export writes: a score no grade has, a fractional id, a row cut short or too long.
    first = buffer.getvalue().splitlines()[1]
    for cell, said in (("nan", "is not a finite number"), ("1e999", "is not a finite number"), ("-inf", "is not a finite number")):
        damaged = buffer.getvalue().replace(",2,,'=1+1 right", f",{cell},,'=1+1 right", 1)
        with pytest.raises(ValueError, match=f"row 2, column 'score': '{cell}' {said}"):
            read_grades_csv(io.StringIO(damaged, newline=""))
    cells = first.split(",")
    group_at = list(GRADE_COLUMNS).index("group_id")
    for value in ("1.7", "inf", "nan"):
        damaged = buffer.getvalue().replace(first, ",".join([*cells[:group_at], value, *cells[group_at + 1:]]), 1)
        with pytest.raises(ValueError, match=f"row 2, column 'group_id': '{value}' is not a whole number"):
            read_grades_csv(io.StringIO(damaged, newline=""))
    for row, said in ((",".join(cells[:4]), "4 cells"), (first + ",extra", f"{len(GRADE_COLUMNS) + 1} cells")):
        with pytest.raises(ValueError, match=f"row 2: {said}, but the header has {len(GRADE_COLUMNS)} columns"):
            read_grades_csv(io.StringIO(buffer.getvalue().replace(first, row, 1), newline=""))


def test_the_edit_log_exports_as_jsonl_and_reads_back(store):
    edits = store.edits()
    buffer = io.StringIO()
    assert write_edit_log_jsonl(edits, buffer) == 5
    assert [edit_from_dict(json.loads(line)) for line in buffer.getvalue().splitlines()] == edits


# --------------------------------------------------------------------------- training pairs


IDS = [f"a{i}" for i in range(8)]
TEXTS = {a: f"text {a}" for a in IDS}


def _start():
    labels = np.array([1, 1, 1, 2, 2, 2, UNGROUPED, UNGROUPED])
    return initial_state("q", IDS, Grouping(labels, np.ones(8), (Group(1, "one", (0, 1, 2)), Group(2, "two", (3, 4, 5)))))


def _log(*steps):
    state, edits = _start(), []
    for author, payload in steps:
        edit = make_edit(state, author, payload)
        state = apply(state, edit)
        edits.append(edit)
    return edits


def _labels(pairs):
    return {(p.answer_id_a, p.answer_id_b): p.together for p in pairs}


def test_pairs_from_confirm_merge_split_and_moves():
    edits = _log(
        ("ta1", Confirm(1)),
        ("ta2", Move(("a2",), None)),
        ("ta1", Merge(1, (2,))),
        ("ta1", Split(1, (("a0", "a1"), ("a3", "a4", "a5")))),
    )
    pairs = question_pairs(_start(), edits, TEXTS)
    labels = _labels(pairs)
    assert labels[("a0", "a1")] is True  # confirm
    assert labels[("a0", "a2")] is False  # moved out of group 1 later: the latest edit wins
    assert labels[("a0", "a3")] is False  # merged, then split apart: latest wins
    assert ("a3", "a4") not in labels  # no edit spoke about these two
    by_pair = {(p.answer_id_a, p.answer_id_b): p for p in pairs}
    assert by_pair[("a0", "a3")].edit_id == 4 and by_pair[("a0", "a3")].author == "ta1"
    assert by_pair[("a0", "a2")].text_a == "text a0" and by_pair[("a0", "a2")].edit_id == 2


def test_pairs_from_grades_and_overrides():
    edits = _log(("ta1", GradeGroup(1, 2.0)), ("ta1", GradeGroup(2, 0.0)), ("ta2", GradeAnswer("a0", 1.0)))
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert labels[("a1", "a2")] is True  # same grade
    assert labels[("a3", "a4")] is True
    assert labels[("a1", "a3")] is False  # different grades
    assert labels[("a0", "a1")] is False  # the override says a0 differs from its group


def test_a_corrected_grade_takes_back_the_cannot_links_of_the_wrong_one():
    """Group 1 graded 0 by mistake (apart from group 2's 2), then corrected to 2: nothing says
    the two groups are apart any more. A split's cannot-links are about grouping and stay."""
    edits = _log(("ta1", GradeGroup(2, 2.0)), ("ta1", GradeGroup(1, 0.0)), ("ta1", GradeGroup(1, 2.0)))
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert not [pair for pair, together in labels.items() if not together]
    assert labels[("a0", "a1")] is True and labels[("a3", "a4")] is True
    # An answer's own grade cleared: it has its group's grade again, no longer apart.
    edits = _log(("ta1", GradeGroup(1, 2.0)), ("ta2", GradeAnswer("a0", 0.0)), ("ta2", GradeAnswer("a0", None)))
    assert not [pair for pair, together in _labels(question_pairs(_start(), edits, TEXTS)).items() if not together]
    # A group's grade cleared takes back its grade's cannot-links, not a split's.
    edits = _log(
        ("ta1", Split(1, (("a0",), ("a1", "a2")))),
        ("ta1", GradeGroup(2, 2.0)),
        ("ta1", GradeGroup(1, 0.0)),
        ("ta1", GradeGroup(1, None)),
    )
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert labels[("a0", "a1")] is False and labels[("a0", "a2")] is False  # the split's
    assert ("a0", "a3") not in labels  # group 1's wrong grade said this; it is cleared


def test_an_undone_grade_takes_back_the_cannot_links_later_grades_drew_against_it():
    """Group 2 was graded apart from group 1's grade; that grade is undone, so nothing says
    the groups are graded apart any more (as when it is cleared)."""
    for take_back in (Undo(1), GradeGroup(1, None)):
        edits = _log(("ta1", GradeGroup(1, 2.0)), ("ta1", GradeGroup(2, 0.0)), ("ta1", take_back))
        labels = _labels(question_pairs(_start(), edits, TEXTS))
        assert ("a0", "a3") not in labels, take_back
        assert labels[("a3", "a4")] is True  # group 2's own grade still links its members


def test_a_group_grade_links_each_member_by_the_grade_it_has():
    """A member with its own grade is not must-linked with mates graded otherwise, and an
    answer of another group whose own grade equals this group's is not cannot-linked."""
    edits = _log(
        ("ta1", GradeGroup(1, 2.0)),
        ("ta1", GradeAnswer("a0", 0.5)),  # partial credit, stays in group 1
        ("ta1", GradeGroup(2, 0.0)),
        ("ta1", GradeAnswer("a3", 3.0)),  # a3's own grade is 3
        ("ta1", GradeGroup(1, 3.0)),  # group 1 regraded to 3
    )
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert labels[("a0", "a1")] is False  # 0.5 against 3
    assert labels[("a1", "a2")] is True
    assert ("a1", "a3") not in labels  # both 3 now: graded alike, in different groups
    assert labels[("a1", "a4")] is False  # 3 against 0
    assert labels[("a0", "a4")] is False  # 0.5 against 0


def test_blank_answers_give_no_pairs():
    """A blank answer has no text to learn from: it is embedded as a zero vector, never by
    the encoder, so its pairs would only crowd the balanced sample."""
    texts = {**TEXTS, "a1": "", "a4": ""}
    edits = _log(("ta1", GradeGroup(1, 2.0)), ("ta1", GradeGroup(2, 0.0)), ("ta1", Confirm(1)))
    pairs = question_pairs(_start(), edits, texts)
    assert pairs and all(p.text_a and p.text_b for p in pairs)
    assert ("a0", "a2") in _labels(pairs)


def test_a_filter_never_brings_back_a_pair_a_later_edit_reversed():
    """ta1 moved a6 into group 1; ta2 moved it out again. Asking for ta1's pairs (or those
    before ta2's edit) must not give the must-link ta2 took back."""
    edits = _log(("ta1", Move(("a6",), 1)), ("ta2", Move(("a6",), None)))
    assert _labels(question_pairs(_start(), edits, TEXTS))[("a0", "a6")] is False
    for select in (PairFilter(authors=frozenset({"ta1"})), PairFilter(until=edits[1].at)):
        assert ("a0", "a6") not in _labels(question_pairs(_start(), edits, TEXTS, select=select))
    only_ta2 = _labels(question_pairs(_start(), edits, TEXTS, select=PairFilter(authors=frozenset({"ta2"}))))
    assert only_ta2[("a0", "a6")] is False


def test_a_corrected_grade_gives_back_the_split_it_had_repeated():
    """A split said a0 and a1 are apart; a wrong grade said so too and was then corrected.
    Taking back the grade's cannot-link leaves the split's."""
    split = ("ta1", Split(1, (("a0",), ("a1", "a2"))))
    state = _start()
    edit = make_edit(state, "ta1", split[1])
    new = apply(state, edit).last_change.groups_created[0]
    edits = _log(split, ("ta1", GradeGroup(new, 2.0)), ("ta1", GradeGroup(1, 0.0)), ("ta1", GradeGroup(1, 2.0)))
    pairs = {(p.answer_id_a, p.answer_id_b): p for p in question_pairs(_start(), edits, TEXTS)}
    assert pairs[("a0", "a1")].together is False and pairs[("a0", "a1")].edit_id == 1


def test_a_models_edits_give_no_pairs_and_never_overwrite_a_persons():
    """A grader merged groups 1 and 2; a model's regroup later moved a3 out. The grader's
    must-link stays, and no pair carries the model's name."""
    edits = _log(("ta1", Merge(1, (2,))), ("model:v0002", Move(("a3",), NEW)))
    pairs = question_pairs(_start(), edits, TEXTS)
    assert _labels(pairs)[("a0", "a3")] is True
    assert {p.author for p in pairs} == {"ta1"}


def test_pairs_from_rubric_grades():
    """A grade given as rubric items is a grade like any other; the same points from other
    items is another grade (other feedback), so those answers are apart too."""
    edits = _log(
        ("prof", SetRubric(((1, "names Canberra", 1.0), (2, "explains why", 1.0)))),
        ("ta1", GradeGroup(1, None, items=(1,))),
        ("ta1", GradeGroup(2, None, items=(2,))),
        ("ta2", GradeAnswer("a0", None, items=(1, 2))),
    )
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert labels[("a1", "a2")] is True and labels[("a3", "a4")] is True
    assert labels[("a1", "a3")] is False  # both worth 1, by other items
    assert labels[("a0", "a1")] is False  # a0's own rubric grade sets it apart from its group


def test_an_undone_edit_gives_no_pairs_and_a_redone_one_gives_them_back():
    edits = _log(("ta1", Move(("a6", "a7"), 1)), ("ta1", Undo(1)))
    assert question_pairs(_start(), edits, TEXTS) == []
    edits = _log(("ta1", Move(("a6", "a7"), 1)), ("ta1", Undo(1)), ("ta1", Undo(2)))
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert labels[("a0", "a6")] is True and labels[("a6", "a7")] is True


def test_moving_to_a_new_group_links_the_moved_answers_and_separates_them_from_the_old_group():
    edits = _log(("ta1", Move(("a0", "a1"), NEW)))
    labels = _labels(question_pairs(_start(), edits, TEXTS))
    assert labels == {("a0", "a1"): True, ("a0", "a2"): False, ("a1", "a2"): False}


def test_pairs_can_be_filtered_by_author_kind_and_time():
    edits = _log(("ta1", Confirm(1)), ("ta2", Confirm(2)))
    only_ta2 = question_pairs(_start(), edits, TEXTS, select=PairFilter(authors=frozenset({"ta2"})))
    assert {p.author for p in only_ta2} == {"ta2"} and len(only_ta2) == 3
    assert question_pairs(_start(), edits, TEXTS, select=PairFilter(kinds=frozenset({"merge"}))) == []
    later = question_pairs(_start(), edits, TEXTS, select=PairFilter(since=edits[1].at))
    assert {p.edit_id for p in later} == {2}


def test_a_big_group_is_sampled_reproducibly():
    n = 300
    ids = [f"x{i}" for i in range(n)]
    start = initial_state("q", ids, Grouping(np.ones(n, dtype=int), np.ones(n), (Group(1, "all", tuple(range(n))),)))
    edits = [make_edit(start, "ta1", Confirm(1))]
    texts = {a: a for a in ids}
    capped = question_pairs(start, edits, texts, settings=PairSettings(max_pairs_per_edit=500, seed=1))
    assert len(capped) == 500 and all(p.answer_id_a != p.answer_id_b for p in capped)
    assert capped == question_pairs(start, edits, texts, settings=PairSettings(max_pairs_per_edit=500, seed=1))
    assert capped != question_pairs(start, edits, texts, settings=PairSettings(max_pairs_per_edit=500, seed=2))
    every = question_pairs(start, edits, texts, settings=PairSettings(max_pairs_per_edit=None))
    assert len(every) == n * (n - 1) // 2 and len({(p.answer_id_a, p.answer_id_b) for p in every}) == len(every)


def test_a_capped_edit_has_the_latest_word_on_the_pairs_it_leaves_out():
    # A grader confirms a big group, then splits it: with the cap, the confirm's sampled
    # must-links across the two parts used to survive wherever the split's sample missed them.
    n = 60
    ids = [f"x{i:02d}" for i in range(n)]
    start = initial_state("q", ids, Grouping(np.ones(n, dtype=int), np.ones(n), (Group(1, "all", tuple(range(n))),)))
    state, edits = start, []
    for author, payload in [
        ("ta1", Confirm(1)),
        ("ta1", Split(1, (tuple(ids[:30]), tuple(ids[30:])))),
        ("ta2", GradeGroup(1, 1.0)),
        ("ta2", Move(tuple(ids[25:30]), NEW)),
        ("ta2", Merge(1, (2,))),
        ("ta1", GradeAnswer("x03", 0.5)),
        ("ta1", GradeGroup(1, 2.0)),
        ("ta2", GradeAnswer("x03", None)),
    ]:
        edit = make_edit(state, author, payload)
        state = apply(state, edit)
        edits.append(edit)
    texts = {a: a for a in ids}
    truth = _labels(question_pairs(start, edits, texts, settings=PairSettings(max_pairs_per_edit=None)))
    for seed in range(5):
        capped = _labels(question_pairs(start, edits, texts, settings=PairSettings(max_pairs_per_edit=40, seed=seed)))
        assert capped and {k: truth.get(k) for k in capped} == capped  # every pair given is the latest word


def test_pairs_of_a_store_export_as_jsonl(store):
    pairs = training_pairs(store)
    assert {p.question_id for p in pairs} == {"q1", "q2"}
    buffer = io.StringIO()
    write_pairs_jsonl(pairs, buffer)
    assert [TrainingPair.from_dict(json.loads(line)) for line in buffer.getvalue().splitlines()] == pairs
    only_q2 = training_pairs(store, select=PairFilter(question_ids=frozenset({"q2"})))
    assert [(p.answer_id_a, p.answer_id_b, p.together) for p in only_q2] == [("b0", "b1", True)]


def test_pairs_are_chosen_by_course(tmp_path):
    from grouper.feedback import course_questions

    with Store.open(tmp_path / "grades.sqlite") as store:
        for qid, course in (("g1", "Geography"), ("p1", "Physics"), ("g2", "Geography")):
            answers = tuple(Answer(f"{qid}-{i}", qid, f"answer {i}") for i in range(4))
            store.import_question(Question(qid, "?", answers), course=course)
            store.save_grouping(qid, Grouping(np.array([1, 1, 2, 2]), np.ones(4), (Group(1, "a", (0, 1)), Group(2, "b", (2, 3)))), model_version="m")
            store.append(qid, "ta1", None, Confirm(1))
        assert course_questions(store, ["Geography"]) == ["g1", "g2"]
        assert course_questions(store, [" geography"]) == ["g1", "g2"]  # the course as filed
        assert course_questions(store, ["Geography"], within=["g2"]) == ["g2"]
        # a question named outside the course is refused by name, never dropped without a word
        with pytest.raises(ValueError, match=r"question\(s\) 'p1' are not in course\(s\) 'Geography'"):
            course_questions(store, ["Geography"], within=["g2", "p1"])
        pairs = training_pairs(store, select=PairFilter(question_ids=frozenset(course_questions(store, ["Physics"]))))
        assert {p.question_id for p in pairs} == {"p1"}
        with pytest.raises(ValueError, match=r"no course 'Maths' in the store \(courses: Geography, Physics\)"):
            course_questions(store, ["Maths"])
        with pytest.raises(ValueError, match="none of the questions named is in course"):
            course_questions(store, ["Physics"], within=["g1"])
