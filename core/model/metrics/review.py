"""What a reviewer sees: the images a model gets right as they are, and its boxes' precision and recall.

mAP ranks every box at every score; the Review page shows a person the boxes at or above one
score threshold, one per object (:func:`core.review.item.object_leaders`, the page's own rule),
and the image saves work only when it can be accepted as it is. So per image: every shown box
matched one-to-one to a ground-truth box of its label at IoU >= ``iou_threshold`` (0.7 by
default: a box looser than that gets redrawn), and no ground-truth box left unmatched. An image
with no ground truth and no shown box is acceptable (the reviewer says "no garments" and moves
on). Box precision and recall at the same IoU are counted over all the images.

Matching is the confusion matrix's (:func:`core.model.metrics.coco.confusion_pairs`: best IoU
pairs first, each box used once) within each label, so a box of the wrong label is both an
extra box and a missed one, as it is for the reviewer who must fix it. Boxes are
:class:`core.boxes.Box` in original-image pixels.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from core.model.metrics.coco import confusion_pairs
from core.model.metrics.types import Detection, GroundTruth
from core.review.item import object_leaders

DEFAULT_IOU = 0.7


@dataclass(frozen=True)
class ReviewFigures:
    """What :func:`review_figures` returns: counts, and the shares read off them.

    Attributes:
        score_threshold: Boxes at or above it are shown.
        iou_threshold: The IoU a shown box needs with its ground truth to be right.
        images: Images reviewed (including those with no boxes at all).
        acceptable: Images acceptable as they are.
        shown: Boxes shown.
        matched: Shown boxes matched to a ground-truth box of their label.
        ground_truth: Ground-truth boxes.
    """

    score_threshold: float
    iou_threshold: float
    images: int
    acceptable: int
    shown: int
    matched: int
    ground_truth: int

    @property
    def acceptable_share(self) -> float:
        """Share of the images acceptable as they are (NaN without images)."""
        return self.acceptable / self.images if self.images else math.nan

    @property
    def precision(self) -> float:
        """Share of the shown boxes that are right (NaN when none is shown)."""
        return self.matched / self.shown if self.shown else math.nan

    @property
    def recall(self) -> float:
        """Share of the ground-truth boxes shown right (NaN without ground truth)."""
        return self.matched / self.ground_truth if self.ground_truth else math.nan

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: the counts and the shares (None where undefined), rounded to 6 places."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 6)

        return {
            "score_threshold": self.score_threshold,
            "iou_threshold": self.iou_threshold,
            "images": self.images,
            "acceptable": self.acceptable,
            "acceptable_share": num(self.acceptable_share),
            "shown": self.shown,
            "matched": self.matched,
            "ground_truth": self.ground_truth,
            "precision": num(self.precision),
            "recall": num(self.recall),
        }


def shown_boxes(detections: Sequence[Detection], score_threshold: float) -> list[Detection]:
    """The detections of ONE image the Review page shows: one per object, at or above the threshold, best first.

    The page groups near-identical boxes before the threshold; grouping only the boxes at or
    above it gives the same boxes (a box is only ever grouped under a better-scored one, so
    those under the threshold never decide what is shown above it) in far fewer comparisons.
    """
    ranked = sorted((d for d in detections if d.score >= score_threshold), key=lambda d: -d.score)
    leaders = object_leaders([d.box for d in ranked])
    return [d for i, d in enumerate(ranked) if leaders[i] == i]


def review_figures(
    ground_truth: Sequence[GroundTruth],
    detections: Sequence[Detection],
    n_images: int,
    score_threshold: float,
    iou_threshold: float = DEFAULT_IOU,
) -> ReviewFigures:
    """The reviewer's figures over ``n_images`` images (see the module docstring).

    Args:
        ground_truth: Every ground-truth box of the images.
        detections: Every detection on them (any score).
        n_images: How many images were reviewed, counting those without any box, which
            appear in neither list (and are acceptable).
        score_threshold: Detections at or above it are shown.
        iou_threshold: IoU a shown box needs with a ground-truth box of its label.

    Raises:
        ValueError: The boxes name more images than ``n_images``.
    """
    gts: dict[Hashable, list[GroundTruth]] = defaultdict(list)
    dts: dict[Hashable, list[Detection]] = defaultdict(list)
    for g in ground_truth:
        gts[g.image].append(g)
    for d in detections:
        dts[d.image].append(d)
    seen = set(gts) | set(dts)
    if len(seen) > n_images:
        raise ValueError(f"The boxes are on {len(seen)} images, more than the {n_images} reviewed.")
    flawed = shown_total = matched_total = 0
    for image in seen:
        shown = shown_boxes(dts.get(image, []), score_threshold)
        truth = gts.get(image, [])
        matched = 0
        for label in {g.label for g in truth} & {d.label for d in shown}:
            pairs = confusion_pairs(
                [g for g in truth if g.label == label], [d for d in shown if d.label == label], iou_threshold
            )
            matched += len(pairs)
        flawed += not (matched == len(shown) == len(truth))
        shown_total += len(shown)
        matched_total += matched
    return ReviewFigures(
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        images=n_images,
        acceptable=n_images - flawed,
        shown=shown_total,
        matched=matched_total,
        ground_truth=len(ground_truth),
    )
