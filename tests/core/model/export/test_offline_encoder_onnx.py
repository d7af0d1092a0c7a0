"""ONNX export of a detector on the offline-ImageNet encoder (the default for real photos).

That encoder starts with torchvision's mean/std ``Normalization`` (``torchvision_preprocess``); its
two constants once became extra graph inputs of the ONNX file and onnxruntime refused to run it.
The demo encoder (``Rescaling``) never showed it, so this builds the offline-weights architecture
itself (the same ``build_detector`` code path, random weights instead of the prepared file, a
64x64 input to stay small) and runs its ONNX file in a fresh interpreter that imports no Tagrack code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.model.detector.model import OFFLINE_IMAGENET, DetectorSpec, build_detector
from core.model.export.detector import write_artefact
from core.model.export.detector_graph import FixedSizeDetector
from core.model.export.formats import deploy_format

RUN_ONNX = (
    "import importlib.util, sys\n"
    "import numpy as np, onnxruntime as ort\n"
    "assert importlib.util.find_spec('core') is None and importlib.util.find_spec('db') is None, 'Tagrack importable'\n"
    "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
    "print('inputs', [i.name for i in s.get_inputs()])\n"
    "x = np.load(sys.argv[2])\n"
    "names = [o.name for o in s.get_outputs()]\n"
    "np.savez(sys.argv[3], **dict(zip(names, s.run(names, {s.get_inputs()[0].name: x}))))\n"
)


def test_offline_encoder_detector_runs_in_onnxruntime(tmp_path: Path) -> None:
    # score_threshold 0: random weights score every anchor near the focal prior (0.01), under the
    # default floor of 0.05, so whether any box came out depended on the weights drawn (CI saw none).
    spec = DetectorSpec(
        class_names=("Shirt", "Shoes"), image_height=64, image_width=64, weights=OFFLINE_IMAGENET, score_threshold=0.0
    )
    model = build_detector(spec, load_weights=False)  # the torchvision flavour, random weights
    assert model.backbone.image_encoder.get_layer("torchvision_preprocess") is not None
    path = write_artefact(model, spec, deploy_format("onnx"), tmp_path / "onnx")
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", image)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-c", RUN_ONNX, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npz")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "inputs ['images']" in run.stdout  # the normalisation constants are in the graph, not inputs
    found = np.load(tmp_path / "y.npz")
    ours = {k: np.asarray(v) for k, v in FixedSizeDetector(model, spec)(image).items()}
    assert int(found["num_detections"][0]) == int(ours["num_detections"][0]) > 0
    # Random weights score every anchor near the same prior: compare the sorted scores, not the order.
    np.testing.assert_allclose(np.sort(found["scores"][0]), np.sort(ours["scores"][0]), atol=1e-4)
    assert found["boxes"].shape == ours["boxes"].shape == (1, spec.max_detections, 4)
