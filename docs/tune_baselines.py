"""Grid search of the map baselines' free parameters on the validation split (never the test split).

Each setting's maps on the first N mass images of the split are scored as ``tfsal evaluate``
scores them (every image counted; an empty region is the image diagonal):

- D and H (median over images, pixels at the working size) of the top 2 % and the top 5 % of the
  breast, ties broken as everywhere (``top_share_mask``);
- the deletion area under the curve with the blur marginaliser (``evaluation.curves``; lower is
  better), which needs no inpainter and so cannot favour a method through it.

The chosen setting of a method is the one with the lowest median D at 2 % (the area ours keeps,
see ``docs/evaluation.md``); H and the deletion area are printed beside it so a reader can see what
the choice costs. Settings are JSON objects: ``"method"`` plus that explainer's options.

    python docs/tune_baselines.py --data data/synth --n 48 --grid default --out tuning.jsonl
    python docs/tune_baselines.py --data data/synth --settings '[{"method": "sal-blur", "sigma": 8}]'
"""

from __future__ import annotations

import json
import time

import numpy as np
from _tuning import load, parser

from tfsal.evaluation.curves import curve_area, curve_scores
from tfsal.evaluation.metrics import localisation
from tfsal.explain import registry
from tfsal.explain.classifier_adapter import ClassifierAdapter
from tfsal.explain.explanation import organ_ranks, top_share_mask
from tfsal.explain.infill import BlurFill

SHARES = (0.02, 0.05)

#: The grids of ``--grid default`` (3 reference rows, CAM, Grad-CAM and SAL, which have no
#: free parameter, and 46 settings of the others). Ours had a grid of 16+ settings (``docs/explain.md``).
GRID = (
    [{"method": m} for m in ("sal", "cam", "gradcam")]  # no free parameter: for reference
    + [{"method": "sal-blur", "sigma": s} for s in (1, 2, 4, 6, 8, 12, 16, 24, 32)]
    + [{"method": "smoothgrad", "noise": n, "samples": k} for n in (0.05, 0.1, 0.2, 0.3) for k in (16, 32)]
    + [{"method": "ig", "steps": k, "baseline": b, "sign": g} for k in (16, 32) for b in ("black", "blur")
       for g in ("abs", "positive")]
    + [{"method": "gradcam-early", "factor": f} for f in (2, 4)]
    + [{"method": "occlusion", "window": w} for w in (16, 24, 32, 48, 64)]
    + [{"method": "rise", "cells": c, "keep_probability": q} for c in (4, 6, 8, 12) for q in (0.25, 0.5)]
    + [{"method": "extremal", "areas": a, "cell": c} for a in ((0.01, 0.02, 0.05), (0.02, 0.05, 0.1),
                                                                (0.05, 0.1, 0.2)) for c in (8, 16)]
)


def maps(setting: dict, classifier, inpainter, data: dict) -> tuple[np.ndarray, float]:
    setting = dict(setting)
    method = registry.get(setting.pop("method"))
    if method.uses_inpainter:
        setting["inpainter"] = inpainter
    explainer = method.load()(classifier, **{"batch_size": 16, **setting})
    organs = data["organ"][..., 0] > 0.5
    tick = time.time()
    explanations = explainer.explain(data["image"], targets=1, organ_masks=organs)
    return np.stack([e.saliency for e in explanations]), (time.time() - tick) / len(explanations)


def score(setting: dict, classifier, inpainter, data: dict, masses) -> dict:
    saliency, seconds = maps(setting, classifier, inpainter, data)
    organs = data["organ"][..., 0] > 0.5
    truths = data["mass"][..., 0] > 0.5
    row = {**setting, "seconds_per_image": round(seconds, 3)}
    for share in SHARES:
        found = [localisation(t, top_share_mask(s, o, share), masses=m)
                 for t, s, o, m in zip(truths, saliency, organs, masses, strict=True)]
        row[f"D@{share}"] = float(np.median([f["D"] for f in found]))
        row[f"H@{share}"] = float(np.median([f["H"] for f in found]))
    adapter = ClassifierAdapter(classifier)
    ranks = np.stack([organ_ranks(s, o) for s, o in zip(saliency, organs, strict=True)])
    targets = np.ones(len(saliency), np.int32)
    start = adapter.target_probability(adapter.probabilities(data["image"]), targets).numpy()
    deletion = curve_scores(adapter, BlurFill(), data["image"], ranks, organs, targets, "deletion")
    row["deletion_blur"] = float(np.mean(curve_area(deletion, start)))
    return row


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--grid", choices=["default"], help="run the GRID above")
    arguments.add_argument("--settings", default="[]", help="JSON list of settings (with --grid: added to it)")
    args = arguments.parse_args()
    classifier, inpainter, data, masses = load(arguments, args)
    settings = (list(GRID) if args.grid else []) + json.loads(args.settings)
    done = set()
    if args.out:
        try:
            with open(args.out) as handle:
                done = {json.dumps(json.loads(line)["setting"], sort_keys=True) for line in handle}
        except FileNotFoundError:
            pass
    print("| setting | D@2% | H@2% | D@5% | H@5% | deletion AUC (blur) | s/image |\n|---|---|---|---|---|---|---|")
    for setting in settings:
        key = json.dumps(setting, sort_keys=True)
        if key in done:
            continue
        row = score(setting, classifier, inpainter, data, masses)
        print(f"| `{json.dumps(setting, separators=(',', ':'))}` | {row['D@0.02']:.1f} | {row['H@0.02']:.1f} | "
              f"{row['D@0.05']:.1f} | {row['H@0.05']:.1f} | {row['deletion_blur']:.3f} | "
              f"{row['seconds_per_image']:.2f} |", flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps({"setting": setting, **row}) + "\n")


if __name__ == "__main__":
    main()
