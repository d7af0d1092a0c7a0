"""The detector and its life: backbones, training, prediction, evaluation and metrics."""
