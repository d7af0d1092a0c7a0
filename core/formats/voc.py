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
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, indent, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from core.boxes import Box
from core.dataset.files import Files
from core.dataset.items import AnnotationImportError, ExportContext, ImportItem, ImportOutcome, truncated
from core.formats.registry import FormatSpec
from core.project.decode import IngestError

# Images from elsewhere arrive with annotation files; a VOC XML is a few KB. Anything far
# larger is not an annotation (or is an attack) and is refused before parsing.
MAX_XML_BYTES = 5 * 1024 * 1024
# VOC's split lists, in the order that wins when one id is listed in several: an image that is anywhere
# in a test list must never be trained on (that would leak it into the model it is meant to measure).
VOC_SPLIT_LISTS: tuple[str, ...] = ("test", "val", "train")
VOC_SPLIT_SOURCE = "ImageSets/Main"


@dataclass
class _VocSplitLists:
    """The ``ImageSets/Main/{train,val,test}.txt`` lists of one VOC dataset root.

    Attributes:
        listed: Image id -> the splits it is listed in, in :data:`VOC_SPLIT_LISTS` order.
        folded: Case-folded id -> id, for datasets whose lists and file names differ in case.
        used: Ids matched to an annotation so far.
        files: The list files found, by split.
    """

    listed: dict[str, list[str]] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    files: dict[str, str] = field(default_factory=dict)

    def lookup(self, *stems: str) -> str | None:
        """The listed id among ``stems`` (exact first, then ignoring case)."""
        for stem in stems:
            if stem in self.listed:
                return stem
        for stem in stems:
            if (hit := self.folded.get(stem.casefold())) is not None:
                return hit
        return None


def _voc_root(xml_rel: str) -> str:
    """The dataset root of an annotation: the folder holding its ``Annotations`` folder.

    ``VOC2012/Annotations/a.xml`` -> ``VOC2012``; an XML outside any ``Annotations`` folder
    counts its own folder as the root.
    """
    parts = xml_rel.split("/")[:-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() == "annotations":
            return "/".join(parts[:i])
    return "/".join(parts)


def _read_voc_split_lists(files: Files, root: str, problems: list[ImportOutcome]) -> _VocSplitLists:
    """Reads ``<root>/ImageSets/Main/{train,val,test}.txt`` (any of them; names compared ignoring case).

    Only these three lists count: VOC's per-class lists (``dog_train.txt``, "id 1/-1" lines)
    and ``trainval.txt`` (the union of two lists) say nothing new. Lines are image ids (the
    XML/image stem); surrounding whitespace and blank lines are ignored. A list that cannot
    be read is reported in ``problems`` and left out.
    """
    lists = _VocSplitLists()
    prefix = f"{root}/" if root else ""
    wanted = {f"{prefix}{VOC_SPLIT_SOURCE}/{s}.txt".lower(): s for s in VOC_SPLIT_LISTS}
    for rel in files.members:
        split = wanted.get(rel.lower())
        if split is not None:
            lists.files[split] = rel
    for split in VOC_SPLIT_LISTS:  # precedence order, so each id's list of splits is in that order too
        rel = lists.files.get(split)
        if rel is None:
            continue
        try:
            text = files.read(rel).decode("utf-8-sig")
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            problems.append(ImportOutcome(rel, "failed", f"split list not readable ({exc}); its images get no split"))
            del lists.files[split]
            continue
        for line in text.splitlines():
            image_id = line.strip()
            if not image_id:
                continue
            splits = lists.listed.setdefault(image_id, [])
            if split not in splits:
                splits.append(split)
            lists.folded.setdefault(image_id.casefold(), image_id)
    return lists


def _unmatched_ids(lists: _VocSplitLists) -> Iterator[ImportOutcome]:
    """One ``skipped`` record per split list naming ids that no annotation matched."""
    for split, rel in lists.files.items():
        missing = sorted(i for i, splits in lists.listed.items() if split in splits and i not in lists.used)
        if missing:
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            yield ImportOutcome(
                rel,
                "skipped",
                f"{len(missing)} listed image ids have no annotation XML, so nothing was imported for them: {shown}",
            )


def read(path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a Pascal VOC folder or zip (``Annotations/*.xml`` and the images beside them).

    Images are found by the base name in ``<filename>`` (or ``<path>``), preferring
    ``JPEGImages/``, else by the XML's stem with an image extension. The split of an image
    comes from ``ImageSets/Main/{train,val,test}.txt`` beside the ``Annotations`` folder
    its XML is in (see :func:`_read_voc_split_lists`), matched by the XML's or the image's stem.
    """
    files = Files(path)
    yield from files.refused
    xmls = [rel for rel in files.members if rel.lower().endswith(".xml")]
    if not xmls:
        raise AnnotationImportError(f"{path.name}: no .xml annotation files found")
    split_lists: dict[str, _VocSplitLists] = {}
    for rel in xmls:
        root = _voc_root(rel)
        if root not in split_lists:
            problems: list[ImportOutcome] = []
            split_lists[root] = _read_voc_split_lists(files, root, problems)
            yield from problems
        lists = split_lists[root]
        xml_stem = posixpath.splitext(posixpath.basename(rel))[0]
        if (listed_id := lists.lookup(xml_stem)) is not None:
            lists.used.add(listed_id)  # has an annotation, even if it turns out unusable (reported on its own)
        try:
            ann = parse_voc_xml(files.read(rel), rel)
        except (VocError, IngestError, OSError) as exc:
            yield ImportOutcome(rel, "failed", str(exc).removeprefix(f"{rel}: "))  # the outcome names the file
            continue
        image_rel = files.find_image(ann.filename, near=rel, stem_of=rel)
        if image_rel is None:
            yield ImportOutcome(rel, "failed", f"image {ann.filename!r} not found in {path.name}")
            continue
        notes = list(ann.notes)
        split: str | None = None
        image_id = lists.lookup(xml_stem, posixpath.splitext(posixpath.basename(image_rel))[0])
        if image_id is not None:
            lists.used.add(image_id)
            splits = lists.listed[image_id]
            split = splits[0]
            if len(splits) > 1:
                notes.append(
                    f"listed in {' and '.join(f'{s}.txt' for s in splits)} of {VOC_SPLIT_SOURCE}; "
                    f"taken as {split} (an image listed for testing must never be trained on)"
                )
        yield ImportItem(
            source=rel,
            image_name=posixpath.basename(image_rel),
            read=lambda r=image_rel: files.read(r),
            objects=[(o.name, o.box) for o in ann.objects],
            declared_size=(ann.width, ann.height) if ann.width and ann.height else None,
            attributes=dict(ann.attributes),
            notes=notes,
            refs=[f"object {o.number}" for o in ann.objects],
            left_out=list(ann.left_out),
            split=split,
            split_from=VOC_SPLIT_SOURCE if split else None,
        )
    for lists in split_lists.values():
        yield from _unmatched_ids(lists)


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
        str(a.get("name")): (a.text or "").strip() for a in root.findall("attributes/attribute") if a.get("name")
    }
    return VocAnnotation(name, path_text, width, height, objects, attributes, notes, left_out)


# --- reading a dataset: Annotations/*.xml, the images beside them, ImageSets/Main split lists -------------


# --- writing ------------------------------------------------------------------------------------------------


def write(ctx: ExportContext) -> list[str]:
    """The LabelImg layout: ``JPEGImages/``, ``Annotations/*.xml``, ``ImageSets/Main/{split}.txt``, ``labels.txt``."""
    with ctx.open_sink() as sink:
        files: list[str] = []
        sink.write_text("labels.txt", "".join(f"{n}\n" for n in ctx.label_names))
        files.append("labels.txt")
        for split in ctx.splits:
            rel_list = f"ImageSets/Main/{split}.txt"
            with sink.open_text(rel_list) as listing:
                for img in ctx.images(split):
                    stem = posixpath.splitext(img.name)[0]
                    sink.copy_file(f"JPEGImages/{img.name}", ctx.settings.data_dir / img.stored_path)
                    xml = format_voc_xml(
                        filename=img.name,
                        width=img.width,
                        height=img.height,
                        objects=[VocObject(o.box, o.label, truncated=truncated(o.box, img)) for o in img.objects],
                        attributes=img.attributes,
                    )
                    sink.write_text(f"Annotations/{stem}.xml", xml)
                    listing.write(stem + "\n")
            files.append(rel_list)
    return files


FORMAT = FormatSpec(
    name="voc",
    title="VOC",
    reader=read,
    writer=write,
    import_description="Pascal VOC (zip with Annotations/*.xml and the images)",
    export_description="Pascal VOC (LabelImg layout: Annotations, JPEGImages, ImageSets)",
    import_path="folder or zip",
    file_patterns=("*.zip",),
    import_rank=10,
    export_rank=20,
)
