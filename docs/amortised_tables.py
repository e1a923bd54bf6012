"""The amortised method against the optimiser on the same images, from the ``results.json`` of a
``tfsal evaluate --method counterfactual --method amortised`` run (``docs/explain.md``).

For each image set (every mass image; those the classifier calls positive) and each protocol (the
methods' own result masks; their maps cut to the optimiser's own area; the search-matched region;
the deletion and insertion curves): both medians, the amortised median as a share of the
optimiser's, and the paired comparison amortised - optimiser per image (median difference with its
bootstrap 95 % interval, wins / losses of the amortised method, one-sided Wilcoxon signed-rank in
the amortised method's favour: lower D, H and deletion area, higher insertion area), Holm-adjusted
over every test of the set. An empty region counts as the image diagonal, as everywhere; the
search-matched region exists on positive images only.

    python docs/amortised_tables.py runs/eval_test/results.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfsal.evaluation.statistics import compare, holm

OURS, FAST = "counterfactual", "amortised"
NAN = float("nan")  # a region an image has none of (the search-matched region of a negative image)
REGIONS = {"own": "own result masks", "area": "maps cut to the optimiser's own area", "search": "search-matched"}
CURVES = ("deletion:inpainter", "deletion:blur", "insertion:inpainter", "insertion:blur")


def _rows(images: list[dict]) -> list[tuple[str, str, list, list, str]]:
    """(protocol, measure, the amortised values, the optimiser's, the alternative) per test."""
    rows = []
    for protocol in REGIONS:
        for measure in ("D", "H"):
            values = [[i.get(f"{protocol}|{m}|raw", {}).get(measure, NAN) for i in images] for m in (FAST, OURS)]
            rows.append((protocol, measure, *values, "less"))
    for measure in CURVES:
        values = [[i.get(f"curve|{m}|raw", {}).get(measure, NAN) for i in images] for m in (FAST, OURS)]
        rows.append(("curve", measure, *values, "less" if measure.startswith("deletion") else "greater"))
    return rows


def table(images: list[dict], title: str) -> list[str]:
    import numpy as np

    rows = _rows(images)
    tests = [compare(fast, ours, alternative) for _, _, fast, ours, alternative in rows]
    lines = [f"**{title}** ({len(images)} images)", "",
             "| protocol | measure | optimiser median | amortised median | amortised / optimiser | "
             "amortised - optimiser [95 % CI] | wins / losses | p (Holm) |", "|---|---|---|---|---|---|---|---|"]
    for (protocol, measure, fast, ours, _), test, p in zip(rows, tests, holm([t["p"] for t in tests]), strict=True):
        a, b = float(np.nanmedian(fast)), float(np.nanmedian(ours))
        low, high = test["interval"]
        digits = 1 if protocol != "curve" else 3
        lines.append(f"| {REGIONS.get(protocol, 'curve')} | {measure} | {b:.{digits}f} | {a:.{digits}f} | "
                     f"{a / b:.2f} | {test['median_difference']:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}] | "
                     f"{test['wins']} / {test['losses']} | {p:.2g}{' **' if p < 0.05 else ''} |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    args = parser.parse_args()
    result = json.loads(Path(args.results).read_text())
    images = result["per_image"]
    positive = [i for i in images if i["image||"]["positive"]]
    out = table(images, "Every mass image") + table(positive, "Mass images the classifier calls positive")
    print("\n".join(out))


if __name__ == "__main__":
    main()
