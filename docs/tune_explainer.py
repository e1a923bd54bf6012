"""Grid search of the explainer's settings on the validation split (never the test split).

Runs each setting on the first N mass images of a split and prints one markdown row per setting:
D and H (median over all images, pixels at the working size; an empty result mask counts as the
image diagonal, as in ``tfsal evaluate``), the number of empty result masks, D and H over the
images the classifier calls positive, how often
the result mask touches the mass, the area A (share of the breast), the number of connected components, and faithfulness
(the share of classifier-positive images whose score falls below 0.5 when the result mask is
inpainted, and the mean score drop). Settings are JSON objects of explainer options, plus
"method" (default counterfactual).

    python docs/tune_explainer.py --data data/synth --n 48 --settings '[{}, {"l2": 1, "l3": 1}]'
"""

from __future__ import annotations

import json
import time

import numpy as np
from _tuning import load, parser

from tfsal.evaluation.metrics import DECISION_THRESHOLD, count_components, localisation
from tfsal.explain import registry


def score(setting: dict, classifier, inpainter, data: dict, masses) -> dict:
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
    found = [localisation(t, e.mask, masses=m) for t, e, m in zip(truths, explanations, masses, strict=True)]
    d, h = np.array([f["D"] for f in found]), np.array([f["H"] for f in found])
    empty = np.array([f["empty"] for f in found])
    return {
        "method": method, **setting,
        "D": float(np.median(d)), "H": float(np.median(h)),
        "D_positive": float(np.median(d[called])) if called.any() else float("nan"),
        "H_positive": float(np.median(h[called])) if called.any() else float("nan"),
        "empty": int(empty.sum()), "empty_positive": int(empty[called].sum()),
        "hit": float(np.mean([(t & e.mask).any() for t, e in zip(truths, explanations, strict=True)])),
        "A": float(np.mean([e.area_fraction for e in explanations])),
        "components": float(np.mean([count_components(e.mask) for e in explanations])),
        "flip": (float(np.mean([e.score_counterfactual < DECISION_THRESHOLD for e in positive])) if positive
                 else float("nan")),
        "drop": float(np.mean([e.score_original - e.score_counterfactual for e in positive])) if positive else 0.0,
        "positives": len(positive), "seconds_per_image": round(seconds, 3),
    }


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--settings", default="[{}]", help="JSON list of explainer options")
    args = arguments.parse_args()
    classifier, inpainter, data, masses = load(arguments, args)
    print("| setting | D | H | empty | D, H positives | empty positives | hit | A | components | flip | drop "
          "| s/image |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for setting in json.loads(args.settings):
        row = score(setting, classifier, inpainter, data, masses)
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
