"""Core schema: courses, exams, questions, answers, groupings and the append-only edit log.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)

# The edit log refuses changes in the database itself, whatever client writes to it.
_SQLITE_TRIGGERS = (
    """CREATE TRIGGER edits_append_only_update BEFORE UPDATE ON edits
       BEGIN SELECT RAISE(ABORT, 'the edit log is append-only: an edit cannot be changed; append an undo instead'); END""",
    """CREATE TRIGGER edits_append_only_delete BEFORE DELETE ON edits
       BEGIN SELECT RAISE(ABORT, 'the edit log is append-only: an edit cannot be deleted; append an undo instead'); END""",
)
_POSTGRES_TRIGGERS = (
    """CREATE FUNCTION grouper_edits_append_only() RETURNS trigger AS $$
       BEGIN
         RAISE EXCEPTION 'the edit log is append-only: % refused; append an undo instead', TG_OP;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER edits_append_only BEFORE UPDATE OR DELETE ON edits
       FOR EACH ROW EXECUTE FUNCTION grouper_edits_append_only()""",
    """CREATE TRIGGER edits_append_only_truncate BEFORE TRUNCATE ON edits
       FOR EACH STATEMENT EXECUTE FUNCTION grouper_edits_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("name", name="uq_courses_name"),
    )
    op.create_table(
        "exams",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("course_id", sa.Integer, sa.ForeignKey("courses.id", name="fk_exams_course_id_courses"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("course_id", "name", name="uq_exams_course_name"),
    )
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("question_id", sa.String(200), nullable=False),
        sa.Column("exam_id", sa.Integer, sa.ForeignKey("exams.id", name="fk_questions_exam_id_exams"), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reference_answers", sa.Text, nullable=False),
        sa.Column("dataset", sa.String(200), nullable=True),
        sa.Column("split", sa.String(50), nullable=True),
        sa.Column("grouping_id", sa.Integer, nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.UniqueConstraint("question_id", name="uq_questions_question_id"),
    )
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "question_pk", sa.Integer, sa.ForeignKey("questions.id", name="fk_answers_question_pk_questions"), nullable=False
        ),
        sa.Column("answer_id", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("student_id", sa.String(200), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("normalized", sa.Text, nullable=False),
        sa.Column("gold", sa.String(200), nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.UniqueConstraint("question_pk", "answer_id", name="uq_answers_question_answer"),
        sa.UniqueConstraint("question_pk", "position", name="uq_answers_question_position"),
    )
    op.create_table(
        "groupings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "question_pk", sa.Integer, sa.ForeignKey("questions.id", name="fk_groupings_question_pk_questions"), nullable=False
        ),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
    )
    op.create_index("ix_groupings_question_model", "groupings", ["question_pk", "model_version"])
    op.create_table(
        "edits",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column(
            "question_pk", sa.Integer, sa.ForeignKey("questions.id", name="fk_edits_question_pk_questions"), nullable=False
        ),
        sa.Column("edit_id", sa.Integer, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("base_version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("question_pk", "edit_id", name="uq_edits_question_edit"),
    )
    dialect = op.get_bind().dialect.name
    triggers = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(dialect, ())
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("the edit log is never dropped; restore a backup to go back")
