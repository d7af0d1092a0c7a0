"""Detector exports: writing each deployment format and running it in its own runtime.

:func:`write_artefact` makes the model file of one format from a loaded Keras detector
(graphs in :mod:`core.model.export.detector_graph`); :func:`load_runner` opens a written
artefact in the runtime a user would use (``tensorflow`` for the SavedModel,
``ai-edge-litert`` for TFLite, ``onnxruntime`` for ONNX) and returns detections in
original-image pixels, so the check compares like with like against
:class:`core.model.detector.predict.Detector`.

The fixed-size formats (TFLite, ONNX) take the letterboxed image as uint8 RGB: the caller
resizes keeping the aspect ratio and pads bottom/right with black, exactly as training did
(:func:`core.model.detector.data.letterbox`); boxes come back normalised to the model input
and are mapped back with ``x = x_norm * W_in / s``, ``y = y_norm * H_in / s``, where
``s = min(H_in / h, W_in / w)`` for an ``h`` x ``w`` image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.boxes import Box
from core.model.detector.model import DetectorSpec
from core.model.detector.predict import Detection
from core.model.export.formats import DeployFormat, ExportError

CALIBRATION_IMAGES = 300  # "a few hundred of the project's train images"


def letterbox_uint8(image: np.ndarray, spec: DetectorSpec) -> tuple[np.ndarray, float]:
    """The fixed-size formats' input: training's letterbox, rounded to uint8 (H_in x W_in x 3), and its scale."""
    from core.model.detector.data import letterbox_numpy

    boxed, scale = letterbox_numpy(image, spec.image_height, spec.image_width)
    return np.clip(np.rint(boxed), 0, 255).astype(np.uint8), scale


def write_artefact(
    model: Any,
    spec: DetectorSpec,
    fmt: DeployFormat,
    folder: Path,
    calibration: Callable[[], Iterable[np.ndarray]] | None = None,
) -> Path:
    """Writes the model file (or SavedModel folder) of ``fmt`` into ``folder``.

    Args:
        model: The loaded Keras detector.
        spec: Its spec.
        fmt: The format.
        folder: Output folder (created).
        calibration: For ``tflite-int8``: yields letterboxed uint8 images (H x W x 3) of the
            project's training split, the representative data of full-integer quantisation.

    Returns:
        The path of the model file or folder.
    """
    import tensorflow as tf

    from core.model.export.detector_graph import FixedSizeDetector, savedmodel_serve

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / fmt.model_name
    if fmt.name == "savedmodel":
        import keras

        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", savedmodel_serve(model, spec))
        archive.write_out(str(out), verbose=False)
        return out
    fixed = FixedSizeDetector(model, spec)
    fixed(np.zeros((1, spec.image_height, spec.image_width, 3), np.uint8))  # build before export
    signature = [fixed.input_spec_for_export()]
    if fmt.name == "onnx":
        fixed.export(str(out), format="onnx", input_signature=signature, verbose=False)
        return out
    options: dict[str, Any] = {}
    if fmt.name == "tflite-fp16":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    elif fmt.name == "tflite-int8":
        if calibration is None:
            raise ExportError("tflite-int8 needs calibration images (the project's training split).")
        out.write_bytes(_int8_tflite(fixed, signature, calibration, folder))
        return out
    elif fmt.name != "tflite-fp32":
        raise ExportError(f"The detector has no {fmt.name} export.")
    # Builtin ops only (no SELECT_TF_OPS): the file runs on plain LiteRT, phones included.
    options.setdefault("target_spec", {}).setdefault("supported_ops", [tf.lite.OpsSet.TFLITE_BUILTINS])
    fixed.export(str(out), format="litert", input_signature=signature, verbose=False, **options)
    return out


def _int8_tflite(
    fixed: Any, signature: list[Any], calibration: Callable[[], Iterable[np.ndarray]], folder: Path
) -> bytes:
    """Full-integer quantisation of the network, with the decoding and NMS after the heads kept in float32.

    Quantised whole, the post-processing lost the boxes (their class-offset coordinates span
    thousands of pixels: an int8 step of several pixels; measured: every box came out as zeros).
    So the network is calibrated once (a float model carrying the activation ranges), the tensors
    outside the Keras detector are named from it, and MLIR's quantiser quantises everything but those
    (``denylisted_nodes``, plus ``denylisted_ops`` for the post-processing's multi-output ops, which
    no name reaches): the steps of TFLite's ``QuantizationDebugger`` without its extra float
    conversion and its instrumented (numeric-verify) model, which cost a third of the export's time.
    """
    import shutil

    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import convert

    saved = folder / "_int8_source"
    archive = keras.export.ExportArchive()
    archive.track(fixed)
    archive.add_endpoint("serve", lambda images: fixed(images), input_signature=signature)
    archive.write_out(str(saved), verbose=False)
    try:

        def representative() -> Iterable[list[np.ndarray]]:
            for image in calibration():
                yield [image[None]]

        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.experimental_mlir_quantizer = True
        converter._experimental_calibrate_only = True  # as QuantizationDebugger: float + ranges
        calibrated = converter.convert()
        float_model = Interpreter(model_content=calibrated)
        ops = float_model._get_ops_details()
        names = {t["index"]: t["name"] for t in float_model.get_tensor_details()}
        scope = fixed.detector.name
        post_ops = [op for op in ops if not any(scope in names[i] for i in op["outputs"])]
        post = [names[i] for op in post_ops for i in op["outputs"]]
        # An op with several outputs (SPLIT in the box decoding, TOPK_V2, NMS) carries a fused
        # location that no node name matches: denied by name only, the split of the decoded boxes was
        # quantised (a step of 41 pixels: matched-box IoU 0.66, mAP 0.072 against Keras' 0.127 on
        # ccp-detection). Denied by type: keras-hub's RetinaNet has none of them (one that had would
        # run in float too: slower, not wrong).
        post_types = sorted({op["op_name"] for op in post_ops if len(op["outputs"]) > 1})
        return convert.mlir_quantize(
            calibrated,
            disable_per_channel=False,
            fully_quantize=False,
            enable_numeric_verify=False,
            denylisted_ops=post_types or None,
            denylisted_nodes=post,
        )
    finally:
        shutil.rmtree(saved, ignore_errors=True)


def _detections(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    count: int,
    size: tuple[float, float],
    spec: DetectorSpec,
) -> list[Detection]:
    """Rows of one image's outputs (boxes already in original pixels) -> detections, as the Keras Detector keeps them."""
    h, w = size
    dets = []
    for box, score, label in zip(boxes_xyxy[:count], scores[:count], classes[:count], strict=True):
        label = int(label)
        if label < 0:
            continue
        b = Box(*(float(v) for v in box)).clip(float(w), float(h))
        if b.area <= 0:
            continue
        dets.append(Detection(b, label, spec.class_names[label], float(np.clip(score, 0, 1))))
    return dets


def undo_letterbox(boxes_yxyx: np.ndarray, scale: float, spec: DetectorSpec) -> np.ndarray:
    """Normalised ``[y_min, x_min, y_max, x_max]`` of the fixed-size formats -> ``xyxy`` original-image pixels."""
    y0, x0, y1, x1 = (boxes_yxyx[:, i] for i in range(4))
    h_in, w_in = spec.image_height, spec.image_width
    return np.stack([x0 * w_in, y0 * h_in, x1 * w_in, y1 * h_in], axis=-1) / scale


class Runner:
    """An exported artefact loaded in its runtime; :meth:`predict` takes (encoded bytes, RGB array) per image."""

    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec

    def predict(self, images: Sequence[tuple[bytes, np.ndarray]]) -> list[list[Detection]]:
        """Detections in original-image pixels for each image."""
        raise NotImplementedError


class FixedSizeRunner(Runner):
    """TFLite (ai-edge-litert) or ONNX (onnxruntime): letterbox here, undo it on the outputs."""

    def __init__(self, spec: DetectorSpec, run: Callable[[np.ndarray], dict[str, np.ndarray]]) -> None:
        super().__init__(spec)
        self.run = run

    def predict(self, images: Sequence[tuple[bytes, np.ndarray]]) -> list[list[Detection]]:
        results = []
        for _, array in images:
            boxed, scale = letterbox_uint8(array, self.spec)
            out = self.run(boxed[None])
            xyxy = undo_letterbox(out["boxes"][0], scale, self.spec)
            size = (float(array.shape[0]), float(array.shape[1]))
            n = int(out["num_detections"][0])
            results.append(_detections(xyxy, out["scores"][0], out["classes"][0], n, size, self.spec))
        return results


class SavedModelRunner(Runner):
    """The SavedModel's ``serve`` signature, fed the encoded files (it decodes and letterboxes itself)."""

    def __init__(self, spec: DetectorSpec, path: Path) -> None:
        import tensorflow as tf

        super().__init__(spec)
        self.serve = tf.saved_model.load(str(path)).signatures["serve"]

    def predict(self, images: Sequence[tuple[bytes, np.ndarray]]) -> list[list[Detection]]:
        import tensorflow as tf

        results = []
        for data, array in images:
            out = {k: v.numpy() for k, v in self.serve(image_bytes=tf.constant([data])).items()}
            size = (float(array.shape[0]), float(array.shape[1]))
            results.append(
                _detections(
                    out["boxes"][0], out["scores"][0], out["classes"][0], int(out["num_detections"][0]), size, self.spec
                )
            )
        return results


def load_runner(fmt: DeployFormat, path: Path, spec: DetectorSpec) -> Runner:
    """Opens a written artefact in its own runtime."""
    path = Path(path)
    if fmt.name == "savedmodel":
        return SavedModelRunner(spec, path)
    if fmt.name == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        input_name = session.get_inputs()[0].name

        def run_onnx(x: np.ndarray) -> dict[str, np.ndarray]:
            return dict(zip(names, session.run(names, {input_name: x}), strict=True))

        return FixedSizeRunner(spec, run_onnx)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()

    def run_tflite(x: np.ndarray) -> dict[str, np.ndarray]:
        return runner(images=x)

    return FixedSizeRunner(spec, run_tflite)
