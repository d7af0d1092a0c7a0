"""Input pipeline: TFRecords (or in-memory arrays) -> letterboxed, augmented, padded batches.

Coordinate spaces, in order:

1. An *example* carries the decoded image (uint8, H x W x 3), its boxes in **original-image
   pixels** (``xyxy`` float32, the space of :class:`core.boxes.Box`) and 0-based class
   indices. TFRecords store boxes normalised to [0, 1] (Object Detection API); parsing
   multiplies by the image size.
2. :func:`letterbox` scales the image by ``s = min(H_in / H, W_in / W)`` and pads the
   bottom and right edges, so a box maps to model-input pixels by ``box * s`` and back by
   ``box / s`` exactly. (Keras' ``Resizing(pad_to_aspect_ratio=True)`` centres the
   image and rounds the padding of the image and of the boxes differently; corner
   anchoring keeps the inverse exact and trivial for :mod:`core.model.detector.predict`.)
3. Batches are padded to the largest box count with boxes of -1 and labels of -1, the
   convention of Keras' bounding-box layers and keras-hub's RetinaNet label encoder.

Augmentation uses Keras 3's bounding-box-aware preprocessing layers (flip, zoom =
scale/crop, translation, colour), called inside ``tf.data`` on batched dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from core.model.detector.model import BOX_FORMAT

PAD_VALUE = 0.0
AUTOTUNE = tf.data.AUTOTUNE


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths (0 turns one off).

    Attributes:
        flip: Horizontal flips (garments are left-right symmetric; never vertical).
        zoom: Zoom range as a fraction: +-zoom scales the image in or out (crop or pad),
            boxes follow.
        translate: Shift range as a fraction of the size.
        colour: Brightness/contrast/saturation jitter factor; hue jitter is a tenth of it.
    """

    flip: bool = True
    zoom: float = 0.2
    translate: float = 0.1
    colour: float = 0.2


def augment_layers(aug: Augment, seed: int | None = None) -> list[keras.layers.Layer]:
    """Keras 3 bounding-box-aware layers for ``aug`` (in ``xyxy`` model-input pixels)."""
    layers: list[keras.layers.Layer] = []
    fmt = {"bounding_box_format": BOX_FORMAT}
    if aug.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed, **fmt))
    if aug.zoom:
        layers.append(
            keras.layers.RandomZoom((-aug.zoom, aug.zoom), fill_mode="constant", fill_value=PAD_VALUE, seed=seed, **fmt)
        )
    if aug.translate:
        layers.append(
            keras.layers.RandomTranslation(
                aug.translate, aug.translate, fill_mode="constant", fill_value=PAD_VALUE, seed=seed, **fmt
            )
        )
    if aug.colour:
        layers.append(
            keras.layers.RandomColorJitter(
                value_range=(0, 255),
                brightness_factor=aug.colour,
                contrast_factor=aug.colour,
                saturation_factor=(0.5 - aug.colour / 2, 0.5 + aug.colour / 2),
                hue_factor=aug.colour / 10,
                seed=seed,
                **fmt,
            )
        )
    return layers


def letterbox(image: tf.Tensor, boxes: tf.Tensor, height: int, width: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Resizes keeping the aspect ratio and pads bottom/right to ``height`` x ``width``.

    Args:
        image: H x W x 3 image (any dtype; pixel values 0-255).
        boxes: N x 4 ``xyxy`` boxes in original-image pixels.
        height: Output height.
        width: Output width.

    Returns:
        The float32 output image, the boxes in output pixels, and the scale ``s`` (so
        original = output / s).
    """
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.minimum(height / h, width / w)
    new_h = tf.clip_by_value(tf.cast(tf.round(h * scale), tf.int32), 1, height)
    new_w = tf.clip_by_value(tf.cast(tf.round(w * scale), tf.int32), 1, width)
    resized = tf.image.resize(tf.cast(image, tf.float32), tf.stack([new_h, new_w]), antialias=True)
    padded = tf.image.pad_to_bounding_box(resized - PAD_VALUE, 0, 0, height, width) + PAD_VALUE
    padded = tf.ensure_shape(padded, (height, width, 3))
    return padded, tf.cast(boxes, tf.float32) * scale, scale


def letterbox_numpy(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float]:
    """:func:`letterbox` for one numpy image without boxes (same ops, so the same pixels)."""
    out, _, scale = letterbox(tf.convert_to_tensor(image), tf.zeros((0, 4)), height, width)
    return out.numpy(), float(scale.numpy())


def letterbox_scale(orig_height: float, orig_width: float, height: int, width: int) -> float:
    """The scale :func:`letterbox` applies to an image of the given size (numpy twin)."""
    return min(height / orig_height, width / orig_width)


# --- sources ---------------------------------------------------------------------------


def tfrecord_files(folder: Path, split: str) -> list[str]:
    """The shards of one split written by the TFRecord export (``split.record-0000k-of-0000n``)."""
    return sorted(str(p) for p in Path(folder).glob(f"{split}.record-*-of-*"))


def read_class_names(path: Path) -> list[str]:
    """Class names from the export's ``label_map.pbtxt``, ordered by id (ids must be 1..N).

    Raises:
        ValueError: When ids are not 1..N (class index = id - 1 would be wrong).
    """
    from core.formats.label_map import parse_label_map

    items = parse_label_map(Path(path).read_text(encoding="utf-8"))
    if sorted(items) != list(range(1, len(items) + 1)):
        raise ValueError(f"{path}: label ids must be 1..N, got {sorted(items)}")
    return [items[i] for i in range(1, len(items) + 1)]


# The keys training needs, with the export's (the OD API decoder's) feature spec.
_KEYS = (
    "image/encoded",
    "image/height",
    "image/width",
    "image/source_id",
    "image/object/bbox/xmin",
    "image/object/bbox/ymin",
    "image/object/bbox/xmax",
    "image/object/bbox/ymax",
    "image/object/class/label",
)


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one Object Detection API ``tf.train.Example`` into an example dict.

    Returns:
        ``{"image": uint8 HxWx3, "boxes": float32 Nx4 xyxy original pixels,
        "labels": int32 N (0-based), "source_id": string}``.
    """
    from core.formats.tfrecord.features import FEATURE_SPEC

    f = tf.io.parse_single_example(serialized, {k: FEATURE_SPEC[k] for k in _KEYS})
    image = tf.io.decode_image(f["image/encoded"], channels=3, expand_animations=False)
    h = tf.cast(f["image/height"], tf.float32)
    w = tf.cast(f["image/width"], tf.float32)
    dense = {k: tf.sparse.to_dense(f[f"image/object/bbox/{k}"]) for k in ("xmin", "ymin", "xmax", "ymax")}
    boxes = tf.stack([dense["xmin"] * w, dense["ymin"] * h, dense["xmax"] * w, dense["ymax"] * h], axis=-1)
    labels = tf.cast(tf.sparse.to_dense(f["image/object/class/label"]), tf.int32) - 1
    return {"image": image, "boxes": tf.reshape(boxes, (-1, 4)), "labels": labels, "source_id": f["image/source_id"]}


def tfrecord_dataset(files: Sequence[str], class_ids: Sequence[int] | None = None) -> tf.data.Dataset:
    """Examples from TFRecord shards.

    Args:
        files: The shards.
        class_ids: The label-map ids (1-based) the model's classes stand for, in class order
            (:attr:`ClassPlan.ids`): labels become indices into it and boxes of any other id
            are dropped. None keeps ``id - 1`` for every id.
    """
    if not files:
        raise ValueError("no TFRecord files")
    ds = tf.data.TFRecordDataset(list(files), num_parallel_reads=min(len(files), 4)).map(
        parse_example, num_parallel_calls=AUTOTUNE
    )
    if class_ids is not None and list(class_ids) != list(range(1, len(class_ids) + 1)):
        ds = ds.map(_keep_classes(class_ids), num_parallel_calls=AUTOTUNE)
    return ds


def _keep_classes(class_ids: Sequence[int]):  # type: ignore[no-untyped-def]
    """Maps an example's 0-based label-map indices to class indices, dropping the boxes of other labels."""
    table_np = np.full(max(class_ids), -1, np.int32)
    for index, label_id in enumerate(class_ids):
        table_np[label_id - 1] = index
    table = tf.constant(table_np)
    size = len(table_np)

    def fn(ex: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        labels = ex["labels"]
        inside = tf.logical_and(labels >= 0, labels < size)
        mapped = tf.where(inside, tf.gather(table, tf.clip_by_value(labels, 0, size - 1)), -1)
        keep = mapped >= 0
        return {**ex, "boxes": tf.boolean_mask(ex["boxes"], keep), "labels": tf.boolean_mask(mapped, keep)}

    return fn


def boxes_per_class_id(files: Sequence[str]) -> dict[int, int]:
    """Boxes per label-map id (1-based) in TFRecord shards; reads only the class labels."""
    from core.formats.tfrecord.features import FEATURE_SPEC

    key = "image/object/class/label"
    counts: dict[int, int] = {}
    if not files:
        return counts
    for ids in tf.data.TFRecordDataset(list(files)).map(
        lambda s: tf.io.parse_single_example(s, {key: FEATURE_SPEC[key]})[key].values
    ):
        for i in ids.numpy().tolist():
            counts[int(i)] = counts.get(int(i), 0) + 1
    return counts


@dataclass(frozen=True)
class ClassPlan:
    """The classes a detector is trained on: the export's labels that have a box in the train split.

    A label with no training box would get a head that only ever learns "absent"; it is left
    out, and the model's class index ``i`` stands for label ``names[i]`` (label-map id ``ids[i]``).

    Attributes:
        names: Class names in class-index order (stored on the model version).
        ids: Their label-map ids (1-based), for :func:`tfrecord_dataset`'s ``class_ids``.
        left_out: The export's labels with no box in the train split.
        not_evaluated: Boxes of left-out labels in the val and test splits (the model cannot find them).
    """

    names: tuple[str, ...]
    ids: tuple[int, ...]
    left_out: tuple[str, ...]
    not_evaluated: int = 0

    def message(self) -> str:
        """One log line: the classes, and which labels were left out and why."""
        text = f"classes: {', '.join(self.names)}"
        if self.left_out:
            text += f"; left out (no box in the train split): {', '.join(self.left_out)}"
            if self.not_evaluated:
                text += (
                    f" ({self.not_evaluated} of their boxes in the val/test splits are not part of this job's "
                    "validation and test figures)"
                )
        return text


def train_classes(data_dir: Path) -> ClassPlan:
    """The :class:`ClassPlan` of a TFRecord export folder (its ``label_map.pbtxt`` and shards)."""
    data_dir = Path(data_dir)
    all_names = read_class_names(data_dir / "label_map.pbtxt")
    train = boxes_per_class_id(tfrecord_files(data_dir, "train"))
    kept = [i for i in range(1, len(all_names) + 1) if train.get(i)]
    left = [i for i in range(1, len(all_names) + 1) if not train.get(i)]
    held_out = [boxes_per_class_id(tfrecord_files(data_dir, s)) for s in ("val", "test")]
    return ClassPlan(
        names=tuple(all_names[i - 1] for i in kept),
        ids=tuple(kept),
        left_out=tuple(all_names[i - 1] for i in left),
        not_evaluated=sum(c.get(i, 0) for c in held_out for i in left),
    )


def count_records(files: Iterable[str]) -> int:
    """Number of records in TFRecord shards (reads them once; cheap for our sizes)."""
    return sum(1 for _ in tf.data.TFRecordDataset(list(files)))


def memory_dataset(
    images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray]
) -> tf.data.Dataset:
    """Examples from in-memory arrays (images of any size; boxes in original pixels)."""

    def gen():
        for img, b, lab in zip(images, boxes, labels, strict=True):
            yield {
                "image": np.asarray(img, np.uint8),
                "boxes": np.asarray(b, np.float32).reshape(-1, 4),
                "labels": np.asarray(lab, np.int32).reshape(-1),
                "source_id": b"",
            }

    return tf.data.Dataset.from_generator(
        gen,
        output_signature={
            "image": tf.TensorSpec((None, None, 3), tf.uint8),
            "boxes": tf.TensorSpec((None, 4), tf.float32),
            "labels": tf.TensorSpec((None,), tf.int32),
            "source_id": tf.TensorSpec((), tf.string),
        },
    )


# --- the training / evaluation pipeline ----------------------------------------------


def _to_model_input(height: int, width: int):
    def fn(ex: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        image, boxes, scale = letterbox(ex["image"], ex["boxes"], height, width)
        return {"images": image, "boxes": boxes, "labels": tf.cast(ex["labels"], tf.float32), "scale": scale}

    return fn


def detection_batches(
    examples: tf.data.Dataset,
    height: int,
    width: int,
    batch_size: int,
    training: bool,
    augment: Augment | None = None,
    shuffle_buffer: int = 256,
    cache: bool = True,
    seed: int | None = None,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Letterboxed, padded (and when training, shuffled and augmented) batches for ``fit``.

    Yields ``(images, {"boxes": B x M x 4, "labels": B x M})`` with boxes in ``xyxy``
    model-input pixels and padding of -1.

    Args:
        examples: Dataset of example dicts (:func:`parse_example` / :func:`memory_dataset`).
        height: Model input height.
        width: Model input width.
        batch_size: Batch size.
        training: Shuffle, augment and drop the partial last batch (keras-hub's
            RetinaNet traces a fixed batch size).
        augment: Augmentation strengths (training only; None = defaults).
        shuffle_buffer: Shuffle buffer size.
        cache: Cache decoded, letterboxed images in memory (decoding JPEGs every epoch
            costs more than a MobileNet step on 2 cores for small images).
        seed: Shuffle/augmentation seed.
        repeat: Repeat forever (the caller sets steps_per_epoch).
    """
    ds = examples.map(_to_model_input(height, width), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.padded_batch(
        batch_size,
        padded_shapes={"images": (height, width, 3), "boxes": (None, 4), "labels": (None,), "scale": ()},
        padding_values={"images": PAD_VALUE, "boxes": -1.0, "labels": -1.0, "scale": 1.0},
        drop_remainder=training,
    )
    if training:
        layers = augment_layers(augment or Augment(), seed=seed)

        def aug(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            data = {"images": batch["images"], "bounding_boxes": {"boxes": batch["boxes"], "labels": batch["labels"]}}
            for layer in layers:
                data = layer(data, training=True)
            return {
                "images": data["images"],
                "boxes": data["bounding_boxes"]["boxes"],
                "labels": data["bounding_boxes"]["labels"],
                "scale": batch["scale"],
            }

        ds = ds.map(aug, num_parallel_calls=AUTOTUNE)
        ds = ds.map(_drop_degenerate, num_parallel_calls=AUTOTUNE)
    ds = ds.map(lambda b: (b["images"], {"boxes": b["boxes"], "labels": b["labels"]}), num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def eval_batches(examples: tf.data.Dataset, height: int, width: int, batch_size: int) -> tf.data.Dataset:
    """Letterboxed batches for evaluation, keeping what is needed to map back.

    Yields dicts: ``images`` (model input), ``scale`` (letterbox scale), ``size``
    (original height, width), ``boxes`` (ground truth in **original** pixels, padded
    with -1), ``labels`` (padded with -1) and ``source_id``. The last batch may be
    partial; :class:`core.model.detector.predict.Detector` pads it.
    """

    def fn(ex: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        image, _, scale = letterbox(ex["image"], ex["boxes"], height, width)
        size = tf.cast(tf.shape(ex["image"])[:2], tf.float32)
        return {
            "images": image,
            "scale": scale,
            "size": size,
            "boxes": ex["boxes"],
            "labels": tf.cast(ex["labels"], tf.float32),
            "source_id": ex["source_id"],
        }

    return (
        examples.map(fn, num_parallel_calls=AUTOTUNE)
        .padded_batch(
            batch_size,
            padded_shapes={
                "images": (height, width, 3),
                "scale": (),
                "size": (2,),
                "boxes": (None, 4),
                "labels": (None,),
                "source_id": (),
            },
            padding_values={
                "images": PAD_VALUE,
                "scale": 1.0,
                "size": 1.0,
                "boxes": -1.0,
                "labels": -1.0,
                "source_id": "",
            },
        )
        .prefetch(AUTOTUNE)
    )


def _drop_degenerate(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    # Zoom and translation can push a box (almost) out of the frame; the layers clip it
    # to the image, which can leave a sliver. Such boxes teach the matcher nothing and
    # are marked as padding (label -1, box -1).
    b = batch["boxes"]
    wh = tf.stack([b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)
    keep = tf.logical_and(tf.reduce_all(wh >= 2.0, axis=-1), batch["labels"] >= 0)
    batch = dict(batch)
    batch["labels"] = tf.where(keep, batch["labels"], -1.0)
    batch["boxes"] = tf.where(keep[..., None], b, -1.0)
    return batch


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch (at least 1)."""
    return max(1, num_examples // batch_size)


def ceil_div(a: int, b: int) -> int:
    """Ceiling division."""
    return -(-a // b) if b else 0


__all__ = [
    "Augment",
    "ClassPlan",
    "augment_layers",
    "boxes_per_class_id",
    "ceil_div",
    "count_records",
    "detection_batches",
    "eval_batches",
    "letterbox",
    "letterbox_numpy",
    "letterbox_scale",
    "memory_dataset",
    "parse_example",
    "read_class_names",
    "steps_per_epoch",
    "tfrecord_dataset",
    "tfrecord_files",
    "train_classes",
]


def repeat_factors(labels_per_example: Sequence[Sequence[int]], percentile: float) -> np.ndarray:
    """How often to repeat each training example so that rare classes are seen more (class-balanced sampling).

    Every class with boxes is brought up towards ``target``, the ``percentile`` of the
    per-class box counts (100 = the most frequent class, 50 = the median class): class ``c``
    gets the factor ``target / count(c)`` (at least 1), and an example is repeated by the
    largest factor among its classes, rounded up (images without boxes: once). The idea of
    LVIS's repeat-factor sampling, with the target taken from the data instead of a fixed
    frequency, and whole repeats so every epoch is deterministic.

    Args:
        labels_per_example: Class indices of each example's boxes.
        percentile: In [0, 100]; 0 leaves every factor at 1.

    Returns:
        One integer factor (>= 1) per example.
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be within 0 and 100, not {percentile}")
    counts: dict[int, int] = {}
    for labels in labels_per_example:
        for c in labels:
            counts[int(c)] = counts.get(int(c), 0) + 1
    if not counts:
        return np.ones(len(labels_per_example), dtype=np.int64)
    target = float(np.percentile(list(counts.values()), percentile))
    factor = {c: max(1.0, target / n) for c, n in counts.items()}
    return np.array(
        [int(np.ceil(max((factor[int(c)] for c in labels), default=1.0) - 1e-9)) for labels in labels_per_example],
        dtype=np.int64,
    )


def class_balanced_dataset(files: Sequence[str], percentile: float) -> tuple[tf.data.Dataset, int]:
    """Training examples from TFRecord shards with rare-class images repeated (see :func:`repeat_factors`).

    Reads only the class labels once to compute the factors, then repeats each example
    in place. Returns the dataset and its number of examples (for steps per epoch).
    """
    from core.formats.tfrecord.features import FEATURE_SPEC

    key = "image/object/class/label"
    labels = [
        (tf.sparse.to_dense(x).numpy() - 1).tolist()
        for x in tf.data.TFRecordDataset(list(files)).map(
            lambda s: tf.io.parse_single_example(s, {key: FEATURE_SPEC[key]})[key]
        )
    ]
    factors = repeat_factors(labels, percentile)
    repeats = tf.data.Dataset.from_tensor_slices(factors)
    examples = tf.data.Dataset.zip(tfrecord_dataset(files), repeats).flat_map(
        lambda ex, n: tf.data.Dataset.from_tensors(ex).repeat(n)
    )
    return examples, int(factors.sum())
