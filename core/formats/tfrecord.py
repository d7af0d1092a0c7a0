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
import os
import struct
from collections.abc import Callable, Mapping, Sequence
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
    # Lengths of image entries take 2 to 4 bytes: spelled out, as this runs a few times per record.
    if 0 < n < 1 << 14:
        return bytes((n & 0x7F | 0x80, n >> 7))
    if 0 < n < 1 << 21:
        return bytes((n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, n >> 14))
    if 0 < n < 1 << 28:
        return bytes((n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, (n >> 14) & 0x7F | 0x80, n >> 21))
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


@functools.lru_cache(maxsize=4096)
def _bytes_head(key: str, length: int) -> bytes:
    """Everything of a one-value bytes entry before its ``length`` value bytes (built once per key and length)."""
    whole = _wire_bytes(key, [bytes(length)])
    return whole[: len(whole) - length]


@functools.lru_cache(maxsize=256)
def _floats_head(key: str, count: int) -> bytes:
    """Everything of a packed float entry before its ``4 * count`` value bytes."""
    whole = _wire_floats(key, [0.0] * count)
    return whole[: len(whole) - 4 * count]


@functools.lru_cache(maxsize=256)
def _pack_floats(count: int) -> Callable[..., bytes]:
    return struct.Struct(f"<{count}f").pack


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


def example_head(
    encoded_len: int,
    fmt: str,
    width: int,
    height: int,
    filename: str,
    source_id: str,
    sha256: str,
    corners: Sequence[tuple[float, float, float, float]],
    texts: tuple[str, ...],
    labels: tuple[int, ...],
    difficult: tuple[int, ...],
    truncated: tuple[int, ...],
    views: tuple[str, ...],
    attributes: Mapping[str, Any] | None = None,
) -> bytes:
    """The serialized Example up to, not including, the ``encoded_len`` image bytes that end it.

    ``example_head(...) + encoded`` is :func:`serialize_example`'s record; the exporter hands
    the two parts to :class:`RecordWriter` as they are, so the image bytes are never copied
    into a joined record.

    Args:
        encoded_len: Length of the image file's bytes.
        fmt: ``jpeg`` or ``png`` (:func:`image_format`).
        width: Image width in pixels.
        height: Image height in pixels.
        filename: The image's file name.
        source_id: A unique id of the image within the dataset.
        sha256: Hex SHA-256 of the image bytes.
        corners: Per box ``(x_min, y_min, x_max, y_max)`` in original-image pixels; written
            normalised to [0, 1] and clamped, as :func:`box_to_normalised` does.
        texts: Per box class name.
        labels: Per box 1-based label map id.
        difficult: Per box VOC difficult flag.
        truncated: Per box VOC truncated flag.
        views: Per box VOC pose.
        attributes: Image-level attributes, written as ``image/attr/<name>`` text.
    """
    n = len(corners)
    pack = _pack_floats(n)
    # Clamped to [0, 1] with comparisons, which cost less than min(max()) for the usual in-range value.
    xmin = pack(*[v if 0.0 <= v <= 1.0 else float(v > 0.0) for v in [c[0] / width for c in corners]])
    ymin = pack(*[v if 0.0 <= v <= 1.0 else float(v > 0.0) for v in [c[1] / height for c in corners]])
    xmax = pack(*[v if 0.0 <= v <= 1.0 else float(v > 0.0) for v in [c[2] / width for c in corners]])
    ymax = pack(*[v if 0.0 <= v <= 1.0 else float(v > 0.0) for v in [c[3] / height for c in corners]])
    fname = filename.encode("utf-8")
    sid = source_id.encode("utf-8")
    sha = sha256.encode("ascii")
    small = [
        _wire_size(width, height),
        _bytes_head("image/filename", len(fname)),
        fname,
        _bytes_head("image/source_id", len(sid)),
        sid,
        _bytes_head("image/key/sha256", len(sha)),
        sha,
        _wire_const("image/format", fmt.encode("ascii")),
        _floats_head("image/object/bbox/xmin", n),
        xmin,
        _floats_head("image/object/bbox/xmax", n),
        xmax,
        _floats_head("image/object/bbox/ymin", n),
        ymin,
        _floats_head("image/object/bbox/ymax", n),
        ymax,
        _wire_objects_meta(texts, labels, difficult, truncated, views),
    ]
    if attributes:
        for key, value in attributes.items():
            if value is not None:
                small.append(_wire_const(ATTR_PREFIX + str(key), str(value).encode("utf-8")))
    # The image entry's heads, sized for bytes that follow the returned head.
    bytes_list_head = b"\x0a" + _varint(encoded_len)  # BytesList.value
    bl_len = len(bytes_list_head) + encoded_len
    feature_head = b"\x0a" + _varint(bl_len)  # Feature.bytes_list
    f_len = len(feature_head) + bl_len
    entry_head = _key_head("image/encoded") + b"\x12" + _varint(f_len)  # entry.key, entry.value
    e_len = len(entry_head) + f_len
    map_head = b"\x0a" + _varint(e_len)  # Features.feature
    body_len = sum(map(len, small)) + len(map_head) + e_len
    return b"".join([b"\x0a", _varint(body_len), *small, map_head, entry_head, feature_head, bytes_list_head])


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
    head = example_head(
        len(encoded),
        image_format(encoded),
        width,
        height,
        filename,
        source_id,
        sha256 or hashlib.sha256(encoded).hexdigest(),
        [(o.box.x_min, o.box.y_min, o.box.x_max, o.box.y_max) for o in objects],
        tuple([o.text for o in objects]),
        tuple([o.label for o in objects]),
        tuple([o.difficult for o in objects]),
        tuple([o.truncated for o in objects]),
        tuple([o.view for o in objects]),
        attributes,
    )
    return head + encoded


# --- record framing ---------------------------------------------------------------------------------------------
# A TFRecord file is a sequence of records: uint64 length (little endian), masked CRC32C of
# those 8 bytes, the data, masked CRC32C of the data (tensorflow/core/lib/io/record_writer.cc).
# tf.io.TFRecordWriter needs each record as one bytes object (one more copy of every image)
# and cost 1.7x a plain write of the same bytes here (benchmarks/export.py); RecordWriter
# frames the parts itself, checksums them with google-crc32c (Google's hardware-accelerated
# CRC32C, the one the Cloud Storage clients use) and hands them to the kernel in one
# os.writev per record. Its files are byte for byte what tf.io.TFRecordWriter writes
# (tests/core/formats/test_tfrecord.py). Where google-crc32c has only its pure-Python
# fallback, or os.writev is missing (Windows), open_record_writer uses TensorFlow's writer.

_U64 = struct.Struct("<Q").pack
_U32 = struct.Struct("<I").pack


def _masked(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


@functools.cache
def fast_framing_available() -> bool:
    """Whether :class:`RecordWriter` can run at native speed here."""
    try:
        import google_crc32c
    except ImportError:
        return False
    return google_crc32c.implementation == "c" and hasattr(os, "writev")


class RecordWriter:
    """Writes an uncompressed TFRecord file, each record given as parts that are written as they are."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Creates (or truncates) the file."""
        import google_crc32c

        self._value = google_crc32c.value
        self._extend = google_crc32c.extend
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)

    def write(self, *parts: bytes) -> None:
        """Appends one record whose data is the concatenation of ``parts``."""
        if self._fd is None:
            raise ValueError("write to a closed RecordWriter")
        extend = self._extend
        crc = 0
        size = 0
        for part in parts:
            crc = extend(crc, part)
            size += len(part)
        length = _U64(size)
        buffers = [length, _U32(_masked(self._value(length))), *parts, _U32(_masked(crc))]
        total = size + 16
        written = os.writev(self._fd, buffers)
        if written != total:  # a short write (signal, quota): write the rest plainly
            rest = memoryview(b"".join(buffers))[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]

    def flush(self) -> None:
        """Nothing is buffered: every record is in the kernel once write returns."""

    def close(self) -> None:
        """Closes the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TFWriter:
    """tf.io.TFRecordWriter behind :class:`RecordWriter`'s interface (the fallback)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._writer = tf.io.TFRecordWriter(os.fspath(path))

    def write(self, *parts: bytes) -> None:
        self._writer.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        self._writer.close()


def open_record_writer(path: str | os.PathLike[str]) -> RecordWriter | _TFWriter:
    """A TFRecord writer for ``path``: :class:`RecordWriter`, or TensorFlow's where that is not fast here."""
    return RecordWriter(path) if fast_framing_available() else _TFWriter(path)


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
