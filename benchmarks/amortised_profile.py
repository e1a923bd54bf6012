"""Where the amortised method's time goes, at 256x192 and batch 16 with the shipped models and
mask network (``docs/benchmarks.md``): seconds per image of the whole explanation, of the same with
the breast masks given, of the same without the growth, of the mask network's forward pass alone,
of the classifier's alone, and of the breast masks. Each: one warm-up call, then the best of three
calls on the 16 images of ``benchmarks/methods.py``.

    python benchmarks/amortised_profile.py
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf
from speed import images_for

from tfsal.data.organ import breast_mask
from tfsal.explain.amortised import AmortisedExplainer
from tfsal.models.classifier import load_default_classifier
from tfsal.models.inpainter import load_default_inpainter

BATCH = 16


def seconds_per_image(call, repeats: int = 3) -> float:
    call()
    best = []
    for _ in range(repeats):
        tick = time.perf_counter()
        call()
        best.append(time.perf_counter() - tick)
    return min(best) / BATCH


def main() -> None:
    classifier, inpainter = load_default_classifier(), load_default_inpainter()
    images = images_for((256, 192), BATCH)
    organ = np.stack([breast_mask(image[..., 0]) for image in images])
    explainer = AmortisedExplainer(classifier, inpainter, batch_size=BATCH)
    no_growth = AmortisedExplainer(classifier, inpainter, batch_size=BATCH, grow_steps=0)
    network = tf.function(lambda x: explainer.network(x, training=False))
    forward = tf.function(lambda x: classifier(x, training=False))
    batch = tf.constant(images)
    rows = {
        "explain": lambda: explainer.explain(images),
        "explain, breast masks given": lambda: explainer.explain(images, organ_masks=organ),
        "explain, breast masks given, no growth": lambda: no_growth.explain(images, organ_masks=organ),
        "mask network forward": lambda: network(batch).numpy(),
        "classifier forward": lambda: forward(batch).numpy(),
        "breast masks": lambda: [breast_mask(image[..., 0]) for image in images],
    }
    for name, call in rows.items():
        print(f"{name}: {1000 * seconds_per_image(call):.1f} ms per image", flush=True)


if __name__ == "__main__":
    main()
