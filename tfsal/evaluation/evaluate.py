"""``tfsal evaluate``: the paper's Tables 1 and 2 and Figs. 2 and 3 on a manifest's split.

For every mass image of the split (the images with a ground-truth mask), each method's result
mask is computed once and cached (``<out>/cache``, one file per image, so an interrupted run
resumes where it stopped), then scored:

- D, H (:mod:`tfsal.evaluation.metrics`), at the evaluated size and in the paper's 576x448 pixels;
- A, the mask's share of the breast, and O, the overlap of ours with CAM's and SAL's masks;
- faithfulness: the share of classifier-positive images whose score falls below 0.5 when the
  method's mask is inpainted (the inpainter as the marginaliser), and the mean score drop;
- paired Wilcoxon signed-rank tests of ours against each baseline.

Methods: the rows of :func:`tfsal.explain.registry.evaluation_rows`: the counterfactual method's
``ours`` (the defaults, with ``--lambda`` overrides), ``ours-paper`` (the paper's setting) and
``ours-ablation`` (l2 = l3 = 0), and every map method (``cam``, ``sal``, ``gradcam``) at P = 50,
75, 90.
Every table is given twice: on the raw masks, and with every method's mask reduced to its
largest connected component (the same post-processing for all).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tfsal.data.manifest import read_manifest
from tfsal.errors import TfsalError
from tfsal.evaluation.metrics import DECISION_THRESHOLD as DECISION
from tfsal.evaluation.metrics import (
    centre_distance,
    hausdorff_distance,
    largest_component,
    overlap_coefficient,
    paired_wilcoxon,
)
from tfsal.explain import registry
from tfsal.util import atomic

log = logging.getLogger(__name__)

PAPER_SIZE = (576, 448)
"""The paper's image size (rows, columns): distances are also given in its pixels."""
PERCENTILES = (50, 75, 90)
"""The paper's thresholds P of the map methods: each keeps the map above its P-th percentile."""
REFERENCE = "ours"
"""The row every other is compared with (overlap O and the paired tests)."""
OVERLAP_WITH = ("cam", "sal")
"""The methods whose masks the paper's Table 2 overlaps with ours (O)."""
POSTS = ("raw", "largest")
"""Post-processing applied to every method alike: none, or the largest connected component."""


def methods() -> tuple[str, ...]:
    """Every method name ``tfsal evaluate`` knows (derived from :mod:`tfsal.explain.registry`)."""
    return tuple(registry.evaluation_rows())


def is_map_method(name: str) -> bool:
    """Whether ``name`` is a map method (thresholded at :data:`PERCENTILES`) rather than a mask method."""
    return registry.evaluation_rows()[name][0].kind == "map"


@dataclass(frozen=True)
class EvaluationSettings:
    """What an evaluation computes (the cache is only reused for the same settings)."""

    split: str = "test"
    methods: tuple[str, ...] = field(default_factory=methods)
    lambdas: tuple[tuple[str, float], ...] = ()  # overrides of l1, l2, l3 for "ours"
    steps: int = registry.DEFAULT_STEPS
    batch_size: int = 16

    def __post_init__(self):
        known = methods()
        unknown = sorted(set(self.methods) - set(known))
        if unknown or not self.methods:
            raise ValueError(f"methods must be some of {known}. Received: {list(self.methods)}")
        bad = [name for name, _ in self.lambdas if name not in ("l1", "l2", "l3")]
        if bad:
            raise ValueError(f"lambdas are l1, l2 and l3. Received: {bad}")


def method_keys(names) -> list[str]:
    """The result masks of a run: mask methods once each, map methods once per percentile (``cam@90``)."""
    return ([m for m in names if not is_map_method(m)]
            + [f"{m}@{p}" for m in names if is_map_method(m) for p in PERCENTILES])


def _explainer(name: str, settings: EvaluationSettings, classifier, inpainter, height: int):
    """The explainer of one evaluation row: a mask method's variant with the inpainter and steps,
    or a map method (scored by the evaluation's own in-filler)."""
    method, row = registry.evaluation_rows()[name]
    options = {"batch_size": settings.batch_size}
    if method.kind == "map":
        return method.load()(classifier, percentile=PERCENTILES[0], **options)
    variant = method.variants.get(row, registry.Variant(method.label))
    options.update(inpainter=inpainter, steps=settings.steps, **variant.options)
    if variant.preset:
        options.update(method.preset(variant.preset, height))
    if variant.tunable:
        options.update(dict(settings.lambdas))
    return method.load()(classifier, **options)


def _cache_name(index: int, record) -> str:
    digest = hashlib.sha1(str(record.image).encode()).hexdigest()[:10]  # file names carry no patient data
    return f"{index:06d}_{digest}.npz"


def _explain_chunk(chunk, explainers, classifier, infiller, size) -> list[dict]:
    """Every method's masks and counterfactual scores for a chunk of mass images."""
    from tfsal.data.pipelines import load_split
    from tfsal.explain import percentile_mask
    from tfsal.explain.scoring import inpaint_and_score

    data = load_split([r for _, r in chunk], size)
    images, truth, organ = data["image"], data["mass"][..., 0] > 0.5, data["organ"][..., 0] > 0.5
    targets = np.ones(len(chunk), np.int32)
    masks, scores, original = {}, {}, None
    for method, explainer in explainers.items():
        explanations = explainer.explain(images, targets=targets, organ_masks=organ)
        original = np.array([e.score_original for e in explanations])
        if not is_map_method(method):
            masks[method] = np.stack([e.mask for e in explanations])
            scores[method] = np.array([e.score_counterfactual for e in explanations])
            continue
        for percentile in PERCENTILES:
            key = f"{method}@{percentile}"
            masks[key] = np.stack([percentile_mask(e.saliency, o, percentile) for e, o in
                                   zip(explanations, organ, strict=True)])
            scores[key] = inpaint_and_score(explainer.classifier, infiller, images, images, masks[key], targets)[1]
    return [{"truth": truth[i], "organ": organ[i], "score_original": float(original[i]),
             **{f"mask:{k}": v[i] for k, v in masks.items()}, **{f"score:{k}": float(v[i]) for k, v in scores.items()}}
            for i in range(len(chunk))]


def _save(path: Path, item: dict) -> None:
    arrays = {k: np.packbits(v) if v.dtype == bool else v for k, v in item.items() if isinstance(v, np.ndarray)}
    shapes = {k: list(v.shape) for k, v in item.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in item.items() if not isinstance(v, np.ndarray)}
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps({"shapes": shapes, "scalars": scalars})), **arrays)


def _load(path: Path) -> dict:
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        item = dict(meta["scalars"])
        for key, shape in meta["shapes"].items():
            item[key] = np.unpackbits(saved[key])[:int(np.prod(shape))].reshape(shape).astype(bool)
    return item


def _image_metrics(item: dict, keys, spacing) -> dict:
    """Per-image D, H (evaluated and paper pixels), A, flip and drop of every key, raw and post-processed."""
    truth, organ = item["truth"], item["organ"]
    organ_area = max(int(organ.sum()), 1)
    out = {}
    for post in POSTS:
        masks = {k: item[f"mask:{k}"] if post == "raw" else largest_component(item[f"mask:{k}"]) for k in keys}
        for key, mask in masks.items():
            out[(post, key)] = {
                "D": centre_distance(truth, mask), "H": hausdorff_distance(truth, mask),
                "D_paper": centre_distance(truth, mask, spacing), "H_paper": hausdorff_distance(truth, mask, spacing),
                "A": float(mask.sum() / organ_area), "empty": bool(not mask.any()),
            }
        for key in keys:
            if key.split("@")[0] in OVERLAP_WITH and "@" in key and REFERENCE in masks:
                out[(post, key)]["O"] = overlap_coefficient(masks[REFERENCE], masks[key])
    positive = item["score_original"] >= DECISION
    for key in keys:
        after = item[f"score:{key}"]
        out[("raw", key)].update(positive=positive, flip=bool(positive and after < DECISION),
                                 drop=item["score_original"] - after)
    return out


def _summaries(per_image: list[dict], keys) -> tuple[dict, dict]:
    summary, tests = {}, {}
    for post in POSTS:
        summary[post], tests[post] = {}, {}
        for key in keys:
            rows = [m[(post, key)] for m in per_image]
            entry = {"empty": int(sum(r["empty"] for r in rows)), "images": len(rows)}
            for metric in ("D", "H", "D_paper", "H_paper", "A", "O"):
                values = np.array([r.get(metric, np.nan) for r in rows], float)
                if np.isfinite(values).any():
                    entry[metric] = [float(np.nanmean(values)), float(np.nanstd(values))]
            if post == "raw":
                positives = [r for r in rows if r["positive"]]
                entry["positives"] = len(positives)
                entry["flip"] = float(np.mean([r["flip"] for r in positives])) if positives else float("nan")
                entry["drop"] = float(np.mean([r["drop"] for r in positives])) if positives else float("nan")
            summary[post][key] = entry
            if key != REFERENCE and REFERENCE in keys:
                tests[post][key] = {}
                for metric in ("D", "H", "A"):
                    p, pairs = paired_wilcoxon([m[(post, REFERENCE)][metric] for m in per_image],
                                               [m[(post, key)][metric] for m in per_image])
                    tests[post][key][metric] = {"p": p, "pairs": pairs}
    return summary, tests


@dataclass
class Evaluation:
    """What :func:`evaluate` found: settings, counts, per-method summaries and tests."""

    settings: dict
    images: int
    size: tuple[int, int]
    summary: dict
    tests: dict
    per_image: list = field(default_factory=list)


def evaluate(data: str | os.PathLike, out: str | os.PathLike, classifier, inpainter,
             settings: EvaluationSettings | None = None, limit: int | None = None,
             progress: bool = False) -> Evaluation:
    """Explain every mass image of the split with every method (cached per image) and score them.

    Args:
        data: ``labels.csv`` or its folder; the split's mass images need ground-truth masks.
        out: output folder; ``out/cache`` holds the per-image results.
        classifier, inpainter: Keras models.
        settings: what to compute.
        limit: only the first N mass images (a quick look; the cache is shared with full runs).
        progress: a progress bar on stderr.

    Raises:
        TfsalError: no mass image with a mask in the split, or a cache made with other settings.
    """
    from tqdm import tqdm

    from tfsal.explain.infill import Infiller

    settings = settings or EvaluationSettings()
    out = Path(out)
    records = [r for r in read_manifest(data, split=settings.split) if r.label == 1 and r.mask is not None]
    if not records:
        raise TfsalError(f"{data}: no mass image with a ground-truth mask in the {settings.split!r} split")
    records = list(enumerate(records))[:limit]
    cache = out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    described = {**asdict(settings), "data": str(Path(data).resolve())}
    described = json.loads(json.dumps(described))
    settings_file = cache / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != described:
        raise TfsalError(f"{cache}: holds results of other settings; use another --out or remove it")
    atomic.write_text(settings_file, json.dumps(described, indent=1) + "\n")
    size = tuple(int(v) for v in classifier.input_shape[1:3])
    keys = method_keys(settings.methods)
    todo = [(i, r) for i, r in records if not (cache / _cache_name(i, r)).exists()]
    if todo:
        explainers = {m: _explainer(m, settings, classifier, inpainter, size[0]) for m in settings.methods}
        infiller = Infiller(inpainter)
        bar = tqdm(total=len(todo), desc="evaluate", unit="image", disable=not progress)
        for start in range(0, len(todo), settings.batch_size):
            chunk = todo[start:start + settings.batch_size]
            for (index, record), item in zip(chunk, _explain_chunk(chunk, explainers, classifier, infiller, size),
                                             strict=True):
                _save(cache / _cache_name(index, record), item)
            bar.update(len(chunk))
        bar.close()
    spacing = (PAPER_SIZE[0] / size[0], PAPER_SIZE[1] / size[1])
    per_image = [_image_metrics(_load(cache / _cache_name(i, r)), keys, spacing) for i, r in records]
    summary, tests = _summaries(per_image, keys)
    return Evaluation(described, len(records), size, summary, tests, per_image)
