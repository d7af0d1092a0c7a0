"""benchmarks/scaled_voc.py on a tiny synthetic VOC folder: images, sizes and boxes scaled alike, the rest kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from benchmarks.scaled_voc import build_scaled_copy, scaled_copy_dir
from core.dataset.items import ImportItem
from core.formats import voc

XML = """<annotation>
  <folder>JPEGImages</folder>
  <filename>{name}</filename>
  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>
  <object>
    <name>Sunglasses</name><pose>Unspecified</pose><truncated>0</truncated><difficult>1</difficult>
    <bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox>
  </object>
</annotation>
"""


def make_voc(root: Path) -> None:
    """Two images: a plain 90x60 JPEG, and one stored 60x90 with EXIF orientation 6 (shown 90x60, upright)."""
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "labels.txt").write_text("Sunglasses\n")
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("b\n")
    Image.new("RGB", (90, 60), (200, 30, 30)).save(root / "JPEGImages" / "a.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    Image.new("RGB", (60, 90), (30, 30, 200)).save(root / "JPEGImages" / "b.jpg", quality=95, exif=exif)
    # VOC 1-based: pixels 10..40 x 4..34 -> xmin 11, ymin 5, xmax 40, ymax 34.
    for stem in ("a", "b"):
        (root / "Annotations" / f"{stem}.xml").write_text(
            XML.format(name=f"{stem}.jpg", w=90, h=60, x0=11, y0=5, x1=40, y1=34)
        )


def read_items(path: Path) -> dict[str, ImportItem]:
    return {i.image_name: i for i in voc.read(path) if isinstance(i, ImportItem)}


def test_scaled_copy_scales_images_sizes_and_boxes_alike(tmp_path: Path) -> None:
    source = tmp_path / "tiny-voc"
    make_voc(source)
    target = scaled_copy_dir(tmp_path / "data", source, 0.667)
    assert target.name == "tiny-voc-scaled-0.667"
    assert build_scaled_copy(source, target, 0.667) == target

    sx, sy = 60 / 90, 40 / 60  # round(90 * 0.667) = 60, round(60 * 0.667) = 40
    for name in ("a.jpg", "b.jpg"):
        with Image.open(target / "JPEGImages" / name) as im:
            assert im.size == (60, 40) and im.format == "JPEG"  # b: upright first, then scaled
    original, scaled = read_items(source), read_items(target)
    assert set(scaled) == {"a.jpg", "b.jpg"}
    for name, item in scaled.items():
        assert item.declared_size == (60, 40)
        assert item.split == original[name].split
        (label, box), ((_, before),) = item.objects[0], original[name].objects
        assert label == "Sunglasses"
        assert (box.x_min, box.y_min, box.x_max, box.y_max) == pytest.approx(
            (before.x_min * sx, before.y_min * sy, before.x_max * sx, before.y_max * sy), abs=0.005
        )
    text = (target / "Annotations" / "a.xml").read_text()
    assert "<difficult>1</difficult>" in text and "<pose>Unspecified</pose>" in text  # the rest kept
    assert (target / "labels.txt").read_text() == "Sunglasses\n"
    assert (target / "ImageSets" / "Main" / "test.txt").read_text() == "b\n"


def test_a_built_copy_is_reused_and_a_half_built_one_rebuilt(tmp_path: Path) -> None:
    source = tmp_path / "tiny-voc"
    make_voc(source)
    target = tmp_path / "data" / "copy"
    build_scaled_copy(source, target, 0.5)
    built = (target / "JPEGImages" / "a.jpg").stat().st_mtime_ns
    (target / "JPEGImages" / "a.jpg").touch()
    touched = (target / "JPEGImages" / "a.jpg").stat().st_mtime_ns
    build_scaled_copy(source, target, 0.5)
    assert (target / "JPEGImages" / "a.jpg").stat().st_mtime_ns == touched  # not rebuilt
    assert touched >= built

    (target / ".scaled-copy-complete").unlink()  # as if interrupted before the end
    (target / "stray.txt").write_text("left over")
    build_scaled_copy(source, target, 0.5)
    assert not (target / "stray.txt").exists() and (target / ".scaled-copy-complete").is_file()
    with Image.open(target / "JPEGImages" / "a.jpg") as im:
        assert im.size == (45, 30)


def test_missing_image_and_bad_scale_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "tiny-voc"
    make_voc(source)
    with pytest.raises(ValueError, match="positive"):
        build_scaled_copy(source, tmp_path / "out", 0)
    (source / "JPEGImages" / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="b.xml: image 'b.jpg'"):
        build_scaled_copy(source, tmp_path / "out", 0.5)
    assert not (tmp_path / "out").exists()
