"""Annotation core: projects, labels, images and boxes.

Revision ID: 0001_annotation_core
Revises: None
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_annotation_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("attribute_schema", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
        sa.UniqueConstraint("name", name=op.f("uq_project_name")),
    )

    op.create_table(
        "label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("colour", sa.String(length=9), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_label_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_label_project_id_name")),
    )
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_project_id"), ["project_id"], unique=False)

    op.create_table(
        "image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("stored_path", sa.String(length=300), nullable=False),
        sa.Column("display_path", sa.String(length=300), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new", "in_progress", "done", "no_objects", "skipped", name="image_status", native_enum=False, length=24
            ),
            nullable=False,
        ),
        sa.Column("split", sa.Enum("train", "val", "test", name="split", native_enum=False, length=24), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_image_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image")),
        sa.UniqueConstraint("project_id", "sha256", name=op.f("uq_image_project_id_sha256")),
    )
    with op.batch_alter_table("image", schema=None) as batch_op:
        batch_op.create_index("ix_image_project_name", ["project_id", "original_name"], unique=False)
        batch_op.create_index("ix_image_project_split", ["project_id", "split"], unique=False)
        batch_op.create_index("ix_image_project_status", ["project_id", "status"], unique=False)

    op.create_table(
        "box",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("x_min", sa.Float(), nullable=False),
        sa.Column("y_min", sa.Float(), nullable=False),
        sa.Column("x_max", sa.Float(), nullable=False),
        sa.Column("y_max", sa.Float(), nullable=False),
        sa.Column("source", sa.Enum("human", "model", name="box_source", native_enum=False, length=24), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"], name=op.f("fk_box_image_id_image"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["label_id"], ["label.id"], name=op.f("fk_box_label_id_label"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_box")),
    )
    with op.batch_alter_table("box", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_box_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_box_label_id"), ["label_id"], unique=False)


def downgrade() -> None:
    op.drop_table("box")
    op.drop_table("image")
    op.drop_table("label")
    op.drop_table("project")
