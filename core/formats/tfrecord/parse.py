"""One serialized OD API example read back with the decoder's feature spec, boxes in pixels."""

from __future__ import annotations

from typing import Any, TypedDict

import tensorflow as tf

from core.boxes import Box
from core.formats.tfrecord.features import ATTR_PREFIX, FEATURE_SPEC, box_from_normalised


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
