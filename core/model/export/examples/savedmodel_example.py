"""Detect garments in one image file with the SavedModel: python example.py IMAGE [MIN_SCORE].

Needs only `pip install tensorflow`; the model decodes the JPEG/PNG and letterboxes it itself,
and its boxes are in the image's own pixels. Prints JSON.
"""

import json
import sys
from pathlib import Path

import tensorflow as tf

here = Path(__file__).parent
serve = tf.saved_model.load(str(here / "saved_model")).signatures["serve"]
min_score = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
out = serve(image_bytes=tf.constant([Path(sys.argv[1]).read_bytes()]))
found = []
for i in range(int(out["num_detections"][0])):
    score, box = float(out["scores"][0][i]), out["boxes"][0][i].numpy().tolist()
    if score >= min_score and box[2] > box[0] and box[3] > box[1]:  # as Tagrack, skip empty boxes
        found.append({"label": out["class_names"][0][i].numpy().decode("utf-8"), "score": score, "box": box})
print(json.dumps(found))
