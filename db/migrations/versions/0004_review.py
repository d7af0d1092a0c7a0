"""Review: decisions name the model version under review; a covering index for the review queue.

Adds a nullable column and two indexes; existing rows are untouched (old decisions have no version).

Revision ID: 0004_review
Revises: 0003_box_history
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_review"
down_revision = "0003_box_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_version_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_review_decision_model_version_id_model_version"),
            "model_version",
            ["model_version_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index("ix_review_decision_version_image", ["model_version_id", "image_id"], unique=False)
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_model_image_score", ["model_version_id", "image_id", "label_id", "score"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("prediction", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_model_image_score")
    with op.batch_alter_table("review_decision", schema=None) as batch_op:
        batch_op.drop_index("ix_review_decision_version_image")
        batch_op.drop_constraint("fk_review_decision_model_version_id_model_version", type_="foreignkey")
        batch_op.drop_column("model_version_id")
