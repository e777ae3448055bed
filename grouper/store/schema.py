"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` create them.

Identity: every table has an integer surrogate key; the ids that people use (a question's id
from the answer file, an answer's id) are unique columns. Edits are numbered per question
(``edit_id`` 1, 2, ...: the version each produces).

The ``edits`` table is the source of truth and is append-only: the database itself refuses
UPDATE and DELETE on it (triggers, created by the migrations). ``snapshots`` only cache the
fold of the log and may be dropped at any time.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "answers",
    "courses",
    "edits",
    "embeddings",
    "exams",
    "groupings",
    "metadata",
    "questions",
    "snapshots",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

courses = Table(
    "courses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

exams = Table(
    "exams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("course_id", Integer, ForeignKey("courses.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("course_id", "name", name="uq_exams_course_name"),
)

questions = Table(
    "questions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_id", String(200), nullable=False, unique=True),
    Column("exam_id", Integer, ForeignKey("exams.id"), nullable=True),
    Column("text", Text, nullable=False, default=""),
    Column("reference_answers", Text, nullable=False, default="[]"),  # JSON list of str
    Column("dataset", String(200), nullable=True),
    Column("split", String(50), nullable=True),
    # The grouping the edit log is folded over; fixed once the question has edits.
    Column("grouping_id", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

answers = Table(
    "answers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_pk", Integer, ForeignKey("questions.id"), nullable=False),
    Column("answer_id", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("student_id", String(200), nullable=True),
    Column("text", Text, nullable=False),
    Column("normalized", Text, nullable=False),
    Column("gold", String(200), nullable=True),
    Column("score", Float, nullable=True),
    # The AddAnswers edit that added a late answer; NULL for answers imported with the question.
    Column("added_in_edit", Integer, nullable=True),
    UniqueConstraint("question_pk", "answer_id", name="uq_answers_question_answer"),
    UniqueConstraint("question_pk", "position", name="uq_answers_question_position"),
)

groupings = Table(
    "groupings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("question_pk", Integer, ForeignKey("questions.id"), nullable=False),
    Column("model_version", String(200), nullable=False),
    Column("settings", Text, nullable=False, default="{}"),  # JSON
    Column("data", Text, nullable=False),  # JSON: labels, confidence, groups (answer ids)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_groupings_question_model", "question_pk", "model_version"),
)

edits = Table(
    "edits",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("question_pk", Integer, ForeignKey("questions.id"), nullable=False),
    Column("edit_id", Integer, nullable=False),
    Column("author", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("base_version", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("payload", Text, nullable=False),  # JSON, grouper.edit_codec.payload_to_dict
    UniqueConstraint("question_pk", "edit_id", name="uq_edits_question_edit"),
)

embeddings = Table(
    "embeddings",
    metadata,
    Column("model_version", String(200), primary_key=True),
    Column("text_sha256", String(64), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # float32, little-endian
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("question_pk", Integer, ForeignKey("questions.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("format", Integer, nullable=False),
    Column("state", Text, nullable=False),  # JSON, grouper.edit_codec.state_to_dict
    Column("created_at", DateTime(timezone=True), nullable=False),
)
