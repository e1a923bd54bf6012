"""Memory over many consecutive explanations in one process.

The resident set size (VmRSS, not the peak) is read after every ``every`` explanations; the
growth is measured from the reading after the first ``warm`` explanations (graphs traced,
allocator pools filled) to the last one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
from speed import images_for

from tfsal.explain import CounterfactualExplainer
from tfsal.explain.registry import DEFAULT_STEPS


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def memory_growth(classifier, inpainter, count: int = 500, steps: int = DEFAULT_STEPS, distinct: int = 20,
                  warm: int = 50, every: int = 50, size=(256, 192), log=print) -> dict:
    """``count`` explanations of one image each (cycling through ``distinct`` images)."""
    images = images_for(size, distinct)
    explainer = CounterfactualExplainer(classifier, inpainter=inpainter, steps=steps, batch_size=1)
    readings = []
    for index in range(count):
        explainer.explain(images[index % distinct][None])
        if (index + 1) % every == 0 or index + 1 in (warm, count):
            readings.append({"explanations": index + 1, "rss_mb": rss_mb()})
            log(readings[-1])
    start = next(r["rss_mb"] for r in readings if r["explanations"] == warm)
    end = readings[-1]["rss_mb"]
    return {"explanations": count, "steps": steps, "rss_after_warm_up_mb": start, "rss_at_end_mb": end,
            "growth_percent": 100 * (end - start) / start, "max_rss_mb": float(np.max([r["rss_mb"] for r in readings])),
            "readings": readings}


def in_subprocess(count: int, steps: int) -> dict:
    """:func:`memory_growth` with the shipped models in a fresh Python process."""
    done = subprocess.run([sys.executable, __file__, "--count", str(count), "--steps", str(steps)], check=True,
                          stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    args = parser.parse_args()
    from tfsal.models.classifier import load_default_classifier
    from tfsal.models.inpainter import load_default_inpainter

    result = memory_growth(load_default_classifier(), load_default_inpainter(), args.count, args.steps,
                           log=lambda row: print(json.dumps(row), file=sys.stderr, flush=True))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
