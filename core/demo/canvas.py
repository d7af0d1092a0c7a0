"""The drawing surface of the demo painter: a silhouette mask plus a detail map, in unit coordinates.

Garments draw on a :class:`Canvas`; the detail codes below tell the painter what each
pixel inside a silhouette is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

Point = tuple[float, float]

# Detail codes: what a pixel inside a silhouette is painted as (see colour.paint_garment).
PLAIN, SEAM, ACCENT, LENS, SOLE, SHINE = range(6)


class Canvas:
    """Draws a garment in unit coordinates onto a silhouette mask and a detail map.

    Unit coordinates run 0..1 across the garment's patch in both directions, so every
    class is described once and stretched to any size and aspect. Silhouette primitives
    write the mask and reset the detail map beneath them, which makes a part drawn later
    (a hood, the front shoe of a pair) cleanly occlude details of parts drawn earlier.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.mask = Image.new("L", (width, height), 0)
        self.detail = Image.new("L", (width, height), PLAIN)
        self._mask_draw = ImageDraw.Draw(self.mask)
        self._detail_draw = ImageDraw.Draw(self.detail)
        self._frame = (0.0, 0.0, 1.0, 1.0)

    @property
    def aspect(self) -> float:
        """Width over height of the current frame in pixels (to keep strokes round)."""
        _, _, sx, sy = self._frame
        return (self.width * sx) / (self.height * sy)

    def set_frame(self, x: float, y: float, sx: float, sy: float) -> None:
        """Maps unit coordinates into the sub-rectangle at (x, y) of size (sx, sy)."""
        self._frame = (x, y, sx, sy)

    def xy(self, points: Sequence[Point]) -> list[Point]:
        """Unit coordinates to pixel coordinates of the patch."""
        fx, fy, sx, sy = self._frame
        w, h = self.width - 1, self.height - 1
        return [((fx + x * sx) * w, (fy + y * sy) * h) for x, y in points]

    def px(self, fraction: float) -> int:
        """Stroke width in pixels for a fraction of the frame's height (at least 1)."""
        return max(1, round(fraction * self.height * self._frame[3]))

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> list[Point]:
        return self.xy([(x0, y0), (x1, y1)])

    def shape(self, points: Sequence[Point], code: int = PLAIN) -> None:
        """Adds a polygon to the silhouette, outlined by a seam in the detail map."""
        xy = self.xy(points)
        self._mask_draw.polygon(xy, fill=255)
        self._detail_draw.polygon(xy, fill=code, outline=SEAM, width=self.px(0.012))

    def oval(self, x0: float, y0: float, x1: float, y1: float, code: int = PLAIN) -> None:
        """Adds an ellipse to the silhouette, outlined by a seam."""
        box = self._box(x0, y0, x1, y1)
        self._mask_draw.ellipse(box, fill=255)
        self._detail_draw.ellipse(box, fill=code, outline=SEAM, width=self.px(0.012))

    def stroke(self, points: Sequence[Point], width: int, code: int = PLAIN) -> None:
        """Adds a thick polyline (straps, temples, bridges) to the silhouette."""
        xy = self.xy(points)
        self._mask_draw.line(xy, fill=255, width=width, joint="curve")
        self._detail_draw.line(xy, fill=code, width=width, joint="curve")

    def cut(self, points: Sequence[Point]) -> None:
        """Removes a polygon from the silhouette (necklines, open fronts)."""
        xy = self.xy(points)
        self._mask_draw.polygon(xy, fill=0)
        self._detail_draw.polygon(xy, fill=PLAIN)

    def cut_oval(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Removes an ellipse from the silhouette."""
        box = self._box(x0, y0, x1, y1)
        self._mask_draw.ellipse(box, fill=0)
        self._detail_draw.ellipse(box, fill=PLAIN)

    def mark(self, points: Sequence[Point], width: int, code: int = SEAM) -> None:
        """Draws a detail line; it shows only where the silhouette is."""
        self._detail_draw.line(self.xy(points), fill=code, width=width, joint="curve")

    def mark_shape(self, points: Sequence[Point], code: int, outline_width: int = 0) -> None:
        """Fills a detail polygon, or only outlines it when ``outline_width`` is given."""
        if outline_width:
            self._detail_draw.polygon(self.xy(points), outline=code, width=outline_width)
        else:
            self._detail_draw.polygon(self.xy(points), fill=code)

    def mark_oval(self, x0: float, y0: float, x1: float, y1: float, code: int, outline_width: int = 0) -> None:
        """Fills a detail ellipse, or only outlines it when ``outline_width`` is given."""
        box = self._box(x0, y0, x1, y1)
        if outline_width:
            self._detail_draw.ellipse(box, outline=code, width=outline_width)
        else:
            self._detail_draw.ellipse(box, fill=code)

    def dot(self, x: float, y: float, radius: float, code: int = ACCENT) -> None:
        """A round detail (button, rivet) of ``radius`` times the frame height."""
        ((cx, cy),) = self.xy([(x, y)])
        r = max(1.0, radius * self.height * self._frame[3])
        self._detail_draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=code)


def curve(start: Point, control: Point, end: Point, steps: int = 10) -> list[Point]:
    """Points along a quadratic Bezier curve, both ends included."""
    t = np.linspace(0.0, 1.0, steps)
    a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t**2
    xs = a * start[0] + b * control[0] + c * end[0]
    ys = a * start[1] + b * control[1] + c * end[1]
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def mirror(points: Sequence[Point]) -> list[Point]:
    """Reflects points about the vertical centre line (garments are left-right symmetric)."""
    return [(1.0 - x, y) for x, y in points]


def both_sides(canvas: Canvas, points: Sequence[Point], width: int, code: int = SEAM) -> None:
    """Marks a detail line and its mirror image."""
    canvas.mark(points, width, code)
    canvas.mark(mirror(points), width, code)
