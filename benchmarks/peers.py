"""tfsal's explainers beside xplique's on the same classifier and the same images: seconds per
image, and localisation D and H of every map thresholded the same way.

The images are the first N mass images of a synthetic set's test split at the classifier's input
size. Every map is thresholded as the paper thresholds SAL and CAM: the top 10 % of its values
inside the breast (``percentile_mask(map, breast, 90)``). The counterfactual method is also
scored with its own result mask (``M < 0.5``), which is what ``tfsal explain`` writes. D and H
(``tfsal.evaluation.metrics``) are in working-size pixels, the median over images whose mask is not
empty; "largest" keeps the mask's largest connected component, as the paper's evaluation does.

xplique (2.0.2) is imported only here and runs in the benchmark's own environment
(``benchmarks/requirements-peers.txt``); without it only tfsal's rows are measured.
"""

from __future__ import annotations

import time

import numpy as np

from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import load_split
from tfsal.evaluation.metrics import centre_distance, hausdorff_distance, largest_component
from tfsal.explain import registry
from tfsal.explain.baselines import last_conv_layer
from tfsal.explain.explanation import percentile_mask
from tfsal.explain.scoring import resize_maps

PERCENTILE = 90.0
OCCLUSION = {"patch_size": 32, "patch_stride": 16}  # a large mass's size at 256 rows, half overlapping
RISE_SAMPLES = 1000  # xplique's default is 4000; a quarter keeps the benchmark under an hour on 2 cores


def mass_images(data, size, count: int, split: str = "test") -> dict:
    """The first ``count`` mass images of a split, with their breast and mass masks, at ``size``."""
    records = [r for r in read_manifest(data, split=split) if r.label == 1][:count]
    return load_split(records, size)


def _tfsal_methods(classifier, inpainter, names=None) -> dict:
    """Every registered method (``names``: these only); only mask methods get the inpainter (map
    methods are timed without inpainting their masks, as the peers' maps are)."""
    def build(method):
        return method.build(classifier, batch_size=16, inpainter=inpainter if method.kind == "mask" else None)

    return {name: (lambda name=name: build(registry.get(name))) for name in names or registry.names()}


def _xplique_methods(classifier) -> dict:
    try:
        from xplique.attributions import GradCAM, Occlusion, Rise, Saliency
    except ImportError:
        return {}
    layer = last_conv_layer(classifier).name  # the layer tfsal's Grad-CAM uses
    return {"Saliency": lambda: Saliency(classifier, batch_size=16),
            "GradCAM": lambda: GradCAM(classifier, conv_layer=layer, batch_size=16),
            "Occlusion": lambda: Occlusion(classifier, batch_size=64, **OCCLUSION),
            "RISE": lambda: Rise(classifier, nb_samples=RISE_SAMPLES, batch_size=64)}


def _maps_tfsal(explainer, images, organs):
    explanations = explainer.explain(images, organ_masks=organs)
    maps = np.stack([e.saliency for e in explanations])
    own = np.stack([e.mask for e in explanations]) if registry.get(explainer.method).kind == "mask" else None
    return maps, own


def _maps_xplique(explainer, images, organs):
    targets = np.ones((len(images), 1), np.float32)  # the classifier's one sigmoid unit: p(mass)
    maps = np.asarray(explainer(images, targets), np.float32)
    maps = maps.reshape(maps.shape[:3]) if maps.ndim == 4 else maps
    return resize_maps(maps, images.shape[1:3]), None


def localisation(truths: np.ndarray, masks: np.ndarray) -> dict:
    """Median D and H over the images with a non-empty mask, raw and largest component."""
    row = {"empty": int(sum(not m.any() for m in masks))}
    for name, chosen in (("", masks), ("_largest", [largest_component(m) for m in masks])):
        d = [centre_distance(t, m) for t, m in zip(truths, chosen, strict=True)]
        h = [hausdorff_distance(t, m) for t, m in zip(truths, chosen, strict=True)]
        row[f"D{name}"], row[f"H{name}"] = float(np.nanmedian(d)), float(np.nanmedian(h))
    return row


def peer_rows(data, classifier, inpainter, count: int, log=print, names=None) -> list[dict]:
    """One row per method (tfsal's: every registered one, or ``names``) and mask rule."""
    split = mass_images(data, tuple(classifier.input_shape[1:3]), count)
    images = split["image"].astype(np.float32)
    organs = split["organ"][..., 0] > 0.5
    truths = split["mass"][..., 0] > 0.5
    rows = []
    methods = [("tfsal", name, make, _maps_tfsal)
               for name, make in _tfsal_methods(classifier, inpainter, names).items()]
    methods += [("xplique", name, make, _maps_xplique) for name, make in _xplique_methods(classifier).items()]
    if not any(toolbox == "xplique" for toolbox, *_ in methods):
        log({"note": "xplique is not installed: see benchmarks/requirements-peers.txt"})
    for toolbox, name, make, run in methods:
        explainer = make()
        run(explainer, images[:2], organs[:2])  # warm-up: traces the graphs
        tick = time.perf_counter()
        maps, own = run(explainer, images, organs)
        seconds = (time.perf_counter() - tick) / len(images)
        masks = np.stack([percentile_mask(m, o, PERCENTILE) for m, o in zip(maps, organs, strict=True)])
        rows.append({"toolbox": toolbox, "method": name, "mask": f"top {100 - PERCENTILE:.0f} %",
                     "seconds_per_image": seconds, **localisation(truths, masks), "images": len(images)})
        log(rows[-1])
        if own is not None:
            rows.append({"toolbox": toolbox, "method": name, "mask": "its own (M < 0.5)",
                         "seconds_per_image": seconds, **localisation(truths, own), "images": len(images)})
            log(rows[-1])
    return rows
