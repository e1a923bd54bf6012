"""Explanation.plot() and tfsal.plots.show: RGB pictures with the scores in the titles, a colour bar,
the region's outline, and nothing coloured for an explanation without a region."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import tfsal.plots
from tfsal.explain import Explanation, SaliencyExplainer

from .conftest import SIZE, mammogram_like


def rgb(figure):
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)


def test_a_region_is_outlined_with_scores_and_a_colour_bar():
    image = mammogram_like(0)[..., 0]
    mask = np.zeros((SIZE, SIZE), bool)
    mask[20:30, 20:30] = True
    explanation = Explanation("counterfactual", 1, mask.astype(np.float32), mask, np.ones_like(mask), 0.91, 0.12,
                              image=image)
    figure = plt.figure()
    ax = explanation.plot()
    assert "0.91" in ax.get_title() and "0.12" in ax.get_title() and "region 2.4%" in ax.get_title()
    assert len(figure.axes) == 2  # the picture and its colour bar
    assert any(np.allclose(line.get_color() if not isinstance(line.get_color(), str) else
                           matplotlib.colors.to_rgb(line.get_color()), (0, 1, 0)) for line in ax.lines)
    heat = plt.figure()
    explanation.plot(style="heat")
    assert heat.axes[1].get_ylabel() == "S = 1 - M"
    plt.close("all")


def test_no_region_draws_the_image_and_says_so_without_colour():
    image = mammogram_like(1, blob=False)[..., 0]
    empty = np.zeros((SIZE, SIZE), bool)
    explanation = Explanation("counterfactual", 1, np.full((SIZE, SIZE), 0.002, np.float32), empty,
                              np.ones_like(empty), 0.08, 0.08, image=image)
    figure = plt.figure()
    ax = explanation.plot(style="heat")
    assert ax.get_title() == "no region found, p 0.08" and len(figure.axes) == 1
    pixels = rgb(figure)
    assert (pixels.max(axis=2) - pixels.min(axis=2)).max() <= 2  # grey only
    plt.close("all")


def test_show_lays_out_an_explain_result_with_titles(tiny_classifier):
    images = np.stack([mammogram_like(seed) for seed in range(3)])
    explanations = SaliencyExplainer(tiny_classifier, percentile=95).explain(images)
    figure = tfsal.plots.show(explanations, columns=2, titles=["a.png", "b.png", "c.png"])
    titled = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title().splitlines()[0] for ax in titled] == ["a.png", "b.png", "c.png"]
    assert rgb(figure).shape[2] == 3
    plt.close("all")
    with pytest.raises(ValueError, match="style"):
        explanations[0].plot(style="filled")
    with pytest.raises(ValueError, match="pass image="):
        Explanation("sal", 1, images[0, ..., 0], images[0, ..., 0] > 2, images[0, ..., 0] > 0, 0.5).plot()
