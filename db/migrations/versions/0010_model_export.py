"""Model exports for deployment (SavedModel, TFLite, ONNX): one row per model version and format.

Revision ID: 0010_model_export
Revises: 0009_catalogue
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_model_export"
down_revision = "0009_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("check_result", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_model_export_job_id_job"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_model_export_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_export")),
        sa.UniqueConstraint("model_version_id", "format", name=op.f("uq_model_export_model_version_id_format")),
    )


def downgrade() -> None:
    op.drop_table("model_export")
