"""A copy of a Pascal VOC dataset with every image and box resized by one factor.

Why: #20 measures small garments on a copy of ccp-detection downscaled to 2/3, where a pair
of sunglasses is about the 35x30 px it is on the street photos the detector misses it on. The
copy is built once into the data folder and reused (a half-built copy is rebuilt).

What changes: each image in ``JPEGImages/`` that an annotation names is resized with Pillow's
LANCZOS to ``round(side * scale)`` (JPEG quality 95), turned upright first the way the import
turns it (EXIF orientation) so its boxes still fit; in each ``Annotations/*.xml`` the
``<size>`` and every ``<bndbox>`` are scaled by the factors actually applied per axis.
Everything else in the XML, ``ImageSets/`` (the fixed split) and the top-level files
(``labels.txt``, the licence) are copied as they are.

Coordinates: ``<bndbox>`` is VOC's 1-based inclusive space, so a box is taken to pixels with
:func:`core.formats.voc.box_from_voc` (``xmin - 1``), scaled there, and written back with the
``+ 1``, as floats with two decimals (our VOC import reads floats): rounding to integers would
move a 19 px box by up to half a pixel more than the resize does.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree.ElementTree import SubElement  # writing only: what is read from outside goes through defusedxml

import defusedxml.ElementTree as SafeET
from PIL import Image, ImageOps

from core.formats.voc import box_from_voc

DONE_MARKER = ".scaled-copy-complete"


def scaled_copy_dir(data_dir: Path, source: Path, scale: float) -> Path:
    """Where :func:`build_scaled_copy` puts ``source`` scaled by ``scale``, e.g. ``<data-dir>/ccp-detection-scaled-0.667``."""
    return data_dir / f"{source.name}-scaled-{scale:g}"


def build_scaled_copy(source: Path, target: Path, scale: float) -> Path:
    """Builds ``target`` as ``source`` scaled by ``scale`` (see the module docstring), unless it is already built.

    Returns:
        ``target``.

    Raises:
        ValueError: ``scale`` is not positive.
        FileNotFoundError: An annotation names an image that is not in ``JPEGImages/``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    if (target / DONE_MARKER).is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    for leftover in (target, partial):  # a copy interrupted earlier is rebuilt from scratch
        if leftover.exists():
            shutil.rmtree(leftover)
    (partial / "Annotations").mkdir(parents=True)
    (partial / "JPEGImages").mkdir()
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, partial / item.name)
    if (source / "ImageSets").is_dir():
        shutil.copytree(source / "ImageSets", partial / "ImageSets")
    for xml in sorted((source / "Annotations").glob("*.xml")):
        _scale_one(source, partial, xml, scale)
    (partial / DONE_MARKER).write_text(f"{source} scaled by {scale:g}\n")
    partial.rename(target)
    return target


def _scale_one(source: Path, target: Path, xml: Path, scale: float) -> None:
    """Resizes one annotation's image and rewrites its XML into ``target``."""
    tree = SafeET.parse(xml)
    root = tree.getroot()
    name = Path((root.findtext("filename") or "").strip()).name or f"{xml.stem}.jpg"
    image_path = source / "JPEGImages" / name
    if not image_path.is_file():
        raise FileNotFoundError(f"{xml.name}: image {name!r} not in {source / 'JPEGImages'}")
    with Image.open(image_path) as im:
        upright = ImageOps.exif_transpose(im)  # the import turns it upright before its boxes apply
        width, height = upright.size
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = upright.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    resized.save(target / "JPEGImages" / name, quality=95)
    sx, sy = size[0] / width, size[1] / height  # the factors left after rounding to whole pixels
    size_el = root.find("size")
    if size_el is None:
        size_el = SubElement(root, "size")
    for tag, value in (("width", size[0]), ("height", size[1])):
        (size_el.find(tag) if size_el.find(tag) is not None else SubElement(size_el, tag)).text = str(value)
    for bndbox in root.iter("bndbox"):
        corners = [bndbox.find(tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        try:
            box = box_from_voc(*(float(el.text) for el in corners)).scaled(sx, sy)
        except (AttributeError, TypeError, ValueError):
            continue  # unreadable: left as it is, for the import to refuse as it refuses the original
        for el, value in zip(corners, (box.x_min + 1, box.y_min + 1, box.x_max, box.y_max), strict=True):
            el.text = f"{value:.2f}"
    tree.write(target / "Annotations" / xml.name, encoding="utf-8")
