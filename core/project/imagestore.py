"""Content-addressed store for image files and their display copies.

Files live under ``<data_dir>/blobs``: originals at ``originals/ab/<sha256>.<ext>`` and
downscaled display copies at ``display/ab/<sha256>.jpg``. Paths stored in the database
are relative to the data directory, so a data folder can be moved as a whole.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PIL import Image

# Long side of the display copy: enough for a full-width canvas on a laptop screen while
# a 12-megapixel phone photo shrinks about ten-fold in pixels.
DISPLAY_MAX_SIDE = 1280


class ImageStore:
    """Reads and writes blobs below a data directory."""

    def __init__(self, data_dir: Path) -> None:
        """Creates a store rooted at ``data_dir`` (created on first write)."""
        self.data_dir = Path(data_dir)

    def path(self, relative: str) -> Path:
        """Absolute path of a stored relative path."""
        return self.data_dir / relative

    def _write_atomic(self, relative: str, data: bytes) -> None:
        target = self.path(relative)
        if target.exists():
            return  # content-addressed: same name, same bytes
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written blob under its final name.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_original(self, sha256: str, data: bytes, ext: str) -> str:
        """Stores original bytes; returns the relative path."""
        relative = f"blobs/originals/{sha256[:2]}/{sha256}{ext}"
        self._write_atomic(relative, data)
        return relative

    def put_display(self, sha256: str, image: Image.Image) -> str:
        """Stores a JPEG display copy of an RGB image no larger than DISPLAY_MAX_SIDE."""
        import io

        relative = f"blobs/display/{sha256[:2]}/{sha256}.jpg"
        if not self.path(relative).exists():
            copy = image.copy()
            copy.thumbnail((DISPLAY_MAX_SIDE, DISPLAY_MAX_SIDE), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            copy.save(buf, format="JPEG", quality=88)
            self._write_atomic(relative, buf.getvalue())
        return relative

    def read_bytes(self, relative: str) -> bytes:
        """The stored bytes at a relative path."""
        return self.path(relative).read_bytes()

    def open(self, relative: str) -> Image.Image:
        """Opens a stored image (lazily, as Pillow does)."""
        return Image.open(self.path(relative))
