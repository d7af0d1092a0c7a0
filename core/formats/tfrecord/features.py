"""The OD API's TFRecord features: the decoder's feature spec and the box coordinate conversions.

Coordinate space: box corners are **normalised to [0, 1]** by the image's width and
height (``image/object/bbox/xmin = x_min / width`` ...), origin top-left, as the OD API's
``TfExampleDecoder`` reads them. :func:`box_to_normalised` and :func:`box_from_normalised`
are the only conversions between that space and :class:`core.boxes.Box` pixels: the
writer (:func:`core.formats.tfrecord.wire.example_head`) and the reader
(:func:`core.formats.tfrecord.parse.parse_example`) both call them.

Every key the decoder knows for boxes is written: ``image/encoded`` (the stored file's
bytes, never re-encoded), ``image/format``, ``image/height``, ``image/width``,
``image/filename``, ``image/source_id``, ``image/key/sha256`` (hex text of the encoded
bytes), ``image/object/bbox/{xmin,xmax,ymin,ymax}``, ``image/object/class/text``,
``image/object/class/label`` (1-based, matching ``label_map.pbtxt``),
``image/object/difficult``, ``image/object/truncated`` and ``image/object/view``.
Image-level attributes go in extra ``image/attr/<name>`` bytes features, which readers
using the standard feature spec ignore.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from core.boxes import Box

ATTR_PREFIX = "image/attr/"

# The decoder's feature spec, key for key as in tensorflow/models
# research/object_detection/data_decoders/tf_example_decoder.py (TfExampleDecoder
# keys_to_features without the optional masks/keypoints/densepose groups), in TF2 names.
FEATURE_SPEC: dict[str, Any] = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/source_id": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=1),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=1),
    "image/class/text": tf.io.VarLenFeature(tf.string),
    "image/class/label": tf.io.VarLenFeature(tf.int64),
    "image/neg_category_ids": tf.io.VarLenFeature(tf.int64),
    "image/not_exhaustive_category_ids": tf.io.VarLenFeature(tf.int64),
    "image/class/confidence": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/object/difficult": tf.io.VarLenFeature(tf.int64),
    "image/object/group_of": tf.io.VarLenFeature(tf.int64),
    "image/object/weight": tf.io.VarLenFeature(tf.float32),
}

# What the Pascal-to-TFRecord converters put in the view feature when LabelImg wrote no pose.
DEFAULT_VIEW = "Unspecified"


def box_to_normalised(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixels -> normalised (xmin, ymin, xmax, ymax), clamped to [0, 1].

    ``box`` is in original-image pixels of a ``width`` x ``height`` image; the result is in
    the OD API's normalised space (see the module docstring). The exporter calls this for
    every box it writes, so it clamps with comparisons, which cost less than ``min(max())``
    for the usual in-range value (same result for every finite coordinate).
    """
    x0, y0, x1, y1 = box.x_min / width, box.y_min / height, box.x_max / width, box.y_max / height
    return (
        x0 if 0.0 <= x0 <= 1.0 else float(x0 > 0.0),
        y0 if 0.0 <= y0 <= 1.0 else float(y0 > 0.0),
        x1 if 0.0 <= x1 <= 1.0 else float(x1 > 0.0),
        y1 if 0.0 <= y1 <= 1.0 else float(y1 > 0.0),
    )


def box_from_normalised(xmin: float, ymin: float, xmax: float, ymax: float, width: int, height: int) -> Box:
    """Normalised corners -> a pixel :class:`Box` of a ``width`` x ``height`` image.

    The corners are in the OD API's normalised space (see the module docstring); the box
    is in original-image pixels, not clamped (a reader decides what to do with boxes that
    stick out).
    """
    return Box(xmin * width, ymin * height, xmax * width, ymax * height)


def image_format(encoded: bytes) -> str:
    """``jpeg`` or ``png`` from the file's magic bytes (what ``image/format`` says)."""
    if encoded[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if encoded[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    raise ValueError("image/encoded is neither JPEG nor PNG")
