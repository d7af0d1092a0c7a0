"""COCO object-detection JSON (``instances_*.json``).

Coordinate space: ``bbox`` is **[x, y, width, height] in pixels**, (x, y) the top-left
corner, floats, origin at the image's top-left corner; ``area`` is width x height in
square pixels. :func:`box_to_coco` and :func:`box_from_coco` are the only conversions to
and from :class:`core.boxes.Box`. Category ids are 1..N in the project's label order.
Tagrack writes image-level attributes in an ``attributes`` field of each image (COCO
readers ignore unknown fields) and the split in ``split``.
"""

from __future__ import annotations

import json
import posixpath
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.boxes import Box
from core.dataset.files import Files
from core.dataset.items import AnnotationImportError, ExportContext, ImportItem, ImportOutcome
from core.formats.registry import FormatSpec, Option


def box_to_coco(box: Box) -> list[float]:
    """Pixels -> COCO [x, y, w, h]."""
    return [box.x_min, box.y_min, box.width, box.height]


def box_from_coco(bbox: Sequence[float]) -> Box:
    """COCO [x, y, w, h] -> pixels.

    Raises:
        ValueError: When ``bbox`` is not four numbers.
    """
    if len(bbox) != 4:
        raise ValueError(f"bbox must have four numbers, not {len(bbox)}")
    x, y, w, h = (float(v) for v in bbox)
    return Box.from_xywh(x, y, w, h)


def coco_categories(label_names: Sequence[str]) -> list[dict[str, Any]]:
    """Categories with ids 1..N in label order."""
    return [{"id": i, "name": n, "supercategory": "clothing"} for i, n in enumerate(label_names, start=1)]


def coco_image(
    image_id: int, file_name: str, width: int, height: int, attributes: Mapping[str, Any] | None, split: str
) -> dict[str, Any]:
    """One entry of ``images``."""
    return {
        "id": image_id,
        "file_name": file_name,
        "width": width,
        "height": height,
        "attributes": dict(attributes or {}),
        "split": split,
    }


def coco_annotation(ann_id: int, image_id: int, category_id: int, box: Box) -> dict[str, Any]:
    """One entry of ``annotations``."""
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": box_to_coco(box),
        "area": box.area,
        "iscrowd": 0,
        "segmentation": [],
    }


# --- reading --------------------------------------------------------------------------------------------------


def _ann_ref(ann: dict[str, Any], position: int) -> str:
    """How a report names a COCO annotation: by its ``id``, else by its place in the file's list."""
    return f"annotation {ann['id']}" if ann.get("id") is not None else f"annotation #{position} (no id)"


def _refs_list(refs: list[str]) -> str:
    """``annotations 20, 21`` from ``['annotation 20', 'annotation 21']`` (at most 10 named)."""
    if len(refs) == 1:
        return refs[0]
    names = [r.removeprefix("annotation ") for r in refs]
    return "annotations " + ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def read(json_path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a COCO detection JSON; images are looked up by ``file_name`` in ``images``.

    ``images`` defaults to the JSON's folder's parent (the ``annotations/`` + ``images/``
    layout) searched recursively by base name. Every annotation that cannot be imported is
    reported by its ``id``: those naming an ``image_id`` that is not in ``images`` (or none),
    and those of an image entry that fails, as well as refused boxes.
    """
    try:
        doc = json.loads(json_path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationImportError(f"{json_path.name}: not readable JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise AnnotationImportError(f"{json_path.name}: not a COCO file (no 'images' list)")
    categories = {c.get("id"): str(c.get("name")) for c in doc.get("categories") or [] if isinstance(c, dict)}
    image_ids = {e.get("id") for e in doc["images"] if isinstance(e, dict)}
    by_image: dict[Any, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    orphans: dict[Any, list[str]] = defaultdict(list)
    without_image: list[str] = []
    for position, ann in enumerate(doc.get("annotations") or [], start=1):
        if not isinstance(ann, dict):
            without_image.append(f"annotation #{position} (not an object)")
            continue
        ref = _ann_ref(ann, position)
        image_id = ann.get("image_id")
        if image_id is None:
            without_image.append(ref)
        elif image_id in image_ids:
            by_image[image_id].append((ref, ann))
        else:
            orphans[image_id].append(ref)
    root = images or (json_path.parent.parent if json_path.parent.name == "annotations" else json_path.parent)
    files = Files(root)
    for entry in doc["images"]:
        lost = [ref for ref, _a in by_image.get(entry.get("id"), [])] if isinstance(entry, dict) else []
        also = f"; its {_refs_list(lost)} not imported" if lost else ""
        if not isinstance(entry, dict) or not entry.get("file_name"):
            yield ImportOutcome(json_path.name, "failed", f"image entry without file_name: {str(entry)[:80]}{also}")
            continue
        name = posixpath.basename(str(entry["file_name"]).replace("\\", "/"))
        source = f"{json_path.name}#{entry.get('id')}"
        rel = files.find_image(name)
        if rel is None:
            yield ImportOutcome(source, "failed", f"image {name!r} not found in {root}{also}")
            continue
        objects: list[tuple[str, Box]] = []
        refs: list[str] = []
        left_out: list[str] = []
        for ref, ann in by_image.get(entry.get("id"), []):
            label = categories.get(ann.get("category_id"))
            if label is None:
                left_out.append(f"{ref}: unknown category_id {ann.get('category_id')}; left out")
                continue
            try:
                objects.append((label, box_from_coco(ann.get("bbox") or [])))
                refs.append(ref)
            except (TypeError, ValueError) as exc:
                left_out.append(f"{ref} ({label}): bad bbox ({exc}); left out")
        w, h = entry.get("width"), entry.get("height")
        attrs = entry.get("attributes") if isinstance(entry.get("attributes"), dict) else {}
        yield ImportItem(
            source=source,
            image_name=name,
            read=lambda r=rel: files.read(r),
            objects=objects,
            declared_size=(int(w), int(h)) if isinstance(w, int) and isinstance(h, int) else None,
            attributes=attrs,
            refs=refs,
            left_out=left_out,
        )
    for image_id, refs in orphans.items():
        yield ImportOutcome(
            f"{json_path.name} image_id {image_id}",
            "skipped",
            f"{_refs_list(refs)} name image_id {image_id!r}, which is not in the file's images; left out",
        )
    if without_image:
        yield ImportOutcome(
            f"{json_path.name} annotations",
            "skipped",
            f"{_refs_list(without_image)}: no image_id; left out",
        )


# --- writing ------------------------------------------------------------------------------------------------


def write(ctx: ExportContext) -> list[str]:
    """``images/`` and ``annotations/instances_{split}.json``, each JSON streamed as its images are copied."""
    with ctx.open_sink() as sink:
        files: list[str] = []
        categories = coco_categories(ctx.label_names)
        ann_id = 0
        for split in ctx.splits:
            rel = f"annotations/instances_{split}.json"
            # Annotations go to a scratch file while the image list streams out, then follow it.
            with tempfile.TemporaryFile("w+", encoding="utf-8") as anns, sink.open_text(rel) as fh:
                fh.write('{"info": {"description": "Tagrack export", "version": "1.0"}, "licenses": [], ')
                fh.write('"categories": ' + json.dumps(categories) + ', "images": [')
                first_image, first_ann = True, True
                for img in ctx.images(split):
                    sink.copy_file(f"images/{img.name}", ctx.settings.data_dir / img.stored_path)
                    entry = coco_image(img.id, img.name, img.width, img.height, img.attributes, split)
                    fh.write(("" if first_image else ", ") + json.dumps(entry))
                    first_image = False
                    for o in img.objects:
                        ann_id += 1
                        ann = coco_annotation(ann_id, img.id, o.label_index, o.box)
                        anns.write(("" if first_ann else ", ") + json.dumps(ann))
                        first_ann = False
                fh.write('], "annotations": [')
                anns.seek(0)
                shutil.copyfileobj(anns, fh)
                fh.write("]}\n")
            files.append(rel)
    return files


FORMAT = FormatSpec(
    name="coco",
    title="COCO",
    reader=read,
    writer=write,
    import_description="COCO JSON (+ the images as a zip)",
    export_description="COCO JSON",
    import_path=".json",
    file_patterns=("*.json", "*.zip"),
    options=frozenset({Option.IMAGES}),
    import_rank=20,
    export_rank=30,
)
