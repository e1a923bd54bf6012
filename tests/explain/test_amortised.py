"""The amortised explainer and the training of its mask network, with the blob classifier and the
mean inpainter of ``conftest.py`` (a known right answer: delete the bright blob)."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from tfsal.errors import TfsalError
from tfsal.explain.amortised import AmortisedExplainer, build_mask_network
from tfsal.train.explainer import ExplainerSettings, train_explainer

from .conftest import SIZE, organ

RADIUS = 5


def _blob_image(rng, centre=None):
    """Textured tissue in the half-ellipse, with a bright disc at ``centre`` (None: no disc)."""
    image = np.where(organ(), 0.35 + 0.1 * rng.random((SIZE, SIZE)), 0.0)
    truth = np.zeros((SIZE, SIZE), bool)
    if centre is not None:
        y, x = np.mgrid[0:SIZE, 0:SIZE]
        truth = (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= RADIUS ** 2
        image[truth] = 0.95
    return image.astype(np.float32), truth


def _centre(rng):
    return int(rng.integers(14, SIZE - 14)), int(rng.integers(8, 36))


@pytest.fixture(scope="module")
def blob_data(tmp_path_factory):
    """A manifest of 48 training and 12 validation images, half with a blob somewhere in the breast."""
    root = tmp_path_factory.mktemp("blobs")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        mass = i % 2 == 0
        image, _ = _blob_image(rng, _centre(rng) if mass else None)
        cv2.imwrite(str(root / "images" / f"b{i:02d}.png"), np.round(image * 65535).astype(np.uint16))
        rows.append({"image": f"images/b{i:02d}.png", "label": int(mass), "mask": "",
                     "split": "train" if i < 48 else "val"})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["image", "label", "mask", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_the_network_maps_an_image_to_the_optimisers_cell_grid():
    def grid(network, size):
        return tuple(network(np.zeros((1, *size, 1), np.float32)).shape[1:])

    network = build_mask_network((64, 48), filters=(8, 8, 8))
    assert grid(network, (64, 48)) == (8, 6, 1)  # 8 px cells
    assert grid(network, (96, 40)) == (12, 5, 1)  # any size
    assert np.allclose(network(np.zeros((2, 64, 48, 1), np.float32)).numpy(), 2.0)  # the bias: every cell kept
    assert grid(build_mask_network((256, 192)), (256, 192)) == (32, 24, 1)  # the optimiser's 8 px at 256
    assert grid(build_mask_network((64, 64)), (64, 64)) == (32, 32, 1)  # and its 2 px at 64
    assert grid(build_mask_network((70, 50), filters=(8, 8)), (70, 50)) == (18, 13, 1)  # ceil, 4 px


def test_an_untrained_network_proposes_nothing_and_a_deleting_one_everything(blob_classifier, mean_inpainter):
    rng = np.random.default_rng(1)
    image, _ = _blob_image(rng, (30, 20))
    keeps = build_mask_network((SIZE, SIZE))
    (kept,) = AmortisedExplainer(blob_classifier, mean_inpainter, keeps, grow_steps=0).explain(image[None])
    assert not kept.mask.any() and kept.score_counterfactual == pytest.approx(kept.score_original, abs=1e-6)
    deletes = build_mask_network((SIZE, SIZE), bias=-3.0)
    (deleted,) = AmortisedExplainer(blob_classifier, mean_inpainter, deletes, grow_steps=0).explain(image[None])
    assert (deleted.mask == deleted.organ).all()  # inside the breast only
    assert deleted.score_counterfactual < 0.5 <= deleted.score_original  # the inpainter's, not a guess


def test_another_target_than_its_training_is_refused(blob_classifier, mean_inpainter):
    explainer = AmortisedExplainer(blob_classifier, mean_inpainter, build_mask_network((SIZE, SIZE)))
    with pytest.raises(ValueError, match="explains class 1"):
        explainer.explain(np.zeros((1, SIZE, SIZE, 1), np.float32), targets=0)
    with pytest.raises(TfsalError, match="mask network file not found"):
        AmortisedExplainer(blob_classifier, mean_inpainter, "no_such.keras")
    with pytest.raises(ValueError, match="features of another classifier"):  # the shipped one is the shipped models'
        AmortisedExplainer(blob_classifier, mean_inpainter)


def test_trained_on_the_optimisers_loss_it_finds_blobs_it_never_saw(blob_data, blob_classifier, mean_inpainter,
                                                                   tmp_path):
    epochs = []
    settings = ExplainerSettings(epochs=20, batch_size=8, lr=1e-2, delete_weight=50.0, patience=20)
    summary = train_explainer(blob_data, tmp_path / "net.keras", settings, progress=False, report=epochs.append,
                              classifier=blob_classifier, inpainter=mean_inpainter)
    assert (tmp_path / "net.keras").is_file() and summary["epochs_run"] == 20 == len(epochs)
    assert epochs[-1]["loss"] < epochs[0]["loss"] and summary["best_val_flipped"] >= 0.8
    assert len(list((tmp_path / "net.keras.ckpt").glob("teacher-*.npz"))) == 2  # the optimiser's, kept
    explainer = AmortisedExplainer(blob_classifier, mean_inpainter, str(tmp_path / "net.keras"))
    rng = np.random.default_rng(7)
    cases = [_blob_image(rng, _centre(rng)) for _ in range(6)]
    explanations = explainer.explain(np.stack([c[0] for c in cases])[..., None])
    for (_, truth), e in zip(cases, explanations, strict=True):
        assert e.score_original >= 0.5 > e.score_counterfactual  # verified: the inpainting flips it
        near = cv2.dilate(truth.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the blob and 2 px around it
        assert e.mask.any() and (e.mask & near).sum() >= 0.8 * e.mask.sum()  # the region is on the blob
    healthy, _ = _blob_image(rng)
    (nothing,) = explainer.explain(healthy[None, ..., None])
    assert nothing.score_original < 0.5 and nothing.area_fraction < 0.02


def test_a_resumed_run_goes_on_and_other_models_are_refused(blob_data, blob_classifier, mean_inpainter, tmp_path):
    """Distillation then the objective, resumed between them; the teacher's chunks are not recomputed."""
    first = ExplainerSettings(epochs=1, objective_epochs=1, teacher_steps=5, batch_size=16)
    train_explainer(blob_data, tmp_path / "n.keras", first, progress=False, classifier=blob_classifier,
                    inpainter=mean_inpainter)
    chunks = {p: p.stat().st_mtime_ns for p in (tmp_path / "n.keras.ckpt").glob("teacher-*.npz")}
    more = ExplainerSettings(epochs=1, objective_epochs=2, teacher_steps=5, batch_size=16)
    epochs = []
    summary = train_explainer(blob_data, tmp_path / "n.keras", more, resume=True, progress=False,
                              report=epochs.append, classifier=blob_classifier, inpainter=mean_inpainter)
    assert summary["epochs_run"] == 3 and [(e["phase"], e["epoch"]) for e in epochs] == [("objective", 1)]
    assert chunks and all(p.stat().st_mtime_ns == t for p, t in chunks.items())
    other = build_mask_network((SIZE, SIZE))  # any other model stands in for another classifier
    with pytest.raises(TfsalError, match="cannot resume with other settings"):
        train_explainer(blob_data, tmp_path / "n.keras", more, resume=True, progress=False,
                        classifier=blob_classifier, inpainter=other)
