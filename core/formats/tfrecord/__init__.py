"""TFRecord in the TensorFlow Object Detection API's ``tf.train.Example`` layout.

One module per job: :mod:`.features` (the decoder's feature spec and the only coordinate
conversions, pixels <-> normalised), :mod:`.wire` (the hand-written protobuf encoder the
exporter uses), :mod:`.records` (TFRecord file framing, writing and reading),
:mod:`.parse` (one serialized example back to pixels). Importing this package imports no
TensorFlow; its modules do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.dataset.items import ExportContext, ImportItem, ImportOutcome
from core.formats.registry import FormatSpec, Option


def read(path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Import items of OD API TFRecords (:func:`core.formats.tfrecord.reader.tfrecord_items`); images come inside."""
    from core.formats.tfrecord.reader import tfrecord_items

    return tfrecord_items(path)


def write(ctx: ExportContext) -> list[str]:
    """Sharded OD API TFRecords and ``label_map.pbtxt`` (:func:`core.formats.tfrecord.writer.export_tfrecord`)."""
    from core.formats.tfrecord.writer import export_tfrecord

    return export_tfrecord(ctx)


FORMAT = FormatSpec(
    name="tfrecord",
    title="TFRecord",
    import_path="file or folder",
    reader=read,
    writer=write,
    import_description="TFRecord, TensorFlow Object Detection API (images inside; optional label_map.pbtxt)",
    export_description="TFRecord (TensorFlow Object Detection API) + label_map.pbtxt",
    file_patterns=("*.record", "*.tfrecord", "*.pbtxt"),
    options=frozenset({Option.LABEL_MAP}),
    import_rank=40,
    export_rank=10,
)
