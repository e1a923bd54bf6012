"""Models: the MobileNet classifier (and, with issue 4, the partial-convolution inpainter)."""

from tfsal.models.classifier import build_classifier, load_classifier, load_default_classifier

__all__ = ["build_classifier", "load_classifier", "load_default_classifier"]
