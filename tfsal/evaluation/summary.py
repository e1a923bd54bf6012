"""Summaries and paired tests of an evaluation's per-image measures.

Every summary counts every image of its set: an empty region counts as the worst case (the
image diagonal, :func:`~tfsal.evaluation.metrics.localisation`) and the number of empty regions
is given. Two sets: all mass images, and the classifier-positive ones (the images with a
decision to explain). Flip rates are over the positive images.

Each table compares ours (:data:`~tfsal.evaluation.protocols.REFERENCE`) with every map method
(:func:`~tfsal.evaluation.statistics.compare`, one-sided: lower D, H and deletion area, higher
insertion area), Holm-corrected over the table's tests:

- ``paper``: ours' own mask against each map at P = 50, 75, 90;
- ``area``: ours' own mask against each map cut to ours' area;
- ``search``: ours through the search against each map through the same search;
- ``curve``: the deletion and insertion areas with each marginaliser.
"""

from __future__ import annotations

import numpy as np

from tfsal.evaluation.curves import CURVES, MARGINALISERS
from tfsal.evaluation.protocols import PERCENTILES, POSTS, REFERENCE
from tfsal.evaluation.statistics import compare, holm
from tfsal.explain import registry

__all__ = ["CURVE_MEASURES", "METRICS", "SETS", "TABLES", "summarise"]

SETS = ("all", "positive")
"""The image sets every table is given for."""
METRICS = ("D", "H", "D_paper", "H_paper", "A")
"""The measures of a region that are summarised."""
TABLES = ("paper", "area", "search", "curve")
"""The tables with paired tests (the module docstring)."""
CURVE_MEASURES = tuple(f"{c}:{m}" for c in CURVES for m in MARGINALISERS)
"""The curve areas: ``deletion:inpainter``, ``deletion:blur``, ``insertion:inpainter``, ``insertion:blur``."""


def _stats(values) -> dict:
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "std": float(v.std()), "median": float(np.median(v))}


def _region_summary(rows: list[dict]) -> dict:
    entry = {"n": len(rows), "empty": int(sum(r["empty"] for r in rows))}
    for metric in METRICS:
        values = [r[metric] for r in rows]
        if np.isfinite(values).any():
            entry[metric] = _stats(values)
    overlaps = [r["O"] for r in rows if np.isfinite(r.get("O", np.nan))]
    if overlaps:
        entry["O"] = _stats(overlaps)
    flips = [r["flip"] for r in rows if "flip" in r]
    entry["flip"] = float(np.mean(flips)) if flips else float("nan")
    entry["flipped"] = int(sum(flips))
    return entry


def _in_set(image: dict, name: str) -> bool:
    return name == "all" or image[("image", "", "")]["positive"]


def _summary_of(images: list[dict]) -> dict:
    grouped: dict = {}
    for image in images:
        for (protocol, key, post), values in image.items():
            if protocol not in ("image", "curve"):
                grouped.setdefault(protocol, {}).setdefault(post, {}).setdefault(key, []).append(values)
            elif protocol == "curve":
                grouped.setdefault("curve", {}).setdefault(key, []).append(values)
    summary = {p: {post: {k: _region_summary(v) for k, v in keys.items()} for post, keys in posts.items()}
               for p, posts in grouped.items() if p != "curve"}
    summary["curve"] = {k: {m: _stats([r[m] for r in v]) for m in CURVE_MEASURES}
                        for k, v in grouped.get("curve", {}).items()}
    summary["images"] = len(images)
    summary["positives"] = int(sum(i[("image", "", "")]["positive"] for i in images))
    return summary


def _pairs(table: str, baselines) -> list[tuple[tuple, tuple, str, str]]:
    """(reference's key, baseline's key, measure, alternative) of each test in ``table``."""
    if table == "curve":
        return [(("curve", REFERENCE), ("curve", b), m, "less" if m.startswith("deletion") else "greater")
                for m in CURVE_MEASURES for b in baselines]
    if table == "paper":
        keys = [(("own", REFERENCE), ("paper", f"{b}@{p}")) for p in PERCENTILES for b in baselines]
    else:
        keys = [((table, REFERENCE), (table, b)) for b in baselines]
    return [(r, o, metric, "less") for metric in ("D", "H") for r, o in keys]


def _values(images, key, post, measure):
    protocol, name = key
    index = (protocol, name, "raw" if protocol == "curve" else post)
    return [image[index][measure] if index in image else np.nan for image in images]


def _tests(images: list[dict], baselines) -> dict:
    tests: dict = {}
    for table in TABLES:
        for post in (("raw",) if table == "curve" else POSTS):
            found = {}
            for reference, other, measure, alternative in _pairs(table, baselines):
                a, b = _values(images, reference, post, measure), _values(images, other, post, measure)
                if np.isfinite(a).any() and np.isfinite(b).any():
                    found[f"{other[1]}:{measure}"] = compare(a, b, alternative)
            for entry, adjusted in zip(found.values(), holm([e["p"] for e in found.values()]), strict=True):
                entry["p_holm"] = adjusted
            tests.setdefault(table, {})[post] = found
    return tests


def summarise(per_image: list[dict], rows) -> tuple[dict, dict]:
    """``(summary, tests)``, each by image set (:data:`SETS`); see the module docstring."""
    baselines = [r for r in rows if registry.evaluation_rows()[r][0].kind == "map"]
    summary, tests = {}, {}
    for name in SETS:
        images = [i for i in per_image if _in_set(i, name)]
        summary[name] = _summary_of(images)
        tests[name] = _tests(images, baselines) if REFERENCE in rows else {}
    return summary, tests
