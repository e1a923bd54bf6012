"""Models: the MobileNet classifier and the partial-convolution inpainter."""

from tfsal.models.classifier import build_classifier, load_classifier, load_default_classifier
from tfsal.models.inpainter import (
    build_inpainter,
    composite,
    count_downsamplings,
    freeze_encoder_batch_norm,
    load_default_inpainter,
    load_inpainter,
)
from tfsal.models.inpainter_loss import InpaintingLoss, classifier_feature_extractor
from tfsal.models.pconv import PartialConv2D

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
