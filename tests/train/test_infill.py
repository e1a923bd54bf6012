import numpy as np
import pytest

from tfsal.data.holes import blob_hole_mask
from tfsal.data.pipelines import classification_dataset
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.models.inpainter import build_inpainter
from tfsal.train.infill import InfillAugmentation


def test_blob_mask_covers_the_share_and_avoids_the_region():
    organ = np.zeros((64, 48), bool)
    organ[8:56, 4:44] = True
    avoid = np.zeros_like(organ)
    avoid[20:30, 10:20] = True
    mask = blob_hole_mask(np.random.default_rng(0), organ, 0.3, avoid)
    holes = mask < 0.5
    assert holes[organ & ~avoid].mean() == pytest.approx(0.3, abs=0.01)
    assert not (holes & (avoid | ~organ)).any()
    assert blob_hole_mask(np.random.default_rng(0), organ, 0.0).min() == 1


def test_probability_decides_whether_an_image_gets_holes():
    organ = np.ones((32, 32, 1), np.float32)
    mass = np.zeros_like(organ)
    never = InfillAugmentation(inpainter=None, probability=0.0)
    always = InfillAugmentation(inpainter=None, probability=1.0, fraction=(0.2, 0.2))
    seed = np.array([1, 2])
    assert never.hole_mask(seed, organ, mass).min() == 1
    assert (always.hole_mask(seed, organ, mass) < 0.5).mean() == pytest.approx(0.2, abs=0.01)
    np.testing.assert_array_equal(always.hole_mask(seed, organ, mass), always.hole_mask(seed, organ, mass))


@pytest.mark.parametrize("kwargs, message", [({"probability": 1.5}, "probability"),
                                             ({"fraction": (0.5, 0.1)}, "fraction")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InfillAugmentation(inpainter=None, **kwargs)


def test_classification_dataset_inpaints_healthy_regions_only(tmp_path):
    write_dataset(tmp_path, n_mass=3, n_healthy=3, size=(64, 48), seed=2, workers=1)
    infill = InfillAugmentation(build_inpainter((64, 48), base_filters=4, max_filters=8), probability=1.0,
                                fraction=(0.3, 0.3), batch_size=4)
    plain = next(iter(classification_dataset(tmp_path, (64, 48), batch_size=6, training=True, augment=False)))
    filled = next(iter(classification_dataset(tmp_path, (64, 48), batch_size=6, training=True, augment=False,
                                              infill=infill)))
    np.testing.assert_array_equal(plain[1].numpy(), filled[1].numpy())  # labels kept, same order
    changed = np.abs(plain[0].numpy() - filled[0].numpy()) > 1e-6
    assert changed.any()
    assert changed.mean() < 0.35  # only the holes changed
