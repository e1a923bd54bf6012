"""Two classifiers on the same images: the difference of their ROC AUCs, paired, over several sets.

Each argument pair is two ``tfsal evaluate-classifier --out`` folders made on the same set and split
(their ``metrics.json`` hold every image's label and score, in the manifest's order). For each pair
the script prints AUC(A) - AUC(B) with a paired, stratified bootstrap interval
(:func:`tfsal.evaluation.statistics.auc_difference_interval`) at the family-wise level 0.95 over all
the pairs given (Bonferroni: each interval at ``1 - 0.05 / m``). An interval that holds 0 says the
two cannot be told apart on that set.

    python docs/compare_classifiers.py runs/ev_max_mix3 runs/ev_avg_mix3 runs/ev_max_mias runs/ev_avg_mias
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfsal.evaluation.statistics import auc_difference_interval


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="A1 B1 [A2 B2 ...]: evaluate-classifier outputs")
    parser.add_argument("--family-level", type=float, default=0.95)
    args = parser.parse_args(argv)
    if len(args.folders) % 2:
        parser.error("give the folders in pairs: A1 B1 A2 B2 ...")
    pairs = list(zip(args.folders[::2], args.folders[1::2], strict=True))
    level = 1 - (1 - args.family_level) / len(pairs)
    print(f"AUC(A) - AUC(B), paired bootstrap intervals at {level:.4f} ({len(pairs)} comparisons, "
          f"family-wise {args.family_level})")
    for a, b in pairs:
        ma, mb = _metrics(a), _metrics(b)
        if ma["labels"] != mb["labels"] or ma["split"] != mb["split"]:
            parser.error(f"{a} and {b} were not made on the same images")
        result = auc_difference_interval(ma["labels"], ma["scores"], mb["scores"], level=level)
        low, high = result["interval"]
        print(f"{a} - {b} ({ma['n_mass']} + {ma['n_healthy']} images): {ma['roc_auc']:.3f} - {mb['roc_auc']:.3f} = "
              f"{result['difference']:+.3f} ({low:+.3f} to {high:+.3f})")


if __name__ == "__main__":
    main()
