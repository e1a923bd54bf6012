"""What the tuning scripts (``tune_explainer.py``, ``tune_baselines.py``) share: their common
options, the refusal to look at the test split, and loading the models and the split's first N
mass images at the classifier's size."""

from __future__ import annotations

import argparse

from tfsal.data.manifest import read_manifest
from tfsal.data.pipelines import load_split
from tfsal.evaluation.metrics import mass_distances
from tfsal.models.classifier import load_classifier, load_default_classifier
from tfsal.models.inpainter import load_default_inpainter, load_inpainter


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--data``, ``--split`` (val), ``--n``, ``--classifier``, ``--inpainter``
    and ``--out``; each script adds its own settings options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--n", type=int, default=48, help="mass images used")
    parser.add_argument("--classifier", help="a .keras classifier (default: the shipped one)")
    parser.add_argument("--inpainter", help="a .keras inpainter (default: the shipped one)")
    parser.add_argument("--out", help="append the rows as JSON lines to this file")
    return parser


def load(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """``(classifier, inpainter, data, masses)``: the models, the first ``--n`` mass images of
    ``--split`` as :func:`tfsal.data.pipelines.load_split` gives them, and each image's masses for
    the Hausdorff distance. Tuning never looks at the test split."""
    if args.split == "test":
        parser.error("tuning never looks at the test split")
    classifier = load_classifier(args.classifier) if args.classifier else load_default_classifier()
    inpainter = load_inpainter(args.inpainter) if args.inpainter else load_default_inpainter()
    records = [r for r in read_manifest(args.data, split=args.split) if r.label == 1][:args.n]
    data = load_split(records, tuple(classifier.input_shape[1:3]))
    masses = [mass_distances(m[..., 0] > 0.5) for m in data["mass"]]
    return classifier, inpainter, data, masses
