"""The test oracle of the TFRecord writer: OD API examples built with TensorFlow's own protobuf classes.

:func:`core.formats.tfrecord.wire.example_head` writes the wire format by hand for speed;
:func:`build_example` builds the same example the slow, obviously right way, so tests can
compare the two (and write records of their own to import).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from core.formats.tfrecord.features import ATTR_PREFIX, box_to_normalised, image_format
from core.formats.tfrecord.wire import ExampleImage, ExampleObject


def example_image(
    encoded: bytes,
    width: int,
    height: int,
    filename: str,
    source_id: str,
    objects: Sequence[ExampleObject] = (),
    attributes: Mapping[str, Any] | None = None,
) -> ExampleImage:
    """The record of ``encoded``: its format and SHA-256 taken from the bytes."""
    return ExampleImage(
        image_format(encoded),
        width,
        height,
        filename,
        source_id,
        hashlib.sha256(encoded).hexdigest(),
        objects,
        attributes,
    )


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def build_example(encoded: bytes, image: ExampleImage) -> tf.train.Example:
    """The OD API example of ``image`` with ``encoded`` as its image bytes, built with ``tf.train``."""
    objects = image.objects
    corners = [box_to_normalised(o.box, image.width, image.height) for o in objects]
    feature = {
        "image/height": _ints([image.height]),
        "image/width": _ints([image.width]),
        "image/filename": _bytes([image.filename.encode("utf-8")]),
        "image/source_id": _bytes([image.source_id.encode("utf-8")]),
        "image/key/sha256": _bytes([image.sha256.encode("ascii")]),
        "image/encoded": _bytes([encoded]),
        "image/format": _bytes([image.format.encode("ascii")]),
        "image/object/bbox/xmin": _floats([c[0] for c in corners]),
        "image/object/bbox/xmax": _floats([c[2] for c in corners]),
        "image/object/bbox/ymin": _floats([c[1] for c in corners]),
        "image/object/bbox/ymax": _floats([c[3] for c in corners]),
        "image/object/class/text": _bytes([o.text.encode("utf-8") for o in objects]),
        "image/object/class/label": _ints([o.label for o in objects]),
        "image/object/difficult": _ints([o.difficult for o in objects]),
        "image/object/truncated": _ints([o.truncated for o in objects]),
        "image/object/view": _bytes([o.view.encode("utf-8") for o in objects]),
    }
    for key, value in (image.attributes or {}).items():
        if value is None:
            continue
        feature[ATTR_PREFIX + str(key)] = _bytes([str(value).encode("utf-8")])
    return tf.train.Example(features=tf.train.Features(feature=feature))
