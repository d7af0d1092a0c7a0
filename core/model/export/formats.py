"""The deployment formats a model version exports to, and what each one needs to run.

Model-kind-blind: a model kind (``detector`` today, the tags classifier later) says which
of these it supports in its own module (:mod:`core.model.export.detector`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.jobs import JobError


@dataclass(frozen=True)
class DeployFormat:
    """One export format.

    Attributes:
        name: The CLI / job name (``tflite-int8``).
        title: What the Train page shows.
        model_name: The model's file (or folder) name inside the zip.
        runtime: The one package the example script needs, as ``pip install`` takes it.
        precision: ``"float32"``, ``"float16"`` or ``"int8"`` (decides the check's mAP bound).
    """

    name: str
    title: str
    model_name: str
    runtime: str
    precision: str


FORMATS: dict[str, DeployFormat] = {
    f.name: f
    for f in (
        DeployFormat("savedmodel", "TensorFlow SavedModel (image files in)", "saved_model", "tensorflow", "float32"),
        DeployFormat("tflite-fp32", "TFLite float32", "model.tflite", "ai-edge-litert", "float32"),
        DeployFormat("tflite-fp16", "TFLite float16 weights", "model.tflite", "ai-edge-litert", "float16"),
        DeployFormat("tflite-int8", "TFLite int8 (full integer)", "model.tflite", "ai-edge-litert", "int8"),
        DeployFormat("onnx", "ONNX (onnxruntime)", "model.onnx", "onnxruntime", "float32"),
    )
}

# Largest mAP@0.5 drop against the Keras model that the check accepts (the bounds).
MAP_BOUND = {"float32": 0.005, "float16": 0.005, "int8": 0.03}


class ExportError(JobError):
    """An export that cannot be made (the message says why)."""


def deploy_format(name: str) -> DeployFormat:
    """The format called ``name``.

    Raises:
        ExportError: An unknown name (the message lists the known ones).
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"Unknown export format {name!r}; use one of: {', '.join(FORMATS)}.") from None
