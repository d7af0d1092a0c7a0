"""DataTurks object-detection export: one JSON object per line.

Each line looks like::

    {"content": "http://.../abc___photo.jpg",
     "annotation": [{"label": ["Shirts"], "points": [{"x": 0.1, "y": 0.2}, {"x": 0.5, "y": 0.9}],
                     "imageWidth": 640, "imageHeight": 480, "notes": ""}],
     "extras": null}

Coordinate space: ``points`` are **two opposite corners normalised to [0, 1]** by the
image's width and height (either order of corners). :func:`box_from_points` is the only
conversion to :class:`core.boxes.Box`. ``content`` is a path or URL; it is never
fetched: the image is found by its file name in a folder given with the file (DataTurks
prefixes uploaded names with an id and ``___``, which is tried both with and without).
"""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.boxes import Box
from core.dataset.files import Files
from core.dataset.items import AnnotationImportError, ImportItem, ImportOutcome
from core.formats.registry import FormatSpec, Option


class DataturksError(ValueError):
    """A line that cannot be read (the message says why)."""


@dataclass
class DataturksItem:
    """One parsed line: the image's candidate file names and its boxes (normalised).

    ``numbers`` gives each object's place in the line's ``annotation`` list (1-based, for
    messages); ``left_out`` says why each annotation that could not be read was left out.
    """

    content: str
    names: list[str]
    objects: list[tuple[str, tuple[float, float, float, float]]]
    size: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def box_from_points(points: Sequence[tuple[float, float]], width: int, height: int) -> Box:
    """Two normalised corners -> a pixel Box of a ``width`` x ``height`` image."""
    (xa, ya), (xb, yb) = points[0], points[1]
    return Box(min(xa, xb) * width, min(ya, yb) * height, max(xa, xb) * width, max(ya, yb) * height)


def candidate_names(content: str) -> list[str]:
    """File names to look for: the URL's or path's last part, and without a DataTurks ``id___`` prefix."""
    path = urllib.parse.urlparse(content).path if "://" in content else content
    base = posixpath.basename(urllib.parse.unquote(path).replace("\\", "/"))
    names = [base] if base else []
    if "___" in base:
        names.append(base.split("___", 1)[1])
    return names


def _point(p: Any) -> tuple[float, float]:
    if isinstance(p, dict):
        return float(p["x"]), float(p["y"])
    return float(p[0]), float(p[1])


def parse_line(line: str) -> DataturksItem:
    """Parses one line.

    Raises:
        DataturksError: Not JSON, no ``content``, or a box without two points.
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataturksError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("content"), str) or not obj["content"].strip():
        raise DataturksError("no 'content' (the image's path or URL)")
    names = candidate_names(obj["content"].strip())
    if not names:
        raise DataturksError(f"cannot tell a file name from content {obj['content']!r}")
    item = DataturksItem(obj["content"], names, [])
    annotations = obj.get("annotation") or []
    if isinstance(annotations, dict):
        annotations = [annotations]
    for n, ann in enumerate(annotations, start=1):
        labels = ann.get("label")
        label = labels[0] if isinstance(labels, list) and labels else labels
        if not isinstance(label, str) or not label.strip():
            item.left_out.append(f"box {n}: no label; left out")
            continue
        try:
            points = [_point(p) for p in ann.get("points") or []]
            if len(points) < 2:
                raise ValueError("fewer than two points")
        except (KeyError, TypeError, ValueError) as exc:
            item.left_out.append(f"box {n} ({label}): unreadable points ({exc}); left out")
            continue
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        item.objects.append((label.strip(), (min(xs), min(ys), max(xs), max(ys))))
        item.numbers.append(n)
        w, h = ann.get("imageWidth"), ann.get("imageHeight")
        if isinstance(w, int | float) and isinstance(h, int | float) and w > 0 and h > 0:
            item.size = (int(w), int(h))
    return item


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-empty lines with their 1-based numbers."""
    for n, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield n, line


# --- reading a file --------------------------------------------------------------------------------------------


def read(json_path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a DataTurks export (one JSON object per line); images resolved by name in ``images``.

    URLs in ``content`` are never fetched.
    """
    try:
        text = json_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationImportError(f"{json_path.name}: not readable as UTF-8 text: {exc}") from exc
    files = Files(images or json_path.parent)
    for n, line in iter_lines(text):
        source = f"{json_path.name}:{n}"
        try:
            item = parse_line(line)
        except DataturksError as exc:
            yield ImportOutcome(source, "failed", f"line {n}: {exc}")
            continue
        rel = next((r for name in item.names if (r := files.find_image(name)) is not None), None)
        if rel is None:
            yield ImportOutcome(
                source, "failed", f"image {item.names[0]!r} not found in {files.path} (URLs are never downloaded)"
            )
            continue
        raw = json.loads(line)
        yield ImportItem(
            source=source,
            image_name=posixpath.basename(rel),
            read=lambda r=rel: files.read(r),
            objects=[(label, Box(*c)) for label, c in item.objects],
            coords="normalised",
            annotated=raw.get("annotation") is not None,
            notes=item.notes,
            refs=[f"box {n}" for n in item.numbers],
            left_out=list(item.left_out),
        )


FORMAT = FormatSpec(
    name="dataturks",
    title="DataTurks",
    reader=read,
    import_description="DataTurks JSON, one object per line (+ the images as a zip)",
    import_path=".json (one object per line)",
    file_patterns=("*.json", "*.jsonl", "*.txt", "*.zip"),
    options=frozenset({Option.IMAGES}),
    import_rank=30,
)
