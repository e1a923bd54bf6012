"""Writing an evaluation: ``results.json`` (every per-image measure, summaries and tests),
``results.md`` (the tables of :mod:`tfsal.evaluation.summary`), ``roc.png`` (Fig. 2) and
``cases.png`` (:mod:`tfsal.evaluation.cases`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tfsal.evaluation.curves import SHARES
from tfsal.evaluation.evaluate import Evaluation, is_map_method
from tfsal.evaluation.protocols import PERCENTILES, REFERENCE
from tfsal.evaluation.summary import CURVE_MEASURES
from tfsal.explain import registry
from tfsal.util import atomic

SET_TITLES = {"all": "all mass images", "positive": "classifier-positive mass images"}
PROTOCOL_TITLES = {
    "paper": "paper protocol: own masks, and each map's top 50 / 25 / 10 % of the breast (P = 50 / 75 / 90)",
    "area": "area-matched: each map cut to the counterfactual mask's own area on each image",
    "search": "search-matched: each map's smallest top share on the grid whose inpainting flips the decision",
}


def label(name: str) -> str:
    """A method's (or evaluation row's, or ``row@P`` key's) name in tables, from :mod:`tfsal.explain.registry`
    (an earlier release's row name gives today's label)."""
    name, _, percentile = name.partition("@")
    method, row = registry.evaluation_rows()[registry.canonical_row(name)]
    text = method.variants[row].label if row in method.variants else method.label
    return f"{text}, P = {percentile}" if percentile else text


def today_names(result):
    """A ``results.json`` (or any part of it) with an earlier release's row names
    (:data:`~tfsal.explain.registry.LEGACY_ROWS`) in its keys replaced by today's: ``ours``,
    ``ours@50``, ``ours:D``, ``own|ours|raw`` become ``counterfactual``, ... ."""
    if isinstance(result, list):
        return [today_names(v) for v in result]
    if not isinstance(result, dict):
        return result

    def key(k: str) -> str:
        if "|" in k:
            return "|".join(key(part) for part in k.split("|"))
        head, sep, tail = k.partition(":")
        row, at, percentile = head.partition("@")
        return f"{registry.canonical_row(row)}{at}{percentile}{sep}{tail}"

    return {key(k) if isinstance(k, str) else k: today_names(v) for k, v in result.items()}


def _number(value, digits: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _region_keys(protocol: str, rows) -> list[tuple[str, str]]:
    """(protocol, key) of each line of a region table, in row order."""
    if protocol == "paper":
        own = [(p, r) for r in rows if not is_map_method(r) for p in ("own", "own-nogrow")]
        return own + [("paper", f"{r}@{p}") for p in PERCENTILES for r in rows if is_map_method(r)]
    return [(protocol, r) for r in rows]


def _paper(entry: dict) -> str:
    if "D_paper" not in entry:
        return "–"
    return f"{entry['D_paper']['median']:.1f}, {entry['H_paper']['median']:.1f}"


def _region_table(summary: dict, protocol: str, post: str, rows) -> list[str]:
    lines = ["| method | D mean ± std | D median | H mean ± std | H median | D, H in 576x448 (median) | A mean "
             "| O with counterfactual | empty | flipped / positive |", "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, key in _region_keys(protocol, rows):
        entry = summary.get(kind, {}).get(post, {}).get(key)
        if entry is None:
            continue
        name = label(key) + (", before growth" if kind == "own-nogrow" else "")
        d, h = entry["D"], entry["H"]
        flips = f"{entry['flipped']} / {summary['positives']}" if post == "raw" else "–"
        lines.append(f"| {name} | {d['mean']:.1f} ± {d['std']:.1f} | {d['median']:.1f} | {h['mean']:.1f} ± "
                     f"{h['std']:.1f} | {h['median']:.1f} | {_paper(entry)} | {entry['A']['mean']:.3f} | "
                     f"{_number(entry['O']['mean'], 3) if 'O' in entry else '–'} | {entry['empty']} | {flips} |")
    return lines


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def _split_key(key: str) -> tuple[str, str]:
    """``cam@50:D`` -> (``cam@50``, ``D``); ``cam:deletion:blur`` -> (``cam``, ``deletion:blur``)."""
    other, _, measure = key.partition(":")
    return other, measure


def _tests_table(tests: dict, what: str) -> list[str]:
    if not tests:
        return []
    lines = [f"The counterfactual method against each other method, paired per image, one-sided ({what}); difference = "
             "counterfactual - other, median with a bootstrap 95 % interval; wins = images where the counterfactual "
             "is better; Holm over this table.", "",
             "| against | measure | n | median difference [95 % CI] | wins / losses / ties | p | p (Holm) |",
             "|---|---|---|---|---|---|---|"]
    for key, t in tests.items():
        other, measure = _split_key(key)
        lo, hi = t["interval"]
        lines.append(f"| {label(other)} | {measure} | {t['n']} | {_number(t['median_difference'], 3)} "
                     f"[{_number(lo, 3)}, {_number(hi, 3)}] | {t['wins']} / {t['losses']} / {t['ties']} | "
                     f"{_p(t['p'])} | {_p(t['p_holm'])} |")
    return lines


def _curve_table(summary: dict, rows) -> list[str]:
    head = " | ".join(CURVE_MEASURES)
    lines = [f"| method | {head} |", "|---|" + "---|" * len(CURVE_MEASURES)]
    for row in rows:
        entry = summary.get("curve", {}).get(row)
        if entry:
            cells = " | ".join(f"{entry[m]['mean']:.3f} ({entry[m]['median']:.3f})" for m in CURVE_MEASURES)
            lines.append(f"| {label(row)} | {cells} |")
    return lines


def _set_section(evaluation: Evaluation, name: str, post: str) -> list[str]:
    summary, tests = evaluation.summary[name], evaluation.tests.get(name, {})
    rows = evaluation.settings["methods"]
    lines = [f"## {SET_TITLES[name]} ({summary['images']} images, {summary['positives']} called positive), "
             f"{'raw regions' if post == 'raw' else 'every region reduced to its largest connected component'}", ""]
    for protocol, title in PROTOCOL_TITLES.items():
        if protocol not in summary:
            continue
        lines += [f"### {title.capitalize()}", "", *_region_table(summary, protocol, post, rows), ""]
        lines += [*_tests_table(tests.get(protocol, {}).get(post, {}), "lower D and H are better"), ""]
    if post == "raw" and summary.get("curve"):
        lines += ["### Deletion and insertion curves (area under the curve, mean (median))", "",
                  f"Shares of the breast {', '.join(f'{s:g}' for s in SHARES)}; lower deletion and higher "
                  "insertion are better.", "", *_curve_table(summary, rows), "",
                  *_tests_table(tests.get("curve", {}).get("raw", {}),
                                "lower deletion area, higher insertion area are better"), ""]
    return lines


def write_markdown(evaluation: Evaluation, path: Path, command: str) -> None:
    """``results.md``: every table for both image sets, raw and post-processed."""
    s = evaluation.settings
    height, width = evaluation.size
    lines = [f"# Evaluation on the {s['split']!r} split", "", f"`{command}`", "",
             f"{evaluation.images} mass images, evaluated at {height}x{width} (D and H in those pixels; the "
             f"column '576x448' gives the paper's pixels). Every image counts: an empty region counts as the image "
             f"diagonal for D and H, and the empty regions are counted. Reference row: {label(REFERENCE)}.", ""]
    for name in evaluation.summary:
        lines += _set_section(evaluation, name, "raw")
    for name in evaluation.summary:
        lines += _set_section(evaluation, name, "largest")
    atomic.write_text(path, "\n".join(lines))


def write_json(evaluation: Evaluation, path: Path) -> None:
    """``results.json``: provenance, settings, summaries, tests, and every image's measures keyed
    ``protocol|key|post`` (``own|counterfactual|raw``, ``paper|cam@50|largest``, ``curve|sal|raw``, ``image||``)."""
    per_image = [{"|".join(index): values for index, values in image.items()} for image in evaluation.per_image]
    document = {"provenance": evaluation.provenance,
                "settings": evaluation.settings, "images": evaluation.images, "size": list(evaluation.size),
                "summary": evaluation.summary, "tests": evaluation.tests, "per_image": per_image}
    atomic.write_text(path, json.dumps(document, indent=1, default=_plain) + "\n")


def _plain(value):
    if isinstance(value, (np.bool_, np.integer)):
        return value.item()
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value).__name__)
