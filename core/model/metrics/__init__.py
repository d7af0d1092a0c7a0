"""Detection metrics: VOC all-point AP (voc) and COCO-style evaluation (coco) over the same boxes (types, iou)."""
