"""Draw docs/images/demo_overlays.png from the output of the README's first command.

    tfsal explain --demo --out tfsal-demo
    python docs/make_overlays.py tfsal-demo docs/images/demo_overlays.png

Each example's ``<stem>_overlay.png`` as tfsal wrote it (outline style, the default), labelled
with its file name, healthy ones first.
"""

import json
import sys
from pathlib import Path

import cv2

from tfsal.outputs.drawing import write_grid


def main(folder: str, out: str) -> None:
    records = sorted(Path(folder).glob("*.json"))
    tiles, labels = [], []
    for path in records:
        record = json.loads(path.read_text())
        tiles.append(cv2.imread(str(path.with_name(f"{path.stem}_overlay.png"))))
        labels.append(f"{Path(record['input']).name}: p {record['score_original']:.2f}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_grid([tiles], out, labels=[labels])


if __name__ == "__main__":
    main(*sys.argv[1:3])
