"""The shipped classifier (saved_models/classifier.keras) loads and separates masses.

On a small synthetic set drawn with a seed that training never used, its ROC AUC must be far
above chance; saved_models/README.md gives the full-size figures and the command behind them.
"""

import numpy as np
import pytest

from tfsal.data.manifest import read_manifest
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.evaluation.classifier_metrics import predict_manifest
from tfsal.evaluation.metrics import roc_auc
from tfsal.models import load_default_classifier


def test_loads_with_the_default_input_size():
    model = load_default_classifier()
    assert model.input_shape == (None, 256, 192, 1) and model.output_shape == (None, 1)


@pytest.mark.slow
def test_separates_masses_on_unseen_synthetic_images(tmp_path):
    write_dataset(tmp_path, n_mass=40, n_healthy=40, size=(256, 192), seed=990_001, workers=1)
    records = read_manifest(tmp_path)
    scores = predict_manifest(load_default_classifier(), records)
    labels = np.array([r.label for r in records])
    assert roc_auc(labels, scores) > 0.75
