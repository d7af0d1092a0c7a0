"""The tags model: one softmax head per image tag (category and schema attributes) on MobileNetV2."""
