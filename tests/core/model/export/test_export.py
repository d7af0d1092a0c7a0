"""Deployment exports of a tiny trained detector: every format, run without Tagrack, compared with Keras.

One tiny model (96x128 inputs, MobileNetV2 alpha 0.35, random weights, 12 epochs of 9 scenes) is trained
on a small demo project and exported to every format once per module (the onnx export through the CLI);
the suite runs on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine, select

from core.boxes import Box
from core.cli import main as cli_main
from core.database import open_database
from core.demo import DEMO_LABELS
from core.demo.project import create_demo_project
from core.jobs import create_job, run_job
from core.model.export.formats import FORMATS, ExportError
from core.model.export.job import export_model_version, exports_of, zip_path
from core.model.metrics.iou import as_array, iou_matrix
from core.model.training import JOB_KIND as TRAIN_KIND
from core.model.training import model_file, train_params
from core.project.splits import assign_splits
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, Job, JobStatus, ModelExport, ModelVersion, Split

TINY = {
    "image_height": 96,
    "image_width": 128,
    "alpha": 0.35,
    "weights": "none",
    "batch_size": 4,
    "epochs": 12,  # enough to fit the 9 training scenes: int8 has real peaks to keep, not just noise
    "eval_every": 100,
    "score_threshold": 0.0,  # keep every box so there is always something to compare
}

# Checks a script's run imports no Tagrack code: its folder is not the repository, and neither
# `core` nor `db` can be found.
NO_TAGRACK = (
    "import importlib.util, runpy, sys\n"
    "assert importlib.util.find_spec('core') is None and importlib.util.find_spec('db') is None, 'Tagrack importable'\n"
    "sys.argv = ['example.py', sys.argv[1]]\n"
    "runpy.run_path('example.py', run_name='__main__')\n"
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int, dict[str, ModelExport]]:
    """A demo project, a tiny model version trained on it, exported to every format."""
    root = tmp_path_factory.mktemp("export")
    settings = Settings.resolve(db_url=f"sqlite:///{root / 'tagrack.db'}", data_dir=root / "data")
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, name="Demo", count=36)
    with session_scope(engine) as session:
        # About 9 labelled scenes to train on and 15 to check the exports on: with 4 test images (an
        # earlier layout) the SavedModel's mAP differed from Keras' by +0.009 and -0.008 in two runs of
        # this barely trained model (mAP ~0.02), past the 0.005 bound; on the benchmarks' 24 and 200
        # test images it stays within 0.0002.
        assign_splits(session, pid, (0.35, 0.0, 0.65))
    with session_scope(engine) as session:
        job_id = create_job(session, TRAIN_KIND, train_params(pid, **TINY), pid).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        version_id = int(job.result["model_version_id"])
    cache: dict = {}  # the Keras model's test-split detections, computed once for the four checks here
    for name in FORMATS:
        if name != "onnx":
            export_model_version(engine, settings, version_id, name, keras_cache=cache)
    out = root / "cli" / "detector-onnx.zip"
    argv = ["export-model", "--db", settings.db_url, "--data-dir", str(settings.data_dir)]
    assert cli_main([*argv, "--model-version", str(version_id), "--format", "onnx", str(out)]) == 0
    assert zipfile.is_zipfile(out)
    with session_scope(engine) as session:
        rows = {r.format: r for r in exports_of(session, version_id)}
        session.expunge_all()
    engine.dispose()
    return settings, version_id, rows


@pytest.fixture(scope="module")
def demo_image(exported: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float, Box]]]:
    """A training scene of the demo project (the tiny model knows it well) and the Keras model's boxes on it."""
    from core.model.detector.predict import Detector

    settings, version_id, _ = exported
    engine = open_database(settings)
    with session_scope(engine) as session:
        path = model_file(settings, session.get(ModelVersion, version_id))
        stored = session.scalars(select(Image.stored_path).where(Image.split == Split.TRAIN).order_by(Image.id)).first()
    engine.dispose()
    target = tmp_path_factory.mktemp("demo-image") / ("demo" + Path(stored).suffix)
    shutil.copyfile(settings.data_dir / stored, target)
    with PILImage.open(target) as im:
        dets = Detector.load(path).predict([im.convert("RGB")])[0]
    return target, [(d.label, d.score, d.box) for d in dets]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_zip_runs_without_tagrack_and_agrees_with_keras(
    exported: Any, demo_image: Any, fmt: str, tmp_path: Path
) -> None:
    settings, _, rows = exported
    image, ours = demo_image
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path(settings, rows[fmt])) as zf:
        names = set(zf.namelist())
        zf.extractall(folder)
    assert {"labels.txt", "label_map.pbtxt", "README.md", "example.py", "check.json"} <= names
    assert len((folder / "example.py").read_text(encoding="utf-8").splitlines()) <= 35
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "score" in readme and "Input" in readme and "Outputs" in readme
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    run = subprocess.run(
        [sys.executable, "-c", NO_TAGRACK, str(image)], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert ours and found
    assert all(0.0 <= d["score"] <= 1.0 and d["label"] in DEMO_LABELS for d in found)
    with PILImage.open(image) as im:
        width, height = im.size
    assert all(0 <= d["box"][0] < d["box"][2] <= width and 0 <= d["box"][1] < d["box"][3] <= height for d in found)
    if fmt == "tflite-int8":
        # This tiny model scores every box near its prior (~0.01-0.2); int8 keeps its boxes well-formed
        # but not their order. Its agreement is measured on real models (docs/benchmarks.md).
        return
    # The Keras model's five most confident boxes each have a same-class box from the artefact on top.
    for label, _, box in sorted(ours, key=lambda d: -d[1])[:5]:
        same = [Box(*d["box"]) for d in found if d["label"] == label]
        assert same, (fmt, label)
        assert iou_matrix(as_array([box]), as_array(same)).max() >= 0.9, (fmt, label, box)


def test_check_figures_are_stored_and_within_bounds(exported: Any) -> None:
    settings, _, rows = exported
    assert set(rows) == set(FORMATS)
    for fmt, row in rows.items():
        check = row.check_result
        assert row.size_bytes == zip_path(settings, row).stat().st_size
        assert check["images"] > 0 and check["format"] == fmt
        assert 0.0 <= check["map50_keras"] <= 1.0 and 0.0 <= check["map50_export"] <= 1.0
        assert check["map50_delta"] == pytest.approx(check["map50_export"] - check["map50_keras"], abs=2e-4)
        if fmt == "tflite-int8":
            # A tiny model trained on 9 scenes: its int8 copy is compared, not held to the bound here
            # (docs/benchmarks.md holds it to the bound on real models).
            continue
        if fmt != "savedmodel":
            assert check["passed"] and abs(check["map50_delta"]) <= check["map50_bound"], (fmt, check)
        # The SavedModel decodes and letterboxes the JPEG in its own graph, so a pixel or two differs from
        # Pillow's; on this near-random tiny model (mAP about 0.02) that flips near-tied boxes and moved its
        # mAP by up to 0.016 in CI. Its agreement is held below; its mAP bound on a trained model in
        # benchmarks/export_model.py (ccp-detection: +0.0001, docs/benchmarks.md).
        # matched_iou is None when the tiny model scores no box over the display threshold.
        assert check["matched_iou"] is None or check["matched_iou"] >= 0.9, (fmt, check)
        assert check["top_class_agreement"] >= 0.75, (fmt, check)


def test_int8_model_computes_in_int8(exported: Any, tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    settings, _, rows = exported
    with zipfile.ZipFile(zip_path(settings, rows["tflite-int8"])) as zf:
        zf.extract("model.tflite", tmp_path)
    interpreter = Interpreter(model_path=str(tmp_path / "model.tflite"))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert convs
    for op in convs:
        activation, weights = op["inputs"][0], op["inputs"][1]
        assert tensors[weights]["dtype"] == __import__("numpy").int8, op
        assert tensors[activation]["dtype"] == __import__("numpy").int8, op
    assert interpreter.get_input_details()[0]["dtype"] == __import__("numpy").uint8
    # The post-processing (ops of the export wrapper itself, not of the Keras detector inside it:
    # "fixed_size_detector/<op>") stays float32: quantised, the decoded boxes' SPLIT had a step of
    # 41 pixels and the scores steps of 1/256 on the ccp-detection model.
    post = re.compile(r"^fixed_size_detector[_0-9]*/[^/]+$")
    quantised_post = [
        t["name"]
        for t in tensors.values()
        if t["dtype"] == __import__("numpy").int8 and any(post.match(part) for part in t["name"].split(";"))
    ]
    assert not quantised_post
    # The float file is about four times larger.
    assert rows["tflite-int8"].size_bytes < rows["tflite-fp32"].size_bytes / 2.5


def _constant_shapes(path: Path) -> list[tuple[int, ...]]:
    """Shapes of the tensors stored with data in a TFLite or ONNX file (its constants)."""
    if path.suffix == ".onnx":
        import onnx

        graph = onnx.load(str(path)).graph
        shapes = [tuple(t.dims) for t in graph.initializer]
        for node in graph.node:
            shapes += [tuple(a.t.dims) for a in node.attribute if a.name == "value" and a.type == a.TENSOR]
        return shapes
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    buffers = model.buffers
    return [
        tuple(int(d) for d in t.shape)
        for g in model.subgraphs
        for t in g.tensors
        if buffers[t.buffer].data is not None and len(buffers[t.buffer].data) > 0
    ]


@pytest.fixture(scope="module")
def anchor_count(exported: Any) -> int:
    """How many anchors the tiny model has at its input size (loaded once for the four formats)."""
    import keras

    from core.model.detector.predict import Detector

    settings, version_id, _ = exported
    engine = open_database(settings)
    with session_scope(engine) as session:
        model = Detector.load(model_file(settings, session.get(ModelVersion, version_id))).model
    engine.dispose()
    spec_images = keras.ops.zeros((1, TINY["image_height"], TINY["image_width"], 3))
    return sum(int(a.shape[0]) for a in model.anchor_generator(spec_images).values())


@pytest.mark.parametrize("fmt", ["tflite-fp32", "tflite-fp16", "tflite-int8", "onnx"])
def test_anchors_are_built_in_the_graph_not_stored(exported: Any, anchor_count: int, fmt: str, tmp_path: Path) -> None:
    settings, _, rows = exported
    count = anchor_count
    with zipfile.ZipFile(zip_path(settings, rows[fmt])) as zf:
        name = next(n for n in zf.namelist() if n.endswith((".tflite", ".onnx")))
        zf.extract(name, tmp_path)
    shapes = _constant_shapes(tmp_path / name)
    assert shapes  # the weights are constants: the reader saw them
    # No constant holds one row per anchor (the anchors, or any table derived from them).
    assert not [s for s in shapes if count in s], (count, sorted({s for s in shapes if count in s}))


def _broken_version(settings: Settings, version_id: int, how: str) -> tuple[Engine, int]:
    engine = open_database(settings)
    with session_scope(engine) as session:
        good = session.get(ModelVersion, version_id)
        source = model_file(settings, good)
        folder = settings.data_dir / "models" / f"broken-{how}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source.parent / "detector.json", folder / "detector.json")
        if how == "truncated":
            (folder / "model.keras").write_bytes(source.read_bytes()[: source.stat().st_size // 3])
        broken = ModelVersion(
            project_id=good.project_id, name=f"broken {how}", path=str(folder / "model.keras"), params=good.params
        )
        session.add(broken)
        session.flush()
        return engine, broken.id


def test_a_version_with_test_time_flip_is_checked_against_keras_single_pass(exported: Any) -> None:
    # The exported file is the single pass; Tagrack's own predictions of such a version also fuse the
    # mirrored image's boxes. The check must compare like with like: the same figures as without flip.
    settings, version_id, rows = exported
    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            plain = session.get(ModelVersion, version_id)
            source = model_file(settings, plain)
            folder = source.parent.with_name(source.parent.name + "-flip")
            shutil.copytree(source.parent, folder)
            spec = json.loads((folder / "detector.json").read_text(encoding="utf-8"))
            (folder / "detector.json").write_text(json.dumps({**spec, "test_time_flip": True}), encoding="utf-8")
            flipped = ModelVersion(
                project_id=plain.project_id,
                name="with flip",
                path=str(folder / source.name),
                params={**plain.params, "test_time_flip": True},
            )
            session.add(flipped)
            session.flush()
            flipped_id = flipped.id
        done = export_model_version(engine, settings, flipped_id, "tflite-fp32")
        check = done["check"]
        with zipfile.ZipFile(done["zip"]) as zf:
            assert "## Test-time flip" in zf.read("README.md").decode("utf-8")
    finally:
        engine.dispose()
    before = rows["tflite-fp32"].check_result
    keys = ("map50_keras", "map50_export", "matched_iou", "top_class_agreement")
    assert {k: check[k] for k in keys} == {k: before[k] for k in keys}


@pytest.mark.parametrize(("how", "words"), [("missing", "is missing"), ("truncated", "damaged or truncated")])
def test_missing_or_truncated_weights_get_a_clear_error(exported: Any, how: str, words: str) -> None:
    settings, version_id, _ = exported
    engine, broken = _broken_version(settings, version_id, how)
    try:
        with pytest.raises(ExportError, match=words) as info:
            export_model_version(engine, settings, broken, "tflite-fp32")
        assert f"#{broken}" in str(info.value) and "model.keras" in str(info.value)
        with session_scope(engine) as session:
            assert exports_of(session, broken) == []
    finally:
        engine.dispose()


def test_cli_refuses_unknown_version_with_a_message(exported: Any, tmp_path: Path, capsys: Any) -> None:
    settings, _, _ = exported
    argv = ["export-model", "--db", settings.db_url, "--data-dir", str(settings.data_dir)]
    assert cli_main([*argv, "--model-version", "999", "--format", "onnx", str(tmp_path / "x.zip")]) == 1
    assert "No model version #999" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()
