"""Students' answers: the data model and the import of answer files.

An answer file is CSV, JSON (a list of objects, or an object with an ``answers`` list) or
JSONL (one object per line). It holds one question, or many with a question column. The
import is all or nothing: every problem found is reported with the file, the row and the
column, and no answer is returned unless the whole file is valid.

Text is kept twice: ``Answer.text`` exactly as the student wrote it (for display), and
``Answer.normalized`` (Unicode NFKC, whitespace collapsed) for grouping, so that canonically
equivalent strings group together.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = [
    "Answer",
    "AnswerFileError",
    "FileProblem",
    "Question",
    "exact_text_key",
    "load_answers",
    "normalize_text",
    "parse_answers",
    "with_max_score",
]

# Accepted names for each field, first match wins. Names are compared case-insensitively
# after stripping, so "Answer ID" and "answer_id" both work.
_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "answer_id": ("answer_id", "answerid", "answer id", "id", "response_id"),
    "student_id": ("student_id", "studentid", "student id", "student", "sid"),
    "text": ("answer", "answer_text", "text", "response", "student_answer"),
    "gold": ("grade", "label", "gold", "gold_grade", "gold_label"),
    "score": ("score", "points", "gold_score"),
    "question_id": ("question_id", "questionid", "question id", "qid"),
    "question_text": ("question", "question_text", "prompt"),
    "reference_answers": ("reference_answers", "reference_answer", "reference"),
    "max_score": ("max_score", "max_points", "points_possible", "out_of"),
    "dataset": ("dataset",),
    "split": ("split",),
}

_KNOWN_COLUMNS = frozenset(alias for aliases in _COLUMN_ALIASES.values() for alias in aliases)

_WHITESPACE = re.compile(r"\s+")
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_MAX_PROBLEMS = 20  # enough to fix a file in one go without flooding the terminal


def normalize_text(text: str) -> str:
    """Return the grouping form of an answer: Unicode NFKC with whitespace collapsed.

    Parameters
    ----------
    text : str
        The answer as written.

    Returns
    -------
    str
        NFKC-normalised text without invisible characters (format and control characters:
        zero-width spaces, byte-order marks, soft hyphens, bidi marks), runs of whitespace
        replaced by one space, stripped. Canonically (and compatibly) equivalent inputs give
        the same string, and an answer of invisible characters only is blank.
    """
    text = unicodedata.normalize("NFKC", text)
    if not text.isprintable():  # the fast path: most answers hold nothing to drop
        text = "".join(c for c in text if c.isspace() or unicodedata.category(c) not in ("Cf", "Cc"))
    return _WHITESPACE.sub(" ", text).strip()


def exact_text_key(text: str) -> str:
    """The key of identical answers (and of the exact-text baseline): NFKC, casefolded, punctuation and spaces stripped.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        Answers with equal keys form one group in the baseline. Whitespace runs are
        collapsed to one space so that removing a punctuation mark between words does not
        glue them together.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch).startswith(("P", "Z")) or ch.isspace() else ch for ch in folded)
    return " ".join(kept.split())


@dataclass(frozen=True, slots=True)
class Answer:
    """One student's answer to one question.

    Attributes
    ----------
    answer_id : str
        Unique within the imported file.
    question_id : str
        The question this answers.
    text : str
        The answer exactly as written; this is what is displayed.
    student_id : str or None
        Who wrote it, when the file says.
    gold : str or None
        Gold grade class, when the file has one (used by benchmarks and sample data).
    score : float or None
        Gold score, when the file has one.
    normalized : str
        ``normalize_text(text)``, the form used for grouping.
    """

    answer_id: str
    question_id: str
    text: str
    student_id: str | None = None
    gold: str | None = None
    score: float | None = None
    normalized: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "normalized", normalize_text(self.text))

    @property
    def is_blank(self) -> bool:
        """True for an empty or whitespace-only answer."""
        return not self.normalized


@dataclass(frozen=True, slots=True)
class Question:
    """One exam question with its answers, in file order.

    Attributes
    ----------
    question_id : str
        Unique within the imported file.
    text : str
        The question as asked (empty when the file does not say).
    answers : tuple of Answer
        The students' answers, in the order of the file.
    reference_answers : tuple of str
        The instructor's model answers, when given.
    dataset, split : str or None
        Provenance columns of benchmark corpora, kept for evaluation.
    max_score : float or None
        The question's maximum score (points possible), when the file gives one; every grade
        then lies between 0 and it.
    """

    question_id: str
    text: str
    answers: tuple[Answer, ...]
    reference_answers: tuple[str, ...] = ()
    dataset: str | None = None
    split: str | None = None
    max_score: float | None = None


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One problem found in an answer file, located as precisely as the format allows."""

    row: int | None
    column: str | None
    message: str

    def describe(self, path: str) -> str:
        """Render as ``path, row N, column "c": message``."""
        where = [path]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            # A column name comes from the file: escape control characters so that an error
            # message cannot carry a terminal escape sequence.
            column = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in self.column)
            where.append(f'column "{column}"')
        return f"{', '.join(where)}: {self.message}"


class AnswerFileError(ValueError):
    """An answer file could not be imported; nothing from it was imported.

    Attributes
    ----------
    path : str
        The file.
    problems : list of FileProblem
        Every problem found (up to a limit), each with its row and column.
    """

    def __init__(self, path: str, problems: Sequence[FileProblem], truncated: bool = False):
        self.path = path
        self.problems = list(problems)
        self.truncated = truncated  # more problems than these: the reading stopped
        lines = [p.describe(path) for p in self.problems]
        if truncated:
            lines.append(f"{path}: further problems not shown; fix these first")
        header = f"{path}: nothing imported, {len(self.problems)} problem(s) found"
        super().__init__(header + "\n" + "\n".join("  " + line for line in lines))

    @property
    def first(self) -> FileProblem:
        """The first problem, in file order."""
        return self.problems[0]


class _Problems:
    """Collects problems, stopping the import once there are too many to be useful."""

    def __init__(self, path: str):
        self.path = path
        self.items: list[FileProblem] = []
        self.truncated = False

    def add(self, row: int | None, column: str | None, message: str) -> None:
        if len(self.items) >= _MAX_PROBLEMS:
            self.truncated = True
            raise AnswerFileError(self.path, self.items, truncated=True)
        self.items.append(FileProblem(row, column, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise AnswerFileError(self.path, self.items, self.truncated)


# --------------------------------------------------------------------------- decoding


def _decode(data: bytes, path: str, encoding: str | None) -> str:
    """Decode bytes as UTF-8 (BOM or not) or UTF-16 (BOM), or the explicit ``encoding``.

    Anything else is refused with the row of the first undecodable byte: guessing a
    legacy code page silently corrupts names and accents, so that takes an explicit choice.
    """
    if encoding is not None:
        try:
            # A BOM survives an explicit codec as U+FEFF and would glue itself to the first
            # column's name ("\ufeffanswer_id"), so drop it here as detection does.
            return data.decode(encoding).removeprefix("\ufeff")
        except LookupError:
            raise AnswerFileError(path, [FileProblem(None, None, f"unknown encoding {encoding!r}")]) from None
        except UnicodeDecodeError as exc:
            row = data.count(b"\n", 0, exc.start) + 1
            raise AnswerFileError(
                path, [FileProblem(row, None, f"bytes are not valid {encoding}: {exc.reason}")]
            ) from None
    if data.startswith(b"\xef\xbb\xbf"):
        codec, body = "utf-8", data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec, body = "utf-16", data
    elif _looks_like_utf16_without_bom(data):
        codec, body = ("utf-16-le" if data[1:2] == b"\x00" else "utf-16-be"), data
    else:
        codec, body = "utf-8", data
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(data) - len(body))
        row = data.count(b"\n", 0, offset) + 1
        bad = data[offset : offset + 4].hex(" ")
        raise AnswerFileError(
            path,
            [
                FileProblem(
                    row,
                    None,
                    f"bytes {bad} at byte {offset} are not valid {codec.upper()}; save the file "
                    "as UTF-8, or name its encoding (--encoding cp1252 on the command line, "
                    "'File encoding' on the import page)",
                )
            ],
        ) from None
    return text


def _looks_like_utf16_without_bom(data: bytes) -> bool:
    # ASCII-range text in UTF-16 has a NUL in every other byte; UTF-8 text never has NULs.
    head = data[:200]
    return len(head) >= 4 and (head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4)


# --------------------------------------------------------------------------- records


def _records_csv(text: str, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (row, record) with row numbered as a spreadsheet shows it (header = row 1).

    The header is checked before any data row is read, so a file with a header row only is
    judged like any other: missing required columns are an error, a valid header with no
    rows imports zero answers.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        problems.add(1, None, "the file is empty; expected a header row naming the columns")
        return
    except csv.Error as exc:
        problems.add(1, None, f"unreadable header: {exc}")
        return
    header = [h.strip() for h in header]
    ok = True
    seen: set[str] = set()
    for name in header:
        # Two columns of one name that is read would silently lose one of them in the row's
        # dict. Other columns (unnamed trailing ones from spreadsheets, notes) are never read.
        if name.lower() in seen and name.lower() in _KNOWN_COLUMNS:
            problems.add(1, name, "the header names this column twice")
            ok = False
        seen.add(name.lower())
    columns = _resolve_columns(header)
    if len(header) == 1 and ";" in header[0] and ("text" not in columns or len(columns) == 1):
        # A spreadsheet saved "CSV" with semicolons (the comma is a decimal mark there): the
        # header reads as one column, and "missing column answer" would say nothing useful.
        problems.add(1, None, "the header is one column separated by semicolons; save the file as comma-separated CSV")
        return
    if not _check_required(columns, 1, problems) or not ok:
        return  # every row would repeat the header's problem
    row = 1
    while True:
        row += 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.add(row, None, f"unreadable row: {exc}")
            return  # the reader cannot resynchronise after a quoting error
        if not fields or (len(fields) == 1 and not fields[0] and len(header) > 1):
            continue  # a blank line between records is not an answer
        if len(fields) > len(header):
            problems.add(row, None, f"{len(fields)} fields but the header has {len(header)} columns")
            continue
        fields += [""] * (len(header) - len(fields))
        yield row, dict(zip(header, fields, strict=True))


def _records_jsonl(text: str, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    # Split on "\n" only: str.splitlines() also breaks at U+2028, U+0085, form feeds and
    # more, which JSON allows unescaped inside strings, so a student's line separator would
    # cut a valid record in two.
    for row, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, parse_int=_json_int)
        except json.JSONDecodeError as exc:
            problems.add(row, None, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except _HugeNumber as exc:
            problems.add(row, None, str(exc))
            continue
        except RecursionError:
            problems.add(row, None, _TOO_DEEP)
            continue
        if not isinstance(record, dict):
            problems.add(row, None, f"expected a JSON object, found {_kind(record)}")
            continue
        if _holds_valid_text(row, record, problems):
            yield row, record


def _holds_valid_text(row: int, record: dict[str, Any], problems: _Problems) -> bool:
    """Whether a JSON record's text is all valid. JSON can write a lone surrogate ("\\ud800"),
    which no text holds: the tokenizer and the store would fail on it later, unnamed."""
    ok = True
    for column, value in record.items():
        for text in [column, *(value if isinstance(value, list) else [value])]:
            if not isinstance(text, str):
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                problems.add(
                    row, column, f"is not valid text: character {exc.start + 1} is a lone surrogate "
                    f"(U+{ord(text[exc.start]):04X}), which a JSON escape can write but no text holds"
                )
                ok = False
                break
    return ok


class _HugeNumber(ValueError):
    """A JSON integer longer than Python converts (``sys.get_int_max_str_digits``)."""


#: Digits of the longest JSON integer read; Python refuses to convert longer ones (4,300).
_MAX_INT_DIGITS = 4300


def _json_int(digits: str) -> int:
    """A JSON integer; one too long to convert is a problem of the file, said plainly (the
    reader's own error advises ``sys.set_int_max_str_digits``)."""
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise _HugeNumber(f"holds a number of {len(digits.lstrip('-')):,} digits, which no answer file needs")
    return int(digits)


# Python's JSON reader recurses per nesting level: a file nested thousands deep is refused.
_TOO_DEEP = "JSON nested too deeply to read (an answer file is a list of flat records)"


def _records_json(text: str, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a JSON file are numbered from 1 in the order of the list."""
    try:
        document = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        problems.add(exc.lineno, None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
        return
    except _HugeNumber as exc:
        problems.add(None, None, str(exc))
        return
    except RecursionError:
        problems.add(None, None, _TOO_DEEP)
        return
    if isinstance(document, dict) and isinstance(document.get("answers"), list):
        items = document["answers"]
    elif isinstance(document, list):
        items = document
    else:
        problems.add(None, None, 'expected a list of answer objects, or an object with an "answers" list')
        return
    for row, record in enumerate(items, start=1):
        if not isinstance(record, dict):
            problems.add(row, None, f"expected a JSON object, found {_kind(record)}")
            continue
        if _holds_valid_text(row, record, problems):
            yield row, record


_READERS = {".csv": _records_csv, ".jsonl": _records_jsonl, ".ndjson": _records_jsonl, ".json": _records_json}


# --------------------------------------------------------------------------- columns


def _resolve_columns(keys: Iterable[str]) -> dict[str, str]:
    """Map each field to the file's own column name for it."""
    by_lower = {k.strip().lower(): k for k in keys}
    resolved: dict[str, str] = {}
    for fieldname, aliases in _COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in by_lower:
                resolved[fieldname] = by_lower[alias]
                break
    return resolved


def _check_required(columns: Mapping[str, str], row: int | None, problems: _Problems) -> bool:
    """Report the required fields ``columns`` lacks; True when none is missing."""
    missing = []
    if "text" not in columns:
        missing.append("answer (or answer_text, text, response)")
    if "answer_id" not in columns and "student_id" not in columns:
        missing.append("answer_id (or student_id)")
    if missing:
        problems.add(row, None, "missing required column " + " and ".join(missing))
    return not missing


def _as_text(value: Any) -> str | None:
    """Cell value as text; numbers are accepted (a numeric answer may arrive as 19.6)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return None


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages about JSON files."""
    names = {dict: "an object", list: "a list", bool: "true/false", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _id_problem(what: str, raw: Any, parsed: str | None) -> str:
    """Message for an id that is empty (``parsed == ""``) or not text at all."""
    return f"{what} is empty" if parsed == "" else f"{what} must be text or a number, found {_kind(raw)}"


def _as_id(value: Any) -> str | None:
    # As written (stored ids are matched by their NFC form on import: see
    # grouper.intake.with_stored_ids), so that ids already stored keep matching.
    text = _as_text(value)
    return None if text is None else text.strip()


def _as_gold(value: Any) -> str | None:
    """A gold grade as text; a number is written one way, so that 1, 1.0 and "1.00" are one
    grade (and 2.5 and "2.50"), as they are to whoever graded."""
    text = _as_id(value)
    if text and _PLAIN_DECIMAL.fullmatch(text):
        number = Decimal(text).normalize()
        text = format(number, "f") if number != 0 else "0"
    return text


def _as_score(value: Any) -> tuple[float | None, bool]:
    """(score, ok). Empty means no score; anything else must be a finite number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, True
    if isinstance(value, bool):
        return None, False
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer of 400 digits
        return None, False
    return (number, True) if math.isfinite(number) else (None, False)


def _as_references(value: Any) -> tuple[str, ...] | None:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


# --------------------------------------------------------------------------- assembly


@dataclass
class _QuestionDraft:
    text: str
    reference_answers: tuple[str, ...]
    dataset: str | None
    split: str | None
    answers: list[Answer] = field(default_factory=list)
    max_score: float | None = None
    max_score_row: int | None = None  # the row that gave it, for the message of a clash
    text_row: int | None = None
    references_row: int | None = None
    dataset_row: int | None = None
    split_row: int | None = None
    missing_gold: list[tuple[int, str]] = field(default_factory=list)  # (row, column) without a grade


def parse_answers(
    data: bytes,
    path: str | Path,
    *,
    encoding: str | None = None,
    file_format: str | None = None,
    require_gold: int = 0,
) -> list[Question]:
    """Parse the bytes of an answer file; all or nothing.

    Parameters
    ----------
    data : bytes
        The file's content.
    path : str or Path
        Its name, used in error messages and to pick the format from the suffix.
    encoding : str, optional
        Decode with this codec instead of detecting UTF-8 / UTF-16.
    file_format : {"csv", "json", "jsonl"}, optional
        Overrides the suffix.
    require_gold : int
        Every answer of a question with at least this many answers must have a gold grade
        (the benchmark's files, which measure those questions); 0: none must.

    Returns
    -------
    list of Question
        In order of first appearance in the file.

    Raises
    ------
    AnswerFileError
        With every problem found (file, row, column), when anything in the file is wrong.
    """
    name = str(path)
    suffix = "." + file_format.lower().lstrip(".") if file_format else Path(name).suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise AnswerFileError(
            name, [FileProblem(None, None, f"unknown file type {suffix or '(none)'!r}; use .csv, .json or .jsonl")]
        )
    problems = _Problems(name)
    text = _decode(data, name, encoding)
    default_question = Path(name).stem or "question"

    drafts: dict[str, _QuestionDraft] = {}
    seen_ids: dict[str, int] = {}
    columns: dict[str, str] | None = None
    for row, record in reader(text, problems):
        # A CSV's header was checked by its reader; JSON objects each bring their own keys.
        if columns is None or suffix != ".csv":
            columns = _resolve_columns(record.keys())
            if suffix != ".csv" and not _check_required(columns, row, problems):
                continue
        answer = _parse_record(record, columns, row, default_question, problems, drafts, require_gold)
        if answer is None:
            continue
        if answer.answer_id in seen_ids:
            problems.add(
                row,
                columns.get("answer_id", columns.get("student_id")),
                f"duplicate answer id {answer.answer_id!r} (first seen in row {seen_ids[answer.answer_id]})",
            )
            continue
        seen_ids[answer.answer_id] = row
        drafts[answer.question_id].answers.append(answer)
    for qid, d in drafts.items():
        if require_gold and len(d.answers) >= require_gold:
            for row, column in d.missing_gold:
                problems.add(row, column, "no gold grade: every answer needs one here (a label column)")
        # A maximum given on a later row also bounds the scores of the rows before it.
        for answer in d.answers:
            if d.max_score is not None and answer.score is not None and not 0 <= answer.score <= d.max_score:
                problems.add(
                    seen_ids[answer.answer_id],
                    (columns or {}).get("score", "score"),
                    f"score {answer.score:g} is outside 0 to question {qid!r}'s maximum score {d.max_score:g} "
                    f"(row {d.max_score_row})",
                )
    if not drafts and not problems.items:
        # A header and no rows, or "[]": importing it would silently do nothing.
        problems.add(None, None, "the file holds no answers (no rows after the header, or an empty list)")
    problems.raise_if_any()
    return [
        Question(qid, d.text, tuple(d.answers), d.reference_answers, d.dataset, d.split, d.max_score)
        for qid, d in drafts.items()
    ]


def _parse_record(
    record: Mapping[str, Any],
    columns: Mapping[str, str],
    row: int,
    default_question: str,
    problems: _Problems,
    drafts: dict[str, _QuestionDraft],
    require_gold: int = 0,
) -> Answer | None:
    ok = True

    def cell(fieldname: str) -> Any:
        column = columns.get(fieldname)
        return None if column is None else record.get(column)

    text = _as_text(cell("text"))
    if text is None:
        problems.add(row, columns["text"], f"answer must be text, found {_kind(cell('text'))}")
        ok = False

    # Ids: text or a number, never empty. An id that is neither (a list, an object, a bool)
    # is reported as such rather than rendered as "None" into a derived answer id.
    student_id: str | None = None
    if "student_id" in columns:
        student_id = _as_id(cell("student_id"))
        if student_id is None:
            problems.add(row, columns["student_id"], _id_problem("student id", cell("student_id"), None))
            ok = False
    question_id: str | None = default_question
    if "question_id" in columns:
        question_id = _as_id(cell("question_id"))
        if not question_id:
            message = _id_problem("question id", cell("question_id"), question_id)
            problems.add(row, columns["question_id"], message)
            ok = False

    answer_id: str | None
    if "answer_id" in columns:
        answer_id = _as_id(cell("answer_id"))
        if not answer_id:
            problems.add(row, columns["answer_id"], _id_problem("answer id", cell("answer_id"), answer_id))
            ok = False
    elif student_id is None:
        answer_id = None  # already reported
    elif student_id == "":
        problems.add(row, columns["student_id"], "student id is empty (it is the answer id here)")
        answer_id = None
        ok = False
    else:
        # No answer id column: the student id identifies the answer within its question.
        answer_id = student_id if "question_id" not in columns else f"{question_id}/{student_id}"

    gold = _as_gold(cell("gold")) if "gold" in columns else None
    if "gold" in columns and gold is None:
        problems.add(row, columns["gold"], "grade must be text or a number")
        ok = False
    missing_gold = bool(require_gold) and not gold
    labels: dict[str, str | None] = {}
    for fieldname, what in (("dataset", "dataset"), ("split", "split")):
        labels[fieldname] = _as_id(cell(fieldname)) or None
        if fieldname in columns and _as_id(cell(fieldname)) is None:
            problems.add(row, columns[fieldname], f"{what} must be text, found {_kind(cell(fieldname))}")
            ok = False
    score, score_ok = _as_score(cell("score"))
    if not score_ok:
        problems.add(row, columns["score"], f"score {cell('score')!r} is not a number")
        ok = False
    references = _as_references(cell("reference_answers"))
    if references is None:
        problems.add(row, columns["reference_answers"], "reference answers must be text or a list of texts")
        ok = False
    max_score, max_ok = _as_score(cell("max_score"))
    if not max_ok or (max_score is not None and max_score <= 0):
        problems.add(row, columns["max_score"], f"maximum score {cell('max_score')!r} is not a number above 0")
        ok = False
    if not ok:
        return None

    assert question_id is not None and answer_id is not None and text is not None
    question_text = _as_text(cell("question_text")) or ""
    if question_id not in drafts:
        drafts[question_id] = _QuestionDraft(text="", reference_answers=(), dataset=None, split=None)
    draft = drafts[question_id]
    if missing_gold:
        draft.missing_gold.append((row, columns.get("gold", "label")))
    # The question's text and reference answers may be on any of its rows (often only the
    # first, sometimes only a later one): rows that leave them empty take them, rows that
    # give other ones are wrong, as for the maximum score below.
    for value, attribute, row_attribute, column, what in (
        (question_text, "text", "text_row", "question_text", "question text"),
        (references or (), "reference_answers", "references_row", "reference_answers", "reference answers"),
        (labels["dataset"], "dataset", "dataset_row", "dataset", "dataset"),
        (labels["split"], "split", "split_row", "split", "split"),
    ):
        if not value:
            continue
        if not getattr(draft, attribute):
            setattr(draft, attribute, value)
            setattr(draft, row_attribute, row)
        elif getattr(draft, attribute) != value:
            problems.add(
                row,
                columns[column],
                f"{what} differ from those given for question {question_id!r} in row {getattr(draft, row_attribute)}",
            )
            return None
    if max_score is not None:
        # One maximum per question: rows that leave it empty take it, rows that differ are wrong.
        if draft.max_score is None:
            draft.max_score, draft.max_score_row = max_score, row
        elif draft.max_score != max_score:
            problems.add(
                row,
                columns["max_score"],
                f"maximum score {max_score:g} differs from {draft.max_score:g} given for question "
                f"{question_id!r} in row {draft.max_score_row}",
            )
            return None
    return Answer(
        answer_id=answer_id,
        question_id=question_id,
        text=text,
        student_id=student_id or None,
        gold=gold or None,
        score=score,
    )


def load_answers(
    path: str | Path, *, encoding: str | None = None, file_format: str | None = None, require_gold: int = 0
) -> list[Question]:
    """Import an answer file (CSV, JSON or JSONL); all or nothing.

    Parameters
    ----------
    path : str or Path
        The file.
    encoding : str, optional
        Explicit codec; by default UTF-8 (with or without BOM) and UTF-16 are detected and
        anything else is refused.
    file_format : {"csv", "json", "jsonl"}, optional
        Overrides the file's suffix.
    require_gold : int
        Every answer of a question with at least this many answers must have a gold grade
        (the benchmark's files, which measure those questions); 0: none must.

    Returns
    -------
    list of Question

    Raises
    ------
    AnswerFileError
        When the file is missing, unreadable or has any invalid row.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise AnswerFileError(name, [FileProblem(None, None, f"cannot read file: {exc.strerror}")]) from None
    return parse_answers(data, name, encoding=encoding, file_format=file_format, require_gold=require_gold)


def with_max_score(questions: Sequence[Question], max_score: float, option: str = "--max-score") -> list[Question]:
    """The questions, each with ``max_score`` as its maximum unless its file gave one (the
    file's wins: it is the more specific).

    Parameters
    ----------
    questions : sequence of Question
    max_score : float
        Above 0.
    option : str
        How the caller names the value, for the messages.

    Returns
    -------
    list of Question

    Raises
    ------
    ValueError
        When ``max_score`` is not above 0, or the ``score`` of an answer to a question that
        takes it lies outside 0 to ``max_score``; the message names the answer.
    """
    if isinstance(max_score, bool) or not math.isfinite(float(max_score)) or float(max_score) <= 0:
        raise ValueError(f"{option} must be a number above 0, found {max_score!r}")
    max_score = float(max_score)
    for q in questions:
        for a in q.answers:
            if q.max_score is None and a.score is not None and not 0 <= a.score <= max_score:
                raise ValueError(
                    f"question {q.question_id}, answer {a.answer_id}: score {a.score:g} is outside 0 to "
                    f"{option} {max_score:g}; nothing was imported"
                )
    return [q if q.max_score is not None else replace(q, max_score=max_score) for q in questions]
