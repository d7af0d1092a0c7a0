"""``python -m core`` as a user runs it: a real subprocess on a real SQLite file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
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
    )


def test_import_images_then_stats(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        buf = io.BytesIO()
        Image.new("RGB", (50, 40), (i * 80, 10, 10)).save(buf, format="JPEG")
        (folder / f"p{i}.jpg").write_bytes(buf.getvalue())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    data = tmp_path / "data"

    run = cli("import-images", str(folder), "--project", "Shop", "--create", data_dir=data)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"imported": 3, "duplicate": 0, "failed": 1, "skipped": 0}
    assert "broken.jpg" in run.stderr

    stats = cli("stats", "--project", "Shop", data_dir=data)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["images"] == 3 and counts["images_by_status"]["new"] == 3
    assert list(counts["boxes_by_label"])[:2] == ["Jackets", "Jeans"]


def test_unknown_project_is_a_clear_error(tmp_path: Path) -> None:
    run = cli("stats", "--project", "Nope", data_dir=tmp_path / "data")
    assert run.returncode == 1
    assert "No project 'Nope'" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    run = cli("import-images", str(tmp_path / "absent"), "--project", "X", "--create", data_dir=tmp_path / "data")
    assert run.returncode == 1
    assert "does not exist" in run.stderr


def test_import_into_a_new_project_gets_only_the_datasets_labels(tmp_path: Path) -> None:
    from tests.core.dataset_factory import jpeg_bytes

    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    obj = "<object><name>{}</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>{}</xmax><ymax>20</ymax></bndbox></object>"
    for n, (name, objects) in enumerate(
        {"a": obj.format("Cat", 30), "b": obj.format("Dog", 30) + obj.format("cat", 1)}.items()
    ):
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(jpeg_bytes(64, 48, 300 + n))
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename>{objects}</annotation>"
        )
    data = tmp_path / "data"

    missing = cli("import", "voc", str(tmp_path / "absent"), "--project", "Pets", "--create", data_dir=data)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = cli("import", "voc", str(empty), "--project", "Pets", "--create", data_dir=data)
    assert nothing.returncode == 1 and "no .xml annotation files" in nothing.stderr
    assert "No project 'Pets'" in cli("stats", "--project", "Pets", data_dir=data).stderr  # refused: nothing made

    run = cli("import", "voc", str(root), "--project", "Pets", "--create", data_dir=data)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["imported"] == 2
    assert "1 image kept some boxes and lost others" in run.stderr  # b.xml's second box is inverted
    counts = json.loads(cli("stats", "--project", "Pets", data_dir=data).stdout)
    assert list(counts["boxes_by_label"]) == ["Cat", "Dog"]  # not the nine clothing labels
