"""The one place that converts between canvas pixels and original-image pixels.

Three coordinate spaces meet on the annotate page, all with the origin at the top-left
corner, x to the right and y downwards, boxes as (left, top, width, height) or as
:class:`core.boxes.Box` corners:

* **original pixels** — the stored photo (``Image.width`` x ``Image.height``, orientation
  applied). Everything in the database and in ``core/`` is in this space.
* **display pixels** — the downscaled JPEG copy the browser is sent
  (``Image.display_path``, long side at most 1280). ``original = display * (W / w_d,
  H / h_d)``, per axis, because the copy's sides were rounded separately.
* **canvas pixels** — the Fabric.js canvas of streamlit-drawable-canvas. With
  ``background_image_fit="contain"`` the display copy is scaled by ``s = min(cw / w_d,
  ch / h_d)`` and centred, so ``canvas = display * s + (offset_x, offset_y)`` with
  ``offset = ((cw - w_d * s) / 2, (ch - h_d * s) / 2)``. A box resized on the canvas
  has ``scaleX``/``scaleY`` in its Fabric object; the library's ``CanvasResult.boxes``
  already multiplies them in, and this module only ever reads boxes through it.

No coordinate is rounded on the way, so a box drawn on a 12-megapixel photo is stored to
a fraction of an original pixel (Fabric keeps two decimals of a canvas pixel, about 0.02
original pixels at 4000 px wide on a 960 px canvas).

The pure conversions import nothing from Streamlit, so they are unit-tested directly;
``canvas_ui`` imports streamlit-drawable-canvas lazily because that package can only be
imported inside a running Streamlit app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.boxes import Box

if TYPE_CHECKING:
    from core.project.imagestore import ImageStore

# Fabric serialises coordinates with two decimals; an untouched box comes back within
# this many canvas pixels of what was sent (used to recognise unchanged boxes).
CANVAS_ROUNDTRIP_TOLERANCE = 0.05


@dataclass(frozen=True)
class Fit:
    """How an image of natural size is placed on the canvas: ``canvas = natural * scale + offset``."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    @classmethod
    def contain(cls, canvas_w: float, canvas_h: float, natural_w: float, natural_h: float) -> Fit:
        """The ``background_image_fit="contain"`` placement (the same formula as the library's frontend)."""
        s = min(canvas_w / natural_w, canvas_h / natural_h)
        return cls(s, s, (canvas_w - natural_w * s) / 2, (canvas_h - natural_h * s) / 2)

    @classmethod
    def from_background_fit(cls, fit: Mapping[str, float]) -> Fit:
        """From ``CanvasResult.background_fit`` (what the browser actually applied)."""
        return cls(fit["scale_x"], fit["scale_y"], fit["offset_x"], fit["offset_y"])


@dataclass(frozen=True)
class CanvasGeometry:
    """The sizes of one image in its three spaces, and the conversions between them.

    Attributes:
        original_w: Original width in pixels.
        original_h: Original height in pixels.
        display_w: Display copy width in pixels.
        display_h: Display copy height in pixels.
        canvas_w: Canvas width in pixels.
        canvas_h: Canvas height in pixels.
    """

    original_w: int
    original_h: int
    display_w: int
    display_h: int
    canvas_w: int
    canvas_h: int

    @classmethod
    def for_image(
        cls, original_w: int, original_h: int, display_w: int, display_h: int, max_w: int = 960, max_h: int = 720
    ) -> CanvasGeometry:
        """A canvas that holds the display copy at its aspect ratio within ``max_w`` x ``max_h``."""
        cw, ch = canvas_size(display_w, display_h, max_w, max_h)
        return cls(original_w, original_h, display_w, display_h, cw, ch)

    @property
    def fit(self) -> Fit:
        """The contain placement of the display copy on this canvas."""
        return Fit.contain(self.canvas_w, self.canvas_h, self.display_w, self.display_h)

    @property
    def display_to_original(self) -> tuple[float, float]:
        """Per-axis factors from display pixels to original pixels."""
        return self.original_w / self.display_w, self.original_h / self.display_h

    @property
    def original_per_canvas_px(self) -> float:
        """How many original pixels one canvas pixel spans (the larger axis)."""
        fx, fy = self.display_to_original
        fit = self.fit
        return max(fx / fit.scale_x, fy / fit.scale_y)

    @property
    def unchanged_tolerance(self) -> float:
        """Per-edge difference in original pixels below which a box came back untouched."""
        return CANVAS_ROUNDTRIP_TOLERANCE * self.original_per_canvas_px

    def display_to_box(self, rect: Mapping[str, float]) -> Box:
        """A ``{left, top, width, height}`` rect in display pixels (``boxes_in_image_space``) to original pixels."""
        fx, fy = self.display_to_original
        left, top = float(rect["left"]), float(rect["top"])
        return Box(left * fx, top * fy, (left + float(rect["width"])) * fx, (top + float(rect["height"])) * fy)

    def canvas_to_box(self, rect: Mapping[str, float], fit: Fit | None = None) -> Box:
        """A ``{left, top, width, height}`` rect in canvas pixels (``CanvasResult.boxes``) to original pixels.

        Args:
            rect: Canvas-pixel rect, ``scaleX``/``scaleY`` already applied.
            fit: The placement the browser reported; defaults to this geometry's contain fit.
        """
        f = fit or self.fit
        display = {
            "left": (float(rect["left"]) - f.offset_x) / f.scale_x,
            "top": (float(rect["top"]) - f.offset_y) / f.scale_y,
            "width": float(rect["width"]) / f.scale_x,
            "height": float(rect["height"]) / f.scale_y,
        }
        return self.display_to_box(display)

    def box_to_canvas(self, box: Box) -> dict[str, float]:
        """An original-pixel box as the ``{left, top, width, height}`` canvas rect ``boxes_to_drawing`` takes."""
        fx, fy = self.display_to_original
        f = self.fit
        left = box.x_min / fx * f.scale_x + f.offset_x
        top = box.y_min / fy * f.scale_y + f.offset_y
        return {"left": left, "top": top, "width": box.width / fx * f.scale_x, "height": box.height / fy * f.scale_y}


def canvas_size(display_w: int, display_h: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The canvas size that shows a ``display_w`` x ``display_h`` image as large as fits in ``max_w`` x ``max_h``.

    Sides are whole pixels (the canvas needs them); "contain" centres the image in the
    rounding remainder, which :class:`Fit` accounts for.
    """
    s = min(max_w / display_w, max_h / display_h)
    return max(1, round(display_w * s)), max(1, round(display_h * s))


@dataclass(frozen=True)
class CanvasBox:
    """A box to draw: original pixels, its label and how it looks."""

    label: str
    box: Box
    colour: str
    from_model: bool = False


def drawing_boxes(geometry: CanvasGeometry, boxes: Sequence[CanvasBox]) -> list[tuple[dict[str, Any], str, bool]]:
    """The canvas rects (``CanvasResult.boxes`` shape) for ``boxes``, with colour and model flag."""
    return [({"label": b.label, **geometry.box_to_canvas(b.box)}, b.colour, b.from_model) for b in boxes]


def canvas_ui(
    geometry: CanvasGeometry,
    background: Path,
    boxes: Sequence[CanvasBox],
    label: str,
    colour: str,
    key: str,
    stroke_width: int = 2,
) -> list[tuple[str, Box]]:
    """Draws the labelled-box canvas and returns its boxes in original pixels, in canvas order.

    Args:
        geometry: Sizes of the image and canvas.
        background: The display copy (a JPEG file; passed as a path so the library sends
            the file's bytes and caches the encoding, instead of re-encoding a PNG).
        boxes: The boxes to start from (stored ones, or a draft).
        label: Label stamped on newly drawn boxes.
        colour: Stroke colour of newly drawn boxes (the label's colour).
        key: Widget key; include image id and revision so a reload always redraws.
        stroke_width: Box outline width in canvas pixels.
    """
    import streamlit as st
    from streamlit_drawable_canvas import boxes_to_drawing, st_canvas

    objects: list[dict[str, Any]] = []
    for rect, box_colour, from_model in drawing_boxes(geometry, boxes):
        # One call per box so each keeps its label's colour; model boxes get a light fill
        # so an annotator sees at a glance which boxes nobody has checked yet.
        fill = "rgba(255, 255, 0, 0.18)" if from_model else "rgba(0, 0, 0, 0)"
        objects += boxes_to_drawing([rect], stroke_color=box_colour, stroke_width=stroke_width, fill_color=fill)[
            "objects"
        ]
    # The component's toolbar floats 2.15 rem above the canvas's top edge while the pointer is
    # over it; with only the page's 1 rem gap it covered the line above (Review's item line).
    st.space("small")
    result = st_canvas(
        fill_color="rgba(0, 0, 0, 0)",
        stroke_width=stroke_width,
        stroke_color=colour,
        background_image=background,
        background_image_fit="contain",
        drawing_mode="labeled_rect",
        label=label,
        initial_drawing={"objects": objects},
        width=geometry.canvas_w,
        height=geometry.canvas_h,
        font_size=14,
        key=key,
    )
    in_image = result.boxes_in_image_space
    if in_image is not None:
        return [(str(r["label"]), geometry.display_to_box(r)) for r in in_image]
    # Before the browser has reported how it placed the image: the same contain formula.
    return [(str(r["label"]), geometry.canvas_to_box(r)) for r in result.boxes]


def image_geometry(
    store: ImageStore, display_path: str, original_w: int, original_h: int, canvas_w: int
) -> CanvasGeometry:
    """The canvas for an image's display copy in ``store``, at most ``canvas_w`` wide and 0.9 of that high."""
    with store.open(display_path) as im:
        display_w, display_h = im.size
    return CanvasGeometry.for_image(
        original_w, original_h, display_w, display_h, max_w=canvas_w, max_h=round(canvas_w * 0.9)
    )
