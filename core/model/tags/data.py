"""Training data of the tags model, read from the database: known tags per image, masked per head.

Per the tags convention an image's tags are the entries of ``Image.attributes`` whose key is in
``Project.attribute_schema``; only STORED values count (schema defaults that Annotate shows are not
ground truth) and ``auto_*`` keys are machine output, never ground truth. The ``category`` tag of an
image without one falls back to the label of its largest human box, where it has boxes.

Each head is a tag with its values in head order (the schema's order; box labels seen only through
the fallback come after). A label matrix holds one column per head, ``-1`` where the image does not
have that tag: the loss masks those entries, so a partly tagged image trains only its heads.

Images without a split get one here (seeded, stratified by category, stored on the image so the
test images stay the same across trainings, as exports do with theirs).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.annotate.attributes import MACHINE_ATTRIBUTE_PREFIX
from db.models import BoxRow, BoxSource, Image, Label, Project, Split

CATEGORY = "category"
UNKNOWN = -1
SPLIT_FRACTIONS = {Split.TRAIN: 0.8, Split.VAL: 0.1, Split.TEST: 0.1}


class TagsDataError(ValueError):
    """The project cannot train a tags model (the message says why and what to do)."""


@dataclass
class TagsData:
    """Images with at least one known tag, and their labels per head.

    Attributes:
        heads: ``{tag: [values in head order]}`` (heads with fewer than two values seen are left out).
        image_ids: Image ids, one row each.
        paths: Stored image files (absolute), parallel to ``image_ids``.
        splits: ``"train"``, ``"val"`` or ``"test"`` per image.
        labels: ``(images, heads)`` int32 value indices, ``-1`` where the tag is unknown.
        left_out: ``{tag: why}`` for schema tags that got no head.
    """

    heads: dict[str, list[str]]
    image_ids: list[int]
    paths: list[Path]
    splits: list[str]
    labels: np.ndarray
    left_out: dict[str, str] = field(default_factory=dict)

    def subset(self, split: str) -> TagsData:
        """The rows of one split."""
        rows = [i for i, s in enumerate(self.splits) if s == split]
        return TagsData(
            heads=self.heads,
            image_ids=[self.image_ids[i] for i in rows],
            paths=[self.paths[i] for i in rows],
            splits=[split] * len(rows),
            labels=self.labels[rows] if rows else np.zeros((0, len(self.heads)), dtype=np.int32),
            left_out=self.left_out,
        )

    def counts(self) -> dict[str, int]:
        """Images per split."""
        c = Counter(self.splits)
        return {s.value: c.get(s.value, 0) for s in Split}

    def known_per_head(self) -> dict[str, int]:
        """Images with a known value, per head."""
        return {tag: int((self.labels[:, j] >= 0).sum()) for j, tag in enumerate(self.heads)}


def known_tags(schema: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, str]:
    """The image's ground-truth tags: stored values of schema tags, allowed by the schema, no machine keys."""
    out: dict[str, str] = {}
    for key, value in (stored or {}).items():
        key = str(key)
        if key.startswith(MACHINE_ATTRIBUTE_PREFIX) or key not in schema or value is None:
            continue
        text = str(value).strip()
        if text and text in [str(v) for v in schema[key]]:
            out[key] = text
    return out


def _largest_box_labels(session: Session, project_id: int) -> dict[int, str]:
    """``{image_id: label of its largest human box}`` (ties: the lower box id)."""
    rows = session.execute(
        select(BoxRow.image_id, Label.name, BoxRow.x_min, BoxRow.y_min, BoxRow.x_max, BoxRow.y_max, BoxRow.id)
        .join(Label, Label.id == BoxRow.label_id)
        .join(Image, Image.id == BoxRow.image_id)
        .where(Image.project_id == project_id, BoxRow.source == BoxSource.HUMAN)
        .order_by(BoxRow.id)
    ).all()
    best: dict[int, tuple[float, str]] = {}
    for image_id, name, x0, y0, x1, y1, _ in rows:
        area = (x1 - x0) * (y1 - y0)
        if image_id not in best or area > best[image_id][0]:
            best[image_id] = (area, name)
    return {i: name for i, (_, name) in best.items()}


def _order_key(seed: int, sha256: str) -> str:
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def assign_missing_splits(rows: Sequence[tuple[int, str, str | None, str]], seed: int = 0) -> dict[int, Split]:
    """Splits for images that have none: stratified by ``group`` (the category), seeded, order-free.

    Args:
        rows: ``(image_id, sha256, current split value or None, group)`` for every tagged image.
        seed: Seed of the order within a group.

    Returns:
        ``{image_id: split}`` for the images that had none. Within a group each image goes to
        the split furthest below its target share, counting the group's images already placed.
    """
    groups: dict[str, list[tuple[int, str, str | None]]] = defaultdict(list)
    for image_id, sha, split, group in rows:
        groups[group].append((image_id, sha, split))
    out: dict[int, Split] = {}
    for members in groups.values():
        have = Counter(Split(s) for _, _, s in members if s)
        todo = sorted((m for m in members if not m[2]), key=lambda m: _order_key(seed, m[1]))
        total = len(members)
        for image_id, _, _ in todo:
            placed = sum(have.values()) + 1
            split = max(SPLIT_FRACTIONS, key=lambda s: SPLIT_FRACTIONS[s] * placed - have[s])
            if total < 3:  # one or two images: both to train, a val of one teaches nothing
                split = Split.TRAIN
            have[split] += 1
            out[image_id] = split
    return out


def load_tags_data(session: Session, project_id: int, data_dir: Path, assign_splits: bool = True) -> TagsData:
    """Reads the project's tagged images and builds the heads and the masked label matrix.

    Args:
        session: Open session (written to when splits are assigned; the caller commits).
        project_id: The project.
        data_dir: The data folder (image paths are relative to it).
        assign_splits: Give images without a split one, and store it.

    Raises:
        TagsDataError: No project, or no image has a known tag.
    """
    project = session.get(Project, project_id)
    if project is None:
        raise TagsDataError(f"No project #{project_id}.")
    schema: dict[str, list[str]] = {
        str(k): [str(v) for v in vals] for k, vals in (project.attribute_schema or {}).items()
    }
    fallback = _largest_box_labels(session, project_id)
    images = session.execute(
        select(Image.id, Image.sha256, Image.stored_path, Image.split, Image.attributes)
        .where(Image.project_id == project_id)
        .order_by(Image.id)
    ).all()
    head_values: dict[str, list[str]] = {tag: list(vals) for tag, vals in schema.items()}
    rows: list[tuple[int, str, str, str | None, dict[str, str]]] = []
    for image_id, sha, path, split, attributes in images:
        tags = known_tags(schema, attributes)
        if CATEGORY not in tags and image_id in fallback:
            tags[CATEGORY] = fallback[image_id]
            values = head_values.setdefault(CATEGORY, [])
            if fallback[image_id] not in values:
                values.append(fallback[image_id])
        if tags:
            rows.append((image_id, sha, path, split.value if split else None, tags))
    if not rows:
        raise TagsDataError(
            "No image of this project has a stored tag (category or a schema attribute) or a box to take its "
            "category from; import image labels or tag some images on Annotate first."
        )
    if assign_splits:
        new = assign_missing_splits([(r[0], r[1], r[3], r[4].get(CATEGORY, "")) for r in rows])
        if new:
            for image in session.scalars(select(Image).where(Image.id.in_(list(new)))):
                image.split = new[image.id]
            session.flush()
        rows = [(i, sha, p, new[i].value if i in new else s, t) for i, sha, p, s, t in rows]
    else:
        rows = [(i, sha, p, s or Split.TRAIN.value, t) for i, sha, p, s, t in rows]

    # A head needs two values seen in training to be a choice at all.
    seen: dict[str, set[str]] = defaultdict(set)
    for _, _, _, split, tags in rows:
        if split == Split.TRAIN.value:
            for tag, value in tags.items():
                seen[tag].add(value)
    heads: dict[str, list[str]] = {}
    left_out: dict[str, str] = {}
    for tag, values in head_values.items():
        n = len(seen.get(tag, ()))
        if n >= 2:
            heads[tag] = values
        else:
            left_out[tag] = f"{n} value{'s' if n != 1 else ''} seen in the train split (a head needs 2)"
    if not heads:
        raise TagsDataError(
            "No tag has two different values in the train split, so there is nothing to choose between; "
            f"tag more images ({'; '.join(f'{t}: {w}' for t, w in left_out.items())})."
        )
    index = {tag: {v: i for i, v in enumerate(values)} for tag, values in heads.items()}
    labels = np.full((len(rows), len(heads)), UNKNOWN, dtype=np.int32)
    for r, (_, _, _, _, tags) in enumerate(rows):
        for j, tag in enumerate(heads):
            if tag in tags:
                labels[r, j] = index[tag][tags[tag]]
    return TagsData(
        heads=heads,
        image_ids=[r[0] for r in rows],
        paths=[Path(data_dir) / r[2] for r in rows],
        splits=[r[3] for r in rows],
        labels=labels,
        left_out=left_out,
    )


def letterbox(image: Any, size: int) -> np.ndarray:
    """An RGB PIL image scaled to fit ``size`` x ``size`` (aspect kept), centred on grey; uint8 array.

    The same function prepares training and prediction images, so the model sees one geometry.
    """
    from PIL import Image as PILImage

    w, h = image.size
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = image.resize((nw, nh), PILImage.BILINEAR)
    canvas = PILImage.new("RGB", (size, size), (124, 116, 104))  # the ImageNet mean: zero after normalising
    canvas.paste(resized, ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def load_image(path: Path | str, size: int) -> np.ndarray:
    """Reads an image file (EXIF orientation applied) letterboxed to ``size``; JPEGs decode at a reduced scale."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    with PILImage.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG: decode at the nearest scale >= size (much faster)
        rgb = ImageOps.exif_transpose(im).convert("RGB")
    return letterbox(rgb, size)


def class_counts(labels: np.ndarray, n_values: int) -> np.ndarray:
    """Known labels per value of one head column."""
    known = labels[labels >= 0]
    return np.bincount(known, minlength=n_values)[:n_values]
