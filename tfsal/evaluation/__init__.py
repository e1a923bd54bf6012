"""Measuring explanations and models: the paper's localisation metrics, the evaluation of every
method on a manifest's split and its report, the inpainter check (Fig. 2) and the classifier's ROC.

:mod:`tfsal.evaluation.metrics` is a leaf (NumPy and SciPy only) that every stage may import;
the other modules are imported on demand (this file loads nothing).
"""
