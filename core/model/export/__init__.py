"""Models to deploy: a model version as SavedModel, TFLite or ONNX with its post-processing inside, checked against Keras."""
