"""Models: the MobileNet classifier and the partial-convolution inpainter."""

from tfsal.util.quiet import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras loads it: no C++ start-up lines on stderr

from tfsal.models.classifier import build_classifier, load_classifier, load_default_classifier  # noqa: E402
from tfsal.models.inpainter import (  # noqa: E402
    build_inpainter,
    composite,
    count_downsamplings,
    freeze_encoder_batch_norm,
    load_default_inpainter,
    load_inpainter,
)
from tfsal.models.inpainter_loss import InpaintingLoss, classifier_feature_extractor  # noqa: E402
from tfsal.models.pconv import PartialConv2D  # noqa: E402

__all__ = [
    "InpaintingLoss",
    "PartialConv2D",
    "build_classifier",
    "build_inpainter",
    "classifier_feature_extractor",
    "composite",
    "count_downsamplings",
    "freeze_encoder_batch_norm",
    "load_classifier",
    "load_default_classifier",
    "load_default_inpainter",
    "load_inpainter",
]
