"""Class-balanced sampling: repeat factors, and the repeated TFRecord examples the trainer reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.model.detector.data import class_balanced_dataset, repeat_factors


def test_rare_classes_are_repeated_up_to_the_percentile() -> None:
    # class 0: 8 boxes, class 1: 2 boxes, class 2: 1 box
    labels = [[0, 0], [0, 0], [0, 0], [0, 0], [1], [1], [2], []]
    assert repeat_factors(labels, 100).tolist() == [1, 1, 1, 1, 4, 4, 8, 1]
    # Median class count is 2: class 2 doubled, the others untouched.
    assert repeat_factors(labels, 50).tolist() == [1, 1, 1, 1, 1, 1, 2, 1]
    assert repeat_factors(labels, 0).tolist() == [1] * 8
    assert repeat_factors([[], []], 90).tolist() == [1, 1]
    with pytest.raises(ValueError, match="percentile"):
        repeat_factors(labels, 120)


def test_balanced_dataset_repeats_examples_from_the_export(tmp_path: Path) -> None:
    import tensorflow as tf

    from core.formats.tfrecord.features import FEATURE_SPEC  # noqa: F401 - the spec the reader uses

    def example(labels: list[int]) -> bytes:
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (8, 6), (10, 20, 30)).save(buf, format="PNG")
        n = len(labels)
        f = {
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[buf.getvalue()])),
            "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[6])),
            "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[8])),
            "image/source_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(labels).encode()])),
            "image/object/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[c + 1 for c in labels])),
        }
        for k in ("xmin", "ymin"):
            f[f"image/object/bbox/{k}"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.1] * n))
        for k in ("xmax", "ymax"):
            f[f"image/object/bbox/{k}"] = tf.train.Feature(float_list=tf.train.FloatList(value=[0.9] * n))
        return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()

    path = tmp_path / "train.record-00000-of-00001"
    with tf.io.TFRecordWriter(str(path)) as w:
        for labels in ([0, 0], [0, 0], [1]):
            w.write(example(labels))
    ds, count = class_balanced_dataset([str(path)], 100)
    seen = [ex["labels"].numpy().tolist() for ex in ds]
    assert count == len(seen) == 6  # the class-1 image 4 times (1 box vs 4)
    assert sorted(map(tuple, seen)) == [(0, 0), (0, 0), (1,), (1,), (1,), (1,)]
    assert all(np.asarray(ex["image"]).shape == (6, 8, 3) for ex in ds.take(1))
