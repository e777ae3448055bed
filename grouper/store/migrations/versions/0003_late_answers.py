"""Late answers: which edit added an answer after the question was grouped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the answers imported with the question: those make up its version 0.
    with op.batch_alter_table("answers") as batch:
        batch.add_column(sa.Column("added_in_edit", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("added_in_edit")
