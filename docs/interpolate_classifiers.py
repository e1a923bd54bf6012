"""Classifiers on the straight line between two fine-tunings of one network (weight-space ensembling).

For two classifiers ``A`` and ``B`` of the same architecture, where ``B`` was fine-tuned from ``A`` (or
both from one start, so that their weights lie in one basin), each ``t`` gives

    theta(t) = (1 - t) * theta_A + t * theta_B,        t in [0, 1],

every weight tensor mixed alike, BatchNorm's moving mean and variance included (they are weights of
the file too; a mixed network's statistics are then an approximation, which evaluating it measures).
``t = 0`` is ``A``, ``t = 1`` is ``B``.

Reference: M. Wortsman, G. Ilharco, J. W. Kim, M. Li, S. Kornblith, R. Roelofs, R. Gontijo-Lopes,
H. Hajishirzi, A. Farhadi, H. Namkoong, L. Schmidt, "Robust fine-tuning of zero-shot models",
CVPR 2022 (WiSE-FT: interpolating a model and its fine-tuning keeps much of the first's robustness
under a change of data and the second's accuracy on its own data). Choose ``t`` on validation
data only (``tfsal evaluate-classifier --split val``); test splits and foreign sets report.

    python docs/interpolate_classifiers.py runs/mix4_ft.keras runs/both_s.keras --t 0.25,0.5,0.75 \\
        --out runs/wise_{t}.keras
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tfsal.models import load_classifier
from tfsal.train.common import save_model


def interpolate(a, b, t: float) -> list[np.ndarray]:
    """``(1 - t) * a + t * b`` for each weight of two Keras models of the same architecture."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1]. Received: t={t}")
    wa, wb = a.get_weights(), b.get_weights()
    if a.to_json() != b.to_json() or [w.shape for w in wa] != [w.shape for w in wb]:
        raise ValueError("the two classifiers differ in architecture; only one network's weights can be mixed")
    return [((1.0 - t) * x + t * y).astype(x.dtype) for x, y in zip(wa, wb, strict=True)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path, help="classifier at t = 0 (.keras)")
    parser.add_argument("b", type=Path, help="classifier at t = 1 (.keras), of the same architecture")
    parser.add_argument("--t", default="0.5", help="comma-separated mixing weights in [0, 1]")
    parser.add_argument("--out", required=True, help="output .keras path; {t} is replaced by each t")
    args = parser.parse_args(argv)
    ts = [float(v) for v in args.t.split(",")]
    if len(ts) > 1 and "{t}" not in args.out:
        parser.error("several --t values need {t} in --out")
    a, b = load_classifier(args.a), load_classifier(args.b)
    for t in ts:
        try:
            weights = interpolate(a, b, t)
        except ValueError as exc:
            parser.error(str(exc))
        a_copy = load_classifier(args.a)
        a_copy.set_weights(weights)
        out = Path(args.out.replace("{t}", f"{t:g}"))
        save_model(a_copy, out)
        print(f"t = {t:g}: {out}")


if __name__ == "__main__":
    main()
