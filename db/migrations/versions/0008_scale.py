"""Indexes for projects of 100,000 images (benchmarks/scale.py): the annotate queue, progress, label filters.

- ``ix_box_label_image`` (label_id, image_id): the queue's "has a box labelled" filter and the
  boxes-per-label counts read the label's boxes from this index alone.
- ``ix_image_project_status_name`` (project_id, status, original_name, id): the next image to
  do, and a status-filtered queue, in name order without sorting.
- ``ix_image_project_status_split`` (project_id, status, split): ground-truth images per split
  (Export, Train) from the index alone.
- ``ix_image_project_who_time`` (project_id, updated_by, updated_at): "mine today" in progress.

Revision ID: 0008_scale
Revises: 0007_accounts
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008_scale"
down_revision = "0007_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_box_label_image", "box", ["label_id", "image_id"])
    op.create_index("ix_image_project_status_name", "image", ["project_id", "status", "original_name", "id"])
    op.create_index("ix_image_project_status_split", "image", ["project_id", "status", "split"])
    op.create_index("ix_image_project_who_time", "image", ["project_id", "updated_by", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_image_project_who_time", table_name="image")
    op.drop_index("ix_image_project_status_split", table_name="image")
    op.drop_index("ix_image_project_status_name", table_name="image")
    op.drop_index("ix_box_label_image", table_name="box")
