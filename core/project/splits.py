"""Deterministic, seeded, label-stratified train/val/test splits stored on the images.

An image's split is written to ``Image.split`` the first time it is exported (or when
splits are assigned explicitly) and is never changed afterwards, so the test set stays
the same across exports and trainings; only images that have no split yet are placed.

Stratification: each unassigned image is keyed by its rarest label (the label with the
fewest boxes in the project among those it contains; images without boxes are grouped by
their stored ``category`` tag, and those without one form their own group). Within a group,
images are ordered by a seeded hash of their content hash, and each goes to the split furthest below its target share of the group (counting the
images the group already has in each split). The result depends only on the seed, the
fractions and the images, not on insertion order or the database.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.accounts.review_stage import passes_review_stage_in, stage_on
from db.counts import project_counts
from db.models import BoxRow, Image, ImageStatus, Split

SPLITS: tuple[Split, ...] = (Split.TRAIN, Split.VAL, Split.TEST)
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
# Only these statuses are ground truth: their boxes are complete (possibly zero boxes).
EXPORTABLE_STATUSES: tuple[ImageStatus, ...] = (ImageStatus.DONE, ImageStatus.NO_OBJECTS)
_NO_BOXES = -1  # group key of images without boxes


class SplitError(ValueError):
    """Fractions that cannot be used (the message says why)."""


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validates train/val/test fractions: three non-negative numbers summing to 1.

    Raises:
        SplitError: When they are not.
    """
    if len(fractions) != 3:
        raise SplitError(f"Give three fractions (train, val, test), not {len(fractions)}.")
    f = tuple(float(x) for x in fractions)
    if any(x < 0 for x in f):
        raise SplitError(f"Split fractions cannot be negative: {f}.")
    if abs(sum(f) - 1.0) > 1e-6:
        raise SplitError(f"Split fractions must add up to 1 (they add up to {sum(f):g}).")
    return f  # type: ignore[return-value]


def exportable_per_split(
    session: Session, project_id: int, statuses: Sequence[ImageStatus] = EXPORTABLE_STATUSES
) -> dict[Split | None, int]:
    """Ground-truth (exportable) image count per split, None for images that have no split yet."""
    if not stage_on(session, project_id):
        # Without the review stage these are the counts kept on write (db.counts): a sum over a
        # few rows instead of a pass over every finished image (Export and Train show them per run).
        wanted = {ImageStatus(s).value for s in statuses}
        out: dict[Split | None, int] = defaultdict(int)
        for (status, split), n in project_counts(session, project_id).images.items():
            if status in wanted and n:
                out[Split(split) if split else None] += n
        return dict(out)
    rows = session.execute(
        select(Image.split, func.count())
        .where(Image.project_id == project_id, Image.status.in_(statuses), passes_review_stage_in(session, project_id))
        .group_by(Image.split)
    ).all()
    return {split: int(n) for split, n in rows}


def _order_key(seed: int, sha256: str) -> str:
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def assign_splits(
    session: Session,
    project_id: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    statuses: Sequence[ImageStatus] = EXPORTABLE_STATUSES,
) -> dict[str, int]:
    """Gives every image of ``statuses`` that has no split yet a split; keeps existing ones.

    Args:
        session: Open session; the caller commits.
        project_id: The project.
        fractions: Target train, val, test shares.
        seed: Seed of the order within each stratum.
        statuses: Which images take part (ground-truth images by default).

    Returns:
        Number of images newly placed in each split.

    Raises:
        SplitError: On bad fractions.
    """
    f = check_fractions(fractions)
    # Most exports find every image placed already: one indexed probe instead of the three
    # queries over all images and boxes below.
    unplaced = session.execute(
        select(Image.id)
        .where(Image.project_id == project_id, Image.status.in_(statuses), Image.split.is_(None))
        .limit(1)
    ).first()
    if unplaced is None:
        return {s.value: 0 for s in SPLITS}
    label_totals = dict(
        session.execute(
            select(BoxRow.label_id, func.count())
            .join(Image, Image.id == BoxRow.image_id)
            .where(Image.project_id == project_id)
            .group_by(BoxRow.label_id)
        ).all()
    )
    # Rarest label per image: one query over (image, label) pairs.
    pairs = session.execute(
        select(Image.id, BoxRow.label_id)
        .join(BoxRow, BoxRow.image_id == Image.id)
        .where(Image.project_id == project_id, Image.status.in_(statuses))
        .distinct()
    ).all()
    group_of: dict[int, int] = {}
    for image_id, label_id in pairs:
        current = group_of.get(image_id)
        if current is None or (label_totals[label_id], label_id) < (label_totals[current], current):
            group_of[image_id] = label_id
    rows = session.execute(
        select(Image.id, Image.sha256, Image.split, Image.attributes).where(
            Image.project_id == project_id, Image.status.in_(statuses)
        )
    ).all()
    have: dict[int | str, Counter[Split]] = defaultdict(Counter)
    todo: dict[int | str, list[tuple[str, int]]] = defaultdict(list)
    for image_id, sha, split, attributes in rows:
        # Without boxes, an image's stored category is its stratum (a classification project).
        category = (attributes or {}).get("category")
        group = group_of.get(image_id, f"category:{category}" if category not in (None, "") else _NO_BOXES)
        if split is None:
            todo[group].append((_order_key(seed, sha), image_id))
        else:
            have[group][split] += 1
    placed: Counter[Split] = Counter()
    updates: dict[Split, list[int]] = defaultdict(list)
    for group in sorted(todo, key=str):  # each group is placed on its own counts: the order changes nothing
        counts = have[group]
        for _key, image_id in sorted(todo[group]):
            total = sum(counts.values()) + 1
            # The split furthest below its target; ties go to the earlier split (train first).
            best = max(SPLITS, key=lambda s: (f[SPLITS.index(s)] * total - counts[s], -SPLITS.index(s)))
            counts[best] += 1
            placed[best] += 1
            updates[best].append(image_id)
    for split, ids in updates.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            session.execute(
                update(Image).where(Image.id.in_(chunk)).values(split=split),
                execution_options={"synchronize_session": False},
            )
    return {s.value: placed[s] for s in SPLITS}
