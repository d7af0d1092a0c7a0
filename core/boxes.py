"""The one canonical box type of Tagrack.

Every box in the database and in core/ is a :class:`Box` in **original-image pixel
space**: x grows to the right, y grows downwards, the origin is the top-left corner of
the top-left pixel, and (x_max, y_max) is the bottom-right corner, so a box covering the
whole W x H image is ``Box(0, 0, W, H)``. Coordinates are floats: annotators draw at
sub-pixel precision on a downscaled display copy.

Conversions to other spaces (canvas, Pascal VOC 1-based integers, TFRecord normalised)
live at the edges, each in its own module, and all go through this type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


class HasCorners(Protocol):
    """Anything with the four corner attributes: a database box or prediction row, a query row."""

    @property
    def x_min(self) -> float: ...
    @property
    def y_min(self) -> float: ...
    @property
    def x_max(self) -> float: ...
    @property
    def y_max(self) -> float: ...


class InvalidBoxError(ValueError):
    """A box that cannot be stored: non-finite, or empty after clipping."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in original-image pixels (see module docstring).

    Attributes:
        x_min: Left edge, pixels from the image's left edge.
        y_min: Top edge, pixels from the image's top edge.
        x_max: Right edge (exclusive corner), pixels.
        y_max: Bottom edge (exclusive corner), pixels.
    """

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @classmethod
    def from_xywh(cls, x: float, y: float, width: float, height: float) -> Box:
        """Builds a box from its top-left corner and size (the COCO layout)."""
        return cls(x, y, x + width, y + height)

    @classmethod
    def from_row(cls, row: HasCorners) -> Box:
        """Builds a box from a database row with ``x_min``..``y_max`` columns (``BoxRow``,
        ``Prediction`` or a query row selecting them).

        Duck-typed, so this module does not import ``db`` (``db`` never imports ``core``).
        """
        return cls(row.x_min, row.y_min, row.x_max, row.y_max)

    def as_columns(self) -> dict[str, float]:
        """The box as the coordinate columns of a database row: ``BoxRow(**box.as_columns(), ...)``."""
        return {"x_min": self.x_min, "y_min": self.y_min, "x_max": self.x_max, "y_max": self.y_max}

    @property
    def width(self) -> float:
        """Width in pixels (negative for a malformed box)."""
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        """Height in pixels (negative for a malformed box)."""
        return self.y_max - self.y_min

    @property
    def area(self) -> float:
        """Area in square pixels; 0 for an empty or inverted box."""
        return max(self.width, 0.0) * max(self.height, 0.0)

    def is_finite(self) -> bool:
        """True when all four coordinates are finite numbers."""
        return all(math.isfinite(v) for v in (self.x_min, self.y_min, self.x_max, self.y_max))

    def clip(self, width: float, height: float) -> Box:
        """Returns this box clipped to a ``width`` x ``height`` image."""
        return Box(
            min(max(self.x_min, 0.0), width),
            min(max(self.y_min, 0.0), height),
            min(max(self.x_max, 0.0), width),
            min(max(self.y_max, 0.0), height),
        )

    def is_inside(self, width: float, height: float) -> bool:
        """True when the box lies within a ``width`` x ``height`` image."""
        return self.x_min >= 0 and self.y_min >= 0 and self.x_max <= width and self.y_max <= height

    def scaled(self, sx: float, sy: float) -> Box:
        """Returns the box with x multiplied by ``sx`` and y by ``sy``."""
        return Box(self.x_min * sx, self.y_min * sy, self.x_max * sx, self.y_max * sy)

    def iou(self, other: Box) -> float:
        """Intersection over union with ``other``; 0 when either box is empty."""
        ix = min(self.x_max, other.x_max) - max(self.x_min, other.x_min)
        iy = min(self.y_max, other.y_max) - max(self.y_min, other.y_min)
        inter = max(ix, 0.0) * max(iy, 0.0)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def validated(self, width: float, height: float) -> tuple[Box, bool]:
        """Clips the box to the image and checks that something is left.

        Args:
            width: Image width in pixels.
            height: Image height in pixels.

        Returns:
            The clipped box and whether clipping changed it.

        Raises:
            InvalidBoxError: When a coordinate is not finite or the clipped box has zero
                or negative area.
        """
        if not self.is_finite():
            raise InvalidBoxError(f"box has a non-finite coordinate: {self}")
        if self.x_max <= self.x_min or self.y_max <= self.y_min:
            raise InvalidBoxError(
                f"box has zero or negative area: x {self.x_min:g}..{self.x_max:g}, y {self.y_min:g}..{self.y_max:g}"
            )
        clipped = self.clip(width, height)
        if clipped.x_max <= clipped.x_min or clipped.y_max <= clipped.y_min:
            raise InvalidBoxError(f"box lies entirely outside the {width:g}x{height:g} image: {self}")
        return clipped, clipped != self
