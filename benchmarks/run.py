"""tfsal's benchmarks (issue 8): one command, JSON and markdown out.

    python benchmarks/run.py --out bench/ [--parts speed,profile,trials,peers,memory,training,cheaper]
                             [--data DIR] [--sizes 256x192,576x448] [--batches 1,4,8,16] [--steps 100]

Parts (all by default):
- speed: explanation seconds per image against the compute floor, peak RSS (speed.py);
- profile: where one explain call's time goes, stage by stage (speed.py);
- trials: the optimisation loop under XLA and the models in mixed bfloat16 (speed.py);
- peers: tfsal's explainers beside xplique's, seconds and D/H (peers.py; xplique from
  requirements-peers.txt, else tfsal's rows only);
- memory: RSS over 500 consecutive explanations (memory.py);
- training: seconds per epoch of both trainings (training.py);
- cheaper: options that make explanation cheaper, D and H on the validation split
  (``docs/tune_explainer.py``'s scoring);
- batch: ``tfsal explain-batch`` on Beam's DirectRunner (2 processes) against ``tfsal explain``
  in one process, on the same 100 test images (batch_throughput.py);
- methods: seconds per image of every registered method at batch 1 and 16 (methods.py).

``--data`` is a synthetic set (``tfsal data synth``); when the folder does not exist, the default
set is written there. Writes ``results.json`` and ``results.md`` to ``--out`` (after each part,
so an interrupted run keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "docs")]

import batch_throughput  # noqa: E402
import memory  # noqa: E402
import methods  # noqa: E402
import peers  # noqa: E402
import speed  # noqa: E402
import tensorflow as tf  # noqa: E402
import training  # noqa: E402

from tfsal.util import atomic  # noqa: E402

PARTS = ("speed", "profile", "trials", "peers", "memory", "training", "cheaper", "batch", "methods")  # in run order
CHEAPER = [{}, {"steps": 50}, {"steps": 75}, {"cell": 12}, {"cell": 16}, {"stop_patience": 10},
           {"batch_size": 1}, {"batch_size": 1, "stop_patience": 10}]


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"platform": platform.platform(), "cpu": cpu, "cpus": len(os.sched_getaffinity(0)),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__,
            "python": platform.python_version()}


def shipped() -> tuple:
    """The shipped classifier and inpainter (loaded once: ``speed.models_for`` caches them)."""
    return speed.models_for(speed.SHIPPED)[:2]


def ensure_data(folder: Path) -> Path:
    if not (folder / "labels.csv").exists():
        from tfsal.data.synthetic_dataset import write_dataset

        write_dataset(folder, progress=True)
    return folder


def cheaper_rows(data, classifier, inpainter, count: int, log) -> list[dict]:
    from tune_explainer import score

    split = peers.mass_images(data, tuple(classifier.input_shape[1:3]), count, split="val")
    rows = []
    for setting in CHEAPER:
        rows.append({"setting": setting, **score(setting, classifier, inpainter, split)})
        log(rows[-1])
    return rows


def _f(value, digits=2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _section(title: str, columns: list[str], rows) -> list[str]:
    """A markdown section: its title and a table of ``rows`` (lists of cells)."""
    return ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(map(str, row)) + " |" for row in rows)]


def markdown(results: dict) -> str:
    out = []
    if rows := results.get("speed"):
        out += _section("Speed against the compute floor",
                        ["size", "batch", "s/image", "images/s", "floor s/image", "explain / floor (lowest-highest)",
                         "minimal floor s/image", "explain / minimal floor", "peak RSS MB"],
                        ([r["size"], r["batch"], f"{r['seconds_per_image']:.3f}", f"{r['images_per_second']:.2f}",
                          f"{r['floor_seconds_per_image']:.3f}",
                          f"{r['overhead_ratio']:.2f} ({r['ratio_spread'][0]:.2f}-{r['ratio_spread'][1]:.2f})",
                          f"{r['minimal_floor_seconds_per_image']:.3f}", f"{r['minimal_ratio']:.2f}",
                          f"{r['peak_rss_mb']:.0f}"] for r in rows))
    if rows := results.get("profile"):
        out += _section("Where the time goes (seconds of one explain call)",
                        ["size", "batch", "total", "organ masks", "prepare", "in-fill", "optimise (its floor)",
                         "final counterfactual", "growth", "other", "loop / floor", "loop / minimal floor"],
                        ([r["size"], r["batch"], f"{r['total']:.2f}", f"{r['organ_of']:.3f}", f"{r['prepare']:.3f}",
                          f"{r['precomputed_fill']:.3f}", f"{r['optimise']:.2f} ({r['optimise_floor']:.2f})",
                          f"{r['counterfactuals']:.3f}", f"{r['grow']:.3f}", f"{r['other']:.3f}",
                          _f(r.get("loop_ratio")), _f(r.get("loop_minimal_ratio"))] for r in rows))
    if rows := results.get("trials"):
        out += _section("XLA and mixed precision", ["size", "batch", "variant", "s/image", "mask pixels as default"],
                        ([r["size"], r["batch"], r["variant"],
                          *([f"{r['seconds_per_image']:.3f}", f"{r['mask_agreement']:.3f}"] if "error" not in r
                            else [f"failed: {r['error']}", ""])] for r in rows))
    if rows := results.get("peers"):
        out += _section("Peers: same classifier, same images",
                        ["toolbox", "method", "mask", "s/image", "D", "H", "D largest", "H largest", "empty masks"],
                        ([r["toolbox"], r["method"], r["mask"], f"{r['seconds_per_image']:.3f}", f"{r['D']:.1f}",
                          f"{r['H']:.1f}", f"{r['D_largest']:.1f}", f"{r['H_largest']:.1f}",
                          f"{r['empty']}/{r['images']}"] for r in rows))
    if row := results.get("memory"):
        out += ["", "## Memory over consecutive explanations", "",
                f"{row['explanations']} explanations of one image ({row['steps']} steps): RSS "
                f"{row['rss_after_warm_up_mb']:.0f} MB after warm-up, {row['rss_at_end_mb']:.0f} MB at the end, "
                f"growth {row['growth_percent']:+.2f} %."]
    if rows := results.get("training"):
        out += _section("Training", ["model", "phase", "s/epoch (last)", "first epoch", "batches/epoch"],
                        ([r["model"], r["phase"], f"{r['seconds_per_epoch']:.1f}", f"{r['seconds_first_epoch']:.1f}",
                          r["batches_per_epoch"]] for r in rows))
    if rows := results.get("cheaper"):
        out += _section("Cheaper options (validation split)", ["setting", "D", "H", "empty", "flip", "s/image"],
                        ([f"`{json.dumps(r['setting'], separators=(',', ':'))}`", f"{r['D']:.1f}", f"{r['H']:.1f}",
                          r["empty"], _f(r["flip"]), f"{r['seconds_per_image']:.2f}"] for r in rows))
    if rows := results.get("batch"):
        out += _section("Beam against one process", ["command", "images", "batch", "seconds", "images/s"],
                        ([r["command"], r["images"], r["batch_size"], f"{r['seconds']:.1f}",
                          f"{r['images_per_second']:.2f}"] for r in rows))
    if rows := results.get("methods"):
        columns = sorted({(r["size"], r["batch"]) for r in rows}, key=lambda c: (int(c[0].split("x")[0]), c[1]))
        seconds = {(r["method"], r["size"], r["batch"]): r["seconds_per_image"] for r in rows}
        out += _section("Every method, seconds per image", ["method", *(f"{s}, batch {b}" for s, b in columns)],
                        ([name, *(_f(seconds.get((name, *c)), 3) for c in columns)]
                         for name in dict.fromkeys(r["method"] for r in rows)))
    return "\n".join(out).strip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--data", type=Path, default=Path("data/synth"))
    parser.add_argument("--sizes", default="256x192,576x448")
    parser.add_argument("--batches", default="1,4,8,16")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3,
                        help="speed and profile parts: explain calls and floor measurements alternated this many "
                             "times (medians)")
    parser.add_argument("--images", type=int, default=48, help="mass images for the peers and cheaper parts")
    parser.add_argument("--methods", default=None,
                        help="the methods and peers parts: these registered methods only, comma-separated "
                             "[default: all]")
    parser.add_argument("--explanations", type=int, default=500, help="explanations in the memory part")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown parts {sorted(unknown)}; choose from {','.join(PARTS)}")
    sizes = [tuple(int(v) for v in text.split("x")) for text in args.sizes.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    names = args.methods.split(",") if args.methods else None  # None: every registered method
    args.out.mkdir(parents=True, exist_ok=True)
    # parts measured by an earlier run into the same folder stay, so one part can be rerun alone
    previous = args.out / "results.json"
    results = json.loads(previous.read_text()) if previous.exists() else {}
    results.update({"machine": machine(), "steps": args.steps})
    results.setdefault("commands", {})

    def log(row):
        print(json.dumps(row), flush=True)

    def save():
        atomic.write_text(args.out / "results.json", json.dumps(results, indent=1) + "\n")
        atomic.write_text(args.out / "results.md", markdown(results))

    started = time.time()
    for part in parts:
        tick = time.time()
        if part == "speed":
            results[part] = speed.speed_rows(sizes, batches, args.steps, log, args.repeats)
        elif part == "profile":
            results[part] = [row for size in sizes
                             for row in speed.profile_rows(size, batches, args.steps, log, args.repeats)]
        elif part == "trials":
            results[part] = speed.trial_rows(speed.SHIPPED, [1, 8], args.steps, log)
        elif part == "peers":
            results[part] = peers.peer_rows(ensure_data(args.data), *shipped(), args.images, log, names)
        elif part == "memory":  # in a process of its own, so that the other parts' memory does not count
            results[part] = memory.in_subprocess(count=args.explanations, steps=args.steps)
        elif part == "training":
            results[part] = training.training_rows(ensure_data(args.data), log)
        elif part == "cheaper":
            results[part] = cheaper_rows(ensure_data(args.data), *shipped(), args.images, log)
        elif part == "batch":
            results[part] = batch_throughput.batch_rows(ensure_data(args.data), log=log)
        elif part == "methods":
            results[part] = methods.method_rows(sizes, [1, 16], args.steps, log, names)
        results.setdefault("seconds", {})[part] = round(time.time() - tick, 1)
        results["commands"][part] = " ".join(["python", *sys.argv])
        save()
    print(markdown(results))
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
