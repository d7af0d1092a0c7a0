"""A Keras 3 MobileNetV2 that reproduces torchvision's network, and the converter for its weights.

Why not ``keras.applications.MobileNetV2``: its stride-2 convolutions pad asymmetrically
(``padding="same"`` on ``Conv1`` and ``correct_pad`` before each stride-2 depthwise conv), while
torchvision pads every 3x3 convolution by one pixel on all sides. With torchvision's weights the
asymmetric padding shifts every feature map by half a pixel per stride-2 layer and the logits
drift. This builder mirrors keras.applications' layer NAMES and structure (so detector code that
taps ``block_5_add``, ``block_12_add`` and ``out_relu`` works unchanged) but puts
``ZeroPadding2D((1, 1))`` and a ``valid`` convolution on each stride-2 layer, and uses torch's
batch-norm epsilon (1e-5).

Input: RGB images normalised as torchvision does (see :func:`preprocess_input`): pixel values
in [0, 255] are scaled to [0, 1], minus the ImageNet mean (0.485, 0.456, 0.406), divided by the
ImageNet std (0.229, 0.224, 0.225). Pass ``include_preprocessing=True`` to the builder to have
the model take raw [0, 255] RGB instead. Everything uses ``keras.layers``/``keras.ops`` only,
so it runs on any Keras 3 backend (TensorFlow, JAX, PyTorch, NumPy for inference).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCH_BN_EPSILON = 1e-5

# (expansion t, output channels c, repeats n, first stride s): torchvision's and the paper's table.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# Detector taps at strides 8, 16 and 32 (same names as keras.applications.MobileNetV2).
PYRAMID_LAYERS = {"P3": "block_5_add", "P4": "block_12_add", "P5": "out_relu"}


def preprocess_input(images: Any) -> Any:
    """Torchvision's ImageNet normalisation for RGB pixel values in [0, 255], channels last.

    ``(x / 255 - mean) / std`` per channel. Works on numpy arrays and on any backend's tensors.
    """
    from keras import ops

    x = ops.divide(ops.cast(images, "float32"), 255.0)
    mean = ops.convert_to_tensor(np.asarray(IMAGENET_MEAN, dtype="float32"))
    std = ops.convert_to_tensor(np.asarray(IMAGENET_STD, dtype="float32"))
    return ops.divide(ops.subtract(x, mean), std)


def _block_specs() -> list[tuple[int, int, int, int]]:
    """(block id, expansion, output channels, stride) for the 17 inverted residual blocks."""
    specs = []
    block_id = 0
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            specs.append((block_id, t, c, s if i == 0 else 1))
            block_id += 1
    return specs


def build_mobilenet_v2(
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    include_top: bool = False,
    weights_path: str | os.PathLike[str] | None = None,
    classifier_activation: str | None = "softmax",
    include_preprocessing: bool = False,
    bn_momentum: float = 0.999,
    name: str = "mobilenetv2_torchvision",
) -> Any:
    """Builds MobileNetV2 (alpha 1.0) with torchvision's padding and batch-norm epsilon.

    Args:
        input_shape: Channels-last input shape; ``(None, None, 3)`` accepts any size (the
            classifier expects 224x224 for its ImageNet accuracy but runs on any size).
        include_top: Adds global average pooling and the 1000-class ``predictions`` layer.
        weights_path: A ``.weights.h5`` file from :func:`convert_state_dict` /
            ``core.model.pretrained.offline_weights.prepare``. Weights are assigned by layer name, so a
            file with the classifier loads into a model without it too.
        classifier_activation: Activation of ``predictions`` (``None`` gives logits).
        include_preprocessing: Prepends torchvision's normalisation so the model takes RGB in
            [0, 255] (layer ``torchvision_preprocess``); otherwise feed :func:`preprocess_input` output.
        bn_momentum: Keras batch-norm momentum for training (keras.applications uses 0.999;
            torch's momentum 0.1 is Keras' 0.9). Irrelevant at inference.
        name: The model's name.

    Returns:
        A ``keras.Model``. Layer names follow ``keras.applications.MobileNetV2`` (``Conv1``,
        ``block_N_expand``/``_depthwise``/``_project`` with ``_BN``, ``_relu`` and ``_add``,
        ``Conv_1``, ``out_relu``, ``predictions``) plus ``Conv1_pad`` and ``block_N_pad`` for the
        symmetric padding; see :data:`PYRAMID_LAYERS` for detector taps.
    """
    import keras
    from keras import layers

    def bn(x: Any, lname: str) -> Any:
        return layers.BatchNormalization(epsilon=TORCH_BN_EPSILON, momentum=bn_momentum, name=lname)(x)

    inputs = keras.Input(shape=input_shape, name="input_layer")
    x = inputs
    if include_preprocessing:
        # Normalization(x) = (x - mean) / sqrt(variance): torchvision's transform on 0..255 input.
        x = layers.Normalization(
            mean=[255.0 * m for m in IMAGENET_MEAN],
            variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
            name="torchvision_preprocess",
        )(x)
    x = layers.ZeroPadding2D(padding=(1, 1), name="Conv1_pad")(x)
    x = layers.Conv2D(32, 3, strides=2, padding="valid", use_bias=False, name="Conv1")(x)
    x = bn(x, "bn_Conv1")
    x = layers.ReLU(6.0, name="Conv1_relu")(x)

    for block_id, expansion, filters, stride in _block_specs():
        in_channels = x.shape[-1]
        prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
        block_input = x
        if block_id:
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
    if include_top:
        x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
        x = layers.Dense(1000, activation=classifier_activation, name="predictions")(x)
    model = keras.Model(inputs, x, name=name)
    if weights_path is not None:
        load_weights_by_name(model, weights_path)
    return model


def _torch_prefixes() -> dict[str, tuple[str, ...]]:
    """Keras conv/BN layer name -> torchvision state-dict prefix."""
    names: dict[str, str] = {"Conv1": "features.0.0", "bn_Conv1": "features.0.1"}
    for block_id, _t, _c, _s in _block_specs():
        f = f"features.{block_id + 1}.conv"
        if block_id == 0:
            names |= {
                "expanded_conv_depthwise": f"{f}.0.0",
                "expanded_conv_depthwise_BN": f"{f}.0.1",
                "expanded_conv_project": f"{f}.1",
                "expanded_conv_project_BN": f"{f}.2",
            }
        else:
            p = f"block_{block_id}_"
            names |= {
                f"{p}expand": f"{f}.0.0",
                f"{p}expand_BN": f"{f}.0.1",
                f"{p}depthwise": f"{f}.1.0",
                f"{p}depthwise_BN": f"{f}.1.1",
                f"{p}project": f"{f}.2",
                f"{p}project_BN": f"{f}.3",
            }
    names |= {"Conv_1": "features.18.0", "Conv_1_bn": "features.18.1", "predictions": "classifier.1"}
    return names


def convert_state_dict(state_dict: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Maps torchvision MobileNetV2 tensors onto Keras layer weights, by Keras layer name.

    Convolutions OIHW -> HWIO; depthwise ``[C, 1, 3, 3]`` -> ``[3, 3, C, 1]``; batch norm
    (weight, bias, running mean, running var) -> (gamma, beta, moving mean, moving variance);
    the classifier's Linear ``[1000, 1280]`` -> Dense ``[1280, 1000]`` plus bias. Every tensor of
    the checkpoint except ``num_batches_tracked`` must be used exactly once.

    Raises:
        KeyError: A tensor the network needs is missing.
        ValueError: Leftover tensors, or a shape that does not match MobileNetV2 alpha 1.0.
    """
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        if key not in state_dict:
            raise KeyError(f"the checkpoint lacks {key} (is it torchvision's MobileNetV2?)")
        used.add(key)
        return np.asarray(state_dict[key], dtype=np.float32)

    out: dict[str, list[np.ndarray]] = {}
    for keras_name, prefix in _torch_prefixes().items():
        if keras_name.endswith(("_BN", "_bn")) or keras_name == "bn_Conv1":
            out[keras_name] = [take(f"{prefix}.{v}") for v in ("weight", "bias", "running_mean", "running_var")]
        elif keras_name == "predictions":
            out[keras_name] = [take(f"{prefix}.weight").T.copy(), take(f"{prefix}.bias")]
        elif "depthwise" in keras_name:
            w = take(f"{prefix}.weight")
            if w.ndim != 4 or w.shape[1] != 1:
                raise ValueError(f"{prefix}.weight has shape {w.shape}; a depthwise kernel is [C, 1, 3, 3]")
            out[keras_name] = [np.ascontiguousarray(w.transpose(2, 3, 0, 1))]
        else:
            out[keras_name] = [np.ascontiguousarray(take(f"{prefix}.weight").transpose(2, 3, 1, 0))]
    leftover = [k for k in state_dict if k not in used and not k.endswith("num_batches_tracked")]
    if leftover:
        raise ValueError(f"the checkpoint has tensors this MobileNetV2 does not use: {leftover[:5]}")
    return out


def assign_weights(model: Any, weights: Mapping[str, list[np.ndarray]], strict: bool = True) -> int:
    """Sets layer weights by layer name; returns how many layers were set.

    Args:
        model: A model from :func:`build_mobilenet_v2` (with or without the top).
        weights: Keras layer name -> list of arrays in the layer's weight order.
        strict: Every weight-bearing layer of ``model`` must get weights (otherwise a typo
            would silently leave random layers in a "pretrained" network).

    Raises:
        ValueError: A shape mismatch, or (strict) a layer of the model without weights.
    """
    count = 0
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            if strict:
                raise ValueError(f"no pretrained weights for layer {layer.name}")
            continue
        arrays = weights[layer.name]
        current = layer.get_weights()
        if len(arrays) != len(current) or any(a.shape != c.shape for a, c in zip(arrays, current, strict=True)):
            raise ValueError(
                f"layer {layer.name}: weights of shapes {[a.shape for a in arrays]} do not fit "
                f"{[c.shape for c in current]}"
            )
        layer.set_weights(arrays)
        count += 1
    return count


def save_weights_by_name(weights: Mapping[str, list[np.ndarray]], path: str | os.PathLike[str]) -> None:
    """Writes converted weights as HDF5: one group per Keras layer name, datasets ``0``, ``1``, ...

    A plain name-keyed layout (rather than ``model.save_weights``) so the one file loads into
    the classifier and into a headless backbone of any input size alike.
    """
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["format"] = "tagrack-keras-weights-by-layer-name/1"
        for layer_name, arrays in weights.items():
            group = f.create_group(layer_name)
            for i, arr in enumerate(arrays):
                group.create_dataset(str(i), data=arr)


def read_weights_by_name(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """Reads a file written by :func:`save_weights_by_name`."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "tagrack-keras-weights-by-layer-name/1":
            raise ValueError(f"{path} is not a Tagrack converted-weights file")
        return {name: [np.asarray(group[str(i)]) for i in range(len(group))] for name, group in f.items()}


def load_weights_by_name(model: Any, path: str | os.PathLike[str]) -> int:
    """Loads a converted-weights file into ``model`` by layer name (strict); returns layers set."""
    return assign_weights(model, read_weights_by_name(path), strict=True)


def load_eval_image(path: str | os.PathLike[str], size: int = 224, resize_to: int = 256) -> np.ndarray:
    """An image file as torchvision's ImageNet evaluation sees it: RGB uint8 ``[size, size, 3]``.

    The short side is resized to ``resize_to`` (bilinear, as ``transforms.Resize``) and the
    centre ``size`` x ``size`` cropped (``transforms.CenterCrop``); EXIF orientation applied.
    Normalise the result with :func:`preprocess_input`.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        w, h = img.size
        scale = resize_to / min(w, h)
        nw, nh = max(resize_to, round(w * scale)), max(resize_to, round(h * scale))
        img = img.resize((nw, nh), Image.Resampling.BILINEAR)
        left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
        return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
