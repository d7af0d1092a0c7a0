"""The hand-written protobuf encoder of OD API examples: what the exporter writes per image.

Building tf.train.Example objects in Python costs more than reading the image itself
(benchmarks/export.py), so the exporter writes the Example's protobuf wire format
directly: Example{features=1: Features{feature=1: map<string, Feature>}}, Feature
{bytes_list=1 | float_list=2 | int64_list=3}, each list {value=1} (numbers packed).
The image bytes are copied once, into the final record. tests/core/formats/test_tfrecord.py
checks that the bytes parse to exactly the Example that TensorFlow's own protobuf classes
build from the same :class:`ExampleImage` (its ``build_example`` oracle).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from core.boxes import Box
from core.formats.tfrecord.features import ATTR_PREFIX, DEFAULT_VIEW, box_to_normalised


# NamedTuples, not dataclasses: one ExampleObject is built per box in the export's hot loop,
# and a tuple is the cheapest typed record Python builds.
class ExampleObject(NamedTuple):
    """One labelled box of an example.

    Attributes:
        box: In original-image pixels (written normalised by :func:`box_to_normalised`).
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
    view: str = DEFAULT_VIEW


class ExampleImage(NamedTuple):
    """Everything one example says about its image except the image bytes.

    Attributes:
        format: ``jpeg`` or ``png`` (:func:`core.formats.tfrecord.features.image_format`).
        width: Image width in pixels.
        height: Image height in pixels.
        filename: The image's file name.
        source_id: A unique id of the image within the dataset.
        sha256: Hex SHA-256 of the image bytes (or another unique key: the OD API uses it as one).
        objects: Its boxes (may be empty: an image with no objects is a valid negative).
        attributes: Image-level attributes, written as ``image/attr/<name>`` text (None values skipped).
    """

    format: str
    width: int
    height: int
    filename: str
    source_id: str
    sha256: str
    objects: Sequence[ExampleObject]
    attributes: Mapping[str, Any] | None = None


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
def _wire_objects_meta(meta: tuple[tuple[str, int, int, int, str], ...]) -> bytes:
    """Everything of the objects but their boxes, from (text, label, difficult, truncated, view) per object."""
    return b"".join(
        [
            _wire_bytes("image/object/class/text", [m[0].encode("utf-8") for m in meta]),
            _wire_ints("image/object/class/label", [m[1] for m in meta]),
            _wire_ints("image/object/difficult", [m[2] for m in meta]),
            _wire_ints("image/object/truncated", [m[3] for m in meta]),
            _wire_bytes("image/object/view", [m[4].encode("utf-8") for m in meta]),
        ]
    )


def example_head(image: ExampleImage, encoded_len: int) -> bytes:
    """The serialized Example of ``image`` up to, not including, the ``encoded_len`` image bytes that end it.

    ``example_head(image, len(encoded)) + encoded`` is the whole record; the exporter hands
    the two parts to :class:`core.formats.tfrecord.records.RecordWriter` as they are, so the
    image bytes are never copied into a joined record. Boxes go through
    :func:`box_to_normalised`, the one pixel -> normalised conversion.
    """
    width, height, objects = image.width, image.height, image.objects
    n = len(objects)
    corners = [box_to_normalised(o.box, width, height) for o in objects]
    pack = _pack_floats(n)
    xmin = pack(*[c[0] for c in corners])
    ymin = pack(*[c[1] for c in corners])
    xmax = pack(*[c[2] for c in corners])
    ymax = pack(*[c[3] for c in corners])
    fname = image.filename.encode("utf-8")
    sid = image.source_id.encode("utf-8")
    sha = image.sha256.encode("ascii")
    small = [
        _wire_size(width, height),
        _bytes_head("image/filename", len(fname)),
        fname,
        _bytes_head("image/source_id", len(sid)),
        sid,
        _bytes_head("image/key/sha256", len(sha)),
        sha,
        _wire_const("image/format", image.format.encode("ascii")),
        _floats_head("image/object/bbox/xmin", n),
        xmin,
        _floats_head("image/object/bbox/xmax", n),
        xmax,
        _floats_head("image/object/bbox/ymin", n),
        ymin,
        _floats_head("image/object/bbox/ymax", n),
        ymax,
        _wire_objects_meta(tuple([o[1:] for o in objects])),
    ]
    if image.attributes:
        for key, value in image.attributes.items():
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
