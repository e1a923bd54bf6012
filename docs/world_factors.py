"""How much each of the mixture's factors alone costs a classifier (``saved_models/README.md``).

For the classic world and for the classic world with one factor of ``SynthConfig.mixture()`` turned
on (distractors, the tone curve, the thickness fall-off, the noise level, film acquisition, one
texture, the two extra lesion kinds), a fresh data set of ``--n`` mass and ``--n`` healthy images
is written with a seed no training used, and the classifier's ROC AUC with its bootstrap 95 %
interval is measured on all of it (what ``tfsal evaluate-classifier --split all`` measures). The factors take
the mixture's own ranges. A set here is foreign to every training run: it only reports.

    python docs/world_factors.py --classifier saved_models/classifier.keras --out runs/factors

``--only NAME --training-set`` writes one world with train, val and test splits (``write_dataset``'s) and
measures nothing: data to train a classifier on one factor, e.g. to ask whether film can be learnt.

    python docs/world_factors.py --only film --training-set --n 1000 --seed 21 --out data/film
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from tfsal.data.synthetic import LESION_SHAPES, SynthConfig
from tfsal.data.synthetic_dataset import write_dataset
from tfsal.evaluation.classifier_metrics import write_classifier_report
from tfsal.models.classifier import load_classifier


def factor_configs() -> dict[str, SynthConfig]:
    """The classic world and the classic world with one mixture factor at the mixture's range."""
    base, mixture = SynthConfig(), SynthConfig.mixture()
    return {
        "classic": base,
        "distractors": replace(base, distractor_probability=mixture.distractor_probability),
        "tone curve (gamma)": replace(base, gamma_range=mixture.gamma_range),
        "thickness fall-off": replace(base, falloff_range=mixture.falloff_range),
        "noise level": replace(base, noise_factor_range=mixture.noise_factor_range),
        "film": replace(base, acquisitions=("film",), breast_scale_range=mixture.breast_scale_range,
                        film_width_range=mixture.film_width_range, film_gain_range=mixture.film_gain_range,
                        film_lift_range=mixture.film_lift_range),
        "texture fibrous": replace(base, textures=("fibrous",)),
        "texture cloudy": replace(base, textures=("cloudy",)),
        "texture nodular": replace(base, textures=("nodular",)),
        "asymmetries and distortions too": replace(base, shapes=LESION_SHAPES),
        # film taken apart (after the rest, so that the sets above keep their folders)
        "film, breast not narrowed": replace(base, acquisitions=("film",), film_gain_range=mixture.film_gain_range,
                                             film_lift_range=mixture.film_lift_range),
        "film, narrowed, tone not lifted": replace(base, acquisitions=("film",),
                                                   breast_scale_range=mixture.breast_scale_range,
                                                   film_width_range=mixture.film_width_range),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", help="the classifier to measure (not with --training-set)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n", type=int, default=300, help="mass images and healthy images per set")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=list(factor_configs()), help="this world alone")
    parser.add_argument("--training-set", action="store_true",
                        help="with --only: write it into --out with train/val/test splits, measure nothing")
    args = parser.parse_args(argv)
    if args.training_set:
        if not args.only:
            parser.error("--training-set needs --only")
        write_dataset(args.out, n_mass=args.n, n_healthy=args.n, seed=args.seed, config=factor_configs()[args.only])
        return
    if not args.classifier:
        parser.error("--classifier is required unless --training-set")
    classifier = load_classifier(args.classifier)
    print("| world | ROC AUC (95 % interval) |\n|---|---|")
    for index, (name, config) in enumerate(factor_configs().items()):
        if args.only and name != args.only:
            continue
        folder = args.out / f"set{index}"
        write_dataset(folder, n_mass=args.n, n_healthy=args.n, seed=args.seed, config=config, val_fraction=0.0)
        result = write_classifier_report(classifier, folder, "all", folder / "evaluation")
        low, high = result["roc_auc_interval"]
        print(f"| {name} | {result['roc_auc']:.4f} ({low:.3f}-{high:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
