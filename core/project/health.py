"""Dataset health: is there enough of each class, in each split, and is it balanced?

Reads counts and box geometry with a few grouped SQL queries (fast on 20,000 images) and
turns them into tables for the Evaluate page and warnings a person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.counts import project_counts
from db.models import BoxRow, Image, ImageStatus, Label

# Below this many training boxes a class is usually learnt poorly (the rule of thumb of
# the detection tutorials our users follow).
MIN_TRAIN_BOXES = 100
# Most/least frequent class ratio past which we warn about imbalance.
IMBALANCE_RATIO = 10.0
GROUND_TRUTH = (ImageStatus.DONE, ImageStatus.NO_OBJECTS)
# Box geometry is read from about this many images (every k-th by id): quantiles of ~20,000 boxes
# are those of all of them to a percent, and the page stays quick on 100,000 images.
GEOMETRY_SAMPLE_IMAGES = 3000


@dataclass
class DatasetHealth:
    """Tables and warnings for one project.

    Attributes:
        per_class: One row per label: boxes and images per split and in total.
        box_geometry: One row per box (label, width, height, area, aspect) in original pixels, of
            every image up to GEOMETRY_SAMPLE_IMAGES ground-truth images, of an even spread of them past that.
        by_status: Images per status.
        throughput: Boxes created per person per day.
        warnings: Human-readable problems, most important first.
    """

    per_class: pd.DataFrame
    box_geometry: pd.DataFrame
    by_status: pd.DataFrame
    throughput: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _split_name(split: object) -> str:
    return getattr(split, "value", None) or "unassigned"


def dataset_health(session: Session, project_id: int) -> DatasetHealth:
    """Computes the health tables and warnings of a project's ground truth."""
    labels = [
        name
        for (name,) in session.execute(select(Label.name).where(Label.project_id == project_id).order_by(Label.order))
    ]
    gt_images = (Image.project_id == project_id) & Image.status.in_(GROUND_TRUTH)

    rows = session.execute(
        select(Label.name, Image.split, func.count(BoxRow.id), func.count(func.distinct(Image.id)))
        .select_from(BoxRow)
        .join(Image, BoxRow.image_id == Image.id)
        .join(Label, BoxRow.label_id == Label.id)
        .where(gt_images)
        .group_by(Label.name, Image.split)
    ).all()
    per_class = pd.DataFrame(
        0,
        index=pd.Index(labels, name="label"),
        columns=[
            "boxes",
            "images",
            "train boxes",
            "val boxes",
            "test boxes",
            "unassigned boxes",
        ],
    )
    for name, split, boxes, images in rows:
        if name not in per_class.index:
            continue
        per_class.loc[name, f"{_split_name(split)} boxes"] += boxes
        per_class.loc[name, "boxes"] += boxes
        per_class.loc[name, "images"] += images

    # Box geometry (distributions, quantiles) from an even spread of at most GEOMETRY_SAMPLE_IMAGES
    # images: every box of 100,000 images is 500,000 rows in pandas on every page run.
    n_gt = session.scalar(select(func.count()).select_from(Image).where(gt_images)) or 0
    step = max(1, n_gt // GEOMETRY_SAMPLE_IMAGES)
    sampled = gt_images & (Image.id % step == 0) if step > 1 else gt_images
    geometry = pd.DataFrame(
        session.execute(
            select(Label.name, BoxRow.x_max - BoxRow.x_min, BoxRow.y_max - BoxRow.y_min, Image.width, Image.height)
            .select_from(Image)
            .join(BoxRow, BoxRow.image_id == Image.id)
            .join(Label, BoxRow.label_id == Label.id)
            .where(sampled)
        ).all(),
        columns=["label", "width", "height", "image_width", "image_height"],
    )
    if not geometry.empty:
        geometry["area"] = geometry["width"] * geometry["height"]
        geometry["relative_area"] = geometry["area"] / (geometry["image_width"] * geometry["image_height"])
        geometry["aspect"] = geometry["width"] / geometry["height"].where(geometry["height"] > 0)

    counts = project_counts(session, project_id).by_status()
    by_status = pd.DataFrame({"status": list(counts), "images": list(counts.values())})

    day = func.date(BoxRow.created_at)
    throughput = pd.DataFrame(
        session.execute(
            select(func.coalesce(BoxRow.created_by, "unknown"), day, func.count())
            .join(Image, BoxRow.image_id == Image.id)
            .where(Image.project_id == project_id)
            .group_by(BoxRow.created_by, day)
            .order_by(day)
        ).all(),
        columns=["who", "day", "boxes"],
    )

    return DatasetHealth(per_class, geometry, by_status, throughput, health_warnings(per_class))


def health_warnings(per_class: pd.DataFrame) -> list[str]:
    """Warnings for thin classes and strong imbalance, from the per-class table."""
    warnings: list[str] = []
    if per_class.empty or per_class["boxes"].sum() == 0:
        return ["No annotated boxes yet: annotate or import some before training."]
    train = per_class["train boxes"] + per_class["unassigned boxes"]  # unassigned images get split on export
    for name, n in train.items():
        if n < MIN_TRAIN_BOXES:
            warnings.append(
                f"{name}: only {n} training boxes (fewer than {MIN_TRAIN_BOXES}); the model will learn it poorly."
            )
    present = per_class["boxes"][per_class["boxes"] > 0]
    if len(present) >= 2 and present.max() / present.min() >= IMBALANCE_RATIO:
        warnings.insert(
            0,
            f"Strong imbalance: {present.idxmax()} has {present.max()} boxes, {present.idxmin()} only "
            f"{present.min()} ({present.max() / present.min():.0f}x). Consider class-balanced sampling.",
        )
    return warnings
