"""The format registry: discovery, lists for the CLI and pages, lookups, and that listing stays light."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.formats import registry
from core.formats.registry import FormatSpec, Option, UnknownFormatError

ROOT = Path(__file__).resolve().parents[3]


def test_every_format_today_is_listed_in_the_pages_order() -> None:
    known_readers, known_writers = ["voc", "coco", "dataturks", "tfrecord"], ["tfrecord", "voc", "coco", "csv"]
    assert [f for f in registry.readers() if f in known_readers] == known_readers  # a new format may sit anywhere
    assert [f for f in registry.writers() if f in known_writers] == known_writers
    assert list(registry.readers())[0] == "voc" and list(registry.writers())[0] == "tfrecord"  # the pages' defaults
    assert "csv" not in registry.readers()  # export only
    assert "dataturks" not in registry.writers()  # import only


def test_specs_carry_what_the_pages_show() -> None:
    voc, coco, tfrecord = registry.get("voc"), registry.get("coco"), registry.get("tfrecord")
    assert voc.export_description == "Pascal VOC (LabelImg layout: Annotations, JPEGImages, ImageSets)"
    assert voc.import_description == "Pascal VOC (zip with Annotations/*.xml and the images)"
    assert voc.extensions == ("zip",)
    assert Option.IMAGES in coco.options and Option.IMAGES not in voc.options
    assert tfrecord.extensions == ("record", "tfrecord", "pbtxt")
    assert Option.LABEL_MAP in tfrecord.options
    for spec in registry.all_formats().values():
        assert spec.title and (spec.reader is None or (spec.import_description and spec.file_patterns))
        assert spec.writer is None or spec.export_description


def test_get_is_case_insensitive_and_names_the_known_formats() -> None:
    assert registry.get("VOC").name == "voc"
    with pytest.raises(UnknownFormatError, match="choose one of .*coco.*voc"):
        registry.get("pascal")


def test_a_spec_needs_a_reader_or_a_writer() -> None:
    with pytest.raises(ValueError, match="neither a reader nor a writer"):
        FormatSpec(name="nothing", title="Nothing")


def test_listing_formats_never_imports_tensorflow() -> None:
    code = (
        "import sys, core.formats.registry as r; r.all_formats(); r.readers(); r.writers(); "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_new_module_with_a_format_is_found_by_the_cli(tmp_path: Path) -> None:
    """Adding a format is one module: the CLI's choices pick it up with nothing else edited."""
    # A throwaway copy of the package path with one extra module: discovery walks core.formats.__path__.
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "toyfmt.py").write_text(
        textwrap.dedent(
            """
            from core.formats.registry import FormatSpec

            def write(ctx):
                return []

            FORMAT = FormatSpec(name="toy", title="Toy", writer=write, export_description="Toy files")
            """
        )
    )
    code = (
        "import sys, core.formats; core.formats.__path__.append(sys.argv[1]); "
        "from core.cli import main; main(['export', '--help'])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(extra)], cwd=ROOT, capture_output=True, text=True)
    choices = out.stdout.split("{", 1)[1].split("}", 1)[0].split(",")
    assert choices[:2] == ["tfrecord", "voc"] and choices[-1] == "toy", out.stdout + out.stderr


def test_the_orchestrators_refuse_unknown_formats_naming_the_known_ones(engine, settings, project_id, tmp_path) -> None:
    from core.dataset.exporter import ExportError, export_dataset
    from core.dataset.importer import AnnotationImportError, read_items

    with pytest.raises(ExportError, match="Unknown export format 'pascal'; choose one of tfrecord, voc, coco, .*csv"):
        export_dataset(engine, settings, project_id, "pascal", tmp_path / "out")
    with pytest.raises(
        AnnotationImportError, match="Unknown import format 'pascal'; choose one of voc, coco, .*dataturks, .*tfrecord"
    ):
        read_items("pascal", tmp_path)
