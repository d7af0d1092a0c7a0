"""The detector model: initial weights choices fail loudly, a saved model reloads identically."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from core.model.detector.model import (
    DetectorSpec,
    WeightsUnavailableError,
    build_detector,
    build_encoder,
    load_detector,
)

TINY = {"class_names": ("a", "b"), "image_height": 64, "image_width": 96, "alpha": 0.35}


def test_imagenet_offline_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate no internet (tests never touch the network): keras' downloader raises.
    import keras.src.applications.mobilenet_v2 as mnv2

    def offline(*args: object, **kwargs: object) -> str:
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3] name resolution")

    monkeypatch.setattr(mnv2.file_utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError, match="no internet access.*local weights file.*'none'"):
        build_encoder(DetectorSpec(**{**TINY, "weights": "imagenet"}))


def test_imagenet_needs_a_published_alpha_and_a_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailableError, match="not 0.3"):
        build_encoder(DetectorSpec(**{**TINY, "alpha": 0.3, "weights": "imagenet"}))
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        build_encoder(DetectorSpec(**{**TINY, "weights": str(tmp_path / "missing.weights.h5")}))


def test_local_weights_file_is_loaded_and_batch_norm_frozen(tmp_path: Path) -> None:
    source = keras.applications.MobileNetV2(input_shape=(None, None, 3), alpha=0.35, include_top=False, weights=None)
    path = tmp_path / "mnv2.weights.h5"
    source.save_weights(path)
    encoder = build_encoder(DetectorSpec(**{**TINY, "weights": str(path)}))
    got = encoder.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(got, source.get_layer("Conv1").get_weights()[0])
    bns = [layer for layer in encoder.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bns and not any(layer.trainable for layer in bns)  # pretrained -> frozen batch norm


def test_random_init_keeps_batch_norm_trainable_and_save_load_roundtrip(tmp_path: Path) -> None:
    spec = DetectorSpec(**TINY)
    model = build_detector(spec)
    bns = [layer for layer in model.backbone.image_encoder.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.trainable and layer.momentum == 0.9 for layer in bns)
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 96, 3)).astype("float32")
    before = model(x)
    model.save(tmp_path / "m.keras")
    again = load_detector(tmp_path / "m.keras")
    after = again(x)
    np.testing.assert_allclose(np.asarray(before["cls_logits"]), np.asarray(after["cls_logits"]), atol=1e-5)
    assert again.num_classes == 2


def test_classification_head_starts_at_the_focal_prior() -> None:
    model = build_detector(DetectorSpec(**TINY))
    bias = np.asarray(model.classification_head.prediction_layer.bias)
    np.testing.assert_allclose(bias, -np.log(99), rtol=1e-5)
    assert not np.asarray(model.box_head.prediction_layer.bias).any()


def test_pyramid_width_sets_the_pyramid_and_heads_and_survives_save_load(tmp_path: Path) -> None:
    from keras_hub.src.models.retinanet import retinanet_backbone, retinanet_object_detector

    narrow = build_detector(DetectorSpec(**TINY, pyramid_width=64))
    wide = build_detector(DetectorSpec(**TINY))  # keras-hub's 256
    # Every conv of the feature pyramid and the heads has the width, but the heads' own outputs.
    convs = [v for v in narrow.weights if v.path.endswith("kernel") and ("fpn" in v.path or "head" in v.path)]
    assert convs and {v.shape[-1] for v in convs} == {64, 2 * 9, 4 * 9}
    assert narrow.count_params() < wide.count_params() / 5
    # The swapped keras-hub lookups are restored: a plain keras-hub detector is still 256 wide.
    assert retinanet_backbone.FeaturePyramid.__name__ == "FeaturePyramid"
    assert retinanet_object_detector.PredictionHead.__name__ == "PredictionHead"
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 96, 3)).astype("float32")
    before = narrow(x)
    narrow.save(tmp_path / "m.keras")
    again = load_detector(tmp_path / "m.keras")
    assert again.head_width == again.backbone.pyramid_width == 64
    np.testing.assert_allclose(
        np.asarray(before["bbox_regression"]), np.asarray(again(x)["bbox_regression"]), atol=1e-5
    )
