"""The boxes both metrics read: ground truth and detections of one image, by class name."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from core.boxes import Box


@dataclass(frozen=True)
class GroundTruth:
    """A labelled box of one image, in original-image pixels.

    ``image`` is any hashable id; the COCO evaluator also sorts by it (COCOeval orders
    images by id), so pass ids of one sortable kind, e.g. database image ids.
    """

    image: Hashable
    label: str
    box: Box


@dataclass(frozen=True)
class Detection:
    """A predicted box of one image with its confidence, in original-image pixels."""

    image: Hashable
    label: str
    box: Box
    score: float
