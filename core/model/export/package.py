"""The deployment zip: the model, labels.txt, label_map.pbtxt, a README and an example script.

The example scripts are real files beside this module (``examples/<runtime>_example.py``,
copied into the zip as ``example.py``), so they are linted and run by the tests like any code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from core.formats.label_map import format_label_map
from core.model.detector.flip_tta import FUSE_IOU
from core.model.detector.model import DetectorSpec
from core.model.export.detector_graph import CANDIDATES
from core.model.export.formats import DeployFormat

EXAMPLES = Path(__file__).parent / "examples"


def example_script(fmt: DeployFormat) -> Path:
    """The example script shipped with ``fmt``."""
    name = {"savedmodel": "savedmodel", "onnx": "onnx"}.get(fmt.name, "tflite")
    return EXAMPLES / f"{name}_example.py"


def _fixed_size_section(fmt: DeployFormat, spec: DetectorSpec) -> str:
    h, w = spec.image_height, spec.image_width
    inner = {
        "tflite-fp32": "All tensors float32.",
        "tflite-fp16": "Weights stored as float16 (half the file), computed in float32 by default.",
        "tflite-int8": (
            "Full-integer quantisation: weights and activations of the network are int8, calibrated on up to "
            "300 of the project's training images; the box decoding and NMS after the heads stay float32 "
            "(quantised, box coordinates would move by several pixels). Fastest on CPUs."
        ),
        "onnx": "Exported through Keras' own ONNX exporter (tf2onnx); float32.",
    }[fmt.name]
    return f"""## Input

`images`: uint8, shape `[1, {h}, {w}, 3]`, RGB, pixel values 0-255 (no normalisation: the graph does it).

The image must be **letterboxed** exactly as in training: for an image of `h` x `w` pixels,
`s = min({h} / h, {w} / w)`; resize it to `round(w * s)` x `round(h * s)` (bilinear) and paste it at
the top-left corner of a black `{w}` x `{h}` canvas (pad bottom and right with 0).

## Outputs

| name | shape | meaning |
|---|---|---|
| `boxes` | `[1, {spec.max_detections}, 4]` float32 | `[y_min, x_min, y_max, x_max]` as fractions of the **model input** ({h} x {w}), clipped to [0, 1] |
| `scores` | `[1, {spec.max_detections}]` float32 | confidence in [0, 1] |
| `classes` | `[1, {spec.max_detections}]` float32 | class index into `labels.txt` (0-based; `label_map.pbtxt` ids are index + 1); -1 for padding rows |
| `num_detections` | `[1]` float32 | how many rows are valid (the rest is padding) |

Undo the letterbox to get **original-image pixels**:
`x = x_norm * {w} / s`, `y = y_norm * {h} / s`, then clip to `[0, w]` and `[0, h]`.

{inner}
"""


def _savedmodel_section(spec: DetectorSpec) -> str:
    n = spec.max_detections
    return f"""## Input

Signature `serve`, input `image_bytes`: a 1-D string tensor of encoded JPEG or PNG files, any size
(`tf.constant([open(path, "rb").read()])`). Decoding, the letterbox resize to {spec.image_width} x
{spec.image_height} and the normalisation run inside the graph.

## Outputs (per image, padded to {n} rows)

| name | shape | meaning |
|---|---|---|
| `boxes` | `[B, {n}, 4]` float32 | `[x_min, y_min, x_max, y_max]` in **the image's own pixels** (letterbox already undone, clipped) |
| `scores` | `[B, {n}]` float32 | confidence in [0, 1] |
| `classes` | `[B, {n}]` int32 | class index into `labels.txt` (0-based); -1 for padding rows |
| `class_names` | `[B, {n}]` string | class name ("" for padding rows) |
| `num_detections` | `[B]` int32 | how many rows are valid |

Runs with plain `tensorflow` (no Tagrack, no keras-hub): `tf.saved_model.load(...)`, or TensorFlow Serving.
"""


def readme(fmt: DeployFormat, spec: DetectorSpec, version_name: str, version_id: int, check: dict[str, Any]) -> str:
    """The zip's README.md."""
    body = _savedmodel_section(spec) if fmt.name == "savedmodel" else _fixed_size_section(fmt, spec)
    delta = check["map50_delta"]
    verdict = "within" if check["passed"] else "OUTSIDE"
    return f"""# {version_name} (model version #{version_id}): {fmt.title}

A RetinaNet garment detector (MobileNetV2 backbone) trained in Tagrack, with its post-processing
(anchor decoding and per-class non-max suppression) inside the model: what comes out are final boxes.

Classes ({spec.num_classes}): {", ".join(spec.class_names)}. `labels.txt` lists them one per line in
class-index order; `label_map.pbtxt` is the same list for the TensorFlow Object Detection API (ids from 1).

Run `python example.py IMAGE` (needs `pip install {fmt.runtime}{"" if fmt.name == "savedmodel" else " pillow"}`):
it prints the boxes as JSON, in the image's pixels.

{body}
## Post-processing and score threshold

Per-class non-max suppression: the {CANDIDATES} best (anchor, class) pairs are candidates; within each class a box
overlapping a higher-scoring one at IoU > {spec.iou_threshold} is dropped. Boxes scoring under
**{spec.score_threshold}** are not returned (a low threshold, so that mAP sees the whole precision-recall
curve); for display, a threshold of about 0.3 to 0.5 is usual (`python example.py IMAGE 0.4`). At most
{spec.max_detections} boxes per image.

## Checked against the Keras model

On the project's {check["images"]} test images, in this format's own runtime: mAP@0.5 {check["map50_export"]}
against {check["map50_keras"]} for the Keras model (difference {delta:+.4f}, {verdict} the bound of
{check["map50_bound"]}); matched-box IoU {check["matched_iou"]} ({check["matched_share"]} of the Keras boxes
scoring >= {check["display_threshold"]} have a same-class box at IoU >= 0.5); top-class agreement
{check["top_class_agreement"]}. `check.json` holds the figures.
{_flip_note(spec)}"""


def _flip_note(spec: DetectorSpec) -> str:
    if not spec.test_time_flip:
        return ""
    return f"""
## Test-time flip

This version predicts with test-time flip inside Tagrack: it also runs on the mirrored image and fuses
the two sets of boxes. This file is the single pass (the check above compares it with the Keras model's
single pass); to do the same, run it on the image and on its mirror, mirror the second set's boxes
back, and fuse the two per class with weighted box fusion at IoU {FUSE_IOU} (the `ensemble-boxes` package's
`weighted_boxes_fusion` with `conf_type="avg"` does the same).
"""


def write_zip(
    zip_path: Path,
    artefact: Path,
    fmt: DeployFormat,
    spec: DetectorSpec,
    version_name: str,
    version_id: int,
    check: dict[str, Any],
) -> Path:
    """Writes the deployment zip (written beside, then renamed: never a half zip under the final name)."""
    zip_path = Path(zip_path)
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        if artefact.is_dir():
            for p in sorted(artefact.rglob("*")):
                if p.is_file():
                    zf.write(p, f"{fmt.model_name}/{p.relative_to(artefact).as_posix()}")
        else:
            zf.write(artefact, fmt.model_name)
        zf.writestr("labels.txt", "".join(f"{name}\n" for name in spec.class_names))
        zf.writestr("label_map.pbtxt", format_label_map(spec.class_names))
        zf.writestr("README.md", readme(fmt, spec, version_name, version_id, check))
        zf.writestr("check.json", json.dumps(check, indent=2))
        zf.write(example_script(fmt), "example.py")
    partial.replace(zip_path)
    return zip_path
