"""Grid search of the explainer's settings on the validation split (never the test split).

Runs each setting on the first N mass images of a split and prints one markdown row per setting:
D and H (median over images with a non-empty result mask, pixels at the working size), the
number of empty result masks, D and H over the images the classifier calls positive, how often
the result mask touches the mass, the area A (share of the breast), the number of connected components, and faithfulness
(the share of classifier-positive images whose score falls below 0.5 when the result mask is
inpainted, and the mean score drop). Settings are JSON objects of explainer options, plus
"method" (default counterfactual).

    python docs/tune_explainer.py --data data/synth --n 48 --settings '[{}, {"l2": 1, "l3": 1}]'
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import load_split
from tfsal.evaluation.metrics import DECISION_THRESHOLD, centre_distance, hausdorff_distance
from tfsal.explain import registry
from tfsal.models.classifier import load_classifier, load_default_classifier
from tfsal.models.inpainter import load_default_inpainter, load_inpainter


def score(setting: dict, classifier, inpainter, data: dict) -> dict:
    setting = dict(setting)
    method = setting.pop("method", "counterfactual")
    explainer = registry.get(method).load()(classifier, inpainter=inpainter, **{"batch_size": 16, **setting})
    explainer.explain(data["image"][:explainer.batch_size])  # warm-up: the seconds leave out tracing
    tick = time.time()
    explanations = explainer.explain(data["image"], organ_masks=data["organ"][..., 0] > 0.5)
    seconds = (time.time() - tick) / len(explanations)
    truths = [m[..., 0] > 0.5 for m in data["mass"]]
    called = np.array([e.score_original >= DECISION_THRESHOLD for e in explanations])
    positive = [e for e, c in zip(explanations, called, strict=True) if c]
    d = np.array([centre_distance(t, e.mask) for t, e in zip(truths, explanations, strict=True)])
    h = np.array([hausdorff_distance(t, e.mask) for t, e in zip(truths, explanations, strict=True)])
    return {
        "method": method, **setting,
        "D": float(np.nanmedian(d)), "H": float(np.nanmedian(h)),
        "D_positive": float(np.nanmedian(d[called])), "H_positive": float(np.nanmedian(h[called])),
        "empty": int(np.isnan(d).sum()), "empty_positive": int(np.isnan(d[called]).sum()),
        "hit": float(np.mean([(t & e.mask).any() for t, e in zip(truths, explanations, strict=True)])),
        "A": float(np.mean([e.area_fraction for e in explanations])),
        "components": float(np.mean([_count(e.mask) for e in explanations])),
        "flip": (float(np.mean([e.score_counterfactual < DECISION_THRESHOLD for e in positive])) if positive
                 else float("nan")),
        "drop": float(np.mean([e.score_original - e.score_counterfactual for e in positive])) if positive else 0.0,
        "positives": len(positive), "seconds_per_image": round(seconds, 3),
    }


def _count(mask) -> int:
    from scipy import ndimage

    return int(ndimage.label(mask)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=48, help="mass images used")
    parser.add_argument("--classifier")
    parser.add_argument("--inpainter")
    parser.add_argument("--settings", default="[{}]", help="JSON list of explainer options")
    parser.add_argument("--out", help="append the rows as JSON lines to this file")
    args = parser.parse_args()
    classifier = load_classifier(args.classifier) if args.classifier else load_default_classifier()
    inpainter = load_inpainter(args.inpainter) if args.inpainter else load_default_inpainter()
    records = [r for r in read_manifest(args.data, split=args.split) if r.label == 1][:args.n]
    data = load_split(records, tuple(classifier.input_shape[1:3]))
    print("| setting | D | H | empty | D, H positives | empty positives | hit | A | components | flip | drop "
          "| s/image |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for setting in json.loads(args.settings):
        row = score(setting, classifier, inpainter, data)
        name = json.dumps(setting, separators=(",", ":"))
        print(f"| `{name}` | {row['D']:.1f} | {row['H']:.1f} | {row['empty']} | {row['D_positive']:.1f}, "
              f"{row['H_positive']:.1f} | {row['empty_positive']} | {row['hit']:.2f} | {row['A']:.3f} | "
              f"{row['components']:.1f} | {row['flip']:.2f} ({row['positives']}) | {row['drop']:.2f} | "
              f"{row['seconds_per_image']:.2f} |", flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
