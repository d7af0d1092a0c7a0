"""Inference: a saved model version -> boxes in original-image pixels with scores in [0, 1].

A model version is a folder holding ``model.keras`` (the Keras model) and
``detector.json`` (its :class:`~core.model.detector.model.DetectorSpec`: class names, input
size, ...). Images are letterboxed exactly as in training (:func:`core.model.detector.data.letterbox`)
and the model's boxes, in model-input pixels, are divided by the letterbox scale and
clipped to the image, giving :class:`core.boxes.Box` in original-image pixels.

keras-hub's RetinaNet crashes on a batch smaller than the one it was traced with
(``non_max_suppression`` gets a None batch size), so every batch is padded to the full
batch size and the padding's outputs are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.boxes import Box
from core.model.detector.model import DetectorSpec, load_detector

MODEL_FILE = "model.keras"
SPEC_FILE = "detector.json"


@dataclass(frozen=True)
class Detection:
    """A predicted box in original-image pixels.

    Attributes:
        box: The box (clipped to the image).
        label_index: Class index into the spec's class names.
        label: Class name.
        score: Confidence in [0, 1].
    """

    box: Box
    label_index: int
    label: str
    score: float


def save_model_version(model: Any, spec: DetectorSpec, folder: Path) -> Path:
    """Writes ``model.keras`` and ``detector.json`` into ``folder``; returns the model file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    model.save(path)
    (folder / SPEC_FILE).write_text(json.dumps(spec.to_dict(), indent=2), encoding="utf-8")
    return path


class Detector:
    """A loaded detector that predicts on images of any size.

    Args:
        model: The Keras RetinaNet model.
        spec: Its spec.
        batch_size: Images per forward pass (every pass uses exactly this many).
        flip: Test-time flip: also predict on the mirrored image and fuse the two
            (:mod:`core.model.detector.flip_tta`; twice the forward passes).
    """

    def __init__(self, model: Any, spec: DetectorSpec, batch_size: int = 8, flip: bool = False) -> None:
        self.model = model
        self.spec = spec
        self.batch_size = batch_size
        self.flip = flip

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 8, flip: bool | None = None) -> Detector:
        """Loads a model version from its folder (or its ``model.keras`` path); ``flip`` None: as its spec says."""
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        spec = DetectorSpec.from_dict(json.loads((folder / SPEC_FILE).read_text(encoding="utf-8")))
        return cls(load_detector(folder / MODEL_FILE), spec, batch_size, spec.test_time_flip if flip is None else flip)

    def _forward(self, images: np.ndarray) -> dict[str, np.ndarray]:
        n = len(images)
        if n < self.batch_size:
            pad = np.zeros((self.batch_size - n, *images.shape[1:]), images.dtype)
            images = np.concatenate([images, pad])
        # predict() rather than predict_on_batch(): keras-hub 0.32 decode_predictions cannot
        # unpack the 1-tuple predict_on_batch hands it.
        out = self.model.predict(images, batch_size=self.batch_size, verbose=0)
        return {k: np.asarray(v)[:n] for k, v in out.items()}

    def decode(
        self, out: dict[str, np.ndarray], scales: Sequence[float], sizes: Sequence[tuple[float, float]]
    ) -> list[list[Detection]]:
        """Turns raw model outputs of a batch into detections in original pixels.

        Args:
            out: The model's decoded outputs (boxes in model-input pixels).
            scales: Letterbox scale of each image.
            sizes: Original (height, width) of each image.
        """
        results = []
        for i, (scale, (h, w)) in enumerate(zip(scales, sizes, strict=True)):
            n = int(out["num_detections"][i])
            dets = []
            for box, label, score in zip(
                out["boxes"][i][:n], out["labels"][i][:n], out["confidence"][i][:n], strict=True
            ):
                if label < 0:
                    continue
                b = Box(*(float(v) / float(scale) for v in box)).clip(float(w), float(h))
                if b.area <= 0:
                    continue
                dets.append(Detection(b, int(label), self.spec.class_names[int(label)], float(np.clip(score, 0, 1))))
            results.append(dets)
        return results

    def detect(
        self, images: np.ndarray, scales: Sequence[float], sizes: Sequence[tuple[float, float]]
    ) -> list[list[Detection]]:
        """Detections for one batch of letterboxed images (at most ``batch_size``), in original pixels."""
        found = self.decode(self._forward(images), scales, sizes)
        if not self.flip:
            return found
        from core.model.detector import flip_tta

        widths = flip_tta.content_widths(scales, sizes, self.spec.image_width)
        mirrored = self.decode(self._forward(flip_tta.mirror_content(images, widths)), scales, sizes)
        return [
            flip_tta.fuse(a, flip_tta.unmirror(b, cw / s), self.spec.class_names, size)
            for a, b, cw, s, size in zip(found, mirrored, widths, scales, sizes, strict=True)
        ]

    def predict_batches(
        self, batches: Iterable[dict[str, Any]]
    ) -> Iterator[tuple[dict[str, Any], list[list[Detection]]]]:
        """Runs over :func:`core.model.detector.data.eval_batches` output; yields each batch with its detections."""
        for batch in batches:
            batch = {k: np.asarray(v) for k, v in batch.items()}
            for start in range(0, len(batch["images"]), self.batch_size):
                part = {k: v[start : start + self.batch_size] for k, v in batch.items()}
                yield (
                    part,
                    self.detect(part["images"].astype(np.float32), part["scale"], [tuple(s) for s in part["size"]]),
                )

    def predict(self, images: Iterable[Any]) -> list[list[Detection]]:
        """Detections for each image (numpy H x W x 3 RGB uint8 arrays or PIL images)."""
        from core.model.detector.data import letterbox_numpy

        results: list[list[Detection]] = []
        chunk: list[tuple[np.ndarray, float, tuple[float, float]]] = []

        def flush() -> None:
            x = np.stack([c[0] for c in chunk])
            results.extend(self.detect(x, [c[1] for c in chunk], [c[2] for c in chunk]))
            chunk.clear()

        for image in images:
            arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
            boxed, scale = letterbox_numpy(arr, self.spec.image_height, self.spec.image_width)
            chunk.append((boxed, scale, (float(arr.shape[0]), float(arr.shape[1]))))
            if len(chunk) == self.batch_size:
                flush()
        if chunk:
            flush()
        return results
