"""Import of answer files (grouper.answers): formats, encodings, errors, blanks, normalisation.

Files are generated as bytes inside the tests, so each test shows exactly what it feeds in.
The real corpora are read in place through the ``datasets_dir`` fixture, never copied.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grouper.answers import Answer, AnswerFileError, load_answers, normalize_text, parse_answers
from grouper.clustering import UNGROUPED
from grouper.pipeline import group_question

CSV_ONE_QUESTION = (
    "answer_id,student_id,answer,grade,score\n"
    "a1,s1,Canberra,correct,1\n"
    "a2,s2,Sydney,incorrect,0\n"
)


def _ids(questions) -> list[list[str]]:
    return [[a.answer_id for a in q.answers] for q in questions]


def _error(data: bytes, name: str, **kwargs) -> AnswerFileError:
    """Parse bytes that must be refused; return the error."""
    with pytest.raises(AnswerFileError) as info:
        parse_answers(data, name, **kwargs)
    return info.value


# --------------------------------------------------------------------------- formats


def test_csv_with_one_question_takes_the_question_id_from_the_file_name() -> None:
    (question,) = parse_answers(CSV_ONE_QUESTION.encode(), "exam/q7_capital.csv")
    assert question.question_id == "q7_capital"
    assert [a.answer_id for a in question.answers] == ["a1", "a2"]
    first = question.answers[0]
    assert (first.student_id, first.text, first.gold, first.score) == ("s1", "Canberra", "correct", 1.0)
    assert question.answers[1].score == 0.0


def test_csv_with_a_question_column_holds_many_questions_in_order_of_appearance() -> None:
    data = (
        "answer_id,question_id,question,answer\n"
        "1,q2,Second?,b\n"
        "2,q1,First?,a\n"
        "3,q2,Second?,c\n"
    ).encode()
    questions = parse_answers(data, "all.csv")
    assert [(q.question_id, q.text) for q in questions] == [("q2", "Second?"), ("q1", "First?")]
    assert _ids(questions) == [["1", "3"], ["2"]]


def test_column_names_are_matched_case_insensitively_and_stripped() -> None:
    data = " Answer ID , Response \nx,hello\n".encode()
    (question,) = parse_answers(data, "q.csv")
    assert [(a.answer_id, a.text) for a in question.answers] == [("x", "hello")]


def test_student_id_identifies_the_answer_when_there_is_no_answer_id_column() -> None:
    single = parse_answers(b"student_id,answer\ns1,x\ns2,y\n", "q.csv")
    assert _ids(single) == [["s1", "s2"]]
    # With many questions one student answers each of them: the id includes the question.
    many = parse_answers(b"student_id,question_id,answer\ns1,q1,x\ns1,q2,y\n", "all.csv")
    assert _ids(many) == [["q1/s1"], ["q2/s1"]]
    assert many[0].answers[0].student_id == "s1"


def test_json_list_json_object_and_jsonl_load_the_same_answers() -> None:
    records = [
        {"answer_id": "a1", "question_id": "q1", "answer": "x", "reference_answers": ["ref one", "ref two"]},
        {"answer_id": 2, "question_id": "q1", "answer": 19.6, "score": "0.5"},
    ]
    as_list = parse_answers(json.dumps(records).encode(), "f.json")
    as_object = parse_answers(json.dumps({"answers": records}).encode(), "f.json")
    as_lines = parse_answers("\n".join(json.dumps(r) for r in records).encode(), "f.jsonl")
    for questions in (as_list, as_object, as_lines):
        (question,) = questions
        assert question.reference_answers == ("ref one", "ref two")
        # Numbers are accepted as ids and as (numeric) answers, as text.
        assert [(a.answer_id, a.text, a.score) for a in question.answers] == [
            ("a1", "x", None),
            ("2", "19.6", 0.5),
        ]


def test_file_format_overrides_the_suffix() -> None:
    (question,) = parse_answers(b'{"answer_id": "1", "answer": "x"}\n', "export.txt", file_format="jsonl")
    assert question.answers[0].text == "x"
    error = _error(b"answer_id,answer\n1,x\n", "export.txt")
    assert "unknown file type '.txt'" in str(error)


def test_saf_corpus_loads_fully_as_is(datasets_dir: Path) -> None:
    questions = load_answers(datasets_dir / "saf-en.jsonl")
    answers = [a for q in questions for a in q.answers]
    assert len(answers) == 2112
    assert len(questions) == 22
    assert len({a.answer_id for a in answers}) == 2112
    assert all(q.reference_answers and all(r.strip() for r in q.reference_answers) for q in questions)
    assert all(q.text and q.dataset == "saf-en" for q in questions)
    splits = {q.split for q in questions}
    assert splits == {"train", "unseen-questions"}
    assert sum(q.split == "train" for q in questions) == 18
    assert {a.gold for a in answers} == {"Correct", "Partially correct", "Incorrect"}
    assert all(a.score is not None and 0.0 <= a.score <= 1.0 for a in answers)
    # Each answer sits under the question its line names.
    first = questions[0]
    assert first.question_id == "10.1_TC" and first.answers[0].answer_id == "TC_10.1.1"


@pytest.mark.parametrize(
    ("name", "n_answers", "n_questions"),
    [("semeval2013-beetle.jsonl", 5199, 56), ("semeval2013-scientsbank.jsonl", 10804, 196)],
)
def test_semeval_corpora_load_as_is(datasets_dir: Path, name: str, n_answers: int, n_questions: int) -> None:
    questions = load_answers(datasets_dir / name)
    assert sum(len(q.answers) for q in questions) == n_answers
    assert len(questions) == n_questions
    # These corpora have labels but a null score: null means "no score", not an error.
    assert all(a.score is None and a.gold for q in questions for a in q.answers)


# --------------------------------------------------------------------------- encodings

NON_ASCII_CSV = "answer_id,answer\n1,café\n2,日本語\n3,naïve 😀\n"


@pytest.mark.parametrize(
    "encoded",
    [
        NON_ASCII_CSV.encode("utf-8"),
        NON_ASCII_CSV.encode("utf-8-sig"),
        b"\xff\xfe" + NON_ASCII_CSV.encode("utf-16-le"),
        b"\xfe\xff" + NON_ASCII_CSV.encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_utf8_and_utf16_are_detected(encoded: bytes) -> None:
    (question,) = parse_answers(encoded, "q.csv")
    # The BOM must not stick to the first column name, which would make it "missing".
    got = [(a.answer_id, a.text) for a in question.answers]
    assert got == [("1", "café"), ("2", "日本語"), ("3", "naïve 😀")]


def test_legacy_bytes_are_refused_with_their_row_unless_the_encoding_is_named() -> None:
    data = "answer_id,answer\n1,fine\n2,café\n".encode("cp1252")
    error = _error(data, "legacy.csv")
    assert error.first.row == 3
    message = str(error)
    assert "legacy.csv, row 3" in message and "--encoding" in message and "nothing imported" in message

    (question,) = parse_answers(data, "legacy.csv", encoding="cp1252")
    assert question.answers[1].text == "café"


def test_load_answers_passes_the_encoding_through(tmp_path: Path) -> None:
    path = tmp_path / "legacy.csv"
    path.write_bytes("answer_id,answer\n1,Müller\n".encode("cp1252"))
    with pytest.raises(AnswerFileError):
        load_answers(path)
    (question,) = load_answers(path, encoding="cp1252")
    assert question.answers[0].text == "Müller"


def test_an_explicit_encoding_still_drops_a_bom() -> None:
    # Regression: decoding with an explicit codec kept U+FEFF, glued to "answer_id".
    (question,) = parse_answers("answer_id,answer\n1,x\n".encode("utf-8-sig"), "q.csv", encoding="utf-8")
    assert question.answers[0].answer_id == "1"


def test_an_unknown_encoding_is_an_error() -> None:
    error = _error(b"answer_id,answer\n", "q.csv", encoding="no-such-codec")
    assert "unknown encoding 'no-such-codec'" in str(error)


# --------------------------------------------------------------------------- errors: all or nothing


def test_a_missing_required_column_names_file_row_and_column() -> None:
    error = _error(b"answer_id,grade\n1,correct\n", "q.csv")
    assert (error.first.row, error.path) == (1, "q.csv")
    assert "q.csv, row 1: missing required column answer" in str(error)

    error = _error(b"answer,grade\nx,correct\n", "q.csv")
    assert "missing required column answer_id (or student_id)" in str(error)


def test_a_jsonl_record_missing_a_required_field_is_named_by_its_line() -> None:
    data = b'{"answer_id": "1", "answer": "x"}\n{"answer_id": "2", "text_typo": "y"}\n'
    error = _error(data, "q.jsonl")
    assert error.first.row == 2
    assert "q.jsonl, row 2: missing required column answer" in str(error)


def test_a_header_only_csv_missing_a_column_is_an_error() -> None:
    # Regression: the header used to be checked on the first data row, so a header-only file
    # with a wrong header imported silently.
    for data in (b"answer_id,grade\n", b"answer_id,grade"):
        error = _error(data, "q.csv")
        assert error.first.row == 1 and "missing required column answer" in str(error)


def test_a_file_without_answer_rows_is_an_error_naming_the_file() -> None:
    """A header and no rows, or an empty JSON list: importing it would silently do nothing."""
    for data, name in ((b"answer_id,answer\n", "q.csv"), (b"answer_id,answer", "q.csv"), (b"[]", "q.json"), (b"", "q.jsonl")):
        error = _error(data, name)
        assert error.path == name
        assert "holds no answers" in str(error) or "empty" in str(error)


def test_an_empty_csv_has_no_header_and_is_an_error() -> None:
    assert "empty" in str(_error(b"", "q.csv"))


def test_a_column_named_twice_is_an_error() -> None:
    error = _error(b"answer_id,answer,Answer\n1,x,y\n", "q.csv")
    assert (error.first.row, error.first.column) == (1, "Answer")


def test_repeated_columns_that_are_not_read_are_ignored() -> None:
    # Spreadsheets export trailing unnamed columns; a repeated notes column is never read.
    (question,) = parse_answers(b"answer_id,answer,notes,notes,,\n1,x,a,b,,\n", "q.csv")
    assert [(a.answer_id, a.text) for a in question.answers] == [("1", "x")]


def test_a_duplicate_answer_id_names_both_rows_and_nothing_is_imported() -> None:
    data = b"answer_id,question_id,answer\n1,q1,x\n2,q1,y\n1,q2,z\n"
    error = _error(data, "q.csv")
    assert (error.first.row, error.first.column) == (4, "answer_id")
    assert "q.csv, row 4, column \"answer_id\": duplicate answer id '1' (first seen in row 2)" in str(error)


def test_a_csv_row_with_too_many_fields_is_an_error() -> None:
    error = _error(b"answer_id,answer\n1,x\n2,y,extra\n3,z\n", "q.csv")
    assert error.first.row == 3
    assert "q.csv, row 3: 3 fields but the header has 2 columns" in str(error)


def test_a_csv_quoting_error_names_the_row() -> None:
    error = _error(b'answer_id,answer\n1,x\n2,"broken"quote\n', "q.csv")
    assert error.first.row == 3 and "unreadable row" in error.first.message


def test_csv_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    # A quoted newline stays inside its record; the next record is row 3, not line 4.
    error = _error(b'answer_id,answer\n1,"two\nlines"\n2,y,extra\n', "q.csv")
    assert error.first.row == 3


def test_a_bad_jsonl_line_names_its_line() -> None:
    data = b'{"answer_id": "1", "answer": "x"}\n\n{"answer_id": "2", "answer": \n'
    error = _error(data, "q.jsonl")
    assert error.first.row == 3
    assert str(error).count("q.jsonl, row 3: not valid JSON") == 1


def test_a_non_object_json_item_names_its_position() -> None:
    data = json.dumps([{"answer_id": "1", "answer": "x"}, ["2", "y"]]).encode()
    error = _error(data, "q.json")
    assert error.first.row == 2 and "expected a JSON object, found a list" in str(error)
    error = _error(b'{"answer_id": "1", "answer": "x"}\n"just text"\n', "q.jsonl")
    assert error.first.row == 2


def test_a_lone_surrogate_escape_in_json_names_its_row_and_column() -> None:
    # Valid JSON, but not text: it ended in a tokenizer traceback after the model loaded.
    for data, name in [
        (b'{"answer_id": "1", "answer": "x"}\n{"answer_id": "2", "answer": "bad \\ud800 text"}\n', "q.jsonl"),
        (b'[{"answer_id": "1", "answer": "x"}, {"answer_id": "2", "answer": "ok", "reference_answers": ["\\udc00"]}]', "q.json"),
    ]:
        error = _error(data, name)
        assert error.first.row == 2 and error.first.column in ("answer", "reference_answers"), str(error)
        assert "is a lone surrogate (U+D800)" in str(error) or "is a lone surrogate (U+DC00)" in str(error)


def test_a_json_document_that_is_not_a_list_is_an_error() -> None:
    assert "expected a list of answer objects" in str(_error(b'{"rows": []}', "q.json"))


@pytest.mark.parametrize("score", ["half", "nan", "inf"])
def test_a_non_numeric_score_names_row_and_column(score: str) -> None:
    data = f"answer_id,answer,score\n1,x,1\n2,y,{score}\n".encode()
    error = _error(data, "q.csv")
    assert (error.first.row, error.first.column) == (3, "score")
    assert f'q.csv, row 3, column "score": score \'{score}\' is not a number' in str(error)


def test_json_numbers_too_large_for_a_score_are_problems_not_crashes() -> None:
    huge = "1" + "0" * 400  # beyond any float: float() raised OverflowError, a traceback
    for column, said in (("score", "score"), ("max_score", "maximum score")):
        error = _error(f'[{{"answer_id": "a1", "answer": "x", "{column}": {huge}}}]'.encode(), "q.json")
        assert (error.first.row, error.first.column) == (1, column)
        assert f'column "{column}": {said} 1000' in str(error) and str(error).endswith(("is not a number", "above 0"))
    longer = "1" + "0" * 5000  # beyond what Python converts to an int at all
    error = _error(f'{{"answer_id": "a0", "answer": "x"}}\n{{"answer_id": {longer}, "answer": "x"}}\n'.encode(), "q.jsonl")
    assert str(error).splitlines()[1] == "  q.jsonl, row 2: holds a number of 5,001 digits, which no answer file needs"
    error = _error(f'[{{"answer_id": "a1", "answer": "x", "score": -{longer}}}]'.encode(), "q.json")
    assert "holds a number of 5,001 digits" in str(error) and "set_int_max_str_digits" not in str(error)


def test_an_empty_score_means_no_score() -> None:
    (question,) = parse_answers(b"answer_id,answer,score\n1,x,\n", "q.csv")
    assert question.answers[0].score is None


def test_a_maximum_score_column_gives_each_question_its_maximum() -> None:
    data = (
        "question_id,answer_id,answer,points_possible\n"
        "q1,1,x,5\n"
        "q1,2,y,\n"  # empty: takes the question's
        "q2,3,z,2.5\n"
        "q3,4,w,\n"
    ).encode()
    q1, q2, q3 = parse_answers(data, "q.csv")
    assert (q1.max_score, q2.max_score, q3.max_score) == (5.0, 2.5, None)


@pytest.mark.parametrize("value", ["five", "0", "-2", "inf"])
def test_a_maximum_score_that_is_not_above_zero_names_row_and_column(value: str) -> None:
    error = _error(f"answer_id,answer,max_score\n1,x,5\n2,y,{value}\n".encode(), "q.csv")
    assert (error.first.row, error.first.column) == (3, "max_score")
    assert f"maximum score '{value}' is not a number above 0" in str(error)


def test_two_maximum_scores_for_one_question_name_both_rows() -> None:
    error = _error(b"answer_id,answer,max_score\n1,x,5\n2,y,10\n", "q.csv")
    assert str(error.first.describe("q.csv")) == (
        'q.csv, row 3, column "max_score": maximum score 10 differs from 5 given for question \'q\' in row 2'
    )


def test_a_score_outside_the_maximum_is_refused_with_its_row_even_before_the_maximum_is_given() -> None:
    error = _error(b"answer_id,answer,score,max_score\n1,x,7,\n2,y,1,5\n", "q.csv")
    assert (error.first.row, error.first.column) == (2, "score")
    assert "score 7 is outside 0 to question 'q''s maximum score 5 (row 3)" in str(error)


def test_ids_that_are_not_text_are_refused_not_rendered_as_none() -> None:
    # Regression: a student id given as a list became the answer id "q1/None".
    data = json.dumps(
        [
            {"student_id": ["s1"], "question_id": "q1", "answer": "x"},
            {"answer_id": True, "answer": "y"},
            {"answer_id": "3", "question_id": {"id": 1}, "answer": "z"},
            {"answer_id": "", "answer": "w"},
        ]
    ).encode()
    error = _error(data, "q.json")
    found = [(p.row, p.column, p.message) for p in error.problems]
    assert found == [
        (1, "student_id", "student id must be text or a number, found a list"),
        (2, "answer_id", "answer id must be text or a number, found true/false"),
        (3, "question_id", "question id must be text or a number, found an object"),
        (4, "answer_id", "answer id is empty"),
    ]


def test_an_answer_that_is_not_text_is_refused() -> None:
    error = _error(b'[{"answer_id": "1", "answer": {"x": 1}}]', "q.json")
    assert (error.first.row, error.first.column) == (1, "answer")


def test_every_problem_is_reported_up_to_a_limit() -> None:
    rows = "".join(f"{i},x,bad\n" for i in range(30))
    error = _error(f"answer_id,answer,score\n{rows}".encode(), "q.csv")
    assert len(error.problems) == 20
    assert "further problems not shown" in str(error)


def test_valid_rows_are_not_imported_when_another_row_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"answer_id,answer,score\n1,good,1\n2,good,1\n3,bad,x\n")
    result = None
    with pytest.raises(AnswerFileError) as info:
        result = load_answers(path)
    assert result is None
    assert str(path) in str(info.value)


def test_a_missing_file_is_an_answer_file_error(tmp_path: Path) -> None:
    with pytest.raises(AnswerFileError, match="cannot read file"):
        load_answers(tmp_path / "absent.csv")


def test_a_problem_message_escapes_control_characters_from_the_file() -> None:
    # Column names are matched after strip(), which also strips the separators \x1c-\x1f, so
    # a key "score\x1f" is the score column and is named, escaped, in the message.
    data = json.dumps([{"answer_id": "1", "answer": "x", "score\x1f": "lots"}]).encode()
    error = _error(data, "q.json")
    assert error.first.column == "score\x1f"
    assert "\x1f" not in str(error) and 'column "score\\u001f"' in str(error)


# --------------------------------------------------------------------------- blanks and text


def test_blank_answers_are_kept() -> None:
    data = json.dumps(
        [
            {"answer_id": "1", "answer": ""},
            {"answer_id": "2", "answer": "   "},
            {"answer_id": "3", "answer": "\t\n\u00a0"},
            {"answer_id": "4", "answer": None},
            {"answer_id": "5", "answer": "x"},
        ]
    ).encode()
    (question,) = parse_answers(data, "q.json")
    assert [a.is_blank for a in question.answers] == [True, True, True, True, False]
    assert question.answers[2].text == "\t\n\u00a0"  # kept as written


def test_text_is_normalised_for_grouping_and_kept_for_display() -> None:
    answer = Answer("1", "q", "  Cafe\u0301\t\tis  ＯＫ: １９.６ m/s \n")
    assert answer.text == "  Cafe\u0301\t\tis  ＯＫ: １９.６ m/s \n"
    assert answer.normalized == "Café is OK: 19.6 m/s"
    assert normalize_text("caf\u00e9") == normalize_text("cafe\u0301")
    # Invisible characters say nothing: "Can\u00adberra" is "Canberra", and an answer of
    # nothing else is blank (it was a group of its own, embedded as an empty text).
    assert normalize_text("Can\u00adberra\u200b \ufeff") == "Canberra"
    assert [normalize_text(t) for t in ("\u200b", "\ufeff", "\u00ad", "\u200b\u200b", "\x07 \u202e")] == [""] * 5
    assert normalize_text("first\u2028second\x85third") == "first second third"  # separators stay spaces


def test_jsonl_records_may_hold_unicode_line_separators() -> None:
    # Regression: str.splitlines() cut records at U+2028 / U+0085 / form feed, which JSON
    # allows unescaped inside strings.
    text = "first\u2028second\x85third\x0cfourth"
    data = (json.dumps({"answer_id": "1", "answer": text}, ensure_ascii=False) + "\r\n").encode()
    (question,) = parse_answers(data, "q.jsonl")
    assert question.answers[0].text == text


def test_canonically_equivalent_answers_group_together(encoder) -> None:
    # Composed and decomposed "café", fullwidth and ASCII digits: each pair is one text after
    # NFKC. Three copies of a text make a group; without normalisation each spelling would
    # have two or one copies and stay ungrouped.
    rows = [
        ("1", "caf\u00e9"),
        ("2", "caf\u00e9"),
        ("3", "cafe\u0301"),
        ("4", "１９.６ m/s"),
        ("5", "19.6 m/s"),
        ("6", "19.6\u3000m/s"),
        ("7", "the moon"),
    ]
    data = "answer_id,answer\n" + "".join(f"{i},{t}\n" for i, t in rows)
    (question,) = parse_answers(data.encode(), "q.csv")
    result = group_question(question, encoder)
    groups = result.group_of()
    assert groups["1"] is not None and groups["1"] == groups["2"] == groups["3"]
    assert groups["4"] is not None and groups["4"] == groups["5"] == groups["6"]
    assert groups["1"] != groups["4"]
    # The original spelling is what is shown.
    assert result.question.answers[2].text == "cafe\u0301"
    assert result.grouping.labels[6] == UNGROUPED


def test_a_questions_text_and_references_may_be_on_any_of_its_rows() -> None:
    data = b"question_id,answer_id,answer,question,reference_answers\nq,1,a,,\nq,2,b,What is needed?,A closed circuit\nq,3,c,,\n"
    (question,) = parse_answers(data, "q.csv")
    assert question.text == "What is needed?" and question.reference_answers == ("A closed circuit",)
    error = _error(b"question_id,answer_id,answer,reference_answers\nq,1,a,A closed circuit\nq,2,b,An open one\n", "q.csv")
    assert (error.first.row, error.first.column) == (3, "reference_answers")
    assert "differ from those given for question 'q' in row 2" in error.first.message


def test_json_nested_too_deeply_is_refused_naming_the_file() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    for name in ("deep.json", "deep.jsonl"):
        error = _error(deep, name)
        assert error.path == name and "nested too deeply" in str(error)


def _jsonl(*rows: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_numeric_gold_grades_are_one_grade_however_written() -> None:
    data = _jsonl(*({"question_id": "q", "answer_id": f"a{i}", "answer": "x", "label": g} for i, g in enumerate([1, 1.0, "1.00", 2.5, "2.50", "right"])))
    (question,) = parse_answers(data, "g.jsonl")
    assert [a.gold for a in question.answers] == ["1", "1", "1", "2.5", "2.5", "right"]


def test_a_questions_dataset_and_split_are_text_and_agree_across_its_rows() -> None:
    row = {"question_id": "q", "answer": "x", "dataset": "beetle", "split": "train"}
    err = _error(_jsonl({**row, "answer_id": "a1"}, {**row, "answer_id": "a2", "split": "unseen-questions"}), "s.jsonl")
    assert "s.jsonl, row 2" in str(err) and "split differ from those given for question 'q' in row 1" in str(err)
    err = _error(_jsonl({**row, "answer_id": "a1", "split": ["train"]}, {**row, "answer_id": "a2", "dataset": {"x": 1}}), "t.jsonl")
    assert "row 1" in str(err) and "split must be text, found a list" in str(err)
    assert "row 2" in str(err) and "dataset must be text, found an object" in str(err)
    # A row that leaves them out takes the question's.
    (question,) = parse_answers(_jsonl({**row, "answer_id": "a1"}, {"question_id": "q", "answer_id": "a2", "answer": "y"}), "u.jsonl")
    assert (question.dataset, question.split) == ("beetle", "train")


def test_a_benchmark_file_names_each_answer_without_a_gold_grade() -> None:
    rows = [{"question_id": "q", "answer_id": f"a{i}", "answer": "x", "label": g} for i, g in enumerate(["right", None, ""])]
    err = _error(_jsonl(*rows), "gold.jsonl", require_gold=True)
    for row in (2, 3):
        assert f'row {row}, column "label": no gold grade' in str(err)
    assert parse_answers(_jsonl(*rows), "gold.jsonl")[0].answers[1].gold is None  # an import takes them
    # The benchmark measures questions of 20 answers or more: a smaller one may lack grades.
    assert parse_answers(_jsonl(*rows), "gold.jsonl", require_gold=20)[0].answers[1].gold is None


def test_a_question_stored_under_another_unicode_form_is_the_same_question() -> None:
    from grouper.intake import with_stored_ids

    composed, decomposed = "\u00dcbung-1", "U\u0308bung-1"
    parsed = parse_answers(f"question_id,answer_id,answer\n{composed},x1,yes\nother,x2,no\n".encode(), "a.csv")
    # Stored as written (a macOS file name gives the decomposed form): ids keep matching.
    assert parse_answers(b"answer_id,answer\nx1,yes\n", f"{decomposed}.csv")[0].question_id == decomposed
    matched = with_stored_ids(parsed, [decomposed, "q9"])
    assert [q.question_id for q in matched] == [decomposed, "other"]
    assert {a.question_id for a in matched[0].answers} == {decomposed}
    # Answer ids made from the question id and the student id take the stored form with it
    # (they kept the file's, so every stored answer came back as a late one).
    by_student = parse_answers(f"question_id,student_id,answer\n{composed},s1,yes\n".encode(), "b.csv")
    assert [a.answer_id for a in with_stored_ids(by_student, [decomposed])[0].answers] == [f"{decomposed}/s1"]


def test_a_semicolon_separated_csv_is_named_as_such() -> None:
    err = _error(b"answer_id;answer\na1;Canberra\n", "semi.csv")
    assert "separated by semicolons; save the file as comma-separated CSV" in str(err)


def test_an_error_says_when_reading_stopped_before_the_end() -> None:
    bad = "answer_id,answer,score\n" + "".join(f"a{i},x,lots\n" for i in range(30))
    err = _error(bad.encode(), "many.csv")
    assert err.truncated and len(err.problems) == 20
    assert not _error(b"answer_id,answer,score\na1,x,lots\n", "one.csv").truncated
