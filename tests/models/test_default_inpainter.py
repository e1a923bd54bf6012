"""The shipped inpainter: loads, keeps known pixels, and inpainting a mass lowers its score."""

import numpy as np
import pytest

from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import load_split
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.evaluation.inpainter_check import inpaint, mass_hole_masks, scores_of
from tfsal.models import load_default_classifier, load_default_inpainter


@pytest.mark.slow
def test_mass_scores_fall_after_the_mass_is_inpainted(tmp_path):
    write_dataset(tmp_path, n_mass=16, n_healthy=0, size=(256, 192), seed=990_002, workers=1)
    classifier, inpainter = load_default_classifier(), load_default_inpainter()
    data = load_split(read_manifest(tmp_path), (256, 192))
    holes = mass_hole_masks(data["mass"], np.random.default_rng(0))
    filled = inpaint(inpainter, data["image"], holes)
    np.testing.assert_array_equal(filled[holes > 0.5], data["image"][holes > 0.5])
    assert np.abs(filled[holes < 0.5] - data["image"][holes < 0.5]).mean() > 0.005  # the mass is replaced
    before, after = scores_of(classifier, data["image"]), scores_of(classifier, filled)
    assert (after < before).mean() >= 0.7
    assert after.mean() < before.mean() - 0.1
