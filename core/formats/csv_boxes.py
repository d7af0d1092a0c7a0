"""CSV, one row per box: ``filename,width,height,class,xmin,ymin,xmax,ymax``.

The layout of the classic VOC -> CSV -> TFRecord pipeline (``xml_to_csv.py``), whose
rows copy the VOC ``<bndbox>`` values. Coordinate space is therefore the same as
:mod:`core.formats.voc`: **integer, 1-based, inclusive pixel indices**; the conversion
is :func:`core.formats.voc.box_to_voc`. Images without boxes have no row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from core.boxes import Box
from core.formats.voc import box_to_voc

CSV_HEADER: tuple[str, ...] = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def csv_rows(filename: str, width: int, height: int, boxes: Sequence[tuple[Box, str]]) -> Iterator[list[object]]:
    """The CSV rows of one image's boxes."""
    for box, label in boxes:
        yield [filename, width, height, label, *box_to_voc(box, width, height)]
