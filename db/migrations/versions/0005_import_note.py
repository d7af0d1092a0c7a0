"""Images keep the reason an annotation import refused their boxes.

Adds a nullable text column; existing images get NULL (no import refused anything of theirs).

Revision ID: 0005_import_note
Revises: 0004_review
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_import_note"
down_revision = "0004_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.drop_column("import_note")
