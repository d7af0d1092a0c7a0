"""COCO object-detection JSON (``instances_*.json``).

Coordinate space: ``bbox`` is **[x, y, width, height] in pixels**, (x, y) the top-left
corner, floats, origin at the image's top-left corner; ``area`` is width x height in
square pixels. :func:`box_to_coco` and :func:`box_from_coco` are the only conversions to
and from :class:`core.boxes.Box`. Category ids are 1..N in the project's label order.
Tagrack writes image-level attributes in an ``attributes`` field of each image (COCO
readers ignore unknown fields) and the split in ``split``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.boxes import Box


def box_to_coco(box: Box) -> list[float]:
    """Pixels -> COCO [x, y, w, h]."""
    return [box.x_min, box.y_min, box.width, box.height]


def box_from_coco(bbox: Sequence[float]) -> Box:
    """COCO [x, y, w, h] -> pixels.

    Raises:
        ValueError: When ``bbox`` is not four numbers.
    """
    if len(bbox) != 4:
        raise ValueError(f"bbox must have four numbers, not {len(bbox)}")
    x, y, w, h = (float(v) for v in bbox)
    return Box.from_xywh(x, y, w, h)


def coco_categories(label_names: Sequence[str]) -> list[dict[str, Any]]:
    """Categories with ids 1..N in label order."""
    return [{"id": i, "name": n, "supercategory": "clothing"} for i, n in enumerate(label_names, start=1)]


def coco_image(
    image_id: int, file_name: str, width: int, height: int, attributes: Mapping[str, Any] | None, split: str
) -> dict[str, Any]:
    """One entry of ``images``."""
    return {
        "id": image_id,
        "file_name": file_name,
        "width": width,
        "height": height,
        "attributes": dict(attributes or {}),
        "split": split,
    }


def coco_annotation(ann_id: int, image_id: int, category_id: int, box: Box) -> dict[str, Any]:
    """One entry of ``annotations``."""
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": box_to_coco(box),
        "area": box.area,
        "iscrowd": 0,
        "segmentation": [],
    }
