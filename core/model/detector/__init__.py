"""The object detector: model (model.py), input pipeline (data.py), training (train.py), inference (predict.py).

Importing this package does not import TensorFlow; each module does, so that pages and
jobs that never touch the model stay light.
"""
