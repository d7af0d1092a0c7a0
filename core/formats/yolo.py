"""Ultralytics YOLO detection datasets: ``images/``, ``labels/*.txt``, ``data.yaml`` or ``classes.txt``.

Coordinate space: each line of a label file is ``class cx cy w h``: the class a 0-based
index into the names, then the box's **centre, width and height normalised to [0, 1]** by
the image's width and height (origin at the top-left corner). :func:`box_to_yolo` and
:func:`box_from_yolo` are the only conversions to and from :class:`core.boxes.Box`;
:func:`box_from_yolo` gives a normalised ``Box`` that the importer scales by the stored
image's own size.

Layouts read (a folder or a zip; or the ``data.yaml`` itself):

- Ultralytics: ``data.yaml`` with ``names`` (a list, or a dict index -> name), an optional
  ``path`` (the dataset root; kept only when it exists inside the dataset), and
  ``train``/``val``/``test`` entries, each a folder of images (``images/train``), a list file
  of image paths (``train.txt``), or a list of those. A label file sits where the image is
  with the last ``images`` folder of its path replaced by ``labels`` and the extension by
  ``.txt`` (``images/train/a.jpg`` -> ``labels/train/a.txt``).
- ``classes.txt`` (one name a line) with ``labels/`` beside ``images/`` or ``JPEGImages/``,
  with or without ``train``/``val``/``test`` folders (the folder name gives the split).

An empty label file is an image with no objects; an image without a label file was not
annotated (it comes in as new, to annotate). A bad line (wrong field count, a class out of
range, a coordinate outside [0, 1]) is reported by ``file:line`` and the rest come in.

Export writes ``images/{split}/``, ``labels/{split}/<stem>.txt`` (classes in the project's
label order), ``data.yaml`` and ``classes.txt``. YAML is read and written by the small
functions below rather than a YAML library (Tagrack has no YAML dependency): the writer
quotes every name; the reader takes the subset dataset files use (block and flow lists and
maps of scalars, comments, quoted strings) and skips keys it does not need, whatever they hold.
"""

from __future__ import annotations

import math
import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path

from core.boxes import Box
from core.dataset.files import Files
from core.dataset.items import AnnotationImportError, ExportContext, ImportItem, ImportOutcome
from core.formats.registry import FormatSpec
from core.project.decode import IngestError
from core.project.ingest import IMAGE_EXTENSIONS

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
# Written coordinates: 6 decimals is under 0.01 px on a 8,000 px wide image.
DECIMALS = 6
# An edge computed from a centre and a size that were rounded to DECIMALS may land this far past
# 0 or 1; it is the image edge, not a box running off the image.
ROUNDING = 1e-5


def box_to_yolo(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixels -> YOLO (cx, cy, w, h), normalised by the image size."""
    return (
        (box.x_min + box.x_max) / 2 / width,
        (box.y_min + box.y_max) / 2 / height,
        box.width / width,
        box.height / height,
    )


def box_from_yolo(cx: float, cy: float, w: float, h: float) -> Box:
    """YOLO (cx, cy, w, h) -> a normalised ``Box`` (scale it by the image size for pixels)."""
    return Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


# --- YAML, the subset dataset files use ---------------------------------------------------------------------


def _yaml_quote(text: str) -> str:
    """A single-quoted YAML scalar (a quote inside is doubled): safe for any name."""
    return "'" + text.replace("'", "''") + "'"


def format_data_yaml(names: list[str], splits: list[str]) -> str:
    """``data.yaml`` for an export whose images are in ``images/{split}`` for each of ``splits``.

    No ``path``: Ultralytics then takes the folder holding data.yaml as the root, wherever
    the export is unpacked.
    """
    lines = ["# Ultralytics YOLO detection dataset exported by Tagrack", "# root: the folder of this file"]
    lines += [f"{split}: images/{split}" for split in splits]
    lines += [f"nc: {len(names)}", "names:"]
    lines += [f"  {i}: {_yaml_quote(name)}" for i, name in enumerate(names)]
    return "\n".join(lines) + "\n"


def _unquoted(text: str) -> Iterator[tuple[int, str]]:
    """The characters of ``text`` outside single or double quotes, with their positions."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        else:
            yield i, ch


def _strip_comment(line: str) -> str:
    """The line without a ``#`` comment (a ``#`` inside quotes, or not after a space, is text)."""
    for i, ch in _unquoted(line):
        if ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def _split_flow(text: str) -> list[str]:
    """``a, 'b, c', d`` -> its items (commas inside quotes kept)."""
    cuts = [i for i, ch in _unquoted(text) if ch == ","]
    items = [text[i + 1 : j] for i, j in zip([-1, *cuts], [*cuts, len(text)], strict=True)]
    return [item.strip() for item in items if item.strip()]


def _key_value(text: str) -> tuple[str, str] | None:
    """``key: value`` split at the first ``: `` outside quotes; None when the text is no mapping entry."""
    for i, ch in _unquoted(text):
        if ch == ":" and (i + 1 == len(text) or text[i + 1] in " \t"):
            return _scalar(text[:i]), text[i + 1 :].strip()
    return None


def _value(text: str, where: str) -> str | list[str] | dict[str, str]:
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(item) for item in _split_flow(text[1:-1])]
    if text.startswith("{") and text.endswith("}"):
        out = {}
        for item in _split_flow(text[1:-1]):
            kv = _key_value(item)
            if kv is None:
                raise AnnotationImportError(f"{where}: not a 'key: value' entry: {item!r}")
            out[kv[0]] = _scalar(kv[1])
        return out
    return _scalar(text)


def parse_data_yaml(text: str, source: str = "data.yaml") -> dict[str, str | list[str] | dict[str, str]]:
    """The top-level keys of a dataset YAML: scalars, and lists or maps of scalars (block or flow style).

    Keys whose value is anything else (a ``download: |`` script, nested maps) are skipped.

    Raises:
        AnnotationImportError: A line of a needed key cannot be read (the message names it).
    """
    out: dict[str, str | list[str] | dict[str, str]] = {}
    lines = text.lstrip("\ufeff").splitlines()
    i = 0
    while i < len(lines):
        raw = _strip_comment(lines[i])
        i += 1
        if not raw.strip() or raw.strip() == "---" or raw[0] in " \t":
            continue
        kv = _key_value(raw)
        if kv is None:
            raise AnnotationImportError(f"{source}:{i}: not a 'key: value' line: {raw.strip()!r}")
        key, rest = kv
        block: list[tuple[int, str]] = []
        while i < len(lines) and (not lines[i].strip() or lines[i][0] in " \t-"):
            if (stripped := _strip_comment(lines[i]).strip()) and not stripped.startswith("#"):
                block.append((i + 1, stripped))
            i += 1
        if key not in ("path", "train", "val", "test", "names", "nc"):
            continue  # whatever it holds, it is not ours to read
        if rest and rest not in ("|", ">", "|-", ">-"):
            out[key] = _value(rest, f"{source}:{i - len(block)}")
        elif block and all(line.startswith("- ") or line == "-" for _n, line in block):
            out[key] = [_scalar(line[1:]) for _n, line in block]
        elif block:
            mapping = {}
            for n, line in block:
                entry = _key_value(line)
                if entry is None:
                    raise AnnotationImportError(f"{source}:{n}: not a list item or 'key: value' line: {line!r}")
                mapping[entry[0]] = _scalar(entry[1])
            out[key] = mapping
        else:
            out[key] = ""
    return out


# --- reading -----------------------------------------------------------------------------------------------------


def _names_of(value: object, source: str) -> list[str]:
    """The class names from ``names``: a list, or a map index -> name with indices 0..n-1."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        try:
            indexed = {int(k): str(v) for k, v in value.items()}
        except ValueError as exc:
            raise AnnotationImportError(f"{source}: names has a key that is not a class index: {exc}") from exc
        if sorted(indexed) != list(range(len(indexed))):
            raise AnnotationImportError(f"{source}: names must number the classes 0..{len(indexed) - 1}")
        return [indexed[k] for k in range(len(indexed))]
    raise AnnotationImportError(f"{source}: no 'names' list or map of class names")


def _join(*parts: str) -> str:
    """A posix path relative to the dataset root (``..`` resolved; empty for the root itself)."""
    joined = posixpath.normpath(posixpath.join(*parts)) if any(parts) else ""
    return "" if joined == "." else joined


def label_rel_candidates(image_rel: str) -> list[str]:
    """Where the label file of an image may be, most likely first.

    Ultralytics' rule (the last ``images`` folder of the path becomes ``labels``), then
    ``labels/`` beside the image's folder (``JPEGImages/a.jpg`` -> ``labels/a.txt``), then
    the image's own folder (darknet).
    """
    folder, base = posixpath.split(image_rel)
    stem = posixpath.splitext(base)[0]
    parts = folder.split("/") if folder else []
    out = []
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() == "images":
            out.append("/".join([*parts[:i], "labels", *parts[i + 1 :], f"{stem}.txt"]))
            break
    if parts:
        out.append(_join(posixpath.dirname(folder), "labels", f"{stem}.txt"))
    out.append(_join(folder, f"{stem}.txt"))
    return list(dict.fromkeys(out))


def _parse_labels(text: str, rel: str, names: list[str]) -> tuple[list[tuple[str, Box]], list[str], list[str]]:
    """(objects as normalised boxes, their refs ``file:line``, lines left out with why)."""
    objects, refs, left_out = [], [], []
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{rel}:{n}"
        if len(fields) != 5:
            left_out.append(f"{where}: {len(fields)} fields, not 5 (class cx cy w h); left out")
            continue
        try:
            index = int(fields[0])
        except ValueError:
            left_out.append(f"{where}: class {fields[0]!r} is not a class index; left out")
            continue
        if not 0 <= index < len(names):
            left_out.append(f"{where}: class {index} out of range (0..{len(names) - 1}); left out")
            continue
        try:
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            left_out.append(f"{where} ({names[index]}): coordinates are not numbers; left out")
            continue
        if not all(math.isfinite(v) and 0 <= v <= 1 for v in (cx, cy, w, h)):
            left_out.append(f"{where} ({names[index]}): coordinates outside [0, 1]; left out")
            continue
        box = box_from_yolo(cx, cy, w, h)
        if (
            -ROUNDING < box.x_min < 0
            or -ROUNDING < box.y_min < 0
            or 1 < box.x_max < 1 + ROUNDING
            or 1 < box.y_max < 1 + ROUNDING
        ):
            box = Box(max(box.x_min, 0.0), max(box.y_min, 0.0), min(box.x_max, 1.0), min(box.y_max, 1.0))
        objects.append((names[index], box))
        refs.append(where)
    return objects, refs, left_out


def _is_image(rel: str) -> bool:
    return posixpath.splitext(rel)[1].lower() in IMAGE_EXTENSIONS


def _split_of_folder(image_rel: str) -> str | None:
    """The split a folder in the image's path names (``images/train/a.jpg`` -> train), if any."""
    for part in reversed(image_rel.split("/")[:-1]):
        if part.lower() in SPLIT_FOLDERS:
            return SPLIT_FOLDERS[part.lower()]
    return None


def _listed_images(files: Files, root: str, entry: str, problems: list[ImportOutcome], source: str) -> list[str]:
    """The images one ``train``/``val``/``test`` entry names: a folder below ``root``, or a list file."""
    rel = _join(root, entry.replace("\\", "/").removeprefix("./"))
    prefix = f"{rel}/" if rel else ""
    if rel in files.members and not _is_image(rel):  # a list file of image paths
        try:
            lines = files.read(rel).decode("utf-8-sig").splitlines()
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            problems.append(ImportOutcome(rel, "failed", f"image list not readable ({exc}); its images left out"))
            return []
        found = []
        for n, line in enumerate(lines, start=1):
            path = line.strip().replace("\\", "/")
            if not path:
                continue
            here = _join(posixpath.dirname(rel), path.removeprefix("./"))
            hit = here if here in files.members else _join(root, path.removeprefix("./"))
            if hit not in files.members:
                hit = files.find_image(posixpath.basename(path)) or ""
            if hit:
                found.append(hit)
            else:
                problems.append(ImportOutcome(f"{rel}:{n}", "failed", f"image {path!r} not found in the dataset"))
        return found
    listed = [r for r in files.members if r.startswith(prefix) and _is_image(r)]
    if not listed:
        problems.append(ImportOutcome(source, "skipped", f"{entry!r}: no images found there"))
    return listed


def _find_config(files: Files) -> str | None:
    """The dataset YAML (``data.yaml`` first, else another YAML with ``names``), shallowest first."""
    yamls = sorted((r for r in files.members if r.lower().endswith((".yaml", ".yml"))), key=lambda r: (r.count("/"), r))
    preferred = [r for r in yamls if posixpath.basename(r).lower() in ("data.yaml", "data.yml", "dataset.yaml")]
    for rel in preferred + [r for r in yamls if r not in preferred]:
        try:
            if "names" in files.read(rel).decode("utf-8-sig"):
                return rel
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile):
            continue
    return None


def read(path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a YOLO dataset: a folder or zip, or its ``data.yaml`` (see the module docstring)."""
    config_name = None
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        config_name, path = path.name, path.parent
    files = Files(path)
    yield from files.refused
    config = config_name if config_name in files.members else _find_config(files)
    problems: list[ImportOutcome] = []
    split_of: dict[str, str] = {}
    if config is not None:
        try:
            doc = parse_data_yaml(files.read(config).decode("utf-8-sig"), config)
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise AnnotationImportError(f"{config}: not readable: {exc}") from exc
        names = _names_of(doc.get("names"), config)
        root = posixpath.dirname(config)
        declared = doc.get("path")
        if isinstance(declared, str) and declared and not posixpath.isabs(declared.replace("\\", "/")):
            candidate = _join(root, declared)
            if any(r.startswith(f"{candidate}/") for r in files.members) or not candidate:
                root = candidate
        for split in ("train", "val", "test"):
            entries = doc.get(split)
            for entry in [entries] if isinstance(entries, str) else entries or []:
                if not isinstance(entry, str) or not entry:
                    continue
                for rel in _listed_images(files, root, entry, problems, config):
                    split_of.setdefault(rel, split)  # listed twice: the first list read wins
        candidates = sorted(split_of) or sorted(r for r in files.members if _is_image(r))
    else:
        classes = sorted((r for r in files.members if posixpath.basename(r).lower() == "classes.txt"), key=len)
        if not classes:
            raise AnnotationImportError(f"{path.name}: no data.yaml or classes.txt naming the classes")
        try:
            text = files.read(classes[0]).decode("utf-8-sig")
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise AnnotationImportError(f"{classes[0]}: not readable: {exc}") from exc
        names = [line.strip() for line in text.splitlines() if line.strip()]
        candidates = sorted(r for r in files.members if _is_image(r))
    yield from problems
    if not candidates:
        raise AnnotationImportError(f"{path.name}: no images found")
    used_labels: set[str] = set()
    for image_rel in candidates:
        label_rel = next((r for r in label_rel_candidates(image_rel) if r in files.members), None)
        split = split_of.get(image_rel) or _split_of_folder(image_rel)
        common = {
            "image_name": posixpath.basename(image_rel),
            "read": lambda r=image_rel: files.read(r),
            "coords": "normalised",
            "split": split,
            "split_from": (config or "the split folders") if split else None,
        }
        if label_rel is None:
            yield ImportItem(source=image_rel, objects=[], annotated=False, **common)  # type: ignore[arg-type]
            continue
        used_labels.add(label_rel)
        try:
            text = files.read(label_rel).decode("utf-8-sig")
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            yield ImportOutcome(label_rel, "failed", f"label file not readable: {exc}")
            continue
        objects, refs, left_out = _parse_labels(text, label_rel, names)
        yield ImportItem(source=label_rel, objects=objects, refs=refs, left_out=left_out, **common)  # type: ignore[arg-type]
    orphans = sorted(
        r
        for r in files.members
        if r.lower().endswith(".txt")
        and "labels" in r.lower().split("/")
        and r not in used_labels
        and posixpath.basename(r).lower() != "classes.txt"  # LabelImg keeps it among the label files
    )
    if orphans:
        shown = ", ".join(orphans[:5]) + (", …" if len(orphans) > 5 else "")
        yield ImportOutcome(
            "labels", "skipped", f"{len(orphans)} label files have no image, so nothing was imported for them: {shown}"
        )


# --- writing -----------------------------------------------------------------------------------------------------


def format_label_lines(img_objects: list[tuple[int, Box]], width: int, height: int) -> str:
    """The label file of one image: ``class cx cy w h`` a line (empty for an image with no objects)."""
    lines = []
    for class_index, box in img_objects:
        cx, cy, w, h = box_to_yolo(box, width, height)
        lines.append(f"{class_index} {cx:.{DECIMALS}f} {cy:.{DECIMALS}f} {w:.{DECIMALS}f} {h:.{DECIMALS}f}\n")
    return "".join(lines)


def write(ctx: ExportContext) -> list[str]:
    """``images/{split}/``, ``labels/{split}/<stem>.txt``, ``data.yaml`` and ``classes.txt``."""
    files: list[str] = []
    with ctx.open_sink() as sink:
        for split in ctx.splits:
            for img in ctx.images(split):
                stem = posixpath.splitext(img.name)[0]
                sink.copy_file(f"images/{split}/{img.name}", ctx.settings.data_dir / img.stored_path)
                objects = [(o.label_index - 1, o.box) for o in img.objects]
                sink.write_text(f"labels/{split}/{stem}.txt", format_label_lines(objects, img.width, img.height))
        splits = [s for s in ctx.splits if ctx.counts.get(s)]
        sink.write_text("data.yaml", format_data_yaml(ctx.label_names, splits))
        sink.write_text("classes.txt", "".join(f"{n}\n" for n in ctx.label_names))
        files += ["data.yaml", "classes.txt"]
    return files


FORMAT = FormatSpec(
    name="yolo",
    title="YOLO",
    reader=read,
    writer=write,
    import_description="Ultralytics YOLO (zip with images/, labels/*.txt and data.yaml or classes.txt)",
    export_description="Ultralytics YOLO (images/{train,val,test}, labels/*.txt, data.yaml)",
    import_path="folder, zip or data.yaml",
    file_patterns=("*.zip",),
    import_rank=25,
    export_rank=35,
)
