"""tfsal: counterfactual saliency maps for medical image classifiers.

``import tfsal`` is cheap: it loads neither TensorFlow, matplotlib nor Beam. Public names
(and ``tfsal.plots``) are loaded on first use.
"""

from tfsal._version import __version__
from tfsal.errors import ImageReadError, ManifestError, TfsalError
from tfsal.util.lazy import lazy_getattr

# public name -> module that defines it; imported on first attribute access
_LAZY = {
    "read_image": "tfsal.data.image_io",
    "ImageMeta": "tfsal.data.image_io",
    "read_manifest": "tfsal.data.manifest",
    "write_manifest": "tfsal.data.manifest",
    "Record": "tfsal.data.manifest",
    "breast_mask": "tfsal.data.organ",
    "plots": "tfsal.plots",
}

__all__ = [  # noqa: RUF022 - the lazy names follow the eager ones
    "__version__", "TfsalError", "ImageReadError", "ManifestError",
    "read_image", "ImageMeta", "read_manifest", "write_manifest", "Record", "breast_mask", "plots",
]


__getattr__ = lazy_getattr("tfsal", _LAZY, globals())
