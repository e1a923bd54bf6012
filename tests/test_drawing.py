"""Overlays: no colour without a region, the outline, scores and colour bar with one, the
counterfactual map on one absolute scale, and outlines drawn smooth at the image's resolution."""

import cv2
import numpy as np
import pytest

from tfsal.explain.explanation import Explanation
from tfsal.outputs.drawing import STYLES, explanation_overlay, smooth_outline


def breast(height=256, width=192):
    y, x = np.mgrid[0:height, 0:width]
    organ = ((y - height / 2) / (0.45 * height)) ** 2 + (x / (0.8 * width)) ** 2 < 1
    image = np.where(organ, 0.35 + 0.1 * np.sin(x / 7.0) * np.cos(y / 5.0), 0.0).astype(np.float32)
    return image, organ


def explanation(saliency, mask, organ, before=0.9, after=0.2, method="counterfactual"):
    return Explanation(method, 1, saliency.astype(np.float32), mask, organ, before, after)


def coloured(bgr):
    """Pixels whose channels differ (grey pixels have equal B, G and R)."""
    return (bgr.max(axis=2).astype(int) - bgr.min(axis=2)) > 0


@pytest.mark.parametrize("style", STYLES)
def test_no_region_no_colour_but_a_label(style):
    image, organ = breast()
    faint = np.where(organ, 0.0025, 0.0)  # what a healthy image's leftover map looks like
    picture = explanation_overlay(image, explanation(faint, np.zeros_like(organ), organ, 0.12, None), style)
    assert picture.shape == (*image.shape, 3) and not coloured(picture).any()
    plain = cv2.cvtColor((image * 255 + 0.5).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    changed = np.any(picture != plain, axis=2)
    assert changed.sum() > 50  # the "no region found" caption
    assert not changed[:, : image.shape[1] // 2].any()  # on the side without breast


def test_outline_style_draws_the_region_outline_the_scores_and_a_colour_bar_only():
    image, organ = breast()
    mask = np.zeros_like(organ)
    mask[100:140, 30:70] = True
    picture = explanation_overlay(image, explanation(np.where(mask, 0.9, 0.05), mask, organ))
    green = (picture[..., 1] > 200) & (picture[..., 0] < 80) & (picture[..., 2] < 80)
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5))) & ~cv2.erode(mask.astype(np.uint8), np.ones((5, 5)))
    assert green.sum() > 100 and green[ring.astype(bool)].sum() >= 0.9 * green[:, :100].sum()
    inside = mask.copy()
    inside[[100, 101, 138, 139], :] = inside[:, [30, 31, 68, 69]] = False
    assert not coloured(picture)[cv2.erode(inside.astype(np.uint8), np.ones((5, 5))).astype(bool)].any()
    right = coloured(picture)[:, image.shape[1] // 2:]  # the colour bar, on the side with less breast
    assert right.sum() > 200


def test_heat_style_draws_the_counterfactual_map_on_one_absolute_scale():
    """The same value of S = 1 - M gets the same colour on every image, whatever the image's maximum."""
    image, organ = breast()
    mask = np.zeros_like(organ)
    mask[100:110, 30:40] = True
    strong = np.where(organ, 0.3, 0.0)
    strong[100:110, 30:40] = 1.0
    weak = np.where(organ, 0.3, 0.0)
    weak[100:110, 30:40] = 0.35
    a = explanation_overlay(image, explanation(strong, mask, organ), "heat")
    b = explanation_overlay(image, explanation(weak, mask, organ), "heat")
    assert np.array_equal(a[180, 60], b[180, 60]) and coloured(a)[180, 60]  # S = 0.3 on both
    relative = explanation_overlay(image, explanation(weak, mask, organ, method="sal"), "heat")
    assert not np.array_equal(relative[180, 60], b[180, 60])  # a gradient map is scaled per image


def test_an_upsampled_mask_is_outlined_smoothly_at_the_images_resolution():
    """A diagonal edge upsampled 8 x (8-pixel stairs) is outlined near one straight line."""
    y, x = np.mgrid[0:32, 0:32]
    big = cv2.resize((x < y).astype(np.uint8), (256, 256), interpolation=cv2.INTER_NEAREST)
    spread = {}
    for name, scale in (("stairs", 1.0), ("smooth", 8.0)):
        points = np.concatenate(smooth_outline(big, scale))[:, 0].astype(float)
        points = points[(points.min(axis=1) > 16) & (points.max(axis=1) < 240)]  # the diagonal, not the borders
        residual = points[:, 1] - points[:, 0]
        spread[name] = residual.max() - residual.min()
    assert spread["stairs"] >= 7 and spread["smooth"] < 3, spread


def test_an_unknown_style_is_refused():
    image, organ = breast()
    with pytest.raises(ValueError, match="style"):
        explanation_overlay(image, explanation(np.zeros_like(image), organ, organ), "filled")
