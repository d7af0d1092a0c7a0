"""Detect garments in one image with model.onnx: python example.py IMAGE [MIN_SCORE].

Needs only `pip install onnxruntime pillow` (numpy comes with onnxruntime); prints JSON.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

here = Path(__file__).parent
labels = (here / "labels.txt").read_text(encoding="utf-8").splitlines()
session = ort.InferenceSession(str(here / "model.onnx"), providers=["CPUExecutionProvider"])
_, height, width, _ = session.get_inputs()[0].shape
image = Image.open(sys.argv[1]).convert("RGB")
min_score = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
w, h = image.size
s = min(height / h, width / w)  # letterbox: keep the aspect ratio, pad bottom and right with black
canvas = Image.new("RGB", (width, height))
canvas.paste(image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR))
names = [o.name for o in session.get_outputs()]
out = dict(zip(names, session.run(names, {"images": np.asarray(canvas, dtype=np.uint8)[None]}), strict=True))
found = []
for i in range(int(out["num_detections"][0])):
    y0, x0, y1, x1 = out["boxes"][0][i] * [height, width, height, width] / s  # -> original pixels
    box = [min(max(v, 0.0), lim) for v, lim in zip((x0, y0, x1, y1), (w, h, w, h), strict=True)]
    if out["scores"][0][i] >= min_score and box[2] > box[0] and box[3] > box[1]:  # as Tagrack, skip empty boxes
        found.append({"label": labels[int(out["classes"][0][i])], "score": float(out["scores"][0][i]), "box": box})
print(json.dumps(found, default=float))
