"""Catalogue check: sellers' listings (SKU, title, description, photos), check results, decisions, settings.

Revision ID: 0009_catalogue
Revises: 0008_scale
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_catalogue"
down_revision = "0008_scale"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalogue_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("structured", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_catalogue_item_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_item")),
        sa.UniqueConstraint("project_id", "sku", name=op.f("uq_catalogue_item_project_id_sku")),
    )
    with op.batch_alter_table("catalogue_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalogue_item_project_id"), ["project_id"], unique=False)
    op.create_table(
        "catalogue_item_image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_catalogue_item_image_image_id_image"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalogue_item.id"],
            name=op.f("fk_catalogue_item_image_item_id_catalogue_item"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_item_image")),
        sa.UniqueConstraint("item_id", "position", name=op.f("uq_catalogue_item_image_item_id_position")),
    )
    with op.batch_alter_table("catalogue_item_image", schema=None) as batch_op:
        batch_op.create_index("ix_catalogue_item_image_image", ["image_id"], unique=False)
    op.create_table(
        "catalogue_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("mismatch_score", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalogue_item.id"],
            name=op.f("fk_catalogue_result_item_id_catalogue_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_catalogue_result_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_result")),
        sa.UniqueConstraint("item_id", "model_version_id", name=op.f("uq_catalogue_result_item_id_model_version_id")),
    )
    with op.batch_alter_table("catalogue_result", schema=None) as batch_op:
        batch_op.create_index("ix_catalogue_result_version_score", ["model_version_id", "mismatch_score"], unique=False)
    op.create_table(
        "catalogue_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=30), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("who", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["catalogue_item.id"],
            name=op.f("fk_catalogue_decision_item_id_catalogue_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_catalogue_decision_model_version_id_model_version"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_decision")),
    )
    with op.batch_alter_table("catalogue_decision", schema=None) as batch_op:
        batch_op.create_index("ix_catalogue_decision_item_time", ["item_id", "created_at"], unique=False)
    op.create_table(
        "catalogue_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("vocabulary", sa.JSON(), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_catalogue_settings_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_settings")),
        sa.UniqueConstraint("project_id", name=op.f("uq_catalogue_settings_project_id")),
    )


def downgrade() -> None:
    op.drop_table("catalogue_settings")
    op.drop_table("catalogue_decision")
    op.drop_table("catalogue_result")
    op.drop_table("catalogue_item_image")
    op.drop_table("catalogue_item")
