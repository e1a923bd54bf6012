"""Explainers with one API: ``Explainer(model, ...).explain(images, targets, organ_masks)``.

``CounterfactualExplainer`` is the method of Major et al. 2020; ``SaliencyExplainer`` (SAL),
``CAMExplainer`` and ``GradCAMExplainer`` are the paper's baselines. Drawing is separate
(:mod:`tfsal.drawing`).
"""

from tfsal.explain.baselines import CAMExplainer, GradCAMExplainer, SaliencyExplainer
from tfsal.explain.counterfactual import CounterfactualExplainer, paper_settings
from tfsal.explain.explanation import Explanation, percentile_mask

EXPLAINERS = {
    "counterfactual": CounterfactualExplainer,
    "sal": SaliencyExplainer,
    "cam": CAMExplainer,
    "gradcam": GradCAMExplainer,
}

__all__ = ["EXPLAINERS", "CAMExplainer", "CounterfactualExplainer", "Explanation", "GradCAMExplainer",
           "SaliencyExplainer", "paper_settings", "percentile_mask"]
