"""Plotting explanations with matplotlib: ``tfsal.plots.show(explanations)``, and
``Explanation.plot()`` for one (:mod:`tfsal.explain.plotting`). Loads no TensorFlow."""

from tfsal.explain.plotting import plot_explanation, show

__all__ = ["plot_explanation", "show"]
