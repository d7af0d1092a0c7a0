"""CSV, one row per box: ``filename,width,height,class,xmin,ymin,xmax,ymax``.

The layout of the classic VOC -> CSV -> TFRecord pipeline (``xml_to_csv.py``), whose
rows copy the VOC ``<bndbox>`` values. Coordinate space is therefore the same as
:mod:`core.formats.voc`: **integer, 1-based, inclusive pixel indices**; the conversion
is :func:`core.formats.voc.box_to_voc`. Images without boxes have no row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence

from core.boxes import Box
from core.dataset.items import ExportContext
from core.formats.registry import FormatSpec
from core.formats.voc import box_to_voc

CSV_HEADER: tuple[str, ...] = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def csv_rows(filename: str, width: int, height: int, boxes: Sequence[tuple[Box, str]]) -> Iterator[list[object]]:
    """The CSV rows of one image's boxes."""
    for box, label in boxes:
        yield [filename, width, height, label, *box_to_voc(box, width, height)]


def write(ctx: ExportContext) -> list[str]:
    """``images/`` and ``{split}_labels.csv`` per split."""
    with ctx.open_sink() as sink:
        files: list[str] = []
        for split in ctx.splits:
            rel = f"{split}_labels.csv"
            with sink.open_text(rel) as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(CSV_HEADER)
                for img in ctx.images(split):
                    sink.copy_file(f"images/{img.name}", ctx.settings.data_dir / img.stored_path)
                    w.writerows(csv_rows(img.name, img.width, img.height, [(o.box, o.label) for o in img.objects]))
            files.append(rel)
    return files


FORMAT = FormatSpec(
    name="csv",
    title="CSV",
    writer=write,
    export_description="CSV, one row per box (filename,width,height,class,xmin,ymin,xmax,ymax)",
    export_rank=40,
)
