"""Tests for the synthetic demo scenes: determinism, exact boxes, balance and shapes."""

from __future__ import annotations

import colorsys
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from core.boxes import Box
from core.demo import DEMO_LABELS
from core.demo.garments import draw_garment
from core.demo.scenes import DemoScene, generate_scene, generate_scenes, render_background, render_object_masks

SIZE = (512, 384)
WIDTH, HEIGHT = SIZE


def mask_box(mask: np.ndarray) -> Box:
    """Bounding box of a boolean mask, computed independently of core.demo.scenes."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return Box(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


@dataclass(frozen=True)
class Rendered:
    """A scene together with the layers it was composed from."""

    scene: DemoScene
    pixels: np.ndarray
    background: np.ndarray
    masks: tuple[np.ndarray, ...]


@pytest.fixture(scope="module")
def scenes() -> list[DemoScene]:
    """The default demo set: 300 scenes of seed 0."""
    return list(generate_scenes(300, seed=0, size=SIZE))


@pytest.fixture(scope="module")
def rendered() -> list[Rendered]:
    """A few dozen scenes with their backgrounds and object masks."""
    out = []
    for index in range(40):
        scene = generate_scene(7, index, SIZE)
        out.append(
            Rendered(
                scene=scene,
                pixels=np.asarray(scene.image),
                background=np.asarray(render_background(7, index, SIZE)),
                masks=render_object_masks(7, index, SIZE),
            )
        )
    return out


def test_same_seed_and_index_give_the_same_scene() -> None:
    first = generate_scene(3, 11, SIZE)
    second = generate_scene(3, 11, SIZE)
    assert first.name == second.name == "demo-0011.jpg"
    assert first.image.mode == "RGB"
    assert first.image.size == SIZE
    assert first.image.tobytes() == second.image.tobytes()
    assert first.objects == second.objects


def test_a_scene_does_not_depend_on_the_scenes_generated_before_it() -> None:
    *_, last = generate_scenes(12, seed=3, size=SIZE)
    alone = generate_scene(3, 11, SIZE)
    assert last.image.tobytes() == alone.image.tobytes()
    assert last.objects == alone.objects


def test_different_seed_or_index_gives_a_different_scene() -> None:
    base = generate_scene(3, 11, SIZE).image.tobytes()
    assert generate_scene(4, 11, SIZE).image.tobytes() != base
    assert generate_scene(3, 12, SIZE).image.tobytes() != base


def test_each_box_is_exactly_its_silhouettes_bounding_box(rendered: list[Rendered]) -> None:
    for item in rendered:
        assert len(item.masks) == len(item.scene.objects)
        for obj, mask in zip(item.scene.objects, item.masks, strict=True):
            assert mask.shape == (HEIGHT, WIDTH)
            assert obj.box == mask_box(mask)
            assert obj.box.is_inside(WIDTH, HEIGHT)
            assert obj.box.width > 0 and obj.box.height > 0


def test_nothing_is_drawn_outside_the_silhouettes(rendered: list[Rendered]) -> None:
    for item in rendered:
        changed = (item.pixels != item.background).any(axis=2)
        union = np.logical_or.reduce(item.masks)
        assert not (changed & ~union).any()


def test_pixels_just_outside_each_box_are_background(rendered: list[Rendered]) -> None:
    for item in rendered:
        for k, obj in enumerate(item.scene.objects):
            x0, y0, x1, y1 = (int(v) for v in (obj.box.x_min, obj.box.y_min, obj.box.x_max, obj.box.y_max))
            # The one-pixel ring around the box, as far as it lies in the image.
            ring = np.zeros((HEIGHT, WIDTH), dtype=bool)
            ring[max(y0 - 1, 0) : y1 + 1, max(x0 - 1, 0) : x1 + 1] = True
            ring[y0:y1, x0:x1] = False
            others = [mask for j, mask in enumerate(item.masks) if j != k]
            free = ring & ~np.logical_or.reduce(others) if others else ring
            assert not item.masks[k][ring].any()
            assert (item.pixels[free] == item.background[free]).all()


def test_every_garment_is_substantially_visible_and_painted(rendered: list[Rendered]) -> None:
    for item in rendered:
        for k, mask in enumerate(item.masks):
            later = item.masks[k + 1 :]
            visible = mask & ~np.logical_or.reduce(later) if later else mask
            assert np.count_nonzero(visible) >= 0.4 * np.count_nonzero(mask)
            differs = (item.pixels[visible] != item.background[visible]).any(axis=1)
            assert differs.mean() > 0.95


def test_scenes_hold_one_to_four_garments_with_some_overlap(scenes: list[DemoScene]) -> None:
    counts = Counter(len(scene.objects) for scene in scenes)
    assert set(counts) <= {1, 2, 3, 4}
    assert counts[1] > 0 and counts[4] > 0
    overlapping = sum(
        any(a.box.iou(b.box) > 0 for i, a in enumerate(scene.objects) for b in scene.objects[i + 1 :])
        for scene in scenes
    )
    assert overlapping >= 0.2 * len(scenes)


def test_all_classes_appear_with_balanced_counts(scenes: list[DemoScene]) -> None:
    counts = Counter(obj.label for scene in scenes for obj in scene.objects)
    assert set(counts) == set(DEMO_LABELS)
    mean = sum(counts.values()) / len(DEMO_LABELS)
    assert min(counts.values()) >= 0.7 * mean
    assert max(counts.values()) <= 1.3 * mean


def test_scene_names_follow_the_index(scenes: list[DemoScene]) -> None:
    assert [scene.name for scene in scenes[:3]] == [
        "demo-0000.jpg",
        "demo-0001.jpg",
        "demo-0002.jpg",
    ]
    assert len({scene.name for scene in scenes}) == len(scenes)


def shape_features(mask: np.ndarray) -> np.ndarray:
    """A colour-blind description of a silhouette: a 16x16 thumbnail and the log aspect."""
    height, width = mask.shape
    thumb = Image.fromarray(mask.astype(np.uint8) * 255).resize((16, 16), Image.Resampling.BILINEAR)
    return np.concatenate([np.asarray(thumb, dtype=np.float32).ravel() / 255.0, [2.0 * np.log(width / height)]])


def nearest_neighbour_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of 1-nearest-neighbour on every third sample, trained on the rest."""
    test = np.arange(len(labels)) % 3 == 0
    distances = ((features[test][:, None, :] - features[~test][None, :, :]) ** 2).sum(axis=2)
    predicted = labels[~test][distances.argmin(axis=1)]
    return float((predicted == labels[test]).mean())


def test_classes_can_be_told_apart_by_silhouette_alone() -> None:
    # If classes differed only by colour, the masks would be interchangeable and this
    # would score about 1/9.
    rng = np.random.default_rng(123)
    features, labels = [], []
    for k, label in enumerate(DEMO_LABELS):
        for _ in range(30):
            features.append(shape_features(draw_garment(label, rng, SIZE).mask))
            labels.append(k)
    assert nearest_neighbour_accuracy(np.array(features), np.array(labels)) >= 0.85


def test_colour_alone_does_not_give_the_class_away(scenes: list[DemoScene]) -> None:
    colours, labels = [], []
    for index, scene in enumerate(scenes[:150]):
        pixels = np.asarray(scene.image)
        masks = render_object_masks(0, index, SIZE)
        for k, (obj, mask) in enumerate(zip(scene.objects, masks, strict=True)):
            later = masks[k + 1 :]
            visible = mask & ~np.logical_or.reduce(later) if later else mask
            colours.append(pixels[visible].mean(axis=0))
            labels.append(DEMO_LABELS.index(obj.label))
    # Jeans lean blue and lenses are dark, so colour carries a little signal, far from
    # the near-perfect score that silhouettes give.
    assert nearest_neighbour_accuracy(np.array(colours), np.array(labels)) < 0.35


def test_every_class_comes_in_many_colours(scenes: list[DemoScene]) -> None:
    hues: dict[str, set[int]] = {label: set() for label in DEMO_LABELS}
    for index, scene in enumerate(scenes[:150]):
        pixels = np.asarray(scene.image)
        masks = render_object_masks(0, index, SIZE)
        for k, (obj, mask) in enumerate(zip(scene.objects, masks, strict=True)):
            later = masks[k + 1 :]
            visible = mask & ~np.logical_or.reduce(later) if later else mask
            red, green, blue = np.median(pixels[visible], axis=0) / 255.0
            hue, saturation, _ = colorsys.rgb_to_hsv(red, green, blue)
            if saturation > 0.25:
                hues[obj.label].add(int(hue * 6) % 6)
    # Six hue sectors (reds, yellows, greens, cyans, blues, magentas): every class,
    # jeans included, must show up in most of them.
    assert all(len(sectors) >= 4 for sectors in hues.values()), hues


def row_extent(mask: np.ndarray, fraction: float) -> float:
    """Span of the silhouette in the row at ``fraction`` of its height, over its width."""
    row = mask[int(fraction * (mask.shape[0] - 1))]
    cols = np.flatnonzero(row)
    return (cols[-1] - cols[0] + 1) / mask.shape[1]


def test_shirt_sleeves_reach_lower_than_tshirt_sleeves() -> None:
    # At 70% of the height a T-shirt is only its body; a shirt is body plus long sleeves.
    rng = np.random.default_rng(5)
    tshirts = [row_extent(draw_garment("Tshirts", rng, SIZE).mask, 0.7) for _ in range(40)]
    shirts = [row_extent(draw_garment("Shirts", rng, SIZE).mask, 0.7) for _ in range(40)]
    assert max(tshirts) < 0.7 < min(shirts)


def test_jeans_taper_and_trousers_do_not() -> None:
    def hem_to_hip(mask: np.ndarray) -> float:
        widths = mask.sum(axis=1)
        return widths[int(0.95 * (mask.shape[0] - 1))] / widths.max()

    rng = np.random.default_rng(6)
    jeans = [hem_to_hip(draw_garment("Jeans", rng, SIZE).mask) for _ in range(40)]
    trousers = [hem_to_hip(draw_garment("Trousers", rng, SIZE).mask) for _ in range(40)]
    assert np.median(jeans) < 0.6 < np.median(trousers)
    assert np.mean(np.array(jeans) < 0.65) >= 0.9
    assert np.mean(np.array(trousers) > 0.65) >= 0.9


def test_garment_masks_are_cropped_to_the_silhouette() -> None:
    rng = np.random.default_rng(11)
    for label in DEMO_LABELS:
        mask = draw_garment(label, rng, SIZE).mask
        assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()


def test_smaller_scenes_keep_garments_inside() -> None:
    scene = generate_scene(1, 2, (160, 120))
    assert scene.image.size == (160, 120)
    assert 1 <= len(scene.objects) <= 4
    for obj in scene.objects:
        assert obj.box.is_inside(160, 120) and obj.box.area > 0


@pytest.mark.parametrize(
    ("seed", "index", "size"),
    [(-1, 0, SIZE), (0, -1, SIZE), (0, 0, (32, 384))],
)
def test_invalid_arguments_are_rejected(seed: int, index: int, size: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        generate_scene(seed, index, size)


def test_unknown_label_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown demo label"):
        draw_garment("Hats", np.random.default_rng(0), SIZE)
