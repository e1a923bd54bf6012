"""Seconds per image of every registered explanation method, at each size and batch size.

Each method is built from the registry as ``tfsal explain --method`` builds it (its defaults, the
inpainter given), explains one batch as a warm-up (tracing), then the same images again, timed:
``batch`` images at a time, ``max(batch, 4)`` images in all. At 256x192 the shipped models (and
the shipped mask network for ``amortised``, where one is shipped); at other sizes a MobileNet and a
U-Net of that size with random weights (speed does not depend on the weights) and the growth step
off, as in ``speed.py``, and for ``amortised`` an untrained head on that MobileNet's features.
"""

from __future__ import annotations

import time

from speed import images_for, models_for

from tfsal.errors import TfsalError
from tfsal.explain import registry
from tfsal.explain.amortised import build_feature_mask_network, check_pairing, load_mask_network


def mask_network_for(classifier):
    """The shipped mask network where it is made for ``classifier``, else an untrained head on its features."""
    try:
        network = load_mask_network(None)
        check_pairing(network, classifier)
        return network
    except (TfsalError, ValueError):  # none shipped, or one made for another classifier
        return build_feature_mask_network(classifier)


def method_rows(sizes, batches, steps: int, log, names=None) -> list[dict]:
    """One row per size, batch and method (``names``: these registered methods only; None: all)."""
    rows = []
    for size in sizes:
        classifier, inpainter, extra = models_for(tuple(size))
        network = mask_network_for(classifier)
        for batch in batches:
            images = images_for(size, max(batch, 4))
            for name in names or registry.names():
                method = registry.get(name)
                options = {"steps": steps, "percentile": 90.0, "batch_size": batch, "mask_network": network}
                explainer = method.build(classifier, inpainter=inpainter, **options)
                for key, value in extra.items():  # the growth off at random weights, where the method has one
                    if hasattr(explainer, key):
                        setattr(explainer, key, value)
                explainer.explain(images[:batch])  # warm-up: traces the graphs
                tick = time.perf_counter()
                explainer.explain(images)
                seconds = (time.perf_counter() - tick) / len(images)
                rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "method": name,
                             "seconds_per_image": seconds, "images": len(images)})
                log(rows[-1])
    return rows
