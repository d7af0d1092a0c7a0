"""The TFRecord reader: OD API records (a file or a folder of shards, label map optional) as import items.

Reached through :data:`core.formats.tfrecord.FORMAT` (the package's top level stays light);
importing this module imports TensorFlow.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

from core.dataset.items import AnnotationImportError, ImportItem, ImportOutcome
from core.formats.label_map import LabelMapError, parse_label_map
from core.formats.tfrecord.parse import parse_example


def tfrecord_items(path: Path) -> Iterator[ImportItem | ImportOutcome]:
    """Items of OD API TFRecords: a file, or a folder of ``*.record*``/``*.tfrecord*`` files.

    The images come inside the records. Class names come from ``image/object/class/text``;
    records with only numeric labels need a ``label_map.pbtxt`` beside the records.
    """
    paths = (
        sorted(p for p in path.iterdir() if p.is_file() and (".record" in p.name or ".tfrecord" in p.name))
        if path.is_dir()
        else [path]
    )
    if not paths:
        raise AnnotationImportError(f"{path.name}: no .record or .tfrecord files found")
    label_map: dict[int, str] = {}
    lm = (path if path.is_dir() else path.parent) / "label_map.pbtxt"
    if lm.is_file():
        try:
            label_map = parse_label_map(lm.read_text(encoding="utf-8"))
        except (LabelMapError, UnicodeDecodeError) as exc:
            yield ImportOutcome(lm.name, "failed", f"label map not usable: {exc}")
    for p in paths:
        n = 0
        try:
            for raw in tf.data.TFRecordDataset(str(p)):
                n += 1
                source = f"{p.name}#{n}"
                try:
                    ex = parse_example(raw.numpy())
                except (tf.errors.InvalidArgumentError, ValueError) as exc:
                    yield ImportOutcome(source, "failed", f"not an OD API example: {str(exc).splitlines()[0][:200]}")
                    continue
                texts = ex["texts"]
                if not texts or len(texts) != len(ex["boxes"]):
                    if ex["labels"] and all(i in label_map for i in ex["labels"]):
                        texts = [label_map[i] for i in ex["labels"]]
                    elif ex["boxes"]:
                        yield ImportOutcome(
                            source, "failed", "boxes without class names and no label_map.pbtxt to name them"
                        )
                        continue
                # Boxes back to normalised: the stored image's own size is what counts.
                w, h = max(ex["width"], 1), max(ex["height"], 1)
                objects = [(t, b.scaled(1 / w, 1 / h)) for t, b in zip(texts, ex["boxes"], strict=True)]
                if not ex["encoded"]:
                    yield ImportOutcome(source, "failed", "record has no image/encoded bytes")
                    continue
                fallback = f"{ex['source_id'] or source}.{'png' if ex['format'] == 'png' else 'jpg'}"
                name = posixpath.basename(ex["filename"].replace("\\", "/")) or fallback
                yield ImportItem(
                    source=source,
                    image_name=name,
                    read=lambda b=ex["encoded"]: b,
                    objects=objects,
                    coords="normalised",
                    attributes=dict(ex["attributes"]),
                )
        except tf.errors.DataLossError as exc:
            first_line = str(exc).splitlines()[0][:200]
            yield ImportOutcome(
                f"{p.name}#{n + 1}", "failed", f"corrupt TFRecord file, the rest of it is unreadable: {first_line}"
            )
