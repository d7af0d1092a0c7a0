"""What ``python -m core`` tells a user about each file: every file that did not simply come in, named once."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", *args, "--data-dir", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _image(fmt: str, mode: str = "RGB", colour: object = (200, 40, 40), **save: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (40, 30), colour).save(buf, format=fmt, **save)  # type: ignore[arg-type]
    return buf.getvalue()


def _lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.endswith(" files")]  # progress lines aside


def test_import_images_names_duplicates_conversions_and_zip_entries(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    plain = _image("JPEG")
    (folder / "a.jpg").write_bytes(plain)
    (folder / "copy-of-a.jpg").write_bytes(plain)
    (folder / "cmyk.jpg").write_bytes(_image("JPEG", "CMYK", (0, 255, 255, 0)))
    exif = Image.Exif()
    exif[0x0112] = 6
    (folder / "rotated.jpg").write_bytes(_image("JPEG", colour=(10, 10, 200), exif=exif))
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    (folder / "anim.gif").write_bytes(buf.getvalue())
    with zipfile.ZipFile(folder / "mixed.zip", "w") as zf:
        zf.writestr("b.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
        zf.writestr("inner/ok.jpg", _image("JPEG", colour=(30, 200, 30)))
        zf.writestr("notes.txt", "hello")

    run = cli("import-images", str(folder), "--project", "Shop", "--create", data_dir=tmp_path / "data")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"imported": 5, "duplicate": 1, "failed": 1, "skipped": 1}
    lines = _lines(run.stderr)
    assert "duplicate: copy-of-a.jpg: same content as 'a.jpg'; not stored twice" in lines
    assert "imported: cmyk.jpg: CMYK converted to RGB" in lines
    assert "imported: rotated.jpg: EXIF orientation 6 applied" in lines
    assert any(line.startswith("imported: anim.gif: animated (2 frames): first frame used") for line in lines)
    assert any(line.startswith("failed: mixed.zip/b.jpg: ") for line in lines), lines
    assert "skipped: mixed.zip/notes.txt: not an image file type (.txt)" in lines
    # A plain import is not a message; every line names one file, once.
    assert not any("a.jpg" in line and line.startswith("imported") for line in lines)
    assert not any("ok.jpg" in line for line in lines)
    assert len(lines) == 6, lines


def test_voc_import_names_the_file_once(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "JPEGImages" / "a.jpg").write_bytes(_image("JPEG"))
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>40</width><height>30</height></size>"
        "<object><name>Shirts</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox>"
        "</object></annotation>"
    )
    (root / "Annotations" / "broken.xml").write_text("<annotation><filename>b.jpg</filename><object>")
    (root / "Annotations" / "other.xml").write_text("<svg/>")
    data = tmp_path / "data"
    images = cli("import-images", str(root / "JPEGImages"), "--project", "Shop", "--create", data_dir=data)
    assert images.returncode == 0, images.stderr

    run = cli("import", "voc", str(root), "--project", "Shop", data_dir=data)
    assert run.returncode == 0, run.stderr
    lines = [line for line in _lines(run.stderr) if line.startswith("failed:")]
    assert len(lines) == 2, run.stderr
    for line in lines:
        name = line.split(": ")[1]
        assert name in ("Annotations/broken.xml", "Annotations/other.xml")
        assert line.count("broken.xml") + line.count("other.xml") == 1, line
    assert any("malformed XML" in line for line in lines)
    assert any("not a Pascal VOC file" in line for line in lines)
