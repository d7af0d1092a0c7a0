"""Pascal VOC XML in the layout LabelImg writes.

Coordinate space: ``<bndbox>`` holds **integer, 1-based, inclusive pixel indices** (the
VOC devkit convention): the pixel in the top-left corner is (1, 1) and a box covering a
whole W x H image is xmin=1, ymin=1, xmax=W, ymax=H. :func:`box_to_voc` and
:func:`box_from_voc` are the only conversions between that space and
:class:`core.boxes.Box` pixels (``Box(xmin - 1, ymin - 1, xmax, ymax)``), so a box
survives a round trip to within half a pixel of rounding.

Reading accepts VOC files as real tools write them: absolute Windows or POSIX paths in
``filename``/``path``, ``Unspecified`` or empty numeric fields, float coordinates,
children in any order, a missing ``size`` (the caller reads it from the image). XML from
outside is parsed with defusedxml, which refuses entity expansion (billion laughs) and
external entities.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, indent, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from core.boxes import Box

# Images from elsewhere arrive with annotation files; a VOC XML is a few KB. Anything far
# larger is not an annotation (or is an attack) and is refused before parsing.
MAX_XML_BYTES = 5 * 1024 * 1024


class VocError(ValueError):
    """An annotation file that cannot be read (the message says why)."""


@dataclass(frozen=True)
class VocObject:
    """One ``<object>``: a box in original-image pixels and its flags."""

    box: Box
    name: str
    pose: str = "Unspecified"
    truncated: int = 0
    difficult: int = 0
    number: int = 0  # its place among the file's <object>s (1-based), for messages; 0 when not read from a file


@dataclass
class VocAnnotation:
    """A parsed annotation file.

    Attributes:
        filename: Base name of the image (folders and drive letters removed).
        path: The ``<path>`` element as written, or None.
        width: From ``<size>``, or None when absent or unusable.
        height: From ``<size>``, or None.
        objects: The boxes, in pixels (not clipped here).
        attributes: Tagrack's image-level attributes (``<attributes>``), if any.
        notes: What was odd but recoverable.
        left_out: Why each ``<object>`` that could not be read was left out (``object 2 (Jeans): ...``).
    """

    filename: str
    path: str | None
    width: int | None
    height: int | None
    objects: list[VocObject]
    attributes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def box_to_voc(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixels -> VOC 1-based inclusive integers, kept inside the image and non-empty."""
    xmin = min(max(int(math.floor(box.x_min + 0.5)) + 1, 1), width)
    ymin = min(max(int(math.floor(box.y_min + 0.5)) + 1, 1), height)
    xmax = min(max(int(math.floor(box.x_max + 0.5)), xmin), width)
    ymax = min(max(int(math.floor(box.y_max + 0.5)), ymin), height)
    return xmin, ymin, xmax, ymax


def box_from_voc(xmin: float, ymin: float, xmax: float, ymax: float) -> Box:
    """VOC 1-based inclusive coordinates (integers or floats) -> pixels."""
    return Box(xmin - 1.0, ymin - 1.0, float(xmax), float(ymax))


def format_voc_xml(
    filename: str,
    width: int,
    height: int,
    objects: Sequence[VocObject],
    attributes: Mapping[str, Any] | None = None,
    folder: str = "JPEGImages",
    depth: int = 3,
    database: str = "Tagrack",
) -> str:
    """The annotation XML of one image, element for element as LabelImg writes it.

    Image-level attributes follow ``segmented`` as ``<attributes><attribute name="...">
    value</attribute></attributes>``; VOC readers ignore elements they do not know.
    """
    root = Element("annotation")
    SubElement(root, "folder").text = folder
    SubElement(root, "filename").text = filename
    SubElement(root, "path").text = f"{folder}/{filename}"
    SubElement(SubElement(root, "source"), "database").text = database
    size = SubElement(root, "size")
    SubElement(size, "width").text = str(width)
    SubElement(size, "height").text = str(height)
    SubElement(size, "depth").text = str(depth)
    SubElement(root, "segmented").text = "0"
    if attributes:
        attrs = SubElement(root, "attributes")
        for key, value in attributes.items():
            if value is not None:
                SubElement(attrs, "attribute", name=str(key)).text = str(value)
    for obj in objects:
        o = SubElement(root, "object")
        SubElement(o, "name").text = obj.name
        SubElement(o, "pose").text = obj.pose
        SubElement(o, "truncated").text = str(int(obj.truncated))
        SubElement(o, "difficult").text = str(int(obj.difficult))
        bb = SubElement(o, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box_to_voc(obj.box, width, height), strict=True):
            SubElement(bb, tag).text = str(value)
    indent(root, space="\t")
    return tostring(root, encoding="unicode") + "\n"


def base_name(path_text: str) -> str:
    """The file name at the end of a Windows or POSIX path (``C:\\data\\a.jpg`` -> ``a.jpg``)."""
    return posixpath.basename(path_text.strip().replace("\\", "/"))


def _number(text: str | None) -> float | None:
    """A numeric field, or None for empty, ``Unspecified`` and other non-numbers."""
    if text is None:
        return None
    text = text.strip()
    if not text or text.lower() in ("unspecified", "none", "null", "nan"):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _child_text(el: Element, tag: str) -> str | None:
    found = el.find(tag)
    return found.text if found is not None and found.text is not None else None


def parse_voc_xml(data: bytes, source: str = "annotation") -> VocAnnotation:
    """Parses one VOC annotation file from outside.

    Args:
        data: The file's bytes.
        source: Its name, for messages.

    Returns:
        The annotation; objects whose box is unreadable are left out, each with its reason in ``left_out``.

    Raises:
        VocError: Too large, malformed XML, forbidden entities or DTD tricks, not an
            ``<annotation>``, or no file name.
    """
    if len(data) > MAX_XML_BYTES:
        raise VocError(f"{source}: {len(data) / 1e6:.1f} MB is too large for an annotation file")
    try:
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise VocError(f"{source}: refused: the XML declares entities or external references ({exc})") from exc
    except ParseError as exc:
        raise VocError(f"{source}: malformed XML: {exc}") from exc
    if root.tag != "annotation":
        raise VocError(f"{source}: not a Pascal VOC file (root element <{root.tag}>, expected <annotation>)")
    notes: list[str] = []
    filename_text = _child_text(root, "filename")
    path_text = _child_text(root, "path")
    name = base_name(filename_text) if filename_text and filename_text.strip() else ""
    if not name and path_text and path_text.strip():
        name = base_name(path_text)
    if not name:
        raise VocError(f"{source}: has neither <filename> nor <path>")
    width = height = None
    size = root.find("size")
    if size is not None:
        w, h = _number(_child_text(size, "width")), _number(_child_text(size, "height"))
        if w and h and w > 0 and h > 0:
            width, height = int(round(w)), int(round(h))
    if width is None:
        notes.append("no usable <size>: read from the image")
    objects: list[VocObject] = []
    left_out: list[str] = []
    for n, obj in enumerate(root.iter("object"), start=1):
        label = (_child_text(obj, "name") or "").strip()
        bb = obj.find("bndbox")
        coords = [_number(_child_text(bb, t)) if bb is not None else None for t in ("xmin", "ymin", "xmax", "ymax")]
        if not label:
            left_out.append(f"object {n}: no <name>; left out")
            continue
        if any(c is None for c in coords):
            left_out.append(f"object {n} ({label}): <bndbox> lacks a number; left out")
            continue
        xmin, ymin, xmax, ymax = coords  # type: ignore[misc]
        flags = {t: int(_number(_child_text(obj, t)) or 0) for t in ("truncated", "difficult")}
        objects.append(
            VocObject(
                box_from_voc(xmin, ymin, xmax, ymax),  # type: ignore[arg-type]
                label,
                pose=(_child_text(obj, "pose") or "Unspecified").strip() or "Unspecified",
                truncated=flags["truncated"],
                difficult=flags["difficult"],
                number=n,
            )
        )
    attributes = {
        str(a.get("name")): (a.text or "").strip()
        for a in root.findall("attributes/attribute")
        if a.get("name")
    }
    return VocAnnotation(name, path_text, width, height, objects, attributes, notes, left_out)
