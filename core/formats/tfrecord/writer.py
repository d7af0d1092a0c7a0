"""The TFRecord writer: a project's exportable images as sharded OD API records and a label map.

Reached through :data:`core.formats.tfrecord.FORMAT` (the package's top level stays light);
importing this module imports TensorFlow, which only a TFRecord export pays for.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

from core.boxes import Box
from core.dataset.items import ExportContext, truncated
from core.formats.label_map import write_label_map
from core.formats.tfrecord.features import DEFAULT_VIEW, image_format
from core.formats.tfrecord.records import open_record_writer, shard_name
from core.formats.tfrecord.wire import ExampleImage, ExampleObject, example_head
from core.project.splits import SPLITS

IMAGES_PER_SHARD = 1000  # default shard size: a few hundred MB of phone photos per file


def export_tfrecord(ctx: ExportContext) -> list[str]:
    """Writes ``label_map.pbtxt`` and each split's shards below ``ctx.out`` (or into the zip at ``ctx.out``).

    Returns the files written, relative to the export's root.
    """
    settings, out, archive, label_index, counts = ctx.settings, ctx.out, ctx.archive, ctx.label_index, ctx.counts
    rows_of, num_shards = ctx.rows, ctx.num_shards
    label_names = [name for name, _ in sorted(label_index.values(), key=lambda item: item[1])]
    text_of = {label_id: name for label_id, (name, _) in label_index.items()}
    index_of = {label_id: index for label_id, (_, index) in label_index.items()}
    data_dir = str(settings.data_dir)
    if archive:
        # The scratch folder goes beside the zip, so the output's folder must exist first (the
        # Export page writes to <data dir>/exports/, which a fresh install does not have).
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".tfrecord-", dir=out.parent))
    else:
        folder = out
        folder.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    try:
        write_label_map(label_names, folder / "label_map.pbtxt")
        files.append("label_map.pbtxt")
        for split in (s.value for s in SPLITS):
            n = num_shards or max(1, math.ceil(counts[split] / IMAGES_PER_SHARD))
            shard_files = [shard_name(split, i, n) for i in range(n)]
            writers = [open_record_writer(folder / f) for f in shard_files]
            try:
                # The hot loop: per image one file read, one head of a few hundred bytes built from
                # the row's tuples, and one write of head and image bytes as they are (no joined copy).
                for i, (name, row) in enumerate(rows_of(split)):
                    image_id, _original, sha, stored, width, height, attrs, boxes = row
                    encoded = _read_file(os.path.join(data_dir, stored))  # no Path per image: hot loop
                    objects: list[ExampleObject] = []
                    image = ExampleImage(
                        image_format(encoded),
                        width,
                        height,
                        name,
                        str(image_id),
                        # The content hash taken at upload: the stored file's own hash whenever it
                        # was kept byte for byte (every JPEG and PNG that needed no conversion),
                        # and a unique key either way, which is what the OD API uses it for.
                        sha,
                        objects,
                        attrs,
                    )
                    for label_id, x0, y0, x1, y1 in boxes:  # filled here: truncated() needs the image's size
                        box = Box(x0, y0, x1, y1)
                        text, index, trunc = text_of[label_id], index_of[label_id], truncated(box, image)
                        objects.append(ExampleObject(box, text, index, 0, trunc, DEFAULT_VIEW))
                    writers[i % n].write(example_head(image, len(encoded)), encoded)
            finally:
                # A second thread for the writes was tried: on these 2 shared cores it cost CPU
                # (about 0.5 s instead of 0.3 s per 2,000 images) and gained no wall time.
                for writer in writers:
                    writer.close()
            files.extend(shard_files)
        if archive:
            with ctx.open_sink() as sink:
                for f in files:
                    sink.copy_file(f, folder / f)
    finally:
        if archive:
            shutil.rmtree(folder, ignore_errors=True)
    return files


def _read_file(path: str) -> bytes:
    """A whole file's bytes: os.open/fstat/read, without the buffered file object open() builds per call."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size)
        if len(data) < size:  # a short read: read on to the end
            chunks = [data]
            while chunk := os.read(fd, max(size, 1 << 16)):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)
