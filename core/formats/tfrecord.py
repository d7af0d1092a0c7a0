"""TFRecord in the TensorFlow Object Detection API's ``tf.train.Example`` layout.

Coordinate space: box corners are **normalised to [0, 1]** by the image's width and
height (``image/object/bbox/xmin = x_min / width`` ...), origin top-left, as the OD API's
``TfExampleDecoder`` reads them. :func:`box_to_normalised` and :func:`box_from_normalised`
are the only conversions between that space and :class:`core.boxes.Box` pixels.

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

import functools
import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

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
DEFAULT_VIEW = b"Unspecified"


def box_to_normalised(box: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """Pixels -> normalised (xmin, ymin, xmax, ymax), clamped to [0, 1]."""

    def c(v: float) -> float:
        return min(max(v, 0.0), 1.0)

    return c(box.x_min / width), c(box.y_min / height), c(box.x_max / width), c(box.y_max / height)


def box_from_normalised(xmin: float, ymin: float, xmax: float, ymax: float, width: int, height: int) -> Box:
    """Normalised corners -> a pixel :class:`Box` of a ``width`` x ``height`` image."""
    return Box(xmin * width, ymin * height, xmax * width, ymax * height)


def _bytes(values: Sequence[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _ints(values: Sequence[int]) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values: Sequence[float]) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def image_format(encoded: bytes) -> str:
    """``jpeg`` or ``png`` from the file's magic bytes (what ``image/format`` says)."""
    if encoded[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if encoded[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    raise ValueError("image/encoded is neither JPEG nor PNG")


@dataclass(frozen=True)
class ExampleObject:
    """One labelled box of an example.

    Attributes:
        box: In original-image pixels.
        text: Class name.
        label: 1-based id in the label map.
        difficult: Pascal VOC's difficult flag.
        truncated: Pascal VOC's truncated flag.
        view: Pascal VOC's pose.
    """

    box: Box
    text: str
    label: int
    difficult: int = 0
    truncated: int = 0
    view: str = "Unspecified"


def build_example(
    encoded: bytes,
    width: int,
    height: int,
    filename: str,
    source_id: str,
    objects: Sequence[ExampleObject],
    attributes: Mapping[str, Any] | None = None,
    sha256: str | None = None,
) -> tf.train.Example:
    """Builds the OD API example of one image.

    Args:
        encoded: The image file's bytes, stored as they are.
        width: Image width in pixels.
        height: Image height in pixels.
        filename: The image's file name.
        source_id: A unique id of the image within the dataset.
        objects: Its boxes (may be empty: an image with no objects is a valid negative).
        attributes: Image-level attributes, written as ``image/attr/<name>`` text.
        sha256: Hex SHA-256 of ``encoded`` when the caller knows it.
    """
    xmin, ymin, xmax, ymax = [], [], [], []
    for obj in objects:
        a, b, c, d = box_to_normalised(obj.box, width, height)
        xmin.append(a)
        ymin.append(b)
        xmax.append(c)
        ymax.append(d)
    feature = {
        "image/height": _ints([height]),
        "image/width": _ints([width]),
        "image/filename": _bytes([filename.encode("utf-8")]),
        "image/source_id": _bytes([source_id.encode("utf-8")]),
        "image/key/sha256": _bytes([(sha256 or hashlib.sha256(encoded).hexdigest()).encode("ascii")]),
        "image/encoded": _bytes([encoded]),
        "image/format": _bytes([image_format(encoded).encode("ascii")]),
        "image/object/bbox/xmin": _floats(xmin),
        "image/object/bbox/xmax": _floats(xmax),
        "image/object/bbox/ymin": _floats(ymin),
        "image/object/bbox/ymax": _floats(ymax),
        "image/object/class/text": _bytes([o.text.encode("utf-8") for o in objects]),
        "image/object/class/label": _ints([o.label for o in objects]),
        "image/object/difficult": _ints([o.difficult for o in objects]),
        "image/object/truncated": _ints([o.truncated for o in objects]),
        "image/object/view": _bytes([o.view.encode("utf-8") for o in objects]),
    }
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        feature[ATTR_PREFIX + str(key)] = _bytes([str(value).encode("utf-8")])
    return tf.train.Example(features=tf.train.Features(feature=feature))


# --- fast serialisation -----------------------------------------------------------------------------------------
# Building tf.train.Example objects in Python costs more than reading the image itself
# (benchmarks/export.py), so the exporter writes the Example's protobuf wire format
# directly: Example{features=1: Features{feature=1: map<string, Feature>}}, Feature
# {bytes_list=1 | float_list=2 | int64_list=3}, each list {value=1} (numbers packed).
# The image bytes are copied once, into the final record. tests/core/formats/test_tfrecord.py
# checks that the bytes parse to exactly the Example that build_example() makes.


_ONE_BYTE = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _ONE_BYTE[n]
    if n < 0:
        n += 1 << 64  # int64 two's complement, as protobuf encodes negative int64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _ONE_BYTE[(number << 3) | 2] + _varint(len(payload)) + payload


@functools.cache
def _key_head(key: str) -> bytes:
    return _field(1, key.encode("utf-8"))


def _entry(key: str, kind: int, list_body: bytes) -> bytes:
    feature = _ONE_BYTE[(kind << 3) | 2] + _varint(len(list_body)) + list_body
    inner = _key_head(key) + b"\x12" + _varint(len(feature)) + feature
    return b"\x0a" + _varint(len(inner)) + inner


def _wire_bytes(key: str, values: Sequence[bytes]) -> bytes:
    return _entry(key, 1, b"".join([b"\x0a" + _varint(len(v)) + v for v in values]))


def _wire_floats(key: str, values: Sequence[float]) -> bytes:
    if not values:
        return _entry(key, 2, b"")
    packed = struct.pack(f"<{len(values)}f", *values)
    return _entry(key, 2, b"\x0a" + _varint(len(packed)) + packed)


def _wire_ints(key: str, values: Sequence[int]) -> bytes:
    if not values:
        return _entry(key, 3, b"")
    packed = b"".join([_varint(int(v)) for v in values])
    return _entry(key, 3, b"\x0a" + _varint(len(packed)) + packed)


@functools.lru_cache(maxsize=4096)
def _wire_const(key: str, value: bytes) -> bytes:
    """Entries that repeat across records (formats, attribute values, label lists) are built once."""
    return _wire_bytes(key, [value])


@functools.lru_cache(maxsize=1024)
def _wire_size(width: int, height: int) -> bytes:
    return _wire_ints("image/height", [height]) + _wire_ints("image/width", [width])


@functools.lru_cache(maxsize=8192)
def _wire_objects_meta(
    texts: tuple[str, ...],
    labels: tuple[int, ...],
    difficult: tuple[int, ...],
    truncated: tuple[int, ...],
    views: tuple[str, ...],
) -> bytes:
    return b"".join(
        [
            _wire_bytes("image/object/class/text", [t.encode("utf-8") for t in texts]),
            _wire_ints("image/object/class/label", labels),
            _wire_ints("image/object/difficult", difficult),
            _wire_ints("image/object/truncated", truncated),
            _wire_bytes("image/object/view", [v.encode("utf-8") for v in views]),
        ]
    )


def serialize_example(
    encoded: bytes,
    width: int,
    height: int,
    filename: str,
    source_id: str,
    objects: Sequence[ExampleObject],
    attributes: Mapping[str, Any] | None = None,
    sha256: str | None = None,
) -> bytes:
    """The serialized form of :func:`build_example`'s Example, written directly (fast path).

    Same arguments as :func:`build_example`.
    """
    boxes = [o.box for o in objects]
    xmin = [min(max(b.x_min / width, 0.0), 1.0) for b in boxes]
    ymin = [min(max(b.y_min / height, 0.0), 1.0) for b in boxes]
    xmax = [min(max(b.x_max / width, 0.0), 1.0) for b in boxes]
    ymax = [min(max(b.y_max / height, 0.0), 1.0) for b in boxes]
    small = [
        _wire_size(width, height),
        _wire_bytes("image/filename", [filename.encode("utf-8")]),
        _wire_bytes("image/source_id", [source_id.encode("utf-8")]),
        _wire_bytes("image/key/sha256", [(sha256 or hashlib.sha256(encoded).hexdigest()).encode("ascii")]),
        _wire_const("image/format", image_format(encoded).encode("ascii")),
        _wire_floats("image/object/bbox/xmin", xmin),
        _wire_floats("image/object/bbox/xmax", xmax),
        _wire_floats("image/object/bbox/ymin", ymin),
        _wire_floats("image/object/bbox/ymax", ymax),
        _wire_objects_meta(
            tuple([o.text for o in objects]),
            tuple([o.label for o in objects]),
            tuple([o.difficult for o in objects]),
            tuple([o.truncated for o in objects]),
            tuple([o.view for o in objects]),
        ),
    ]
    for key, value in (attributes or {}).items():
        if value is not None:
            small.append(_wire_const(ATTR_PREFIX + str(key), str(value).encode("utf-8")))
    # The image entry, built around the bytes so that they are copied only by the final join.
    n = len(encoded)
    bytes_list_head = b"\x0a" + _varint(n)  # BytesList.value
    bl_len = len(bytes_list_head) + n
    feature_head = b"\x0a" + _varint(bl_len)  # Feature.bytes_list
    f_len = len(feature_head) + bl_len
    entry_head = _key_head("image/encoded") + b"\x12" + _varint(f_len)  # entry.key, entry.value
    e_len = len(entry_head) + f_len
    map_head = b"\x0a" + _varint(e_len)  # Features.feature
    body_len = sum(map(len, small)) + len(map_head) + e_len
    return b"".join(
        [b"\x0a", _varint(body_len), *small, map_head, entry_head, feature_head, bytes_list_head, encoded]
    )


class ParsedExample(TypedDict):
    """An OD API example read back by :func:`parse_example`, boxes in pixels.

    Keys: ``encoded`` (image file bytes), ``format``, ``width`` and ``height`` (1 when
    the record lacks them, the decoder's default), ``filename``, ``source_id``,
    ``sha256``, ``boxes`` (list of :class:`Box` in pixels of width x height), ``texts``
    (class names; empty when the record has labels only), ``labels`` (1-based ids; empty
    when the record has texts only), ``difficult`` (per box, zeros when absent),
    ``attributes`` (``image/attr/<name>`` features as text).
    """

    encoded: bytes
    format: str
    width: int
    height: int
    filename: str
    source_id: str
    sha256: str
    boxes: list[Box]
    texts: list[str]
    labels: list[int]
    difficult: list[int]
    attributes: dict[str, str]


def _dense(sparse: Any) -> list[Any]:
    return tf.sparse.to_dense(sparse).numpy().tolist()


def parse_example(serialized: bytes) -> ParsedExample:
    """Parses one serialized example with :data:`FEATURE_SPEC` (the OD API decoder's spec).

    Boxes come back in pixels of the record's width and height; a record that lacks the
    size gets the decoder's default of 1 (normalised), which callers importing foreign
    records replace by the decoded image's size.

    Raises:
        tf.errors.InvalidArgumentError: When the bytes are not a valid example.
    """
    p = tf.io.parse_single_example(serialized, FEATURE_SPEC)
    width, height = int(p["image/width"].numpy()), int(p["image/height"].numpy())
    xs0, xs1 = _dense(p["image/object/bbox/xmin"]), _dense(p["image/object/bbox/xmax"])
    ys0, ys1 = _dense(p["image/object/bbox/ymin"]), _dense(p["image/object/bbox/ymax"])
    if not len(xs0) == len(xs1) == len(ys0) == len(ys1):
        raise ValueError("the record's xmin/xmax/ymin/ymax lists differ in length")
    boxes = [box_from_normalised(a, b, c, d, width, height) for a, b, c, d in zip(xs0, ys0, xs1, ys1, strict=True)]
    texts = [t.decode("utf-8", "replace") for t in _dense(p["image/object/class/text"])]
    labels = [int(v) for v in _dense(p["image/object/class/label"])]
    difficult = [int(v) for v in _dense(p["image/object/difficult"])] or [0] * len(boxes)
    attributes: dict[str, str] = {}
    proto = tf.train.Example.FromString(serialized)
    for key, feat in proto.features.feature.items():
        if key.startswith(ATTR_PREFIX) and feat.bytes_list.value:
            attributes[key[len(ATTR_PREFIX) :]] = feat.bytes_list.value[0].decode("utf-8", "replace")
    return ParsedExample(
        encoded=p["image/encoded"].numpy(),
        format=p["image/format"].numpy().decode("ascii", "replace"),
        width=width,
        height=height,
        filename=p["image/filename"].numpy().decode("utf-8", "replace"),
        source_id=p["image/source_id"].numpy().decode("utf-8", "replace"),
        sha256=p["image/key/sha256"].numpy().decode("ascii", "replace"),
        boxes=boxes,
        texts=texts,
        labels=labels,
        difficult=difficult,
        attributes=attributes,
    )


def shard_name(split: str, index: int, count: int) -> str:
    """``train.record-00000-of-00004``: the OD API's sharded file naming."""
    return f"{split}.record-{index:05d}-of-{count:05d}"


def iter_records(path: str) -> Any:
    """Yields the serialized records of a TFRecord file (uncompressed)."""
    for raw in tf.data.TFRecordDataset(path):
        yield raw.numpy()
