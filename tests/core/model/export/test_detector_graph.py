"""The serving graph's parts that are not the Keras model: the anchors it builds at run time."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from core.model.export.detector_graph import graph_anchors, runtime_zero


@pytest.mark.parametrize(("height", "width"), [(448, 288), (96, 128), (100, 130)])
@pytest.mark.parametrize("box_format", ["xyxy", "yxyx"])
def test_graph_anchors_are_keras_hubs_anchors(height: int, width: int, box_format: str) -> None:
    # 100x130 is not a multiple of the strides: the ceil/floor of the cell counts and strides must match too.
    generator = keras_hub.layers.AnchorGenerator(
        bounding_box_format=box_format,
        min_level=3,
        max_level=7,
        num_scales=3,
        aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=3.0,
    )
    images = tf.fill((1, height, width, 3), 17.0)
    expected = keras.ops.convert_to_numpy(keras.ops.concatenate(list(generator(images).values()), axis=0))
    # Traced, as every exporter calls it (its constants must not need eager values), with the
    # run-time zero of the fixed-size formats' uint8 input and with none (the SavedModel's).
    pixels = tf.fill((1, height, width, 3), tf.constant(200, tf.uint8))
    with_zero = tf.function(lambda x, p: graph_anchors(generator, x, runtime_zero(p)))(images, pixels).numpy()
    plain = tf.function(lambda x: graph_anchors(generator, x))(images).numpy()
    for got in (with_zero, plain):
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)
