"""Grid search of the explainer's settings on the validation split (never the test split).

Runs each setting on the first N mass images of a split and prints one markdown row per setting:
D and H (median over all images, pixels at the working size; an empty result mask counts as the
image diagonal, as in ``tfsal evaluate``), the number of empty result masks, D and H over the
images the classifier calls positive, how often
the result mask touches the mass, the area A (share of the breast), the number of connected components, and faithfulness
(the share of classifier-positive images whose score falls below 0.5 when the result mask is
inpainted, and the mean score drop). Settings are JSON objects of explainer options, plus
"method" (default counterfactual) and "lever" (issue 16's experiments, ``_levers.py``). With
``--reference sal-blur`` (the default) each row also gives the reference map cut inside the organ
to each image's own result area (the area-matched protocol of ``tfsal evaluate``): its D and H
over the positives, and the median paired difference D(setting) - D(reference) over the
positives (negative: the setting lands nearer the mass) with its bootstrap 95 % interval and the
one-sided paired Wilcoxon p (the setting nearer), as ``tfsal evaluate`` tests, for D and for H.

    python docs/tune_explainer.py --data data/synth --n 48 --settings '[{}, {"l2": 1, "l3": 1}]'
"""

from __future__ import annotations

import json
import time

import _levers as levers
import numpy as np
from _levers import LEVER_KEYS
from _tuning import load, parser

from tfsal.evaluation.metrics import DECISION_THRESHOLD, count_components, localisation
from tfsal.evaluation.statistics import compare
from tfsal.explain import registry
from tfsal.explain.explanation import organ_ranks


def reference_maps(method: str, classifier, data: dict) -> np.ndarray:
    """The reference method's maps ``[N, H, W]`` of the mass images (target 1)."""
    explainer = registry.get(method).load()(classifier, batch_size=16)
    explanations = explainer.explain(data["image"], organ_masks=data["organ"][..., 0] > 0.5)
    return np.stack([e.saliency for e in explanations])


def area_matched(maps, explanations, data, truths, masses) -> tuple[np.ndarray, np.ndarray]:
    """D and H of each map's top pixels inside the organ, as many as the explanation's own mask has."""
    found = []
    for saliency, e, organ, truth, m in zip(maps, explanations, data["organ"][..., 0] > 0.5, truths, masses,
                                            strict=True):
        region = organ_ranks(saliency, organ) < int(e.mask.sum())
        found.append(localisation(truth, region, masses=m))
    return np.array([f["D"] for f in found]), np.array([f["H"] for f in found])


def score(setting: dict, classifier, inpainter, data: dict, masses, reference=None) -> dict:
    setting = dict(setting)
    method = setting.pop("method", "counterfactual")
    options = {k: v for k, v in setting.items() if k not in LEVER_KEYS or k == "steps"}
    explainer = registry.get(method).load()(classifier, inpainter=inpainter, **{"batch_size": 16, **options})
    explainer = levers.apply(explainer, setting)
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
    compared = {}
    if reference is not None and called.any():
        ref_d, ref_h = area_matched(reference, explanations, data, truths, masses)
        compared = {"D_reference": float(np.median(ref_d[called])), "H_reference": float(np.median(ref_h[called]))}
        for name, ours, theirs in (("D", d, ref_d), ("H", h, ref_h)):
            test = compare(ours[called], theirs[called], alternative="less")
            compared.update({f"{name}_minus_reference": test["median_difference"],
                             f"{name}_interval": test["interval"], f"{name}_p": test["p"]})
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
        "positives": len(positive), "seconds_per_image": round(seconds, 3), **compared,
    }


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--settings", default="[{}]", help="JSON list of explainer options")
    arguments.add_argument("--reference", default="sal-blur",
                           help="map method cut to each result's area for comparison ('none': no comparison)")
    args = arguments.parse_args()
    classifier, inpainter, data, masses = load(arguments, args)
    reference = None if args.reference == "none" else reference_maps(args.reference, classifier, data)
    print("| setting | D | H | empty | D, H positives | empty positives | hit | A | components | flip | drop "
          f"| s/image | {args.reference} D, H at equal area | D, H minus it [95 % interval] p |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for setting in json.loads(args.settings):
        row = score(setting, classifier, inpainter, data, masses, reference)
        name = json.dumps(setting, separators=(",", ":"))
        versus = (f"{row['D_reference']:.1f}, {row['H_reference']:.1f} | " + ", ".join(
            f"{row[k + '_minus_reference']:+.1f} [{row[k + '_interval'][0]:+.1f}, {row[k + '_interval'][1]:+.1f}] "
            f"p {row[k + '_p']:.2g}" for k in "DH")) if "D_reference" in row else "- | -"
        print(f"| `{name}` | {row['D']:.1f} | {row['H']:.1f} | {row['empty']} | {row['D_positive']:.1f}, "
              f"{row['H_positive']:.1f} | {row['empty_positive']} | {row['hit']:.2f} | {row['A']:.3f} | "
              f"{row['components']:.1f} | {row['flip']:.2f} ({row['positives']}) | {row['drop']:.2f} | "
              f"{row['seconds_per_image']:.2f} | {versus} |", flush=True)
        if args.out:
            with open(args.out, "a") as handle:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
