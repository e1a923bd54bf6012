"""The model-randomisation sanity check (Adebayo et al. 2018): an explanation must depend on the
weights. Each explainer's map for the trained blob detector and for the same network with
re-initialised weights must differ clearly."""

import keras
import numpy as np
import pytest

from tfsal.explain import registry

from .conftest import mammogram_like, organ


def _similarity(a, b, inside):
    a, b = a[inside], b[inside]
    if a.std() == 0 or b.std() == 0:
        return 0.0 if a.std() != b.std() else float(np.allclose(a, b))
    return float(np.corrcoef(a, b)[0, 1])


@pytest.mark.parametrize("name", [n for n in registry.names() if not registry.get(n).for_one_classifier])
def test_a_reinitialised_classifier_gives_a_different_map(name, blob_classifier, mean_inpainter):
    keras.utils.set_random_seed(1)
    random = keras.models.clone_model(blob_classifier)  # same architecture, fresh random weights
    method = registry.get(name)  # each method takes the options it names (the registry's routing)
    image, inside = mammogram_like(0)[None], organ()
    # the blob detector has one conv stage: Grad-CAM's "earlier block" is named (the only conv layer)
    if name == "gradcam-early":
        def build(model):
            return method.load()(model, layer="local_mean")
    else:
        def build(model):
            return method.build(model, inpainter=mean_inpainter, steps=40)
    trained = build(blob_classifier).explain(image, organ_masks=[inside])[0]
    reinitialised = build(random).explain(image, organ_masks=[inside])[0]
    assert _similarity(trained.saliency, reinitialised.saliency, inside) < 0.5
