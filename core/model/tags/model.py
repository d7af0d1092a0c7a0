"""The tags model: MobileNetV2 cut in two, a frozen trunk and a trained top with one softmax head per tag.

The trunk (input to the end of block ``split_block - 1``) keeps its ImageNet weights frozen, so its
output for an image never changes during training: the training loop computes it once per image
view and trains the top on those cached features (:mod:`core.model.tags.train`). The top (blocks
``split_block`` to 16, ``Conv_1``, global pooling, dropout, one dense layer of logits per tag)
trains with its batch norm frozen: probes.md measured that unfreezing from block 7 at a high rate
collapses the features, while blocks 13-16 with frozen batch norm learn.

``split_block = 17`` cuts after the pooled features: the top is only the heads (a linear probe).

With ``members > 1`` the top is several such tops trained from different seeds on the same cached
features, their logits averaged per head (:func:`average_tops`): one trunk pass, K cheap tops.

A model version is a folder with ``model.keras`` (image in [0, 255], letterboxed, -> a list of
logit tensors, one per head in spec order) and ``tags.json`` (:class:`TagsSpec` with the
per-head temperatures fitted on the validation split).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.keras"
SPEC_FILE = "tags.json"
OFFLINE_IMAGENET = "imagenet-offline"
LINEAR_PROBE = 17


@dataclass
class TagsSpec:
    """What the tags model is.

    Attributes:
        heads: ``{tag: [values in head order]}``.
        image_size: Square input side in pixels (images are letterboxed).
        weights: ``"imagenet-offline"`` or ``"none"`` (random trunk; for comparison).
        split_block: First MobileNetV2 block of the trained top (13: blocks 13-16; 17: heads only).
        dropout: Dropout before the heads.
        flip_average: Predict from the logits of the image and its mirror averaged (twice the work).
        members: Tops trained from different seeds on the one trunk, their logits averaged (1: one top).
        temperatures: ``{tag: T}`` from calibration (1.0 until calibrated).
    """

    heads: dict[str, list[str]]
    image_size: int = 224
    weights: str = OFFLINE_IMAGENET
    split_block: int = 13
    dropout: float = 0.2
    flip_average: bool = False
    members: int = 1
    temperatures: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TagsSpec:
        """Inverse of :meth:`to_dict`; ignores unknown keys."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def temperature(self, tag: str) -> float:
        """The head's calibration temperature (1.0 when uncalibrated)."""
        return float(self.temperatures.get(tag, 1.0))


def head_layer_name(index: int, tag: str) -> str:
    """A Keras-safe layer name for a head (tags may hold any characters)."""
    return f"head_{index}_" + re.sub(r"[^A-Za-z0-9_]", "_", tag)[:40]


def _cut_layer(split_block: int) -> str:
    """Name of the base layer whose output the trunk ends at."""
    from core.model.pretrained.mobilenet_v2 import _block_specs

    if split_block >= LINEAR_PROBE:
        return "out_relu"
    specs = {b: (t, c, s) for b, t, c, s in _block_specs()}
    last = split_block - 1
    prev_c = specs[last - 1][1] if last > 0 else 32
    _, c, s = specs[last]
    has_add = last > 0 and s == 1 and prev_c == c
    prefix = f"block_{last}_" if last else "expanded_conv_"
    return f"{prefix}add" if has_add else f"{prefix}project_BN"


def build_base(spec: TagsSpec, weights_dir: Path | None) -> Any:
    """The whole MobileNetV2 (torchvision padding, input in [0, 255]) with the spec's initial weights.

    Raises:
        core.model.detector.model.WeightsUnavailableError: Offline weights asked for but not prepared.
    """
    from core.model.detector.model import resolve_encoder_weights
    from core.model.pretrained.mobilenet_v2 import build_mobilenet_v2

    path = resolve_encoder_weights(spec.weights, 1.0, weights_dir)
    return build_mobilenet_v2(
        input_shape=(spec.image_size, spec.image_size, 3),
        include_preprocessing=True,
        weights_path=path,
        name="mobilenetv2_trunk",
    )


def build_trunk(base: Any, spec: TagsSpec) -> Any:
    """The frozen part: image -> features at the cut (pooled for a linear probe)."""
    import keras

    out = base.get_layer(_cut_layer(spec.split_block)).output
    if spec.split_block >= LINEAR_PROBE:
        out = keras.layers.GlobalAveragePooling2D(name="trunk_pool")(out)
    trunk = keras.Model(base.input, out, name="trunk")
    trunk.trainable = False
    return trunk


def build_top(spec: TagsSpec, feature_shape: tuple[int, ...], base: Any | None = None, name: str = "top") -> Any:
    """The trained part: features -> logits per head. Block layers take ``base``'s weights by name.

    Batch norm in the top stays frozen (inference mode; ImageNet statistics).
    """
    import keras
    from keras import layers

    from core.model.pretrained.mobilenet_v2 import TORCH_BN_EPSILON, _block_specs

    inputs = keras.Input(shape=feature_shape, name="features")
    x = inputs
    if spec.split_block < LINEAR_PROBE:

        def bn(t: Any, name: str) -> Any:
            return layers.BatchNormalization(epsilon=TORCH_BN_EPSILON, name=name)(t)

        for block_id, expansion, filters, stride in _block_specs():
            if block_id < spec.split_block:
                continue
            in_channels = x.shape[-1]
            prefix = f"block_{block_id}_"
            block_input = x
            x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=f"{prefix}expand")(x)
            x = bn(x, f"{prefix}expand_BN")
            x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
            if stride == 2:
                x = layers.ZeroPadding2D(padding=(1, 1), name=f"{prefix}pad")(x)
            x = layers.DepthwiseConv2D(
                3, strides=stride, padding="valid" if stride == 2 else "same", use_bias=False, name=f"{prefix}depthwise"
            )(x)
            x = bn(x, f"{prefix}depthwise_BN")
            x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
            x = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}project")(x)
            x = bn(x, f"{prefix}project_BN")
            if in_channels == filters and stride == 1:
                x = layers.Add(name=f"{prefix}add")([block_input, x])
        x = layers.Conv2D(1280, 1, use_bias=False, name="Conv_1")(x)
        x = bn(x, "Conv_1_bn")
        x = layers.ReLU(6.0, name="out_relu")(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(spec.dropout, name="dropout")(x)
    outputs = [
        layers.Dense(len(values), name=head_layer_name(i, tag))(x) for i, (tag, values) in enumerate(spec.heads.items())
    ]
    top = keras.Model(inputs, outputs, name=name)
    if base is not None:
        names = {layer.name for layer in base.layers}
        for layer in top.layers:
            if layer.name in names and layer.weights:
                layer.set_weights(base.get_layer(layer.name).get_weights())
    for layer in top.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return top


def member_name(index: int) -> str:
    """Layer name of the ``index``-th (0-based) member top of an ensemble."""
    return f"top_{index + 1}"


def average_tops(tops: list[Any], spec: TagsSpec, feature_shape: tuple[int, ...]) -> Any:
    """Features -> per head, the mean of the member tops' logits (one model, so it saves and predicts as one top)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=feature_shape, name="features")
    outs = []
    for t in tops:
        got = t(inputs)
        outs.append(list(got) if isinstance(got, (list, tuple)) else [got])
    averaged = [
        layers.Average(name=f"mean_{head_layer_name(j, tag)}")([o[j] for o in outs]) for j, tag in enumerate(spec.heads)
    ]
    return keras.Model(inputs, averaged, name="top")


def build_clean_top(spec: TagsSpec, feature_shape: tuple[int, ...]) -> Any:
    """The top's architecture without weights or compile state: one top, or ``spec.members`` averaged."""
    if spec.members > 1:
        tops = [build_top(spec, feature_shape, name=member_name(k)) for k in range(spec.members)]
        return average_tops(tops, spec, feature_shape)
    return build_top(spec, feature_shape)


def compose(trunk: Any, top: Any, spec: TagsSpec) -> Any:
    """Image -> logits per head: the model a version saves.

    The top is built again without its training compile state (its masked losses are closures that
    a saved model could not find again) and takes the trained weights.
    """
    import keras

    clean = build_clean_top(spec, tuple(top.input_shape[1:]))
    clean.set_weights(top.get_weights())
    inputs = keras.Input(shape=trunk.input_shape[1:], name="image")
    return keras.Model(inputs, clean(trunk(inputs)), name="tags")


def save_version(model: Any, spec: TagsSpec, folder: Path) -> Path:
    """Writes ``model.keras`` and ``tags.json``; returns the model file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    model.save(path)
    (folder / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2), encoding="utf-8")
    return path


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Tagger:
    """A loaded tags model version: images -> calibrated probabilities per head."""

    def __init__(self, model: Any, spec: TagsSpec, batch_size: int = 16) -> None:
        self.model, self.spec, self.batch_size = model, spec, batch_size

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 16) -> Tagger:
        """Loads ``model.keras`` (or its folder) and the ``tags.json`` beside it."""
        import keras

        path = Path(path)
        folder = path if path.is_dir() else path.parent
        spec = TagsSpec.from_dict(json.loads((folder / SPEC_FILE).read_text(encoding="utf-8")))
        model = keras.models.load_model(folder / MODEL_FILE, compile=False)
        return cls(model, spec, batch_size)

    def _forward(self, batch: np.ndarray) -> list[np.ndarray]:
        got = self.model(batch, training=False)
        got = [np.asarray(g) for g in (got if isinstance(got, (list, tuple)) else [got])]
        if self.spec.flip_average:
            # The calibration was fitted on these averaged logits (core.model.tags.train).
            mirrored = self.model(batch[:, :, ::-1], training=False)
            mirrored = mirrored if isinstance(mirrored, (list, tuple)) else [mirrored]
            got = [(g + np.asarray(m)) / 2 for g, m in zip(got, mirrored, strict=True)]
        return got

    def logits(self, images: np.ndarray) -> list[np.ndarray]:
        """Raw logits per head for letterboxed uint8 images ``(n, size, size, 3)``."""
        outs: list[list[np.ndarray]] = [[] for _ in self.spec.heads]
        for start in range(0, len(images), self.batch_size):
            batch = np.asarray(images[start : start + self.batch_size], dtype=np.float32)
            got = self._forward(batch)
            for j, g in enumerate(got):
                outs[j].append(np.asarray(g))
        n = len(self.spec.heads)
        return [
            np.concatenate(o) if o else np.zeros((0, len(v)))
            for o, v in zip(outs, self.spec.heads.values(), strict=True)
        ][:n]

    def probabilities(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated probabilities ``{tag: (n, values)}``."""
        logits = self.logits(images)
        return {tag: softmax(z, self.spec.temperature(tag)) for tag, z in zip(self.spec.heads, logits, strict=True)}

    def predict_files(self, paths: list[Path]) -> list[dict[str, dict[str, float]]]:
        """``[{tag: {value: calibrated probability}}]`` per image file."""
        from core.model.tags.data import load_image

        images = np.stack([load_image(p, self.spec.image_size) for p in paths]) if paths else np.zeros((0,))
        if not len(paths):
            return []
        probs = self.probabilities(images)
        return [
            {
                tag: {v: float(p[i, k]) for k, v in enumerate(values)}
                for tag, values in self.spec.heads.items()
                for p in [probs[tag]]
            }
            for i in range(len(paths))
        ]
