"""The metrics' IoU gives exactly Box.iou's numbers (VOC matching moved from one to the other)."""

import numpy as np

from core.boxes import Box
from core.model.metrics.iou import as_array, iou_matrix


def test_iou_matrix_equals_box_iou_to_the_bit_including_empty_and_inverted_boxes():
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 100, size=(60, 4))
    boxes = [Box(*map(float, c)) for c in corners]  # about three in four are inverted in x or y
    boxes += [Box(0, 0, 10, 10), Box(5, 0, 15, 10), Box(0, 0, 0, 10), Box(10, 10, 10, 10)]
    matrix = iou_matrix(as_array(boxes), as_array(boxes))
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            assert matrix[i, j] == a.iou(b), (a, b)


def test_empty_sides_give_an_empty_matrix():
    assert iou_matrix(as_array([]), as_array([Box(0, 0, 1, 1)])).shape == (0, 1)
