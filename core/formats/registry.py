"""The one list of dataset formats: each format module declares itself, the CLI and pages read it here.

A format is one module (or package) in :mod:`core.formats` that defines a module-level
``FORMAT = FormatSpec(...)``; :func:`all_formats` finds it with :mod:`pkgutil`, so adding a
format is writing that module and its tests, nothing else. Format modules are imported to
be listed (a page listing formats imports them all), so their top level must stay light:
TensorFlow and other heavy imports go inside the reader/writer functions.

Interfaces:

- A **reader** is ``read(path, images=None) -> Iterator[ImportItem | ImportOutcome]``
  (:data:`Reader`): ``path`` is what the user gives (a folder, a zip, an annotation file);
  ``images`` is the folder or zip of images given apart from the annotation file, for formats
  with :attr:`Option.IMAGES`, and None otherwise. It raises
  :class:`core.dataset.items.AnnotationImportError` when the input as a whole cannot be read
  and yields an ``ImportOutcome`` for each record it cannot use (the rest come in).
- A **writer** is ``write(ctx: ExportContext) -> list[str]`` (:data:`Writer`): it writes the
  project's exportable images into ``ctx.open_sink()`` (or, with a fast path of its own,
  below ``ctx.out``) and returns the files written besides the images (lists, annotation
  files, shards), relative to the export's root.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from core.dataset.items import ExportContext, ImportItem, ImportOutcome

Reader = Callable[[Path, Path | None], Iterator[ImportItem | ImportOutcome]]
Writer = Callable[[ExportContext], list[str]]


class Option(StrEnum):
    """What a format's import needs beyond one path; the Import page builds its form from these."""

    # The annotation file comes apart from its images, which are a folder or zip given as ``images``.
    IMAGES = "images"
    # Numeric classes are named by a label_map.pbtxt beside the records (it may be uploaded with them).
    LABEL_MAP = "label_map"


class UnknownFormatError(ValueError):
    """A format name that is not registered (the message names the known ones)."""


@dataclass(frozen=True)
class FormatSpec:
    """One dataset format.

    Attributes:
        name: What the CLI and job parameters call it (``voc``).
        title: What people call it (``VOC``), for help texts.
        reader: The format's reader, or None when Tagrack cannot import it.
        writer: The format's writer, or None when Tagrack cannot export it.
        import_description: What the Import page shows for it (what to give).
        export_description: What the Export page shows for it (what comes out).
        import_path: What the import's path is, for the CLI's help (``folder or zip``).
        file_patterns: What the Import page's uploader asks for (``*.zip``).
        options: What the import needs beyond one path (:class:`Option`).
        import_rank: Position in the import lists (lowest first; the first is the default).
        export_rank: Position in the export lists (lowest first; the first is the default).
        ground_truth: What the writer exports: ``boxes`` (done and no-garments images only) or
            ``tags`` (image-level tags: every image is streamed, the writer keeps the tagged ones).
    """

    name: str
    title: str
    reader: Reader | None = None
    writer: Writer | None = None
    import_description: str = ""
    export_description: str = ""
    import_path: str = ""
    file_patterns: tuple[str, ...] = ()
    options: frozenset[Option] = frozenset()
    import_rank: int = 100
    export_rank: int = 100
    ground_truth: str = "boxes"

    def __post_init__(self) -> None:
        if self.reader is None and self.writer is None:
            raise ValueError(f"format {self.name!r} has neither a reader nor a writer")

    @property
    def extensions(self) -> tuple[str, ...]:
        """The file patterns as bare extensions (``*.zip`` -> ``zip``), for upload widgets."""
        return tuple(p.removeprefix("*.") for p in self.file_patterns)


# Modules of core.formats that are helpers shared by formats, not formats.
_NOT_FORMATS = frozenset({"registry", "label_map"})


@functools.cache
def all_formats() -> dict[str, FormatSpec]:
    """Every registered format by name, found in :mod:`core.formats` (imported once, then cached).

    Raises:
        ValueError: Two modules declare the same format name.
    """
    import core.formats

    found: dict[str, FormatSpec] = {}
    for info in pkgutil.iter_modules(core.formats.__path__):
        if info.name in _NOT_FORMATS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"core.formats.{info.name}")
        spec = getattr(module, "FORMAT", None)
        if not isinstance(spec, FormatSpec):
            continue
        if spec.name in found:
            raise ValueError(f"format {spec.name!r} is declared twice (core.formats.{info.name} and another module)")
        found[spec.name] = spec
    return found


def readers() -> dict[str, FormatSpec]:
    """Formats Tagrack can import, in list order (the first is the default)."""
    specs = [s for s in all_formats().values() if s.reader is not None]
    return {s.name: s for s in sorted(specs, key=lambda s: (s.import_rank, s.name))}


def writers() -> dict[str, FormatSpec]:
    """Formats Tagrack can export, in list order (the first is the default)."""
    specs = [s for s in all_formats().values() if s.writer is not None]
    return {s.name: s for s in sorted(specs, key=lambda s: (s.export_rank, s.name))}


def get(name: str) -> FormatSpec:
    """The format called ``name`` (case-insensitive).

    Raises:
        UnknownFormatError: No such format; the message names the known ones.
    """
    spec = all_formats().get(name.lower())
    if spec is None:
        raise UnknownFormatError(f"Unknown format {name!r}; choose one of {', '.join(sorted(all_formats()))}.")
    return spec
