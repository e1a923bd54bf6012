"""The comparison protocols: which region of each method is scored, per image.

From one image's cached results (:mod:`tfsal.evaluation.evaluate`) every protocol picks a binary
region per method and measures it the same way (:func:`~tfsal.evaluation.metrics.localisation`:
D and H, an empty region counting as the image diagonal; A, its share of the breast; flip, whether
its deletion by the inpainter brings a positive score below 0.5):

- ``own``: a mask method's own result mask (ours after growth); ``own-nogrow``: before growth.
- ``paper``: a map method's top 50 / 25 / 10 % of the breast (the paper's P = 50, 75, 90), ties
  broken so it keeps exactly that share.
- ``area``: every method's top pixels, as many as ours' own mask has (area-matched).
- ``search``: on classifier-positive images only, every method's top share on the grid
  :data:`~tfsal.evaluation.curves.SHARES` whose deletion first flips the decision, or the largest
  share when none does (search-matched; ours through its saliency map).

Each region is measured raw and reduced to its largest connected component (the same for all);
the own and paper protocols also in the paper's 576x448 pixels.
The deletion and insertion curves' areas (:mod:`tfsal.evaluation.curves`) come with them.
"""

from __future__ import annotations

import numpy as np

from tfsal.evaluation.curves import CURVES, MARGINALISERS, SHARES, curve_area, first_flip
from tfsal.evaluation.metrics import (
    DECISION_THRESHOLD,
    largest_component,
    localisation,
    mass_distances,
    overlap_coefficient,
)
from tfsal.explain.explanation import organ_ranks, share_count

__all__ = ["OVERLAP_WITH", "PAPER_SIZE", "PERCENTILES", "POSTS", "PROTOCOLS", "REFERENCE", "image_metrics",
           "region_metrics"]

PAPER_SIZE = (576, 448)
"""The paper's image size (rows, columns): distances are also given in its pixels."""
PERCENTILES = (50, 75, 90)
"""The paper's thresholds P of the map methods: each keeps the top (100 - P) % of the breast."""
REFERENCE = "counterfactual"
"""The row every other is compared with."""
POSTS = ("raw", "largest")
"""Post-processing applied to every method alike: none, or the largest connected component."""
PROTOCOLS = ("own", "own-nogrow", "paper", "area", "search")
OVERLAP_WITH = ("cam", "sal")
"""The maps whose paper-protocol regions the paper's Table 2 overlaps with ours' own mask (O)."""
"""The protocols of the module docstring."""

assert all((100 - p) / 100 in SHARES for p in PERCENTILES)  # the paper's shares are on the curves' grid


def region_metrics(truth, organ, region, spacing=None, masses=None) -> dict:
    """D, H (evaluated pixels), A and empty of one region, raw and largest component; with the
    paper's pixel ``spacing`` also D_paper and H_paper (NaN without). ``masses``: optionally
    ``(mass_distances(truth), mass_distances(truth, spacing))``, computed once per image."""
    area = max(int(organ.sum()), 1)
    here_masses, paper_masses = masses or (None, None)
    out = {}
    for post in POSTS:
        mask = region if post == "raw" else largest_component(region)
        here = localisation(truth, mask, masses=here_masses)
        paper = (localisation(truth, mask, spacing, paper_masses) if spacing is not None
                 else {"D": np.nan, "H": np.nan})
        out[post] = {"D": here["D"], "H": here["H"], "D_paper": paper["D"], "H_paper": paper["H"],
                     "A": float(mask.sum() / area), "empty": here["empty"]}
    return out


def _add(out: dict, protocol: str, key: str, measured: dict, flip) -> None:
    for post, values in measured.items():
        out[(protocol, key, post)] = {**values, **({"flip": bool(flip)} if flip is not None and post == "raw" else {})}


def image_metrics(item: dict, rows, mask_rows, spacing) -> dict:
    """Every protocol's measures of one image.

    Args:
        item: the cached results (:func:`tfsal.evaluation.cache.load_item`).
        rows: the evaluated rows; mask_rows: those with their own mask.
        spacing: the paper's pixel size in evaluated pixels.

    Returns:
        ``(protocol, key, post) -> {"D", "H", "D_paper", "H_paper", "A", "empty", "flip"?}`` and
        ``("curve", row, "raw") -> {"deletion:inpainter": area, ...}``, plus ``("image", "", "")
        -> {"positive", "score"}``.
    """
    truth, organ, original = item["truth"], item["organ"], float(item["score_original"])
    positive = original >= DECISION_THRESHOLD
    out = {("image", "", ""): {"positive": positive, "score": original}}
    flips = lambda after: positive and after < DECISION_THRESHOLD  # noqa: E731
    masses = (mass_distances(truth), mass_distances(truth, spacing))
    measure = lambda region, paper=True: region_metrics(  # noqa: E731
        truth, organ, region, spacing if paper else None, masses)
    for row in mask_rows:
        mask = item[f"mask:{row}"]
        _add(out, "own", row, measure(mask), flips(item[f"score:{row}"]))
        grown = item.get(f"grown:{row}")
        if grown is not None:
            _add(out, "own-nogrow", row, measure(mask & ~grown),
                 flips(item[f"score:{row}"]) and not grown.any())
    reference = item.get(f"mask:{REFERENCE}")
    for row in rows:
        ranks = organ_ranks(item[f"map:{row}"].astype(np.float32), organ)
        deletion = item[f"curve:{row}:deletion:inpainter"]
        if row not in mask_rows:
            for percentile in PERCENTILES:
                share = (100 - percentile) / 100
                region = ranks < share_count(organ, share)
                measured = measure(region)
                if reference is not None and row in OVERLAP_WITH:
                    measured["raw"]["O"] = overlap_coefficient(reference, region)
                _add(out, "paper", f"{row}@{percentile}", measured, flips(deletion[SHARES.index(share)]))
        if reference is not None:
            _add(out, "area", row, measure(ranks < int(reference.sum()), False),
                 flips(item[f"area:{row}"]))
        if positive:
            index = int(first_flip(deletion[None], [original])[0])
            share = SHARES[index] if index >= 0 else SHARES[-1]
            _add(out, "search", row, measure(ranks < share_count(organ, share), False),
                 index >= 0)
        out[("curve", row, "raw")] = {
            f"{curve}:{m}": float(curve_area(item[f"curve:{row}:{curve}:{m}"][None],
                                             [original if curve == "deletion" else item[f"start:{curve}:{m}"]])[0])
            for curve in CURVES for m in MARGINALISERS}
    return out
