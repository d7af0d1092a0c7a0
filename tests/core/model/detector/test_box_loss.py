"""The box loss: the CIoU term decodes against the model's own anchors, is 0 for a perfect
prediction, grows as a box slides off and stays finite on negative anchors.

That a detector compiled with it trains and saves is the tiny training job's test
(tests/core/model/test_training.py): Huber + CIoU is the job's default box loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from core.model.detector.box_loss import BOX_LOSSES, DetectorBoxLoss
from core.model.detector.model import DetectorSpec, build_detector
from core.model.detector.train import TrainConfig

TINY = {"class_names": ("a", "b"), "image_height": 64, "image_width": 96, "alpha": 0.35, "weights": "none"}


@pytest.fixture(scope="module")
def model_and_targets():
    spec = DetectorSpec(**TINY)
    model = build_detector(spec)
    images = np.zeros((2, 64, 96, 3), np.float32)
    gt_boxes = np.array([[[10, 8, 50, 40], [-1, -1, -1, -1]], [[30, 20, 90, 60], [60, 5, 80, 30]]], np.float32)
    gt_classes = np.array([[0, -1], [1, 0]], np.float32)
    deltas, labels = model.label_encoder(images=images, gt_boxes=gt_boxes, gt_classes=gt_classes)
    return spec, model, np.asarray(deltas), np.asarray(labels)


def test_cli_choices_are_the_losses() -> None:
    import argparse

    from core.cli import _train_configure

    parser = argparse.ArgumentParser()
    _train_configure(parser)
    action = next(a for a in parser._actions if a.dest == "box_loss")  # noqa: SLF001
    assert tuple(action.choices) == BOX_LOSSES


def test_perfect_prediction_costs_nothing_and_a_shifted_one_costs_more(model_and_targets) -> None:
    spec, model, deltas, labels = model_and_targets
    loss = DetectorBoxLoss.for_model(model, (spec.image_height, spec.image_width), "huber+ciou")
    positive = labels > -1
    assert positive.any()
    exact = np.asarray(loss.call(deltas, deltas))
    assert np.all(np.isfinite(exact))
    assert np.abs(exact[positive]).max() < 1e-3
    shifted = deltas.copy()
    shifted[..., 0] += 0.3  # 0.3 anchor widths sideways
    worse = np.asarray(loss.call(deltas, shifted))[positive]
    huber_only = np.asarray(keras.losses.huber(deltas, shifted))[positive]
    # The IoU term adds to the Huber term wherever the overlap dropped.
    assert np.all(worse > huber_only + 0.05)


def test_huber_kind_is_keras_hubs_huber(model_and_targets) -> None:
    spec, model, deltas, _ = model_and_targets
    loss = DetectorBoxLoss.for_model(model, (spec.image_height, spec.image_width), "huber")
    noisy = deltas + 0.2
    np.testing.assert_allclose(np.asarray(loss.call(deltas, noisy)), np.asarray(keras.losses.huber(deltas, noisy)))


def test_wild_predictions_and_placeholder_targets_stay_finite(model_and_targets) -> None:
    spec, model, _, _ = model_and_targets
    # An image with no boxes: every anchor is negative and carries the encoder's placeholder.
    images = np.zeros((1, 64, 96, 3), np.float32)
    placeholder, labels = model.label_encoder(
        images=images, gt_boxes=np.full((1, 1, 4), -1, np.float32), gt_classes=np.full((1, 1), -1, np.float32)
    )
    assert not (np.asarray(labels) > -1).any()
    loss = DetectorBoxLoss.for_model(model, (spec.image_height, spec.image_width), "huber+ciou")
    wild = np.full(np.asarray(placeholder).shape, 80.0, np.float32)  # exp(80) overflows float32 unclipped
    with tf.GradientTape() as tape:
        pred = tf.Variable(wild)
        value = tf.reduce_sum(loss.call(np.asarray(placeholder), pred))
    grad = tape.gradient(value, pred)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(grad.numpy()))


def test_unknown_kind_is_refused(model_and_targets) -> None:
    spec, model, _, _ = model_and_targets
    with pytest.raises(ValueError, match="Unknown box loss 'giou'.*huber, huber\\+ciou"):
        DetectorBoxLoss.for_model(model, (64, 96), "giou")


def test_the_config_defaults_to_the_products_loss_and_old_runs_resume_with_huber() -> None:
    from core.model.training import DEFAULTS

    # benchmarks/train.py and train_step.py build a bare TrainConfig: they must time the job's step.
    assert TrainConfig().box_loss == DEFAULTS["box_loss"]
    # A job saved before the loss was a setting trained with Huber; resuming it must not switch.
    assert TrainConfig.from_dict({"epochs": 3}).box_loss == "huber"
    assert TrainConfig.from_dict({"box_loss": "huber+ciou"}).box_loss == "huber+ciou"
