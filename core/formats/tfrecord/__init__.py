"""TFRecord in the TensorFlow Object Detection API's ``tf.train.Example`` layout.

One module per job: :mod:`.features` (the decoder's feature spec and the only coordinate
conversions, pixels <-> normalised), :mod:`.wire` (the hand-written protobuf encoder the
exporter uses), :mod:`.records` (TFRecord file framing, writing and reading),
:mod:`.parse` (one serialized example back to pixels). Importing this package imports no
TensorFlow; its modules do.
"""
