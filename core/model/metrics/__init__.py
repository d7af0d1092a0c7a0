"""Detection metrics: VOC all-point AP (voc) and COCO-style evaluation (coco)."""
