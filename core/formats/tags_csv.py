"""Image-level labels as CSV: ``tags.csv`` (image, one column per tag) out; label files in.

The writer puts ``images/`` and ``tags.csv`` (``image,split,<tag>,...``, the category first) in the
export; a cell is empty where the image's tag is not known (only tags STORED on the image are
written: schema defaults and machine ``auto_`` keys are not ground truth).

The reader (:func:`read_labels`, used by ``python -m core import labels``, not by the annotation
import) takes three shapes:

- a header ``image,label`` (or ``category`` / ``class``: the category) with more columns read as
  tags of their name (``tags.csv`` read back; a ``split`` column is not a tag and is left out);
- no header, ``image,label`` rows (the category);
- no header, ``image,tag=value,tag=value,...`` rows.

A value holding a comma must be in double quotes, as every spreadsheet writes it. A line longer
than :data:`MAX_LINE` characters is refused without being held in memory. Each bad row gets a
message (unknown shape, empty value, repeat of an earlier row, conflict with it) and the rest
come in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from core.dataset.items import AnnotationImportError, ExportContext, ImportOutcome, LabelRecord
from core.formats.registry import FormatSpec

CATEGORY = "category"
MAX_LINE = 64 * 1024
IMAGE_HEADERS = frozenset({"image", "filename", "file", "file_name", "image_name", "path", "name"})
CATEGORY_HEADERS = frozenset({"label", "category", "class", "class_name"})
NOT_TAG_HEADERS = frozenset({"split"})


def _lines(fh: io.TextIOBase) -> Iterator[tuple[int, str | None, int]]:
    """(line number, line or None when too long, its length); a too-long line is skipped in chunks."""
    n = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            length = len(line)
            while True:  # read past the rest of the line without keeping it
                rest = fh.readline(MAX_LINE)
                length += len(rest)
                if not rest or rest.endswith("\n"):
                    break
            yield n, None, length
            continue
        yield n, line, len(line)


def _parse(line: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([line]), [])]


class _Seen:
    """Tags already given per image: a repeated row adds nothing, a conflicting one is refused."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, tuple[str, str]]] = {}

    def keep_new(self, image: str, tags: dict[str, str], where: str) -> tuple[dict[str, str], list[str], list[str]]:
        """The tags not given before, the repeats (where first) and the conflicts (messages)."""
        seen = self.tags.setdefault(image.casefold(), {})
        new: dict[str, str] = {}
        repeats: list[str] = []
        conflicts: list[str] = []
        for tag, value in tags.items():
            if tag not in seen:
                seen[tag] = (value, where)
                new[tag] = value
            elif seen[tag][0] == value:
                repeats.append(seen[tag][1])
            else:
                conflicts.append(
                    f"{tag}={value!r} conflicts with {tag}={seen[tag][0]!r} on {seen[tag][1]} (the first is kept)"
                )
        return new, repeats, conflicts


def read_labels(path: Path, ignore_columns: Sequence[str] = ()) -> Iterator[LabelRecord | ImportOutcome]:
    """Label records of a CSV file (see the module docstring for its shapes).

    Args:
        path: The CSV file.
        ignore_columns: Header columns not to read as tags (e.g. ``sender``).

    Raises:
        AnnotationImportError: The file cannot be read as UTF-8 text, or its header is unusable.
    """
    ignored = {c.strip().casefold() for c in ignore_columns}
    try:
        fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise AnnotationImportError(f"{path.name} cannot be read: {exc}") from exc
    try:
        yield from _read(fh, path.name, ignored)
    except UnicodeDecodeError as exc:
        raise AnnotationImportError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    finally:
        fh.close()


def _read(fh: io.TextIOBase, name: str, ignored: set[str]) -> Iterator[LabelRecord | ImportOutcome]:
    header: list[str | None] | None = None
    seen = _Seen()
    first = True
    for n, line, length in _lines(fh):
        where = f"{name} line {n}"
        if line is None:
            yield ImportOutcome(where, "failed", f"line is {length:,} characters long (at most {MAX_LINE:,}): left out")
            first = False
            continue
        cells = _parse(line)
        if not any(cells):
            continue
        if first:
            first = False
            if cells[0].casefold() in IMAGE_HEADERS:
                header = _header(cells, name, ignored)
                continue
        if not cells[0]:
            yield ImportOutcome(where, "failed", "no image name in the first column")
            continue
        image = cells[0]
        notes: list[str] = []
        if header is not None:
            if len(cells) != len(header):
                yield ImportOutcome(
                    where,
                    "failed",
                    f"{len(cells)} cells for the header's {len(header)} columns "
                    "(a value holding a comma must be in double quotes)",
                )
                continue
            tags = {tag: value for tag, value in zip(header[1:], cells[1:], strict=True) if tag and value}
            if not tags:
                yield ImportOutcome(where, "failed", f"{image}: every label cell is empty (empty values)")
                continue
        else:
            rest = cells[1:]
            if any("=" in c for c in rest):
                tags = {}
                for cell in rest:
                    tag, eq, value = (s.strip() for s in cell.partition("="))
                    if not eq:
                        notes.append(f"{cell!r} is not tag=value (a value holding a comma must be in double quotes)")
                    elif not tag:
                        notes.append(f"{cell!r} has no tag name")
                    elif not value:
                        notes.append(f"{tag} has an empty value")
                    elif tag in tags and tags[tag] != value:
                        notes.append(f"{tag} is given twice ({tags[tag]!r} kept, {value!r} left out)")
                    else:
                        tags[tag] = value
                if not tags:
                    yield ImportOutcome(where, "failed", f"{image}: no usable tag=value: {'; '.join(notes)}")
                    continue
            elif len(rest) == 1:
                if not rest[0]:
                    yield ImportOutcome(where, "failed", f"{image}: the label is empty (empty value)")
                    continue
                tags = {CATEGORY: rest[0]}
            elif not rest:
                yield ImportOutcome(where, "failed", f"{image}: no label (give image,label or image,tag=value)")
                continue
            else:
                yield ImportOutcome(
                    where,
                    "failed",
                    f"{len(cells)} cells and no tag=value: give image,label, with a value holding a comma "
                    'in double quotes ("Shirt, formal")',
                )
                continue
        new, repeats, conflicts = seen.keep_new(image, tags, where)
        notes.extend(conflicts)
        if repeats and not conflicts and not new:
            yield ImportOutcome(where, "duplicate", f"{image}: repeats {repeats[0]}; nothing added")
            continue
        if not new:
            yield ImportOutcome(where, "failed", f"{image}: {'; '.join(notes)}")
            continue
        if repeats:
            notes.append(f"some tags repeat {repeats[0]}")
        yield LabelRecord(where, image, new, None, notes)


def _header(cells: list[str], name: str, ignored: set[str]) -> list[str | None]:
    """Tag per column (None: not a tag); the first column is the image."""
    out: list[str | None] = [None]
    for i, cell in enumerate(cells[1:], start=2):
        key = cell.casefold()
        if not cell:
            raise AnnotationImportError(f"{name}: column {i} of the header has no name")
        if key in ignored or key in NOT_TAG_HEADERS:
            out.append(None)
            continue
        tag = CATEGORY if key in CATEGORY_HEADERS else cell
        if tag in out:
            raise AnnotationImportError(f"{name}: the header names {tag!r} twice")
        out.append(tag)
    return out


def stored_tags(attributes: dict | None, schema: dict[str, list[str]]) -> dict[str, str]:
    """The image's known tags: stored keys of the schema (not defaults, not machine keys)."""
    return {k: str(v) for k, v in (attributes or {}).items() if k in schema and str(v) != ""}


def tag_columns(schema: dict[str, list[str]]) -> list[str]:
    """The schema's tags in export order: the category first."""
    return sorted(schema, key=lambda t: (t != CATEGORY, list(schema).index(t)))


def write(ctx: ExportContext) -> list[str]:
    """``images/`` and ``tags.csv``: every image with at least one stored tag."""
    columns = tag_columns(ctx.attribute_schema)
    written = 0
    with ctx.open_sink() as sink:
        with sink.open_text("tags.csv") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["image", "split", *columns])
            for split in ctx.splits:
                for img in ctx.images(split):
                    tags = stored_tags(img.attributes, ctx.attribute_schema)
                    if not tags:
                        continue
                    sink.copy_file(f"images/{img.name}", ctx.settings.data_dir / img.stored_path)
                    w.writerow([img.name, split, *(tags.get(c, "") for c in columns)])
                    written += 1
    ctx.written = written
    return ["tags.csv"]


FORMAT = FormatSpec(
    name="tags-csv",
    title="tags.csv",
    writer=write,
    export_description="tags.csv: one row per tagged image (image, split, one column per tag) with images/",
    export_rank=60,
    ground_truth="tags",
)
