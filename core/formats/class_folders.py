"""Folder per class: ``Shoes/a.jpg``, the layout Keras' ``image_dataset_from_directory`` reads.

The writer puts each image with a known category in ``{split}/{category}/{image}``: its stored
``category`` tag, or, where it has none, the label of its largest box (the same fallback the tags
model trains with). Images with neither are left out and listed in ``left_out.txt``.

The reader (:func:`read_tree`, used by ``python -m core import labels``) takes a folder or zip of
``class/image`` entries. A single top folder holding the class folders (a zipped ``dataset/``,
most of whose files lie a level deeper) is looked through, and so are ``train/``, ``val/``, ``test/`` folders (this writer's own layout).
Files outside a class folder, in folders nested deeper, and files that are not images are
reported and left out; the images themselves are checked by the usual ingest.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path

from core.dataset.files import Files
from core.dataset.items import ExportContext, ExportImage, ImportOutcome, LabelRecord
from core.formats.registry import FormatSpec
from core.formats.tags_csv import CATEGORY
from core.project.ingest import IMAGE_EXTENSIONS

SPLIT_FOLDERS = frozenset({"train", "val", "test"})


def _root_depth(images: list[str]) -> tuple[int, str]:
    """How many top folders to look through (0 or 1) to reach the class folders, and a note saying so."""
    parts = [m.split("/") for m in images]
    tops = {p[0] for p in parts}
    deeper = sum(len(p) >= 3 for p in parts)
    if len(tops) == 1 and deeper > len(parts) - deeper:  # most images lie below class folders inside it
        return 1, f"the class folders are read inside {next(iter(tops))}/"
    if tops and tops <= SPLIT_FOLDERS and all(len(p) == 3 for p in parts):
        return 1, f"the class folders are read inside {', '.join(sorted(tops))}/"
    return 0, ""


def read_tree(path: Path) -> Iterator[LabelRecord | ImportOutcome]:
    """One record per image of a class-folder tree (a folder or a zip); problems as outcomes.

    Raises:
        core.dataset.items.AnnotationImportError: ``path`` is neither a folder nor a zip.
    """
    files = Files(path)
    yield from files.refused
    members = sorted(files.members)
    images = [m for m in members if posixpath.splitext(m)[1].lower() in IMAGE_EXTENSIONS]
    depth, note = _root_depth(images)
    for rel in members:
        ext = posixpath.splitext(rel)[1].lower()
        parts = rel.split("/")[depth:] or [rel]
        if ext not in IMAGE_EXTENSIONS:
            yield ImportOutcome(rel, "skipped", f"not an image ({ext or 'no extension'}); left out")
        elif len(parts) == 1:
            yield ImportOutcome(rel, "failed", "not in a class folder (give class/image, e.g. Shoes/a.jpg)")
        elif len(parts) > 2:
            yield ImportOutcome(
                rel,
                "failed",
                f"in a nested folder ({'/'.join(parts[:-1])}): a class-folder tree has one level, class/image",
            )
        elif not parts[0].strip():
            yield ImportOutcome(rel, "failed", "the class folder has no name")
        else:
            yield LabelRecord(
                rel, parts[1], {CATEGORY: parts[0].strip()}, lambda rel=rel: files.read(rel), [note] if note else []
            )


def folder_name(value: str) -> str:
    """A category as one safe folder name (no separators, never ``.`` or ``..``)."""
    name = value.replace("/", "_").replace("\\", "_").strip()
    return name if name not in ("", ".", "..") else "_"


def image_category(img: ExportImage) -> str | None:
    """The image's stored category, else its largest box's label, else None."""
    stored = (img.attributes or {}).get(CATEGORY)
    if stored not in (None, ""):
        return str(stored)
    if img.objects:
        return max(img.objects, key=lambda o: o.box.area).label
    return None


def write(ctx: ExportContext) -> list[str]:
    """``{split}/{category}/{image}`` for every image with a category; ``left_out.txt`` lists the rest."""
    left_out: list[str] = []
    written = 0
    with ctx.open_sink() as sink:
        for split in ctx.splits:
            for img in ctx.images(split):
                category = image_category(img)
                if category is None:
                    left_out.append(img.name)
                    continue
                sink.copy_file(f"{split}/{folder_name(category)}/{img.name}", ctx.settings.data_dir / img.stored_path)
                written += 1
        ctx.written = written
        if not left_out:
            return []
        with sink.open_text("left_out.txt") as fh:
            fh.write("Images without a category tag or a box, so in no class folder:\n")
            fh.writelines(f"{name}\n" for name in left_out)
    return ["left_out.txt"]


FORMAT = FormatSpec(
    name="class-folders",
    title="Folder per class",
    writer=write,
    export_description="Folder per class: train/Shoes/a.jpg (category tag, else the largest box's label), "
    "as Keras' image_dataset_from_directory reads",
    export_rank=70,
    ground_truth="tags",
)
