"""The detector on the offline ImageNet weights: loaded, frozen where asked, saved and reloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from core.model.detector.model import (
    OFFLINE_IMAGENET,
    DetectorSpec,
    WeightsUnavailableError,
    build_detector,
    load_detector,
)
from core.model.pretrained.mobilenet_v2 import read_weights_by_name
from core.model.pretrained.offline_weights import cache_dir_for
from core.model.training import resolve_weights
from core.settings import Settings

SPEC = DetectorSpec(
    class_names=("Shirts", "Shoes"), image_height=96, image_width=64, weights=OFFLINE_IMAGENET, frozen_stages=4
)


def test_unprepared_offline_weights_fail_with_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="python -m core weights prepare"):
        build_detector(SPEC, tmp_path / "weights")
    with pytest.raises(WeightsUnavailableError, match="alpha 1.0"):
        build_detector(DetectorSpec(**{**SPEC.to_dict(), "alpha": 0.5}), tmp_path / "weights")


def test_detector_starts_from_the_converted_weights_with_early_stages_frozen(
    converted_weights: Path, tmp_path: Path
) -> None:
    model = build_detector(SPEC, converted_weights.parent)
    encoder = model.backbone.image_encoder
    stored = read_weights_by_name(converted_weights)
    for name in ("Conv1", "block_3_expand", "block_12_project", "Conv_1"):
        np.testing.assert_array_equal(encoder.get_layer(name).get_weights()[0], stored[name][0])
    # frozen_stages=4: the stem and block_1..block_3 are fixed, block_4 on trains.
    assert not encoder.get_layer("Conv1").trainable and not encoder.get_layer("block_3_project").trainable
    assert encoder.get_layer("block_4_expand").trainable and encoder.get_layer("Conv_1").trainable
    assert not any(layer.trainable for layer in encoder.layers if isinstance(layer, keras.layers.BatchNormalization))
    # torchvision's normalisation is inside: the model takes 0..255 pixels.
    assert encoder.get_layer("torchvision_preprocess") is not None

    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 64, 3)).astype("float32")
    before = np.asarray(model(x)["cls_logits"])
    model.save(tmp_path / "m.keras")
    after = np.asarray(load_detector(tmp_path / "m.keras")(x)["cls_logits"])
    np.testing.assert_allclose(before, after, atol=1e-5)

    # A resume builds the same architecture without reading the weights file.
    again = build_detector(SPEC, tmp_path / "nowhere", load_weights=False)
    assert [w.shape for w in again.weights] == [w.shape for w in model.weights]
    assert len(again.trainable_weights) == len(model.trainable_weights)


def test_auto_weights_prefer_prepared_offline_weights(converted_weights: Path, tmp_path: Path) -> None:
    bare = Settings.resolve(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a")
    assert resolve_weights(bare, "auto") in ("none", "imagenet")  # "imagenet" only where Keras has them cached
    assert resolve_weights(bare, "none") == "none"
    data = tmp_path / "b"
    target = cache_dir_for(data)
    target.mkdir(parents=True)
    for f in converted_weights.parent.iterdir():  # the converted file and its record, as prepare leaves them
        shutil.copy(f, target / f.name)
    prepared = Settings.resolve(f"sqlite:///{tmp_path / 'b.db'}", data)
    assert resolve_weights(prepared, "auto") == OFFLINE_IMAGENET
    assert resolve_weights(prepared, "auto", alpha=0.5) in ("none", "imagenet")
    assert resolve_weights(prepared, "none") == "none"
