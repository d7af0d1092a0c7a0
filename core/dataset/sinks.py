"""Where an export's files go: a folder, or a zip written entry by entry."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class FolderSink:
    """Writes export files below a folder."""

    def __init__(self, root: Path) -> None:
        """Creates the folder."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def copy_file(self, rel: str, source: Path) -> None:
        """Copies a file in (the kernel copies; nothing is held in memory)."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    @contextmanager
    def open_text(self, rel: str) -> Iterator[IO[str]]:
        """A text file to write into."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as fh:
            yield fh

    def write_text(self, rel: str, text: str) -> None:
        """Writes a small text file."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def close(self) -> None:
        """Nothing to finish for a folder."""


class ZipSink:
    """Writes export files into a zip, one entry at a time (ZIP64, images stored, text deflated)."""

    def __init__(self, path: Path) -> None:
        """Opens the zip for writing (replacing an existing file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.zf = zipfile.ZipFile(path, "w", allowZip64=True)

    def copy_file(self, rel: str, source: Path) -> None:
        """Streams a file in, uncompressed: JPEG and PNG do not shrink further."""
        self.zf.write(source, rel, compress_type=zipfile.ZIP_STORED)

    @contextmanager
    def open_text(self, rel: str) -> Iterator[IO[str]]:
        """A text entry to write into, deflated.

        A zip takes one entry at a time, while a split's list or a COCO file is written
        alongside its images; so the text goes to a scratch file first and is streamed
        in when it is complete.
        """
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", suffix=".txt", dir=self.path.parent) as fh:
            yield fh
            fh.flush()
            self.zf.write(fh.name, rel, compress_type=zipfile.ZIP_DEFLATED)

    def write_text(self, rel: str, text: str) -> None:
        """Writes a small text entry, deflated."""
        self.zf.writestr(rel, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)

    def close(self) -> None:
        """Writes the central directory."""
        self.zf.close()


Sink = FolderSink | ZipSink
