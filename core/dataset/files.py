"""The files of an import: a folder or a zip archive, found by relative path or by base name."""

from __future__ import annotations

import posixpath
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from core.dataset.items import AnnotationImportError, ImportOutcome
from core.project.decode import MAX_FILE_BYTES, IngestError
from core.project.ingest import IMAGE_EXTENSIONS, MAX_ZIP_RATIO, safe_member_name


class Files:
    """The files of a folder or a zip archive, found by relative path or by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.refused: list[ImportOutcome] = []
        self.members: dict[str, Any] = {}
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    self.members[p.relative_to(path).as_posix()] = p
        elif zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            for info in self.zip.infolist():
                if info.is_dir():
                    continue
                safe = safe_member_name(info.filename)
                if safe is None:
                    self.refused.append(
                        ImportOutcome(
                            info.filename, "failed", "refused: the entry's path is absolute or leaves the archive (..)"
                        )
                    )
                    continue
                if safe.startswith("__MACOSX/") or posixpath.basename(safe).startswith("."):
                    continue
                if info.file_size > MAX_FILE_BYTES or (
                    info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO
                ):
                    self.refused.append(ImportOutcome(safe, "failed", "refused: entry too large or a likely zip bomb"))
                    continue
                self.members[safe] = info
        else:
            raise AnnotationImportError(f"{path.name} is neither a folder nor a zip archive")
        self.by_base: dict[str, list[str]] = defaultdict(list)
        for rel in self.members:
            self.by_base[posixpath.basename(rel).lower()].append(rel)

    def read(self, rel: str) -> bytes:
        member = self.members[rel]
        if isinstance(member, Path):
            if member.stat().st_size > MAX_FILE_BYTES:
                raise IngestError("file too large")
            return member.read_bytes()
        assert self.zip is not None
        with self.zip.open(member) as fh:
            blob = fh.read(MAX_FILE_BYTES + 1)
        if len(blob) > MAX_FILE_BYTES:
            raise IngestError("entry inflates past the size limit")
        return blob

    def find_image(self, name: str, near: str | None = None, stem_of: str | None = None) -> str | None:
        """The image called ``name`` (case-insensitive base name); prefer one beside ``near``'s folder."""
        candidates = self.by_base.get(name.lower(), [])
        if not candidates and stem_of:
            stem = posixpath.splitext(posixpath.basename(stem_of))[0].lower()
            candidates = [rel for ext in IMAGE_EXTENSIONS for rel in self.by_base.get(stem + ext, [])]
        if not candidates:
            return None
        if near is not None:
            parent = posixpath.dirname(posixpath.dirname(near))
            for rel in candidates:
                if rel.startswith(parent):
                    return rel
        return sorted(candidates, key=lambda r: ("jpegimages" not in r.lower(), r))[0]
