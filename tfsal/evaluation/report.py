"""Writing an evaluation: ``results.json``, ``results.md`` (the paper's Tables 1 and 2 and the
faithfulness table), ``roc.png`` (Fig. 2) and ``cases.png`` (a Fig. 3-like grid)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tfsal.evaluation.evaluate import PAPER_SIZE, PERCENTILES, POSTS, REFERENCE, Evaluation
from tfsal.explain import registry
from tfsal.util import atomic


def label(name: str) -> str:
    """A method's (or evaluation row's) name in tables, from :mod:`tfsal.explain.registry`."""
    method, row = registry.evaluation_rows()[name]
    return method.variants[row].label if row in method.variants else method.label


def _map_methods(summary: dict) -> list[str]:
    """The map methods evaluated, in registry order."""
    return [name for name, (method, _) in registry.evaluation_rows().items()
            if method.kind == "map" and f"{name}@{PERCENTILES[0]}" in summary]


def _cell(summary: dict, key: str, metric: str, digits: int) -> str:
    value = summary.get(key, {}).get(metric)
    if value is None or not math.isfinite(value[0]):
        return "–"
    return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def _p(tests: dict, key: str, metric: str) -> str:
    value = tests.get(key, {}).get(metric)
    if value is None or not math.isfinite(value["p"]):
        return "–"
    return f"{value['p']:.1e}"


def _table1(evaluation: Evaluation, post: str, paper: bool) -> list[str]:
    summary, tests = evaluation.summary[post], evaluation.tests[post]
    d, h = ("D_paper", "H_paper") if paper else ("D", "H")
    baselines = _map_methods(summary)
    head = ["P", *[f"D {label(m)}" for m in [REFERENCE, *baselines]],
            *[f"H {label(m)}" for m in [REFERENCE, *baselines]]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for percentile in PERCENTILES:
        row = [str(percentile), _cell(summary, REFERENCE, d, 1), *[_cell(summary, f"{b}@{percentile}", d, 1)
                                                               for b in baselines],
               _cell(summary, REFERENCE, h, 1), *[_cell(summary, f"{b}@{percentile}", h, 1) for b in baselines]]
        lines.append("| " + " | ".join(row) + " |")
    variants = [key for key in summary if "@" not in key and key != REFERENCE]
    for variant in variants:
        if variant in summary:
            blank = ["–"] * len(baselines)
            lines.append("| " + " | ".join([label(variant), _cell(summary, variant, d, 1), *blank,
                                            _cell(summary, variant, h, 1), *blank]) + " |")
    if REFERENCE in summary and baselines:
        lines += ["", "Wilcoxon signed-rank p-values, ours against each baseline (paired per image):", "",
                  "| P | " + " | ".join(f"D vs {label(b)}" for b in baselines) + " | "
                  + " | ".join(f"H vs {label(b)}" for b in baselines) + " |",
                  "|" + "---|" * (1 + 2 * len(baselines))]
        for percentile in PERCENTILES:
            lines.append(f"| {percentile} | " + " | ".join(_p(tests, f"{b}@{percentile}", "D") for b in baselines)
                         + " | " + " | ".join(_p(tests, f"{b}@{percentile}", "H") for b in baselines) + " |")
    return lines


def _table2(evaluation: Evaluation, post: str) -> list[str]:
    summary, tests = evaluation.summary[post], evaluation.tests[post]
    baselines = _map_methods(summary)
    head = ["P", *[f"A {label(m)}" for m in [REFERENCE, *baselines]], "O ours-CAM", "O ours-SAL",
            *[f"p A vs {label(b)}" for b in baselines]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for percentile in PERCENTILES:
        row = [str(percentile), _cell(summary, REFERENCE, "A", 3),
               *[_cell(summary, f"{b}@{percentile}", "A", 3) for b in baselines],
               _cell(summary, f"cam@{percentile}", "O", 3), _cell(summary, f"sal@{percentile}", "O", 3),
               *[_p(tests, f"{b}@{percentile}", "A") for b in baselines]]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _faithfulness(evaluation: Evaluation) -> list[str]:
    summary = evaluation.summary["raw"]
    lines = ["| method | P | flipped below 0.5 | mean score drop | A | empty masks |", "|---|---|---|---|---|---|"]
    for key, entry in summary.items():
        method, _, percentile = key.partition("@")
        flip = entry.get("flip", float("nan"))
        lines.append(f"| {label(method)} | {percentile or '–'} | "
                     f"{'–' if not math.isfinite(flip) else f'{flip:.2f}'} ({entry.get('positives', 0)}) | "
                     f"{entry.get('drop', float('nan')):.3f} | {_cell(summary, key, 'A', 3)} | {entry['empty']} |")
    return lines


def write_markdown(evaluation: Evaluation, path: Path, command: str) -> None:
    s = evaluation.settings
    height, width = evaluation.size
    positives = next(iter(evaluation.summary["raw"].values())).get("positives", 0)
    lines = [f"# Evaluation on the {s['split']!r} split", "",
             f"`{command}`", "",
             f"{evaluation.images} mass images ({positives} called positive by the classifier), evaluated at "
             f"{height}x{width}. Mean ± std over the images with a non-empty result mask (the empty ones are "
             "counted in the faithfulness table). D, H in pixels.", ""]
    for post in POSTS:
        title = "raw result masks" if post == "raw" else "every mask reduced to its largest connected component"
        for paper in (False, True):
            unit = f"pixels of {PAPER_SIZE[0]}x{PAPER_SIZE[1]}" if paper else f"pixels of {height}x{width}"
            lines += [f"## Table 1: D and H, {title}, {unit}", "", *_table1(evaluation, post, paper), ""]
        lines += [f"## Table 2: A and O, {title}", "", *_table2(evaluation, post), ""]
    lines += ["## Faithfulness: each method's raw mask inpainted", "",
              "Share of the classifier-positive images whose score falls below 0.5, their mean score drop, "
              "and the mask's share of the breast.", "", *_faithfulness(evaluation), ""]
    atomic.write_text(path, "\n".join(lines))


def write_json(evaluation: Evaluation, path: Path) -> None:
    per_image = [{f"{post}:{key}": values for (post, key), values in image.items()} for image in
                 evaluation.per_image]
    document = {"settings": evaluation.settings, "images": evaluation.images, "size": list(evaluation.size),
                "summary": evaluation.summary, "tests": evaluation.tests, "per_image": per_image}
    atomic.write_text(path, json.dumps(document, indent=1, default=_plain) + "\n")


def _plain(value):
    if isinstance(value, (np.bool_, np.integer)):
        return value.item()
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value).__name__)


def write_cases(records, classifier, inpainter, path: Path, count: int = 4, batch_size: int = 16) -> None:
    """Fig. 3: original with the ground-truth contour, ours, CAM and SAL (P = 50) for ``count`` mass
    images the classifier calls positive."""
    import cv2

    from tfsal.data.pipelines import load_split
    from tfsal.explain import CAMExplainer, CounterfactualExplainer, SaliencyExplainer, percentile_mask
    from tfsal.outputs.drawing import saliency_overlay, to_bgr, write_grid

    data = load_split(records, tuple(classifier.input_shape[1:3]))
    scores = np.asarray(classifier.predict(data["image"], verbose=0)).reshape(-1)
    chosen = np.flatnonzero(scores >= 0.5)[:count]
    if not len(chosen):
        return
    images, truth = data["image"][chosen], data["mass"][chosen, ..., 0] > 0.5
    organ = data["organ"][chosen, ..., 0] > 0.5
    rows = []
    ours = CounterfactualExplainer(classifier, inpainter=inpainter, batch_size=batch_size).explain(
        images, targets=1, organ_masks=organ)
    cam = CAMExplainer(classifier).explain(images, targets=1, organ_masks=organ)
    sal = SaliencyExplainer(classifier).explain(images, targets=1, organ_masks=organ)
    for i in range(len(chosen)):
        original = to_bgr(images[i])
        contours, _ = cv2.findContours(truth[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(original, contours, -1, (0, 200, 255), 1)
        row = [original, saliency_overlay(images[i], ours[i].saliency, ours[i].mask)]
        for e in (cam[i], sal[i]):
            row.append(saliency_overlay(images[i], e.saliency, percentile_mask(e.saliency, e.organ, 50)))
        rows.append(row)
    write_grid(rows, path)
