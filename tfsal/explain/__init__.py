"""Explainers with one API: ``Explainer(model, ...).explain(images, targets, organ_masks)``.

``CounterfactualExplainer`` is the method of Major et al. 2020 (its optimiser is
:mod:`tfsal.explain.mask`), ``AmortisedExplainer`` its one-pass mask network (trained by
``tfsal train explainer``); ``SaliencyExplainer`` (SAL), ``CAMExplainer`` and ``GradCAMExplainer``
are the paper's baselines, ``EarlyGradCAMExplainer``, ``SmoothGradExplainer``,
``BlurredSaliencyExplainer``, ``IntegratedGradientsExplainer``, ``OcclusionExplainer``,
``RISEExplainer`` and ``ExtremalPerturbationExplainer`` the stronger ones of the fair comparison.
:mod:`tfsal.explain.registry` lists them all; drawing and writing files
are :mod:`tfsal.outputs`. Names are imported on first use, so ``import tfsal.explain.registry``
loads no TensorFlow.
"""

from tfsal.util.lazy import lazy_getattr
from tfsal.util.quiet import import_tensorflow_quietly

# public name -> module that defines it; imported on first attribute access
_LAZY = {
    "CounterfactualExplainer": "tfsal.explain.counterfactual",
    "paper_settings": "tfsal.explain.counterfactual",
    "AmortisedExplainer": "tfsal.explain.amortised",
    "build_mask_network": "tfsal.explain.amortised",
    "SaliencyExplainer": "tfsal.explain.baselines",
    "CAMExplainer": "tfsal.explain.baselines",
    "GradCAMExplainer": "tfsal.explain.baselines",
    "EarlyGradCAMExplainer": "tfsal.explain.baselines",
    "SmoothGradExplainer": "tfsal.explain.gradients",
    "BlurredSaliencyExplainer": "tfsal.explain.gradients",
    "IntegratedGradientsExplainer": "tfsal.explain.gradients",
    "OcclusionExplainer": "tfsal.explain.perturbation",
    "RISEExplainer": "tfsal.explain.perturbation",
    "ExtremalPerturbationExplainer": "tfsal.explain.perturbation",
    "Explainer": "tfsal.explain.base",
    "Explanation": "tfsal.explain.explanation",
    "percentile_mask": "tfsal.explain.explanation",
    "top_share_mask": "tfsal.explain.explanation",
    "ImageExplainer": "tfsal.explain.interface",
}

__all__ = sorted(_LAZY)


# the explainers need TensorFlow: load it without its C++ start-up lines on stderr
__getattr__ = lazy_getattr("tfsal.explain", _LAZY, globals(), before=import_tensorflow_quietly)
