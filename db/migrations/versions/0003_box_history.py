"""Box history: one row per box change (created, edited, deleted) with who and when.

Adds a table only; existing rows are untouched.

Revision ID: 0003_box_history
Revises: 0002_model_loop
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_box_history"
down_revision = "0002_model_loop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "box_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("box_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("who", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_box_change_image_id_image"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_box_change")),
    )
    with op.batch_alter_table("box_change", schema=None) as batch_op:
        batch_op.create_index("ix_box_change_image_time", ["image_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("box_change")
