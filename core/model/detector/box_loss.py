"""The detector's box-regression loss: keras-hub's Huber on box deltas, optionally plus CIoU.

keras-hub's RetinaNet regresses, for every positive anchor, the ``center_xywh`` deltas of
its matched truth box and trains them with a Huber (smooth L1) loss. Smooth L1 weighs each
coordinate apart, so a box can be close in every delta and still overlap its truth box
poorly; IoU-based losses (GIoU, DIoU, CIoU) train the overlap itself and are what the field
uses for tighter boxes (mAP@[.5:.95], AP@0.75). Keras ships CIoU
(``keras.utils.bounding_boxes.compute_ciou``) and the delta decoder the model's own
prediction uses (``decode_deltas_to_boxes``); this module only decodes both the targets and
the predictions against the anchors and adds ``1 - CIoU`` to the Huber term.

Coordinate spaces: ``y_true`` and ``y_pred`` are ``center_xywh`` deltas relative to the
anchors (shape batch x anchors x 4); the anchors and the decoded boxes are ``xyxy`` in
model-input pixels.

Kinds (the train job's ``box_loss``):

- ``"huber"``: keras-hub's default, unchanged.
- ``"huber+ciou"``: Huber plus ``1 - CIoU`` per positive anchor (as YOLOX and DETR pair an L1
  term with an IoU term: the L1 term keeps early gradients well-behaved while boxes barely
  overlap, the IoU term sharpens them once they do).
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub
import numpy as np

BOX_LOSSES = ("huber", "huber+ciou")
# Predicted deltas are clipped before decoding for the IoU term only: exp() of a wild
# width/height delta early in training would overflow to inf and CIoU to NaN. log(1000/16)
# is torchvision's bound for the same decoder (a box at most 62x its anchor).
_DELTA_CLIP = float(np.log(1000.0 / 16.0))


def anchor_boxes(anchor_generator: keras_hub.layers.AnchorGenerator, image_shape: tuple[int, int]) -> np.ndarray:
    """All anchors of a model input of ``image_shape`` (height, width), concatenated over levels, as the model orders them."""
    height, width = image_shape
    anchors = anchor_generator(np.zeros((1, height, width, 3), np.float32))
    return np.concatenate([np.asarray(keras.ops.convert_to_numpy(a)) for a in anchors.values()], axis=0)


@keras.saving.register_keras_serializable(package="tagrack")
class DetectorBoxLoss(keras.losses.Loss):
    """Huber on the deltas, plus ``iou_weight * (1 - CIoU)`` of the decoded boxes.

    Returns one value per anchor; the detector's ``compute_loss`` weights it by the
    positive-anchor mask over the number of positives and sums, as for its default Huber.

    Args:
        anchor_config: ``AnchorGenerator.get_config()`` of the model (sizes, levels, format).
        image_shape: Model input (height, width) the anchors are laid over.
        iou_weight: Weight of the CIoU term (0: Huber alone, keras-hub's default).
    """

    def __init__(
        self,
        anchor_config: dict[str, Any],
        image_shape: tuple[int, int],
        iou_weight: float = 1.0,
        reduction: str = "sum",
        name: str = "detector_box_loss",
        **kwargs: Any,
    ) -> None:
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.anchor_config = dict(anchor_config)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.iou_weight = float(iou_weight)
        generator = keras_hub.layers.AnchorGenerator(**self.anchor_config)
        self._format = generator.bounding_box_format
        self._anchors = anchor_boxes(generator, self.image_shape)

    @classmethod
    def for_model(cls, model: Any, image_shape: tuple[int, int], kind: str) -> DetectorBoxLoss:
        """The loss for a built keras-hub RetinaNet and a ``box_loss`` kind (see :data:`BOX_LOSSES`)."""
        if kind not in BOX_LOSSES:
            raise ValueError(f"Unknown box loss {kind!r}; use one of {', '.join(BOX_LOSSES)}.")
        weight = 1.0 if kind == "huber+ciou" else 0.0
        return cls(model.anchor_generator.get_config(), image_shape, iou_weight=weight)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        ops = keras.ops
        huber = keras.losses.huber(y_true, y_pred, delta=1.0)
        if not self.iou_weight:
            return huber
        # Negative anchors carry placeholder targets (weighted 0 later; about 23 for an image
        # with no boxes) that would decode to enormous boxes: clip them too, so that the
        # CIoU's squared extents cannot overflow and 0 * inf cannot poison the sum.
        safe_true = ops.clip(y_true, -_DELTA_CLIP, _DELTA_CLIP)
        clipped = ops.clip(y_pred, -_DELTA_CLIP, _DELTA_CLIP)
        anchors = ops.convert_to_tensor(self._anchors, dtype=y_pred.dtype)
        shape = (*self.image_shape, 3)

        def decode(deltas: Any) -> Any:
            return keras.utils.bounding_boxes.decode_deltas_to_boxes(
                anchors=anchors,
                boxes_delta=deltas,
                anchor_format=self._format,
                box_format=self._format,
                encoded_format="center_xywh",
                image_shape=shape,
            )

        ciou = keras.utils.bounding_boxes.compute_ciou(decode(clipped), decode(safe_true), self._format, shape)
        return huber + self.iou_weight * (1.0 - ciou)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"anchor_config": self.anchor_config, "image_shape": list(self.image_shape), "iou_weight": self.iou_weight}
        )
        return config


__all__ = ["BOX_LOSSES", "DetectorBoxLoss", "anchor_boxes"]
