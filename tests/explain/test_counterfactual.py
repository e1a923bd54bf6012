"""The counterfactual explainer finds the region that makes the classifier change its mind."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from tfsal.explain import CounterfactualExplainer
from tfsal.explain.counterfactual import paper_settings
from tfsal.explain.mask import default_cell, paper_cell

from .conftest import blob_pixels, mammogram_like, organ


def _explain(classifier, inpainter, images, **options):
    options = {"steps": 40, "cell": 2, **options}
    return CounterfactualExplainer(classifier, inpainter=inpainter, **options).explain(
        images, organ_masks=[organ()] * len(images))


def test_finds_the_mass_and_its_inpainting_flips_the_decision(blob_classifier, mean_inpainter):
    mass, healthy = _explain(blob_classifier, mean_inpainter, np.stack([mammogram_like(0),
                                                                         mammogram_like(1, blob=False)]))
    blob = blob_pixels()
    assert mass.score_original > 0.9 and mass.score_counterfactual < 0.5  # the decision flips...
    assert mass.mask.any() and (mass.mask & blob).sum() >= 0.9 * mass.mask.sum()  # ...by deleting mass only
    assert mass.loss[-1] < mass.loss[0]
    original = mammogram_like(0)[..., 0]
    assert mass.counterfactual[mass.mask].mean() < original[mass.mask].mean() - 0.2  # bright mass replaced
    np.testing.assert_array_equal(mass.counterfactual[~mass.mask], original[~mass.mask])
    assert not healthy.mask.any()  # nothing to delete where nothing is found


def test_the_paper_setting_deletes_the_whole_mass(blob_classifier, mean_inpainter):
    # unbounded psi keeps rewarding a lower score, so the whole bright disc goes
    (mass,) = _explain(blob_classifier, mean_inpainter, mammogram_like(0)[None], **{**paper_settings(64), "cell": 2})
    blob = blob_pixels()
    assert mass.score_counterfactual < 0.5 and (mass.mask & blob).sum() >= 0.9 * blob.sum()


def test_saliency_is_one_minus_the_mask_and_the_result_is_its_threshold(blob_classifier, mean_inpainter):
    (e,) = _explain(blob_classifier, mean_inpainter, mammogram_like(0)[None], threshold=0.3)
    np.testing.assert_array_equal(e.mask, (1.0 - e.saliency < 0.3) & e.organ)
    assert (e.saliency[~e.organ] == 0).all()  # M is fixed to 1 outside the organ


def test_each_image_has_its_own_target(blob_classifier, mean_inpainter):
    # explaining class 0 ("healthy") of a mass image: nothing to delete makes it healthier than the mass does
    explainer = CounterfactualExplainer(blob_classifier, inpainter=mean_inpainter, steps=20, cell=2)
    images = np.stack([mammogram_like(0)] * 2)
    one, zero = explainer.explain(images, targets=[1, 0], organ_masks=[organ()] * 2)
    assert (one.target, zero.target) == (1, 0)
    assert zero.score_original == pytest.approx(1 - one.score_original, abs=1e-6)
    assert not np.array_equal(one.mask, zero.mask)


OPTIONS = {
    "steps": 7, "lr": 0.05, "l1": 0.3, "l2": 1.0, "l3": 1.0, "area": "mean", "cell": 4, "init": "keep",
    "init_logit": 0.5, "lattice_step": 2, "threshold": 0.7, "fill_block": 3, "refill_every": 2,
    "straight_through": False, "score_floor": 0.97, "grow_steps": 0, "seed": 3,
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_every_option_changes_the_output(option, blob_classifier, mean_inpainter):
    images = np.stack([mammogram_like(0), mammogram_like(2)])

    # from the lattice start, so that the options act on the path: the default gradient start
    # deletes this toy's blob at once, and the hinge then leaves the score terms flat
    start = {"init": "lattice"}

    def run(**changes):
        options = {"steps": 5, "cell": 2, **start, **changes}
        e = CounterfactualExplainer(blob_classifier, inpainter=mean_inpainter, **options).explain(images)
        return [np.stack([x.saliency for x in e]), np.stack([x.mask for x in e]), np.stack([x.loss[:5] for x in e])]

    base, changed = run(), run(**{option: OPTIONS[option]})
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(base, changed, strict=True))


def test_stop_patience_ends_the_optimisation_once_the_mask_settles(blob_classifier, mean_inpainter):
    images = np.stack([mammogram_like(0)])
    (full,) = _explain(blob_classifier, mean_inpainter, images, steps=120)
    (early,) = _explain(blob_classifier, mean_inpainter, images, steps=120, stop_patience=5)
    assert len(full.loss) == 120 and 5 < len(early.loss) < 120
    np.testing.assert_array_equal(early.loss, full.loss[:len(early.loss)])  # the same path, cut short
    assert early.score_counterfactual < 0.5 and (early.mask & blob_pixels()).sum() >= 0.9 * early.mask.sum()


def test_growth_completes_a_flip_the_optimisation_left_short(blob_classifier, mean_inpainter):
    images = np.stack([mammogram_like(0), mammogram_like(1, blob=False), mammogram_like(2)])
    # from the lattice start, which 3 steps leave short of the flip (the gradient start is already on the blob)
    short, _, _ = _explain(blob_classifier, mean_inpainter, images, steps=3, grow_steps=0, init="lattice")
    grown, healthy, other = _explain(blob_classifier, mean_inpainter, images, steps=3, grow_steps=8, init="lattice")
    assert short.score_counterfactual >= 0.5 and grown.score_counterfactual < 0.5  # 3 steps fall short
    assert (grown.mask >= short.mask).all() and grown.mask.sum() > short.mask.sum()  # the same region, grown
    assert grown.mask[~organ()].sum() == 0 and not healthy.mask.any()
    # only the pending images are re-inpainted: each result as when explained alone
    for image, batched in zip(images, (grown, healthy, other), strict=True):
        (alone,) = _explain(blob_classifier, mean_inpainter, image[None], steps=3, grow_steps=8, init="lattice")
        np.testing.assert_array_equal(alone.mask, batched.mask)
        assert alone.score_counterfactual == pytest.approx(batched.score_counterfactual, abs=1e-5)


def test_saturated_scores_give_no_nan(mean_inpainter):
    def certain(x):  # probability exactly 1 and 0: logs and log-odds must stay finite
        return tf.concat([tf.ones([tf.shape(x)[0], 1]), tf.zeros([tf.shape(x)[0], 1])], axis=1)

    explainer = CounterfactualExplainer(certain, inpainter=mean_inpainter, steps=5, cell=4, activation="sigmoid")
    (e,) = explainer.explain(mammogram_like(0)[None], targets=0)
    assert np.isfinite(e.saliency).all() and np.isfinite(e.loss).all() and e.score_original == 1.0


def test_cells_scale_with_the_height():
    assert default_cell(256) == 8 and default_cell(576) == 18 and default_cell(16) == 1
    assert paper_cell(576) == 8 and paper_cell(256) == 4 and paper_cell(64) == 1
    assert paper_settings(256) == {"l1": 1.0, "l2": 0.1, "l3": 0.1, "score_floor": 0.0, "cell": 4, "init": "lattice"}


@pytest.mark.parametrize("bad", [{"steps": 0}, {"lr": 0}, {"area": "sum"}, {"init": "random"}, {"threshold": 1},
                                 {"cell": 0}, {"l2": -1}, {"score_floor": 1.0}, {"refill_every": -1},
                                 {"grow_steps": -1}, {"stop_patience": -1}, {"stop_patience": 1.5},
                                 {"init_share": 0}, {"init_share": 1}, {"init_sigma": 0}])
def test_bad_options_are_refused(bad, tiny_classifier, tiny_inpainter):
    with pytest.raises(ValueError):
        CounterfactualExplainer(tiny_classifier, inpainter=tiny_inpainter, **bad)


def _six_spots():
    """Six small bright spots: each adds to the blob classifier's score, none alone decides it."""
    image = mammogram_like(0, blob=False)[..., 0]
    y, x = np.mgrid[0:64, 0:64]
    for cy, cx in [(14, 8), (14, 30), (32, 18), (50, 8), (50, 30), (32, 40)]:
        image[(y - cy) ** 2 + (x - cx) ** 2 <= 9] = 0.95
    return image[None, :, :, None]


def _shape_run(classifier, inpainter, **lambdas):
    options = {"steps": 40, "cell": 2, "score_floor": 0.0, "grow_steps": 0, "init": "lattice", **lambdas}
    (e,) = CounterfactualExplainer(classifier, inpainter=inpainter, **options).explain(_six_spots(),
                                                                                      organ_masks=[organ()])
    return e


def test_raising_lambda3_shrinks_the_area(blob_classifier, mean_inpainter):
    areas = [_shape_run(blob_classifier, mean_inpainter, l2=0.1, l3=l3).area_fraction for l3 in (0.1, 3.0, 30.0)]
    assert areas[0] > areas[1] > areas[2] > 0


def test_raising_lambda2_reduces_the_number_of_pieces(blob_classifier, mean_inpainter):
    pieces = [ndimage.label(_shape_run(blob_classifier, mean_inpainter, l2=l2, l3=0.1).mask)[1]
              for l2 in (0.1, 3.0, 30.0)]
    assert pieces[0] > pieces[1] >= pieces[2] >= 1


def _initial_holes(classifier, inpainter, **options):
    """The organ cells that ``init="gradient"`` starts as holes, for the blob image, ``[32, 32]``."""
    explainer = CounterfactualExplainer(classifier, inpainter=inpainter, cell=2, init="gradient", steps=1, **options)
    explainer.explain(mammogram_like(0)[None])  # resolves the classifier's input
    organ_mask = tf.constant(organ()[None, :, :, None], tf.float32)
    optimiser = explainer.optimiser
    return optimiser.gradient_cells(tf.constant(mammogram_like(0)[None]), organ_mask,
                                    optimiser.organ_grid(organ_mask, (64, 64)), tf.constant([1])).numpy()[0, ..., 0]


def test_gradient_init_starts_with_holes_on_the_mass(blob_classifier, mean_inpainter):
    holes = _initial_holes(blob_classifier, mean_inpainter, init_share=0.02, init_sigma=2.0)
    organ_cells = ((organ().reshape(32, 2, 32, 2).mean(axis=(1, 3))) > 0.5).sum()
    assert holes.sum() == round(0.02 * organ_cells)  # exactly the top 2 % of the organ's cells
    on_blob = blob_pixels().reshape(32, 2, 32, 2).any(axis=(1, 3))
    assert (holes & on_blob).sum() == holes.sum()  # all of them on the mass
    wide = _initial_holes(blob_classifier, mean_inpainter, init_share=0.3, init_sigma=2.0)
    assert wide.sum() == round(0.3 * organ_cells)  # more than the gradient reaches: ties, still exact


@pytest.mark.parametrize("option", [{"init_share": 0.1}, {"init_sigma": 8.0}])
def test_gradient_init_options_change_the_output(option, blob_classifier, mean_inpainter):
    base = {"init_share": 0.3, "init_sigma": 2.0}
    assert not np.array_equal(_initial_holes(blob_classifier, mean_inpainter, **base),
                              _initial_holes(blob_classifier, mean_inpainter, **{**base, **option}))


def test_gradient_init_optimised_still_finds_the_mass(blob_classifier, mean_inpainter):
    (e,) = _explain(blob_classifier, mean_inpainter, mammogram_like(0)[None], init="gradient", init_sigma=2.0)
    assert e.score_counterfactual < 0.5 and (e.mask & blob_pixels()).sum() >= 0.9 * e.mask.sum()


def test_budget_area_holds_the_mask_at_the_smallest_budget_that_flips(blob_classifier, mean_inpainter):
    # the blob is 81 px of 2,754 organ px; deleting 28 px of it (1 %) flips the decision
    blob, organ_px = blob_pixels(), organ().sum()
    options = {"area": "budget", "steps": 60, "l3": 3000.0, "budget_every": 15, "grow_steps": 0, "cell": 1,
               "init": "lattice"}
    (e,) = _explain(blob_classifier, mean_inpainter, mammogram_like(0)[None], budgets=(0.005, 0.01, 0.08), **options)
    assert e.score_counterfactual < 0.5
    assert 0.005 * organ_px < e.mask.sum() <= 0.01 * organ_px + 1  # the second budget: the first that flips
    assert (e.mask & blob).sum() == e.mask.sum()  # all of it on the mass
    (wide,) = _explain(blob_classifier, mean_inpainter, mammogram_like(0)[None], budgets=(0.02, 0.08), **options)
    assert 0.01 * organ_px + 1 < wide.mask.sum() <= 0.02 * organ_px + 1  # a larger first budget, a larger mask
    (healthy,) = _explain(blob_classifier, mean_inpainter, mammogram_like(1, blob=False)[None],
                          budgets=(0.005, 0.01, 0.08), **options)
    assert not healthy.mask.any()  # a healthy decision has nothing to flip: no area


@pytest.mark.parametrize("bad", [{"budgets": ()}, {"budgets": (0.02, 0.01)}, {"budgets": (0.5, 1.0)},
                                 {"budget_every": 0}])
def test_bad_budgets_are_refused(bad, tiny_classifier, tiny_inpainter):
    with pytest.raises(ValueError):
        CounterfactualExplainer(tiny_classifier, inpainter=tiny_inpainter, area="budget", **bad)
