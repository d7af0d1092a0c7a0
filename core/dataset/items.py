"""The types import readers, export writers and the orchestrators share.

Readers (one per format, in :mod:`core.formats`) yield :class:`ImportItem` and
:class:`ImportOutcome`; :mod:`core.dataset.importer` stores them. Writers get an
:class:`ExportContext` from :mod:`core.dataset.exporter` and write :class:`ExportImage`
streams (or the raw :data:`ImageRow` tuples, for the TFRecord fast path) into a sink.
Nothing here touches the database, so format modules depend on this module and
:mod:`core.boxes` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from core.boxes import Box
from core.dataset.sinks import FolderSink, Sink, ZipSink
from core.settings import Settings

# --- import ------------------------------------------------------------------------------------------------------

Outcome = Literal["imported", "updated", "duplicate", "failed", "skipped"]
# Box coordinates of an item: pixels of the image, or normalised to [0, 1] (DataTurks, TFRecord).
Coords = Literal["pixels", "normalised"]


class AnnotationImportError(ValueError):
    """An input that cannot be imported at all (the message says why)."""


@dataclass
class ImportItem:
    """One image to import and its annotation.

    Attributes:
        source: Where the record came from, for the report (``Annotations/a.xml``, ``train.record#12``).
        image_name: The image's file name (stored as the image's name).
        read: Returns the image bytes; raises OSError/IngestError when they cannot be read.
        objects: (label, box) in ``coords``.
        coords: ``pixels`` or ``normalised``.
        declared_size: The size the annotation states, if any (checked against the image).
        attributes: Image-level attributes.
        annotated: False when the record carries no annotation at all (status stays new).
        notes: What the reader noticed.
        refs: How the source names each of ``objects`` (``object 3``, ``annotation 17``), for
            messages; None numbers them ``box 1..n``.
        left_out: Why each box the reader could not read was left out (refusals, counted as such).
        split: The split the dataset puts the image in (train/val/test), if it says.
        split_from: Where that split came from, for the report (``ImageSets/Main``).
    """

    source: str
    image_name: str
    read: Callable[[], bytes]
    objects: list[tuple[str, Box]]
    coords: Coords = "pixels"
    declared_size: tuple[int, int] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    annotated: bool = True
    notes: list[str] = field(default_factory=list)
    split: str | None = None
    split_from: str | None = None
    refs: list[str] | None = None
    left_out: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportOutcome:
    """What happened to one record.

    ``split`` is the split this import stored on the image (from the dataset's split
    lists); None when it stored none. ``boxes_refused`` counts the record's boxes that
    were left out (the message says why); with ``boxes`` 0 the image was left to annotate.
    """

    source: str
    outcome: Outcome
    message: str = ""
    image_id: int | None = None
    boxes: int = 0
    split: str | None = None
    split_from: str | None = None
    boxes_refused: int = 0


@dataclass
class LabelRecord:
    """One image's image-level labels (tags) from a labels file or a class-folder tree.

    Attributes:
        source: Where the record came from, for the report (``labels.csv line 4``, ``Shoes/a.jpg``).
        image_name: The image's file name: matched to a stored image's name, or the name a new one gets.
        tags: Tag -> value (the category is the tag ``category``).
        read: Returns the image bytes when the record brings its image (a tree, or ``--images``);
            None when the image must already be in the project.
    """

    source: str
    image_name: str
    tags: dict[str, str]
    read: Callable[[], bytes] | None = None
    notes: list[str] = field(default_factory=list)


# --- export ------------------------------------------------------------------------------------------------------


class ExportError(ValueError):
    """An export that cannot be made (the message says why)."""


@dataclass(frozen=True)
class ExportObject:
    """A box of an exported image, in original-image pixels."""

    box: Box
    label: str
    label_index: int  # 1-based, label order


@dataclass
class ExportImage:
    """One image as the writers see it."""

    id: int
    name: str  # file name inside the export (unique, flat)
    original_name: str
    sha256: str
    stored_path: str
    width: int
    height: int
    split: str
    attributes: dict[str, Any]
    objects: list[ExportObject] = field(default_factory=list)


# One exportable image as the database gives it: id, original name, sha256, stored path, width,
# height, attributes, and its boxes as (label id, x_min, y_min, x_max, y_max) tuples in pixels.
ImageRow = tuple[int, str, str, str, int, int, dict[str, Any] | None, list[tuple[int, float, float, float, float]]]


class ImageSize(Protocol):
    """Anything with an image's size in pixels: an :class:`ExportImage`, a TFRecord writer's ``ExampleImage``."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...


def truncated(box: Box, img: ImageSize) -> int:
    """VOC's truncated flag as LabelImg users mean it: the box touches the image edge.

    The one rule for every format that writes the flag (VOC, TFRecord).
    """
    return int(box.x_min <= 0 or box.y_min <= 0 or box.x_max >= img.width or box.y_max >= img.height)


@dataclass
class ExportContext:
    """Everything a format's writer gets (see :data:`core.formats.registry.Writer`).

    A simple writer opens :meth:`open_sink` and streams :attr:`images` of each split into it;
    a writer with its own fast path (TFRecord) streams :attr:`rows` and writes below
    :attr:`out` itself, shard by shard.

    Attributes:
        settings: Where the image blobs are (``settings.data_dir / image.stored_path``).
        out: The output folder (new or empty), or with ``archive`` the zip file to write.
        archive: Write one zip at ``out`` instead of a folder.
        label_names: The project's labels in label order (category/class ids are 1-based positions).
        label_index: Label id -> (name, 1-based index).
        counts: Images per split, for every split (``train``, ``val``, ``test``).
        images: Split -> its images with their boxes, streamed; each one counts as written.
        rows: Split -> (export file name, :data:`ImageRow`) streamed; each one counts as written.
        num_shards: Shards per split asked for (None: the writer decides).
        attribute_schema: The project's tags (tag -> allowed values), for writers of image-level tags.
        written: Set by a writer that leaves some streamed images out (the tag formats take only
            tagged ones): how many it wrote; None means every image streamed.
    """

    settings: Settings
    out: Path
    archive: bool
    label_names: list[str]
    label_index: dict[int, tuple[str, int]]
    counts: dict[str, int]
    images: Callable[[str], Iterator[ExportImage]]
    rows: Callable[[str], Iterator[tuple[str, ImageRow]]]
    num_shards: int | None = None
    attribute_schema: dict[str, list[str]] = field(default_factory=dict)
    written: int | None = None

    @property
    def splits(self) -> list[str]:
        """The splits in export order: train, val, test."""
        return list(self.counts)

    @contextmanager
    def open_sink(self) -> Iterator[Sink]:
        """The folder or zip to write into; closed (a zip's directory written) when the block ends."""
        sink: Sink = ZipSink(self.out) if self.archive else FolderSink(self.out)
        try:
            yield sink
        finally:
            sink.close()
