"""Training pieces: the masked loss, class balancing, feature views, and resuming a killed run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.model.tags.model import TagsSpec, build_top, head_layer_name
from core.model.tags.train import _view, class_weights, masked_loss, oversampled_indices, predict_logits


def test_an_image_without_a_tag_does_not_move_that_head() -> None:
    import keras

    keras.utils.set_random_seed(0)
    spec = TagsSpec(heads={"category": ["a", "b", "c"], "colour": ["red", "blue"]}, split_block=17)
    top = build_top(spec, (32,))
    top.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=[masked_loss(3, None, 0.1), masked_loss(2, np.array([1.0, 1.0], dtype=np.float32), 0.0)],
    )
    colour = top.get_layer(head_layer_name(1, "colour"))
    category = top.get_layer(head_layer_name(0, "category"))
    before_colour = [w.copy() for w in colour.get_weights()]
    before_category = [w.copy() for w in category.get_weights()]
    x = np.random.default_rng(0).normal(size=(16, 32)).astype("float32")
    y = (np.arange(16) % 3, np.full(16, -1))  # no image has a colour
    top.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for a, b in zip(before_colour, colour.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(before_category, category.get_weights(), strict=True))


def test_masked_loss_is_zero_for_unknown_and_weighted_for_known() -> None:
    logits = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0]], dtype="float32")
    plain = np.asarray(masked_loss(2, None, 0.0)(np.array([0, 1, -1]), logits))
    assert plain[2] == 0.0
    assert plain[0] == pytest.approx(np.log(1 + np.exp(-2.0)), rel=1e-5)
    weighted = np.asarray(masked_loss(2, np.array([1.0, 3.0], dtype="float32"), 0.0)(np.array([0, 1, -1]), logits))
    assert weighted[1] == pytest.approx(3 * plain[1], rel=1e-5) and weighted[0] == pytest.approx(plain[0])


def test_class_weights_lift_rare_values_toward_the_median() -> None:
    labels = np.array([0] * 8 + [1] * 4 + [2] * 1 + [-1] * 5)
    w = class_weights(labels, 3, 50.0)
    assert w[2] > w[1] > w[0]
    assert w[0] * 8 == pytest.approx(w[1] * 4)  # target / count: each value weighs the same in total
    known = labels[labels >= 0]
    assert w[known].mean() == pytest.approx(1.0)


def test_oversampling_fills_rare_values_up_to_the_percentile() -> None:
    labels = np.array([0] * 10 + [1] * 2 + [-1] * 3)
    idx = oversampled_indices(labels, 100.0, np.random.default_rng(0))
    got = np.bincount(labels[idx][labels[idx] >= 0])
    assert got.tolist() == [10, 10]
    assert (labels[idx] == -1).sum() == 3  # untagged rows once each
    assert set(range(15)) <= set(idx.tolist())


def test_views_mirror_and_crop_without_touching_colours() -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, :8] = (200, 10, 10)
    image[12:20, 12:20] = (10, 200, 10)  # inside every crop (a crop keeps at least 64 % of each side)
    mirrored = _view(image, 1)
    assert (mirrored[:, -8:] == (200, 10, 10)).all() and (mirrored[:, :8] == 0).all()
    for seed in range(20):
        crop = _view(image, 2, seed)
        assert crop.shape == image.shape
        colours = {tuple(c) for c in crop.reshape(-1, 3)}
        assert (10, 200, 10) in colours  # the colour itself survives (no hue change)
    # Seeded per image and view: the same view twice is the same crop, other views and images differ.
    assert (_view(image, 2, 5) == _view(image, 2, 5)).all()
    assert not (_view(image, 2, 5) == _view(image, 2, 6)).all()
    assert not (_view(image, 2, 5)[:, ::-1] == _view(image, 3, 5)).all()


def test_predict_logits_averages_the_first_views() -> None:
    import keras

    inputs = keras.Input((3,))
    top = keras.Model(inputs, [keras.layers.Dense(2, name="a")(inputs)])
    feats = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float16)
    (one,) = predict_logits(top, feats, 1, batch_size=2)
    (both,) = predict_logits(top, feats, 2, batch_size=2)
    (mirror,) = predict_logits(top, feats[:, 1:], 1, batch_size=2)
    np.testing.assert_allclose(both, (one + mirror) / 2, rtol=1e-5, atol=1e-6)


def test_flip_average_predicts_the_same_for_an_image_and_its_mirror(tmp_path: Path) -> None:
    from core.model.tags.model import Tagger, build_base, build_top, build_trunk, compose

    spec = TagsSpec(heads={"category": ["a", "b", "c"]}, image_size=32, weights="none")
    base = build_base(spec, None)
    trunk = build_trunk(base, spec)
    model = compose(trunk, build_top(spec, tuple(trunk.output.shape[1:]), base), spec)
    image = np.random.default_rng(1).integers(0, 255, size=(1, 32, 32, 3)).astype(np.uint8)
    mirrored = image[:, :, ::-1]
    plain = Tagger(model, spec)
    # Random weights give tiny logits: compare relative to their size.
    assert not np.allclose(plain.logits(image)[0], plain.logits(mirrored)[0], rtol=1e-2, atol=0)
    spec.flip_average = True
    averaged = Tagger(model, spec)
    np.testing.assert_allclose(averaged.logits(image)[0], averaged.logits(mirrored)[0], rtol=1e-4, atol=0)


def test_resume_after_a_killed_worker_continues_from_the_last_epoch(tmp_path: Path) -> None:
    """A run stopped after epoch 1 (as if killed) and run again on the same folder does epochs 2-3 only."""
    import keras

    from core.model.tags.data import TagsData
    from core.model.tags.train import TagsTrainConfig, train_tags
    from tests.core.model.tags.conftest import COLOURS, SCHEMA, picture

    folder = tmp_path / "images"
    folder.mkdir()
    paths, labels = [], []
    for n in range(12):
        p = folder / f"{n}.jpg"
        p.write_bytes(picture(SCHEMA["category"][n % 3], list(COLOURS)[n % 2], n))
        paths.append(p)
        labels.append([n % 3, n % 2])
    data = TagsData(SCHEMA, list(range(12)), paths, ["train"] * 12, np.array(labels, dtype=np.int32))
    spec = TagsSpec(heads=SCHEMA, image_size=64, weights="none")
    config = TagsTrainConfig(epochs=3, budget_minutes=None, batch_size=4, views=1)

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            raise KeyboardInterrupt  # the worker dies right after epoch 1 was checkpointed

    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        train_tags(spec, config, data, None, work, extra_callbacks=[Kill()])
    assert (work / "features").is_dir()
    result = train_tags(spec, config, data, None, work)
    assert result.resumed_from_epoch == 1
    assert [h["epoch"] for h in result.history] == [1, 2, 3]


def test_members_train_one_after_the_other_resume_and_save_as_their_mean(tmp_path: Path) -> None:
    """Two member tops on one feature pass: a kill in the second resumes there; the saved model averages them."""
    import keras

    from core.model.tags.data import TagsData
    from core.model.tags.model import Tagger, compose, save_version
    from core.model.tags.train import TagsTrainConfig, train_tags
    from tests.core.model.tags.conftest import COLOURS, SCHEMA, picture

    folder = tmp_path / "images"
    folder.mkdir()
    paths, labels = [], []
    for n in range(8):
        p = folder / f"{n}.jpg"
        p.write_bytes(picture(SCHEMA["category"][n % 3], list(COLOURS)[n % 2], n))
        paths.append(p)
        labels.append([n % 3, n % 2])
    data = TagsData(SCHEMA, list(range(8)), paths, ["train"] * 8, np.array(labels, dtype=np.int32))
    spec = TagsSpec(heads=SCHEMA, image_size=32, weights="none", members=2)
    config = TagsTrainConfig(epochs=2, budget_minutes=None, batch_size=4, views=1)
    seen: list[dict] = []

    class KillInSecond(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            if self.model.name == "top_2":
                raise KeyboardInterrupt  # the worker dies after member 2's first epoch

    work = tmp_path / "work"
    with pytest.raises(KeyboardInterrupt):
        train_tags(spec, config, data, data, work, extra_callbacks=[KillInSecond()])
    result = train_tags(spec, config, data, data, work, on_progress=seen.append)
    assert result.resumed_from_epoch == 2 + 1  # member 1 was done, member 2 had its epoch 1
    assert [(h["member"], h["epoch"]) for h in result.history] == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert {p.get("members") for p in seen if p["phase"] == "training"} == {2}
    feats = np.load(work / "features" / "train-32-1.npy")
    members = [result.top.get_layer(f"top_{k}") for k in (1, 2)]
    got = predict_logits(result.top, feats)
    for j in range(len(SCHEMA)):
        alone = [predict_logits(m, feats)[j] for m in members]
        assert not np.allclose(alone[0], alone[1])  # different seeds: different members
        np.testing.assert_allclose(got[j], (alone[0] + alone[1]) / 2, rtol=1e-5, atol=1e-6)
    model = compose(result.trunk, result.top, spec)
    save_version(model, spec, tmp_path / "v")
    image = np.random.default_rng(2).integers(0, 255, size=(2, 32, 32, 3)).astype(np.uint8)
    loaded = Tagger.load(tmp_path / "v")
    assert loaded.spec.members == 2
    np.testing.assert_allclose(loaded.logits(image)[0], Tagger(model, spec).logits(image)[0], rtol=1e-5)
