"""The store: questions, answers, groupings and the append-only edit log in one database.

:class:`Store` is what the UI, the command line and the evaluation call. The edit log is the
source of truth; the state a grader sees is its fold (:mod:`grouper.edits`), cached in memory
per question and in ``snapshots`` every ``snapshot_every`` edits.

Appending an edit is one write transaction that reads the question's current state, applies
the edit and inserts its row; the transaction takes the write lock first (SQLite
``BEGIN IMMEDIATE``, PostgreSQL ``SELECT ... FOR UPDATE`` on the question), so of two graders'
conflicting edits one is applied and the other refused with what changed. The edit is
acknowledged (returned) only after its row is committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, Row, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError

from grouper.answers import Answer, Question
from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import STATE_FORMAT, payload_from_dict, payload_to_dict, state_from_dict, state_to_dict
from grouper.edits import (
    AddAnswers,
    Edit,
    Payload,
    QuestionState,
    ReplayError,
    SetMaxScore,
    apply,
    check_text,
    initial_state,
    replay,
)
from grouper.store import migrate
from grouper.store.engine import WRITE, is_memory_sqlite, make_engine, run_with_retry
from grouper.store.schema import answers, courses, edits, exams, groupings, questions, snapshots

__all__ = ["DEFAULT_DB", "QuestionInfo", "Store", "StoreError", "database_files", "default_url", "is_sqlite_database", "sqlite_file"]

T = TypeVar("T")

#: The database used when neither ``--db`` nor ``GROUPER_DB`` names one.
DEFAULT_DB = "grouper.sqlite"


class StoreError(ValueError):
    """A request the store cannot serve: an unknown question, a duplicate import, ..."""


def _no_driver(url: str, exc: Exception) -> str:
    """Why SQLAlchemy has no engine for ``url``, in the user's terms."""
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        return f"not a database URL ({exc}); give a SQLite file or a SQLAlchemy URL such as sqlite:///grades.sqlite"
    if isinstance(exc, ImportError):
        return f"the driver for {driver!r} is not installed ({exc}); install it into grouper's environment"
    return f"no database driver for {driver!r}; give a SQLite file or a SQLAlchemy URL such as sqlite:///grades.sqlite"


def _not_openable(where: str, exc: Exception) -> str:
    """Why the database at ``where`` cannot be opened as a store, in one line."""
    if isinstance(exc, migrate.SchemaRefused):
        return f"{where} {exc}"
    assert isinstance(exc, DBAPIError)
    if "file is not a database" in str(exc.orig):
        return f"{where} is not a SQLite database ({exc.orig}); check --db"
    return (
        f"{where} cannot be opened ({exc.orig}); check that it is there and that this user can read and write "
        "it and its folder (SQLite keeps -wal and -shm files beside it)"
    )


def default_url(db: str | os.PathLike[str] | None = None) -> str:
    """The SQLAlchemy URL for ``db``: a URL as is, a path as a SQLite file.

    Parameters
    ----------
    db : str or PathLike, optional
        A URL (``postgresql://...``, ``sqlite://``) or a file path. Defaults to the
        ``GROUPER_DB`` environment variable, else ``grouper.sqlite`` in the working directory.
    """
    value = str(db) if db is not None else os.environ.get("GROUPER_DB") or DEFAULT_DB
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def sqlite_file(db: str | os.PathLike[str] | None = None) -> Path | None:
    """The SQLite file a ``--db`` value (path or URL, default as :func:`default_url`) names;
    ``None`` for another database or an in-memory one."""
    url = default_url(db)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None  # not a URL at all: Store says so
    if parsed.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") and database.startswith("file:"):
        # SQLite's URI form (sqlite:///file:grades.sqlite?mode=ro&uri=true): the file is the
        # URI's path; the query (mode=ro, ...) is SQLite's, not part of the name.
        database = database.removeprefix("file:").split("?", 1)[0]
    return Path(database)


def database_files(path: Path) -> set[Path]:
    """The file of a SQLite database and the ones SQLite keeps beside it (``-wal``, ``-shm``,
    ``-journal``): replacing any of them under its writers corrupts the database."""
    live = Path(path).expanduser().resolve()
    return {live, *(Path(f"{live}{suffix}") for suffix in ("-wal", "-shm", "-journal"))}


def is_sqlite_database(path: Path) -> bool:
    """Whether ``path`` is a file that starts as a SQLite database does."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


@dataclass(frozen=True)
class QuestionInfo:
    """A question as listed by :meth:`Store.questions`."""

    question_id: str
    text: str
    n_answers: int
    n_edits: int
    has_grouping: bool
    course: str | None
    exam: str | None


#: The exam of questions filed under a course but no exam.
NO_EXAM = "(no exam)"


def _filing_name(name: str, what: str) -> str:
    """A course's or exam's name as filed: NFC, runs of white space as one space."""
    filed = " ".join(unicodedata.normalize("NFC", name).split())
    if not filed:
        raise StoreError(f"the {what} name {name!r} is empty; give a name or no {what}")
    try:
        check_text(filed, f"the {what} name {name!r}")  # the edit log's rule for typed text
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    return filed


def filing_key(name: str) -> str:
    """What makes two course (or exam) names one: their letters, in any case, Unicode form
    or spacing.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        Equal for "Geography" and " geography", and for "Géology" composed or not.
    """
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _same_name(name: str, known: dict[str, int]) -> int | None:
    """The id of the known name that ``name`` spells in other case, if any."""
    key = filing_key(name)
    return next((pk for other, pk in known.items() if filing_key(other) == key), None)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything the store writes is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _check_grouping(grouping: Grouping) -> None:
    """A grouping whose groups and labels disagree would be stored and then fail every read
    of the question (and block its import again): refuse it, saying what is wrong."""
    n = len(grouping.labels)
    labels = [int(x) for x in grouping.labels]
    seen: set[int] = set()
    for group in grouping.groups:
        for m in group.members:
            if not 0 <= int(m) < n:
                raise StoreError(f"group {group.group_id} names answer {m}, but there are {n}; nothing was stored")
            if int(m) in seen or labels[int(m)] != group.group_id:
                raise StoreError(
                    f"group {group.group_id} and the labels disagree about answer {m}; nothing was stored"
                )
            seen.add(int(m))
    grouped = {i for i, label in enumerate(labels) if label != UNGROUPED}
    if grouped != seen:
        missing = sorted(grouped - seen)[:5]
        raise StoreError(f"answers {missing} are labelled with a group that does not list them; nothing was stored")


def _lost_append_race(exc: Exception) -> bool:
    """Two writers numbered the same edit (possible only without SQLite's write lock): retry."""
    text = str(exc)
    return isinstance(exc, IntegrityError) and ("uq_edits_question_edit" in text or "edits.question_pk, edits.edit_id" in text)


class Store:
    """Questions, groupings and edit logs in a database.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL or file path (see :func:`default_url`); ``"sqlite://"`` keeps everything
        in memory. Opening upgrades the schema in place to the newest revision.
    busy_timeout_s : float
        How long SQLite waits for another writer before retrying.
    retry_limit_s : float
        How long an operation keeps retrying while the database is busy before raising
        :class:`~grouper.store.engine.StoreBusy`.
    snapshot_every : int
        Store a snapshot of the folded state every this many edits of a question (0: never).
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        *,
        busy_timeout_s: float = 10.0,
        retry_limit_s: float = 120.0,
        snapshot_every: int = 200,
    ):
        self.url = default_url(url)
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every ({snapshot_every}) must be >= 0 (0 turns snapshots off)")
        self.snapshot_every = snapshot_every
        self.retry_limit_s = retry_limit_s
        try:
            self._engine = make_engine(self.url, busy_timeout_s=busy_timeout_s)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"--db {self.url}: {_no_driver(self.url, exc)}") from None
        # An in-memory database is one connection: its users take turns.
        self._lock: threading.RLock | None = threading.RLock() if is_memory_sqlite(self.url) else None
        self._states: dict[str, tuple[int | None, QuestionState]] = {}
        self._states_lock = threading.Lock()
        try:
            migrate.upgrade(self._engine)
        except (migrate.SchemaRefused, DBAPIError) as exc:
            self._engine.dispose()
            raise StoreError(_not_openable(self.where, exc)) from None
        from grouper.store.embedding_cache import EmbeddingCache

        self.embeddings = EmbeddingCache(self)

    @classmethod
    def open(cls, path: str | os.PathLike[str], **options: Any) -> Store:
        """Open (creating it if needed) the SQLite file at ``path``."""
        return cls(f"sqlite:///{Path(path).expanduser().resolve()}", **options)

    @property
    def where(self) -> str:
        """The database, for messages: a SQLite store's file, else its URL (password hidden)."""
        path = sqlite_file(self.url)
        if path is not None:
            return str(path)
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.url

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transactions

    def _guard(self) -> contextlib.AbstractContextManager:
        return self._lock if self._lock is not None else contextlib.nullcontext()

    def _read(self, fn: Callable[[Connection], T], what: str) -> T:
        def action() -> T:
            with self._guard(), self._engine.connect() as conn, conn.begin():
                return fn(conn)

        return run_with_retry(action, limit_s=self.retry_limit_s, what=what)

    def _write(self, fn: Callable[[Connection], T], what: str) -> T:
        def action() -> T:
            with self._guard(), self._engine.connect() as conn:
                conn.execution_options(**{WRITE: True})
                with conn.begin():
                    return fn(conn)  # committed when the block ends; acknowledged after

        try:
            return run_with_retry(action, limit_s=self.retry_limit_s, what=what, retry_on=_lost_append_race)
        except OperationalError as exc:
            if "readonly" not in str(exc.orig).replace("read-only", "readonly"):
                raise
            # The file (or its -wal/-shm beside it) cannot be written by this user.
            raise StoreError(
                f"{self.where} is read-only for this user ({exc.orig}); nothing was written. Check the "
                "permissions of the database file and of its -wal and -shm files beside it"
            ) from None

    # ------------------------------------------------------------------ questions and answers

    def import_question(self, question: Question, *, course: str | None = None, exam: str | None = None) -> None:
        """Store a question and its answers.

        Parameters
        ----------
        question : Question
        course, exam : str, optional
            File the question under an exam of a course (both created when new).

        Raises
        ------
        StoreError
            When a question with this id is already stored, or it has a maximum score
            (nothing is written).
        """
        if exam is not None and course is None:
            raise StoreError(f"exam {exam!r} needs a course; give course= too")
        if question.max_score is not None:
            # The maximum is the first edit of the log, which is folded over a grouping: stored
            # without one, it would be dropped without a word.
            raise StoreError(
                f"question {question.question_id!r} has a maximum score, which is logged over its grouping; "
                "store it with import_grouped (nothing was imported)"
            )
        self._write(lambda conn: self._insert_question(conn, question, course, exam), f"importing question {question.question_id}")

    def import_grouped(
        self,
        grouped: Sequence[tuple[Question, Grouping]],
        *,
        model_version: str,
        settings: dict[str, Any] | None = None,
        course: str | None = None,
        exam: str | None = None,
        author: str = "import",
    ) -> None:
        """Store questions, their groupings and their maximum scores in one transaction.

        What ``grouper import`` and the UI's import page write: either every question of the
        file is stored, grouped and given its maximum score (the first edit of its log,
        ``SetMaxScore``, attributed to ``author``), or, when anything fails or the process is
        killed, nothing is. Storing them one by one could leave a question without its
        grouping, which a second import would then refuse as already there.

        Parameters
        ----------
        grouped : sequence of (Question, Grouping)
            Each grouping's indices refer to its question's answers in order.
        model_version : str
            The encoder that produced the groupings.
        settings : dict, optional
            The grouping settings, kept for the record.
        course, exam : str, optional
            File the questions under an exam of a course (both created when new).
        author : str
            Who imports.

        Raises
        ------
        StoreError
            When a question is already stored, or a grouping does not label its question's
            answers (nothing is written).
        """
        if exam is not None and course is None:
            raise StoreError(f"exam {exam!r} needs a course; give course= too")

        def txn(conn: Connection) -> None:
            for question, grouping in grouped:
                if len(grouping.labels) != len(question.answers):
                    raise StoreError(
                        f"the grouping labels {len(grouping.labels)} answers but question "
                        f"{question.question_id!r} has {len(question.answers)}; nothing was imported"
                    )
                qpk = self._insert_question(conn, question, course, exam)
                self._insert_grouping(conn, qpk, grouping, model_version, settings)
                if question.max_score is None:
                    continue
                # The state is built from what is being written, not read through the cache:
                # a cached state of a transaction that rolls back must not outlive it.
                state = initial_state(question.question_id, [a.answer_id for a in question.answers], grouping)
                edit = Edit(
                    edit_id=1,
                    question_id=question.question_id,
                    author=author,
                    at=_now(),
                    base_version=0,
                    payload=SetMaxScore(question.max_score),
                )
                q = conn.execute(select(questions).where(questions.c.id == qpk)).one()
                self._log_edit(conn, q, edit, apply(state, edit))

        ids = ", ".join(q.question_id for q, _ in grouped)
        self._write(txn, f"importing question(s) {ids}")

    def _insert_question(self, conn: Connection, question: Question, course: str | None, exam: str | None) -> int:
        existing = conn.execute(select(questions.c.id).where(questions.c.question_id == question.question_id)).first()
        if existing is not None:
            raise StoreError(
                f"question {question.question_id!r} is already in {self.where}; nothing was imported. "
                "Give the question another id in the file to import it again as a new question"
            )
        exam_id = self._exam_id(conn, course, exam) if course is not None else None
        qpk = conn.execute(
            questions.insert().values(
                question_id=question.question_id,
                exam_id=exam_id,
                text=question.text,
                reference_answers=_dumps(list(question.reference_answers)),
                dataset=question.dataset,
                split=question.split,
                created_at=_now(),
            )
        ).inserted_primary_key[0]
        if question.answers:
            conn.execute(
                answers.insert(),
                [
                    {
                        "question_pk": qpk,
                        "answer_id": a.answer_id,
                        "position": i,
                        "student_id": a.student_id,
                        "text": a.text,
                        "normalized": a.normalized,
                        "gold": a.gold,
                        "score": a.score,
                    }
                    for i, a in enumerate(question.answers)
                ],
            )
        return qpk

    def _exam_id(self, conn: Connection, course: str, exam: str | None) -> int | None:
        course = _filing_name(course, "course")
        exam = NO_EXAM if exam is None else _filing_name(exam, "exam")
        # One spelling per course and per exam of it: "geography " typed at the next import is
        # the stored "Geography", not a second course that filters by course would miss.
        known = dict(conn.execute(select(courses.c.name, courses.c.id)).all())
        course_id = _same_name(course, known)
        if course_id is None:
            course_id = conn.execute(courses.insert().values(name=course, created_at=_now())).inserted_primary_key[0]
        known = dict(conn.execute(select(exams.c.name, exams.c.id).where(exams.c.course_id == course_id)).all())
        exam_id = _same_name(exam, known)
        if exam_id is None:
            exam_id = conn.execute(
                exams.insert().values(course_id=course_id, name=exam, created_at=_now())
            ).inserted_primary_key[0]
        return exam_id

    def _question_row(self, conn: Connection, question_id: str, *, lock: bool = False) -> Row:
        query = select(questions).where(questions.c.question_id == question_id)
        if lock:
            query = query.with_for_update()  # PostgreSQL: serialise appends per question
        row = conn.execute(query).first()
        if row is None:
            # Typed in the other Unicode form (a composed "Übung" for a stored decomposed one):
            # import keeps one question per NFC form, so at most one stored id matches.
            wanted = unicodedata.normalize("NFC", question_id)
            stored = conn.execute(select(questions.c.question_id).order_by(questions.c.id)).scalars().all()
            alike = [q for q in stored if unicodedata.normalize("NFC", q) == wanted]
            if len(alike) == 1:
                return self._question_row(conn, alike[0], lock=lock)
            # Ids as repr: one stored with escape sequences must not drive the terminal.
            hint = f"known: {', '.join(map(repr, stored[:5]))}{', ...' if len(stored) > 5 else ''}" if stored else "the store is empty"
            raise StoreError(f"question {question_id!r} is not in {self.where} ({hint}); import it with `grouper import FILE`")
        return row

    def question_ids(self) -> list[str]:
        """Ids of the stored questions, in import order."""
        return self._read(
            lambda conn: list(conn.execute(select(questions.c.question_id).order_by(questions.c.id)).scalars()),
            "listing questions",
        )

    def questions(self) -> list[QuestionInfo]:
        """Every stored question with its counts, in import order."""

        def txn(conn: Connection) -> list[QuestionInfo]:
            n_answers = dict(conn.execute(select(answers.c.question_pk, func.count()).group_by(answers.c.question_pk)).all())
            n_edits = dict(conn.execute(select(edits.c.question_pk, func.max(edits.c.edit_id)).group_by(edits.c.question_pk)).all())
            rows = conn.execute(
                select(questions, courses.c.name.label("course"), exams.c.name.label("exam"))
                .select_from(questions.outerjoin(exams, questions.c.exam_id == exams.c.id).outerjoin(courses, exams.c.course_id == courses.c.id))
                .order_by(questions.c.id)
            ).all()
            return [
                QuestionInfo(
                    r.question_id, r.text, n_answers.get(r.id, 0), n_edits.get(r.id, 0) or 0, r.grouping_id is not None, r.course, r.exam
                )
                for r in rows
            ]

        return self._read(txn, "listing questions")

    def question(self, question_id: str) -> Question:
        """The stored question with its answers (import order, then late answers), and its
        reference answers: those set by the log's latest ``SetReferences``, else as imported;
        its maximum score from the log too."""

        def txn(conn: Connection) -> Question:
            q = self._question_row(conn, question_id)
            return Question(
                q.question_id,
                q.text,
                self._answers(conn, q.id, question_id),
                tuple(json.loads(q.reference_answers)),
                q.dataset,
                q.split,
            )

        def both(conn: Connection) -> tuple[Question, QuestionState]:
            # One transaction: the answers and the state (references, maximum) of one moment,
            # not a late answer missing beside references set after it.
            return txn(conn), self._state_in(conn, self._question_row(conn, question_id))

        question, state = self._read(both, f"reading question {question_id}")
        references = question.reference_answers if state.reference_answers is None else state.reference_answers
        return replace(question, reference_answers=references, max_score=state.max_score)

    def reference_answers(self, question_id: str) -> tuple[str, ...]:
        """The question's reference answers now (as :meth:`question` gives them), without
        reading its answers: cheap enough for every page run."""
        state = self.state(question_id)
        if state.reference_answers is not None:
            return state.reference_answers
        return self._read(
            lambda conn: tuple(json.loads(self._question_row(conn, question_id).reference_answers)),
            f"reading question {question_id}",
        )

    def answers(self, question_id: str) -> tuple[Answer, ...]:
        """The question's answers: import order, then late answers."""
        return self._read(
            lambda conn: self._answers(conn, self._question_row(conn, question_id).id, question_id),
            f"reading the answers of question {question_id}",
        )

    def _answers(self, conn: Connection, qpk: int, question_id: str) -> tuple[Answer, ...]:
        rows = conn.execute(select(answers).where(answers.c.question_pk == qpk).order_by(answers.c.position)).all()
        return tuple(Answer(r.answer_id, question_id, r.text, r.student_id, r.gold, r.score) for r in rows)

    def _answer_ids(self, conn: Connection, qpk: int) -> list[str]:
        """The answers of version 0: late ones come in with the edits that added them."""
        query = select(answers.c.answer_id).where(answers.c.question_pk == qpk, answers.c.added_in_edit.is_(None))
        return list(conn.execute(query.order_by(answers.c.position)).scalars())

    # ------------------------------------------------------------------ groupings

    def save_grouping(
        self, question_id: str, grouping: Grouping, *, model_version: str, settings: dict[str, Any] | None = None
    ) -> int:
        """Store the grouping of a question imported without one: the base of its edit log.

        Parameters
        ----------
        question_id : str
        grouping : Grouping
            Indices refer to the answers in import order.
        model_version : str
            The encoder that produced it.
        settings : dict, optional
            The grouping settings, kept for the record.

        Returns
        -------
        int
            The grouping's id.

        Raises
        ------
        StoreError
            When the question already has a grouping. Its version 0 may be on a grader's
            screen, and an edit made there would land on the new grouping's groups of the same
            ids; a regroup (``grouper.regroup``) is logged as edits instead, which such an
            edit is checked against.
        """
        def txn(conn: Connection) -> int:
            q = self._question_row(conn, question_id, lock=True)
            n = conn.execute(select(func.count()).select_from(answers).where(answers.c.question_pk == q.id)).scalar()
            if len(grouping.labels) != n:
                raise StoreError(
                    f"the grouping labels {len(grouping.labels)} answers but question {question_id!r} has {n}; "
                    "group the stored answers"
                )
            if q.grouping_id is not None:
                raise StoreError(
                    f"question {question_id!r} is already grouped (grouping {q.grouping_id}); regroup it with "
                    "`grouper regroup`, which logs the new groups as edits; nothing was stored"
                )
            return self._insert_grouping(conn, q.id, grouping, model_version, settings)

        grouping_id = self._write(txn, f"saving the grouping of question {question_id}")
        with self._states_lock:
            self._states.pop(question_id, None)
        return grouping_id

    def _insert_grouping(
        self, conn: Connection, qpk: int, grouping: Grouping, model_version: str, settings: dict[str, Any] | None
    ) -> int:
        """Insert a grouping and make it the question's current one; returns its id."""
        _check_grouping(grouping)
        data = {
            "labels": [int(x) for x in grouping.labels],
            "confidence": [float(x) for x in grouping.confidence],
            "groups": [
                {"group_id": g.group_id, "title": g.title, "members": list(map(int, g.members)), "blank": g.blank}
                for g in grouping.groups
            ],
        }
        grouping_id = conn.execute(
            groupings.insert().values(
                question_pk=qpk,
                model_version=model_version,
                settings=_dumps(settings or {}),
                data=_dumps(data),
                created_at=_now(),
            )
        ).inserted_primary_key[0]
        conn.execute(questions.update().where(questions.c.id == qpk).values(grouping_id=grouping_id))
        return grouping_id

    def grouping(self, question_id: str) -> Grouping:
        """The grouping the question's edit log is folded over."""
        return self._read(lambda conn: self._grouping(conn, self._question_row(conn, question_id)), f"reading question {question_id}")

    def _grouping(self, conn: Connection, q: Row) -> Grouping:
        if q.grouping_id is None:
            raise StoreError(f"question {q.question_id!r} has no grouping yet; group it first (`grouper import` does)")
        data = json.loads(conn.execute(select(groupings.c.data).where(groupings.c.id == q.grouping_id)).scalar_one())
        return Grouping(
            labels=np.asarray(data["labels"], dtype=np.int64),
            confidence=np.asarray(data["confidence"], dtype=np.float64),
            groups=tuple(Group(g["group_id"], g["title"], tuple(g["members"]), g["blank"]) for g in data["groups"]),
        )

    def model_version(self, question_id: str) -> str:
        """The encoder version of the question's base grouping."""

        def txn(conn: Connection) -> str:
            q = self._question_row(conn, question_id)
            self._grouping(conn, q)  # says so when there is none
            return conn.execute(select(groupings.c.model_version).where(groupings.c.id == q.grouping_id)).scalar_one()

        return self._read(txn, f"reading question {question_id}")

    # ------------------------------------------------------------------ states

    def initial_state(self, question_id: str) -> QuestionState:
        """Version 0: the question's grouping before any edit."""

        def txn(conn: Connection) -> QuestionState:
            q = self._question_row(conn, question_id)
            return initial_state(question_id, self._answer_ids(conn, q.id), self._grouping(conn, q))

        return self._read(txn, f"reading question {question_id}")

    def state(self, question_id: str) -> QuestionState:
        """The question's current state: the fold of its whole edit log."""
        return self._read(lambda conn: self._state_in(conn, self._question_row(conn, question_id)), f"reading question {question_id}")

    def replay(self, question_id: str) -> QuestionState:
        """The state rebuilt from version 0 and every logged edit, ignoring caches and snapshots."""

        def txn(conn: Connection) -> QuestionState:
            q = self._question_row(conn, question_id)
            initial = initial_state(question_id, self._answer_ids(conn, q.id), self._grouping(conn, q))
            return replay(initial, self._edits_after(conn, q, 0))

        return self._read(txn, f"replaying question {question_id}")

    def _latest_edit_id(self, conn: Connection, qpk: int) -> int:
        return conn.execute(select(func.max(edits.c.edit_id)).where(edits.c.question_pk == qpk)).scalar() or 0

    def _state_in(self, conn: Connection, q: Row) -> QuestionState:
        """The current state, read inside ``conn``'s transaction: memory cache, else the latest
        snapshot, else version 0; then the edits logged since."""
        latest = self._latest_edit_id(conn, q.id)
        with self._states_lock:
            cached = self._states.get(q.question_id)
        state: QuestionState | None = None
        if cached is not None and cached[0] == q.grouping_id and cached[1].version <= latest:
            state = cached[1]
        if state is None:
            state = self._latest_snapshot(conn, q, latest)
        if state is None:
            state = initial_state(q.question_id, self._answer_ids(conn, q.id), self._grouping(conn, q))
        if state.version < latest:
            state = replay(state, self._edits_after(conn, q, state.version))
        self._remember(q.question_id, q.grouping_id, state)
        return state

    def _remember(self, question_id: str, grouping_id: int | None, state: QuestionState) -> None:
        with self._states_lock:
            cached = self._states.get(question_id)
            if cached is None or cached[0] != grouping_id or cached[1].version < state.version:
                self._states[question_id] = (grouping_id, state)

    def _latest_snapshot(self, conn: Connection, q: Row, latest: int) -> QuestionState | None:
        row = conn.execute(
            select(snapshots.c.state)
            .where(snapshots.c.question_pk == q.id, snapshots.c.format == STATE_FORMAT, snapshots.c.version <= latest)
            .order_by(snapshots.c.version.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        try:
            return state_from_dict(json.loads(row.state))
        except (ValueError, KeyError, TypeError, IndexError):
            return None  # a snapshot is only a cache: rebuild from the log instead

    def snapshot(self, question_id: str) -> int:
        """Store a snapshot of the question's current state now; returns its version."""

        def txn(conn: Connection) -> int:
            q = self._question_row(conn, question_id, lock=True)
            state = self._state_in(conn, q)
            self._insert_snapshot(conn, q.id, state)
            return state.version

        return self._write(txn, f"snapshotting question {question_id}")

    def _insert_snapshot(self, conn: Connection, qpk: int, state: QuestionState) -> None:
        exists = conn.execute(
            select(snapshots.c.version).where(snapshots.c.question_pk == qpk, snapshots.c.version == state.version)
        ).first()
        if exists is None:
            conn.execute(
                snapshots.insert().values(
                    question_pk=qpk, version=state.version, format=STATE_FORMAT, state=_dumps(state_to_dict(state)), created_at=_now()
                )
            )

    # ------------------------------------------------------------------ the edit log

    def append(
        self,
        question_id: str,
        author: str,
        base_version: int | None,
        payload: Payload,
        *,
        at: datetime | None = None,
    ) -> Edit:
        """Apply an edit and log it, atomically.

        Parameters
        ----------
        question_id : str
        author : str
            Who makes the edit.
        base_version : int or None
            The version of the question the author saw. ``None`` takes the current version
            (for scripts that act on the latest state by construction).
        payload : Payload
        at : datetime, optional
            The edit's time; defaults to now (UTC).

        Returns
        -------
        Edit
            Returned only once its row is committed.

        Raises
        ------
        EditRefused
            When the edit does not fit the current state (nothing is written); the message
            says what changed since ``base_version`` and by whom.
        StoreError
            When the question is unknown or has no grouping.
        """

        def txn(conn: Connection) -> tuple[Edit, QuestionState, int | None]:
            q = self._question_row(conn, question_id, lock=True)
            state = self._state_in(conn, q)
            edit = Edit(
                edit_id=state.version + 1,
                question_id=question_id,
                author=author,
                at=at or _now(),
                base_version=state.version if base_version is None else base_version,
                payload=payload,
            )
            new = apply(state, edit)  # EditRefused rolls the transaction back
            self._log_edit(conn, q, edit, new)
            return edit, new, q.grouping_id

        edit, new, grouping_id = self._write(txn, f"appending an edit to question {question_id}")
        self._remember(question_id, grouping_id, new)
        return edit

    def _log_edit(self, conn: Connection, q: Row, edit: Edit, new: QuestionState) -> None:
        conn.execute(
            edits.insert().values(
                question_pk=q.id,
                edit_id=edit.edit_id,
                author=edit.author,
                at=edit.at.astimezone(timezone.utc),  # SQLite keeps no offset: store the UTC instant
                base_version=edit.base_version,
                kind=edit.kind,
                payload=_dumps(payload_to_dict(edit.payload)),
            )
        )
        if self.snapshot_every and new.version % self.snapshot_every == 0:
            self._insert_snapshot(conn, q.id, new)

    def add_answers(
        self,
        question_id: str,
        late: Sequence[Answer],
        places: Sequence[int | None],
        author: str,
        base_version: int | None = None,
        *,
        at: datetime | None = None,
    ) -> Edit:
        """Add late answers to a stored question, each in a group or ungrouped, atomically.

        The answers are stored and an :class:`~grouper.edits.AddAnswers` edit is logged in one
        transaction, so the log still replays to the current state.

        Parameters
        ----------
        question_id : str
        late : sequence of Answer
            New answers (ids the question does not have yet).
        places : sequence of int or None
            Each answer's group (one nobody has reviewed: not confirmed, not graded), or
            ``None`` for ungrouped; :func:`grouper.late_answers.place_late_answers` chooses them.
        author : str
            Who added them.
        base_version : int, optional
            The version the places were chosen from (default: the current one).
        at : datetime, optional

        Returns
        -------
        Edit

        Raises
        ------
        EditRefused
            A place is a reviewed group or changed since ``base_version``, or an id is taken;
            nothing is written.
        """
        wrong = [a.answer_id for a in late if a.question_id != question_id]
        if wrong:
            raise StoreError(f"answer(s) {', '.join(wrong[:3])} are not answers to question {question_id}")
        payload = AddAnswers(tuple(a.answer_id for a in late), tuple(places))

        def txn(conn: Connection) -> tuple[Edit, QuestionState, int | None]:
            q = self._question_row(conn, question_id, lock=True)
            state = self._state_in(conn, q)
            edit = Edit(
                edit_id=state.version + 1, question_id=question_id, author=author, at=at or _now(),
                base_version=state.version if base_version is None else base_version, payload=payload,
            )
            new = apply(state, edit)  # refuses reviewed groups and taken ids before anything is written
            first = (conn.execute(select(func.max(answers.c.position)).where(answers.c.question_pk == q.id)).scalar() or 0) + 1
            conn.execute(
                answers.insert(),
                [
                    {
                        "question_pk": q.id, "answer_id": a.answer_id, "position": first + i,
                        "student_id": a.student_id, "text": a.text, "normalized": a.normalized,
                        "gold": a.gold, "score": a.score, "added_in_edit": edit.edit_id,
                    }
                    for i, a in enumerate(late)
                ],
            )
            self._log_edit(conn, q, edit, new)
            return edit, new, q.grouping_id

        edit, new, grouping_id = self._write(txn, f"adding late answers to question {question_id}")
        self._remember(question_id, grouping_id, new)
        return edit

    def edits(self, question_id: str | None = None, *, since: int = 0) -> list[Edit]:
        """Logged edits, oldest first: of one question after version ``since``, or of all
        questions (in import order of the questions)."""

        def txn(conn: Connection) -> list[Edit]:
            if question_id is not None:
                return list(self._edits_after(conn, self._question_row(conn, question_id), since))
            rows = conn.execute(
                select(edits, questions.c.question_id)
                .join(questions, edits.c.question_pk == questions.c.id)
                .order_by(questions.c.id, edits.c.edit_id)
            ).all()
            return [self._edit_from_row(r, r.question_id) for r in rows]

        return self._read(txn, "reading the edit log")

    def _edits_after(self, conn: Connection, q: Row, since: int) -> Iterator[Edit]:
        rows = conn.execute(
            select(edits).where(edits.c.question_pk == q.id, edits.c.edit_id > since).order_by(edits.c.edit_id)
        ).all()
        expected = since + 1
        for row in rows:
            if row.edit_id != expected:
                raise ReplayError(f"question {q.question_id}: the edit log jumps from edit {expected - 1} to {row.edit_id}")
            expected += 1
            yield self._edit_from_row(row, q.question_id)

    @staticmethod
    def _edit_from_row(row: Row, question_id: str) -> Edit:
        try:
            payload = payload_from_dict(json.loads(row.payload))
        except ValueError as exc:
            raise ReplayError(f"question {question_id}, edit {row.edit_id}: the logged payload is unreadable: {exc}") from exc
        return Edit(row.edit_id, question_id, row.author, _utc(row.at), row.base_version, payload)

    # ------------------------------------------------------------------ health

    def backup(self, target: str | os.PathLike[str], *, overwrite: bool = False) -> dict[str, int]:
        """Copy a SQLite store to ``target``, consistently, while others keep editing.

        SQLite's online backup copies the database as of one moment (a committed state: no
        half-written edit), through a connection of this store, so the UI and the command
        line may go on writing meanwhile. The copy is written beside ``target`` under a
        temporary name, checked (``PRAGMA integrity_check``), then renamed into place, so a
        failed backup never leaves a partial file where a good one was expected.

        Parameters
        ----------
        target : path
            The backup file.
        overwrite : bool
            Replace ``target`` when it exists (default: refuse).

        Returns
        -------
        dict
            ``{"questions": int, "edits": int}`` in the copy.

        Raises
        ------
        ValueError
            For a store that is not a SQLite file (in memory, or another database: use its
            own backup tool), or a target that is the store itself.
            Also an old backup that another program still has open: replaced under it, the
            copy would take that program's later writes.
        FileExistsError
            When ``target`` exists and ``overwrite`` is false.
        """
        import sqlite3

        parsed = make_url(self.url)
        if parsed.get_backend_name() != "sqlite" or is_memory_sqlite(self.url):
            where = "in memory" if is_memory_sqlite(self.url) else f"a {parsed.get_backend_name()} database"
            raise ValueError(f"{self.where} is {where}; only a SQLite file store is backed up here (use the database's own tools)")
        target = Path(target).expanduser().resolve()
        if target in database_files(Path(parsed.database)):
            # Replaced under the writers' open connections, the live store is corrupted and
            # their edits lost: never, whatever overwrite says.
            raise ValueError(f"{target} is the store itself; back it up to another file")
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists; choose another name (or overwrite it, when it is an old backup)")
        partial = target.with_name(f".{target.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            with self._engine.connect() as conn:
                source = conn.connection.driver_connection
                dest = sqlite3.connect(partial)
                try:
                    source.backup(dest)
                    check = dest.execute("PRAGMA integrity_check").fetchone()[0]
                    n_questions = dest.execute("SELECT count(*) FROM questions").fetchone()[0]
                    n_edits = dest.execute("SELECT count(*) FROM edits").fetchone()[0]
                finally:
                    dest.close()
            if check != "ok":
                raise RuntimeError(f"the backup of {self.where} failed its integrity check: {check}")
            if target.exists():
                _release_old_backup(target)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return {"questions": int(n_questions), "edits": int(n_edits)}

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``"ok"`` when sound); ``"ok"`` for other backends,
        which check themselves."""
        if make_url(self.url).get_backend_name() != "sqlite":
            return "ok"
        return self._read(
            lambda conn: "\n".join(r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").all()), "checking the database"
        )


def _release_old_backup(target: Path) -> None:
    """Make ``target`` (an old backup about to be replaced) safe to replace.

    SQLite keeps a database's recent commits in ``-wal`` (or a half-done transaction in
    ``-journal``) beside it and replays them into whatever file then has that name: a new copy
    renamed over an old backup that still had its log would come back as the old backup. Opened
    and closed once, a log left by a program that was killed is folded in and removed; one
    that stays belongs to a program that still has the file open, which would go on writing to
    the replaced file.

    Raises
    ------
    ValueError
        When another program still has ``target`` open.
    """
    import sqlite3

    logs = [target.with_name(target.name + suffix) for suffix in ("-wal", "-journal")]
    if not any(log.exists() for log in logs):
        return
    try:
        conn = sqlite3.connect(target)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # rolls back a hot journal
        finally:
            conn.close()
    except sqlite3.Error:
        pass  # not a database (anymore): nothing of it to keep, and the check below decides
    still = [log.name for log in logs if log.exists()]
    if still:
        raise ValueError(
            f"{target} is open in another program (its {still[0]} is in use); "
            "close that program, or back up to another file"
        )
