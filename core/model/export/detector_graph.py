"""The detector's serving graph: the Keras RetinaNet plus its box decoding and per-class NMS, in one graph.

keras-hub's ``RetinaNetObjectDetector.export()`` exports only ``call()`` (raw box deltas and
class logits per anchor); anchor decoding and NMS run in ``predict_step``. Here the same
steps are put in the exported graph:

* the anchors of the model's own keras-hub ``AnchorGenerator``, built by ops in the graph from the
  few numbers that define them (:func:`graph_anchors`), and keras' ``decode_deltas_to_boxes``, exactly as ``RetinaNetObjectDetector.decode_predictions``;
* the per-class NMS of :class:`core.model.detector.model.PerClassNonMaxSuppression` (the
  ``candidates`` best (anchor, class) pairs, boxes shifted apart by class), but on
  ``NonMaxSuppressionV4`` (``tf.image``'s kernel): a builtin op of TFLite (``NON_MAX_SUPPRESSION_V4``)
  and of ONNX (``NonMaxSuppression``, through tf2onnx), where keras-hub's own NMS is a
  while-loop of TF ops.

:class:`FixedSizeDetector` is the graph of the TFLite and ONNX files (one letterboxed image of the
model's input size, uint8 RGB); :func:`savedmodel_serve` wraps it for the SavedModel, whose
``serve`` signature takes encoded image files and does the letterbox itself.

TensorFlow-only by design: the exporters all go through TensorFlow graphs.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.model.detector.model import DetectorSpec

CANDIDATES = 1000  # as PerClassNonMaxSuppression's default (torchvision's RetinaNet)
OUTPUT_NAMES = ("boxes", "scores", "classes", "num_detections")


def _postprocess_one(
    boxes: tf.Tensor, logits: tf.Tensor, spec: DetectorSpec, candidates: int = CANDIDATES
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-class NMS of one image's decoded anchors.

    Args:
        boxes: A x 4 ``xyxy`` boxes in model-input pixels.
        logits: A x C class logits.
        spec: Thresholds and the number of detections kept.

    Returns:
        Boxes (N x 4, xyxy, model-input pixels), scores (N), class indices (N, int32) and the
        number of valid rows, padded to N = ``spec.max_detections`` (padding rows: zeros, class -1).
    """
    num_classes = spec.num_classes
    flat = tf.reshape(logits, [-1])  # anchor-major, as PerClassNonMaxSuppression
    k = min(candidates, int(boxes.shape[0]) * num_classes)
    # The sigmoid is monotonic: the best logits are the best scores, and only k of them need it.
    top_logits, top_idx = tf.math.top_k(flat, k=k)
    # Not tf.sigmoid (nor 1 / (1 + exp(-x)), which the converter fuses back into it): TFLite's
    # quantiser gives its LOGISTIC op a fixed int8 output range even where the op is denied
    # quantisation, so the int8 file's scores came out in steps of 1/256. e / (1 + e) stays float32
    # like the rest of the post-processing (equal to the sigmoid within 1e-7; the clamp keeps exp
    # finite, and the sigmoid of 80 is 1 in float32 anyway).
    e = tf.exp(tf.minimum(top_logits, 80.0))
    top_scores = e / (1.0 + e)
    anchor_idx = top_idx // num_classes
    labels = top_idx % num_classes
    cand = tf.gather(boxes, anchor_idx)
    # Shift each class into its own region so one NMS call never compares two classes.
    offset = tf.cast(labels, tf.float32)[:, None] * (tf.reduce_max(tf.abs(cand)) + 1.0) * 2.0
    shifted = cand + offset
    yxyx = tf.stack([shifted[:, 1], shifted[:, 0], shifted[:, 3], shifted[:, 2]], axis=-1)
    keep, valid = tf.raw_ops.NonMaxSuppressionV4(
        boxes=yxyx,
        scores=top_scores,
        max_output_size=spec.max_detections,
        iou_threshold=spec.iou_threshold,
        score_threshold=spec.score_threshold,
        pad_to_max_output_size=True,
    )
    mask = tf.range(spec.max_detections) < valid
    out_boxes = tf.where(mask[:, None], tf.gather(cand, keep), 0.0)
    out_scores = tf.where(mask, tf.gather(top_scores, keep), 0.0)
    out_classes = tf.where(mask, tf.gather(labels, keep), -1)
    return out_boxes, out_scores, out_classes, valid


def embed_preprocessing_constants(model: Any) -> None:
    """Makes the explicit mean/variance of every ``Normalization`` layer in ``model`` constants of the traced graph.

    A ``Normalization`` given its mean and variance (the offline-weights encoder's
    ``torchvision_preprocess``: torchvision's ImageNet mean/std) keeps them as eager tensors built
    once, which a traced function captures as *inputs*: tf2onnx then wrote them as two more graph
    inputs of the ONNX file (``.../Sub/y:0``, ``.../Sqrt/x:0``) and onnxruntime refused to run it
    without them. As numpy arrays they are converted inside the trace, i.e. embedded as constants,
    in every format. Applied to the loaded model at export time, so models trained earlier export
    too; the values, and so the outputs, are unchanged.
    """

    for layer in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(layer, keras.layers.Normalization) and getattr(layer, "input_mean", None) is not None:
            layer.mean = np.asarray(keras.ops.convert_to_numpy(layer.mean))
            layer.variance = np.asarray(keras.ops.convert_to_numpy(layer.variance))


def _base_anchors(sizes: list[int], aspect_ratios: list[float]) -> np.ndarray:
    """``AnchorGenerator.generate_base_anchors`` in float32 numpy (it returns tensors, symbolic while tracing)."""
    sizes_ = np.asarray(sizes, np.float32)
    h_ratios = np.sqrt(np.asarray(aspect_ratios, np.float32))
    w_ratios = np.float32(1) / h_ratios
    ws = (w_ratios[:, None] * sizes_[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * sizes_[None, :]).reshape(-1)
    return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2)).astype(np.float32)


def graph_anchors(generator: Any, images: tf.Tensor, zero: tf.Tensor | None = None) -> tf.Tensor:
    """keras-hub's ``AnchorGenerator`` anchors (all levels, concatenated) computed by ops in the graph.

    ``generator(images)`` gives the same values, but for a fixed input size every op of it has
    constant inputs and the converters fold them into one constant: 24,237 anchors x 4 float32
    (0.39 MB) stored in each TFLite and ONNX file, 4% of the int8 one. Here only what defines them
    is stored (per level a row and a column of cell positions and the 9 base anchors: ~900
    numbers) and the grid is built at run time by broadcasting additions, ``(x + base) + y``, with
    ``base`` offset by ``zero``: a float32 scalar the caller computes from its input so that no
    converter can fold it (see :func:`runtime_zero`; without it the anchors are constants again,
    fine for the SavedModel, whose graph is stored unfolded). The zero goes on the base anchors,
    never on the positions, so no run-time tensor is all zeros: TFLite's quantiser requantised such
    a tensor (a one-cell level's positions) through int8 although it was denied quantisation.
    Same sums and order as ``AnchorGenerator.call`` (level, then row, column, base anchor; adding
    0 is exact), so the values are identical.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    zero = tf.zeros([], tf.float32) if zero is None else zero
    levels = []
    for level in range(generator.min_level, generator.max_level + 1):
        cells_y, cells_x = math.ceil(height / 2**level), math.ceil(width / 2**level)
        stride_y, stride_x = height // cells_y, width // cells_x
        # (x_min, y_min, x_max, y_max) offsets: x positions on columns 0 and 2, y on 1 and 3.
        x_part = np.zeros((1, cells_x, 1, 4), np.float32)
        x_part[0, :, 0, 0::2] = np.arange(cells_x, dtype=np.float32)[:, None] * stride_x
        y_part = np.zeros((cells_y, 1, 1, 4), np.float32)
        y_part[:, 0, 0, 1::2] = np.arange(cells_y, dtype=np.float32)[:, None] * stride_y
        sizes = [
            int(2**level * generator.anchor_size * 2 ** (scale / generator.num_scales))
            for scale in range(generator.num_scales)
        ]
        base = tf.constant(_base_anchors(sizes, generator.aspect_ratios)) + zero  # 9 x 4
        grid = (tf.constant(x_part) + base[None, None]) + tf.constant(y_part)  # rows x cols x 9 x 4
        levels.append(tf.reshape(grid, [-1, 4]))
    anchors = tf.concat(levels, axis=0)
    return keras.utils.bounding_boxes.convert_format(anchors, source="xyxy", target=generator.bounding_box_format)


def runtime_zero(images_uint8: tf.Tensor) -> tf.Tensor:
    """A float32 0 that only the input can give: ``min(pixel, 0)`` of a uint8 pixel (as int32).

    Always 0 for unsigned pixels, which the converters do not know, so they cannot fold what
    depends on it. Integer ops and a CAST: TFLite's int8 quantiser leaves them alone (a float
    ``pixel * 0.0`` was requantised through int8 to a range of [0, 0], giving 1e-6).
    """
    pixel = tf.cast(images_uint8[0, 0, 0, 0], tf.int32)
    return tf.cast(tf.minimum(pixel, 0), tf.float32)


def decode_anchors(model: Any, images: tf.Tensor, box_deltas: tf.Tensor, zero: tf.Tensor | None = None) -> tf.Tensor:
    """Box deltas -> ``xyxy`` boxes in model-input pixels, as ``decode_predictions`` does (keras-hub's anchors)."""
    height, width, channels = images.shape[1:]
    anchors = graph_anchors(model.anchor_generator, images, zero)
    return keras.utils.bounding_boxes.decode_deltas_to_boxes(
        anchors=anchors,
        boxes_delta=box_deltas,
        encoded_format="center_xywh",
        anchor_format=model.anchor_generator.bounding_box_format,
        box_format=model.bounding_box_format,
        image_shape=(height, width, channels),
    )


class FixedSizeDetector(keras.Model):
    """One letterboxed RGB image (1 x H x W x 3, uint8) -> detections with normalised boxes.

    Outputs (a dict): ``boxes`` 1 x N x 4 ``[y_min, x_min, y_max, x_max]`` as fractions of the
    model input's height and width (the TFLite object-detection convention), ``scores`` 1 x N,
    ``classes`` 1 x N (float class index, -1 for padding rows; float because TFLite's detection
    outputs are), ``num_detections`` 1 (float).

    Args:
        model: The trained Keras RetinaNet.
        spec: Its spec.
    """

    def __init__(self, model: Any, spec: DetectorSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        embed_preprocessing_constants(model)
        self.detector = model
        self.spec = spec

    def call(self, images: Any) -> dict[str, Any]:
        x = tf.cast(images, tf.float32)
        raw = self.detector(x, training=False)
        boxes = decode_anchors(self.detector, x, raw["bbox_regression"], runtime_zero(images))
        b, s, c, n = _postprocess_one(boxes[0], raw["cls_logits"][0], self.spec)
        size = tf.constant(
            [self.spec.image_height, self.spec.image_width, self.spec.image_height, self.spec.image_width],
            tf.float32,
        )
        yxyx = tf.stack([b[:, 1], b[:, 0], b[:, 3], b[:, 2]], axis=-1) / size
        return {
            "boxes": tf.clip_by_value(yxyx, 0.0, 1.0)[None],
            "scores": s[None],
            "classes": tf.cast(c, tf.float32)[None],
            "num_detections": tf.cast(n, tf.float32)[None],
        }

    def input_spec_for_export(self) -> tf.TensorSpec:
        """The one input: a batch of one uint8 RGB image of the model's input size."""
        return tf.TensorSpec([1, self.spec.image_height, self.spec.image_width, 3], tf.uint8, name="images")


def savedmodel_serve(model: Any, spec: DetectorSpec) -> Any:
    """The SavedModel ``serve`` function: encoded JPEG/PNG files (a 1-D string batch) -> detections.

    Every image is decoded, letterboxed exactly as in training
    (:func:`core.model.detector.data.letterbox`, traced into the graph), run through the
    detector, and its boxes mapped back to that image's pixels (divided by the letterbox
    scale, clipped to the image). Outputs, padded to ``max_detections`` per image: ``boxes``
    B x N x 4 ``[x_min, y_min, x_max, y_max]`` in original-image pixels, ``scores`` B x N,
    ``classes`` B x N (int32, -1 padding), ``class_names`` B x N (string, "" padding),
    ``num_detections`` B (int32).
    """
    from core.model.detector.data import letterbox

    embed_preprocessing_constants(model)
    names = tf.constant([*spec.class_names, ""])  # index -1 -> ""

    def one(encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        # JPEGs with libjpeg's accurate integer DCT: the pixels Pillow gives the Keras model and the
        # other formats' callers (decode_image's default fast DCT differed on ~65% of pixels, by up to 7).
        image = tf.cond(
            tf.io.is_jpeg(encoded),
            lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False),
        )
        h, w = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
        boxed, _, scale = letterbox(image, tf.zeros((0, 4)), spec.image_height, spec.image_width)
        x = boxed[None]
        raw = model(x, training=False)
        boxes = decode_anchors(model, x, raw["bbox_regression"])
        b, s, c, n = _postprocess_one(boxes[0], raw["cls_logits"][0], spec)
        limit = tf.stack([w, h, w, h])
        b = tf.clip_by_value(b / scale, 0.0, limit)
        return b, s, c, n, tf.gather(names, tf.where(c < 0, len(spec.class_names), c))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        n = spec.max_detections
        b, s, c, k, names_out = tf.map_fn(
            one,
            image_bytes,
            fn_output_signature=(
                tf.TensorSpec([n, 4], tf.float32),
                tf.TensorSpec([n], tf.float32),
                tf.TensorSpec([n], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([n], tf.string),
            ),
        )
        return {"boxes": b, "scores": s, "classes": c, "num_detections": k, "class_names": names_out}

    return serve
