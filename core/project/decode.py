"""Decoding one uploaded file into a checked RGB image, before anything is stored.

Every file is fully decoded with Pillow (not only sniffed), so truncated or fake images are
caught at the door. EXIF orientation is applied; CMYK, 16-bit, palette and alpha images are
converted to RGB; animated images contribute their first frame. Decompression bombs are
refused from their declared size, before decoding.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A 12-megapixel phone photo is 12 M pixels; large scans reach 50 M. Past this we refuse
# before decoding: a decompression bomb declares a huge size in a tiny file.
MAX_PIXELS = 80_000_000
MAX_FILE_BYTES = 200 * 1024 * 1024
# Formats we keep byte for byte when no conversion was needed (exports can then ship the
# original JPEG unchanged).
KEEP_FORMATS = {"JPEG": ".jpg", "PNG": ".png"}


class IngestError(ValueError):
    """A file that cannot be imported; the message is shown to the user."""


@dataclass(frozen=True)
class DecodedImage:
    """An image decoded and normalised for storage.

    Attributes:
        image: RGB image, orientation applied.
        stored_bytes: Bytes to store (the original when nothing had to change).
        ext: Extension of ``stored_bytes``.
        notes: What was converted, for the user.
    """

    image: Image.Image
    stored_bytes: bytes
    ext: str
    notes: tuple[str, ...]


def _to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """Converts any Pillow mode to 8-bit RGB; alpha is composited over white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's own I->L conversion clips instead of scaling; scale the 16-bit range.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        notes.append("16-bit converted to 8-bit RGB")
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("transparency flattened onto white")
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    elif mode == "P":
        notes.append("palette converted to RGB")
    elif mode not in ("L", "1"):
        notes.append(f"{mode} converted to RGB")
    return im.convert("RGB")


def decode_image(data: bytes) -> DecodedImage:
    """Decodes and normalises image bytes.

    Args:
        data: The file's bytes.

    Returns:
        The normalised image and the bytes to store.

    Raises:
        IngestError: Empty, not an image, truncated or corrupt, or too large.
    """
    if not data:
        raise IngestError("empty file (0 bytes)")
    if len(data) > MAX_FILE_BYTES:
        raise IngestError(f"file too large ({len(data) / 1e6:.0f} MB; limit {MAX_FILE_BYTES / 1e6:.0f} MB)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            fmt = im.format or ""
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise IngestError(
                    f"image is {w}x{h} = {w * h / 1e6:.0f} megapixels, over the {MAX_PIXELS / 1e6:.0f} MP limit "
                    "(possible decompression bomb)"
                )
            if w == 0 or h == 0:
                raise IngestError("image has zero width or height")
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                im.seek(0)
                notes.append(f"animated ({frames} frames): first frame used")
            im.load()  # full decode: truncated and corrupt data fail here, not later
            orientation = im.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(im) if orientation != 1 else im
            if orientation != 1:
                notes.append(f"EXIF orientation {orientation} applied")
            rgb = _to_rgb(upright, notes)
    except IngestError:
        raise
    except Image.DecompressionBombError as exc:
        raise IngestError(f"refused as a possible decompression bomb: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise IngestError(f"refused as a possible decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise IngestError("not an image Pillow can read (wrong extension or unsupported format)") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated or corrupt data as OSError/SyntaxError with its own text.
        raise IngestError(f"corrupt or truncated image: {exc}") from exc

    if fmt in KEEP_FORMATS and rgb is im and frames == 1:
        return DecodedImage(rgb, data, KEEP_FORMATS[fmt], tuple(notes))
    buf = io.BytesIO()
    if fmt == "PNG" or fmt not in ("JPEG", "MPO", "WEBP"):
        rgb.save(buf, format="PNG", optimize=False)
        ext = ".png"
    else:
        rgb.save(buf, format="JPEG", quality=95)
        ext = ".jpg"
    return DecodedImage(rgb, buf.getvalue(), ext, tuple(notes))
