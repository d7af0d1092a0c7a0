"""Ingest: every bad input gets its message, the good files in the same batch are kept."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine, func, select

from core.project.decode import decode_image
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_sources, sources_from_paths, sources_from_uploads
from core.settings import Settings
from db.engine import session_scope
from db.models import Image as ImageRow

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def jpeg(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30), **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", **save)
    return buf.getvalue()


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def run(engine: Engine, settings: Settings, project_id: int, files: list[tuple[str, bytes]]):
    return ingest_sources(engine, settings.data_dir, project_id, sources_from_uploads(files))


def by_name(report) -> dict[str, object]:
    return {o.name: o for o in report.outcomes}


def image_count(engine: Engine, project_id: int) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(ImageRow).where(ImageRow.project_id == project_id))


def test_good_files_are_stored_with_size_and_display_copy(engine, settings, project_id) -> None:
    big = jpeg((3000, 2000))
    report = run(engine, settings, project_id, [("small.jpg", jpeg()), ("big.jpg", big)])
    assert report.summary()["imported"] == 2
    store = ImageStore(settings.data_dir)
    with session_scope(engine) as session:
        rows = {r.original_name: r for r in session.scalars(select(ImageRow))}
    assert (rows["big.jpg"].width, rows["big.jpg"].height) == (3000, 2000)
    assert store.read_bytes(rows["big.jpg"].stored_path) == big  # original JPEG kept byte for byte
    with store.open(rows["big.jpg"].display_path) as display:
        assert max(display.size) == 1280
    assert rows["small.jpg"].status.value == "new"


def test_bad_inputs_each_get_a_message_and_the_good_files_are_kept(engine, settings, project_id) -> None:
    good = jpeg()
    truncated = jpeg((400, 300), quality=95)[:-800]
    bomb = io.BytesIO()
    Image.new("1", (9500, 9500)).save(bomb, format="PNG")  # 90 MP in a few kB
    files = [
        ("good.jpg", good),
        ("empty.jpg", b""),
        ("truncated.jpg", truncated),
        ("notes.jpg", b"this is a text file, not a photo\n" * 10),
        ("bomb.png", bomb.getvalue()),
        ("good2.jpg", jpeg(colour=(1, 2, 3))),
    ]
    report = by_name(run(engine, settings, project_id, files))
    assert report["good.jpg"].outcome == "imported"
    assert report["good2.jpg"].outcome == "imported"
    assert report["empty.jpg"].outcome == "failed" and "empty file" in report["empty.jpg"].message
    assert report["truncated.jpg"].outcome == "failed" and "truncated" in report["truncated.jpg"].message
    assert report["notes.jpg"].outcome == "failed" and "not an image" in report["notes.jpg"].message
    assert report["bomb.png"].outcome == "failed" and "decompression bomb" in report["bomb.png"].message
    assert image_count(engine, project_id) == 2


def test_duplicates_are_reported_not_stored_twice(engine, settings, project_id) -> None:
    data = jpeg()
    first = run(engine, settings, project_id, [("a.jpg", data), ("copy-of-a.jpg", data)])
    assert [o.outcome for o in first.outcomes] == ["imported", "duplicate"]
    assert "'a.jpg'" in first.outcomes[1].message
    again = run(engine, settings, project_id, [("a.jpg", data)])
    assert again.outcomes[0].outcome == "duplicate"
    assert image_count(engine, project_id) == 1
    blobs = list((settings.data_dir / "blobs" / "originals").rglob("*.jpg"))
    assert len(blobs) == 1


def test_exif_orientation_is_applied(engine, settings, project_id) -> None:
    # A 60x20 landscape picture, left half red, stored with orientation 6 ("rotate 90 CW to view").
    im = Image.new("RGB", (60, 20), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 30, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=95)
    decoded = decode_image(buf.getvalue())
    assert decoded.image.size == (20, 60)
    top = np.asarray(decoded.image)[5, 10]
    assert top[0] > 200 and top[2] < 60, "red half must be on top after a 90 degree clockwise turn"
    assert any("orientation 6" in n for n in decoded.notes)
    report = run(engine, settings, project_id, [("rotated.jpg", buf.getvalue())])
    with session_scope(engine) as session:
        row = session.get(ImageRow, report.outcomes[0].image_id)
        assert (row.width, row.height) == (20, 60)


@pytest.mark.parametrize(
    ("name", "make", "note"),
    [
        ("cmyk.jpg", lambda: _save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"), "CMYK"),
        ("deep.png", lambda: png(Image.fromarray(np.full((32, 32), 40000, np.uint16))), "16-bit"),
        ("palette.png", lambda: png(Image.new("RGB", (32, 32), (9, 200, 9)).convert("P")), "palette"),
        ("alpha.png", lambda: png(Image.new("RGBA", (32, 32), (255, 0, 0, 0))), "transparency"),
    ],
)
def test_unusual_modes_are_converted_to_rgb(engine, settings, project_id, name, make, note) -> None:
    report = run(engine, settings, project_id, [(name, make())])
    outcome = report.outcomes[0]
    assert outcome.outcome == "imported", outcome.message
    assert note in outcome.message
    with session_scope(engine) as session:
        row = session.get(ImageRow, outcome.image_id)
        with ImageStore(settings.data_dir).open(row.stored_path) as stored:
            assert stored.mode == "RGB"
            pixel = stored.getpixel((5, 5))
    if name == "alpha.png":
        assert pixel == (255, 255, 255)  # transparent pixels become white, not black
    if name == "deep.png":
        assert abs(pixel[0] - round(40000 / 65535 * 255)) <= 1  # scaled, not clipped


def _save(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def test_animated_gif_uses_first_frame(engine, settings, project_id) -> None:
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    outcome = run(engine, settings, project_id, [("anim.gif", buf.getvalue())]).outcomes[0]
    assert outcome.outcome == "imported"
    assert "first frame" in outcome.message
    with session_scope(engine) as session:
        row = session.get(ImageRow, outcome.image_id)
        with ImageStore(settings.data_dir).open(row.stored_path) as stored:
            r, g, b = stored.convert("RGB").getpixel((5, 5))
    assert r > 200 and g < 50


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_hostile_zip_entries_are_refused_and_the_rest_imported(engine, settings, project_id, tmp_path) -> None:
    archive = _zip(
        {
            "photos/ok.jpg": jpeg(),
            "../escape.jpg": jpeg(colour=(5, 5, 5)),
            "/etc/absolute.jpg": jpeg(colour=(6, 6, 6)),
            "photos/inner.zip": _zip({"x.jpg": jpeg(colour=(7, 7, 7))}),
            "photos/readme.txt": b"hello",
            "__MACOSX/photos/._ok.jpg": b"junk",
        }
    )
    report = by_name(run(engine, settings, project_id, [("upload.zip", archive)]))
    assert report["upload.zip/photos/ok.jpg"].outcome == "imported"
    assert report["upload.zip/photos/ok.jpg"].stored_name == "photos/ok.jpg"
    assert "leaves the archive" in report["upload.zip/../escape.jpg"].message
    assert "absolute" in report["upload.zip//etc/absolute.jpg"].message
    assert "nested archives" in report["upload.zip/photos/inner.zip"].message
    assert report["upload.zip/photos/readme.txt"].outcome == "skipped"
    assert image_count(engine, project_id) == 1
    # Nothing was written outside the data folder.
    assert not (settings.data_dir.parent / "escape.jpg").exists()


def test_zip_bomb_entry_is_refused(engine, settings, project_id) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.jpg", b"\0" * 50_000_000)
    report = run(engine, settings, project_id, [("b.zip", buf.getvalue())])
    assert report.outcomes[0].outcome == "failed"
    assert "zip bomb" in report.outcomes[0].message


def test_corrupt_zip_is_reported(engine, settings, project_id) -> None:
    report = run(engine, settings, project_id, [("broken.zip", b"PK\x03\x04 not really"), ("fine.jpg", jpeg())])
    outcomes = by_name(report)
    assert outcomes["broken.zip"].outcome == "failed" and "zip" in outcomes["broken.zip"].message
    assert outcomes["fine.jpg"].outcome == "imported"


def test_names_that_clash_are_kept_apart(engine, settings, project_id) -> None:
    report = run(
        engine, settings, project_id, [("shirt.jpg", jpeg(colour=(1, 1, 1))), ("shirt.jpg", jpeg(colour=(90, 1, 1)))]
    )
    assert [o.outcome for o in report.outcomes] == ["imported", "imported"]
    assert [o.name for o in report.outcomes] == ["shirt.jpg", "shirt.jpg"]  # as the user named them
    assert report.outcomes[1].stored_name == "shirt (2).jpg"
    assert "already used" in report.outcomes[1].message
    later = run(engine, settings, project_id, [("shirt.jpg", jpeg(colour=(1, 90, 1)))])
    assert later.outcomes[0].stored_name == "shirt (3).jpg"


def test_folder_import_walks_subfolders_and_zips(engine, settings, project_id, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(jpeg(colour=(10, 10, 10)))
    (folder / "sub" / "b.png").write_bytes(png(Image.new("RGB", (8, 8), (20, 20, 20))))
    (folder / "sub" / "pack.zip").write_bytes(_zip({"c.jpg": jpeg(colour=(30, 30, 30))}))
    (folder / "notes.txt").write_text("not an image")
    report = ingest_sources(engine, settings.data_dir, project_id, sources_from_paths([folder]))
    assert report.summary() == {"imported": 3, "duplicate": 0, "failed": 0, "skipped": 1}
    imported = [o for o in report.outcomes if o.outcome == "imported"]
    assert sorted(o.name for o in imported) == ["a.jpg", "sub/b.png", "sub/pack.zip/c.jpg"]
    assert sorted(o.stored_name for o in imported) == ["a.jpg", "c.jpg", "sub/b.png"]


def test_zip_entry_outcomes_keep_the_archive_name(engine, settings, project_id) -> None:
    """Every message about a zip entry names it ``archive.zip/entry``, whatever happened to it."""
    cmyk = io.BytesIO()
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(cmyk, format="JPEG")
    archive = _zip(
        {
            "a.jpg": jpeg(colour=(11, 11, 11)),
            "b.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
            "again.jpg": jpeg(colour=(11, 11, 11)),
            "shop/cmyk.jpg": cmyk.getvalue(),
        }
    )
    report = by_name(run(engine, settings, project_id, [("mixed.zip", archive)]))
    assert set(report) == {"mixed.zip/a.jpg", "mixed.zip/b.jpg", "mixed.zip/again.jpg", "mixed.zip/shop/cmyk.jpg"}
    assert report["mixed.zip/b.jpg"].outcome == "failed"
    assert report["mixed.zip/again.jpg"].outcome == "duplicate" and "'a.jpg'" in report["mixed.zip/again.jpg"].message
    assert report["mixed.zip/shop/cmyk.jpg"].outcome == "imported"
    assert report["mixed.zip/shop/cmyk.jpg"].stored_name == "shop/cmyk.jpg"
    assert "CMYK" in report["mixed.zip/shop/cmyk.jpg"].message
