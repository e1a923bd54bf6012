"""`tfsal explain-batch` (Beam's DirectRunner, 2 worker processes) against `tfsal explain` in one
process, on the same images with the same options: wall seconds of each command from start to
exit (Python start, TensorFlow import and model loading included), and images per second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tfsal.data.manifest import read_manifest


def _timed(command: list[str]) -> float:
    tick = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - tick


def batch_rows(data, count: int = 100, batch_size: int = 8, workers: int = 2, log=print) -> list[dict]:
    paths = [str(r.image) for r in read_manifest(data, split="test")][:count]
    tfsal = str(Path(sys.executable).with_name("tfsal"))  # the command of this environment
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        listed = folder / "inputs"
        listed.mkdir()
        for path in paths:  # one folder of the chosen images: the same input for both commands
            shutil.copy(path, listed / Path(path).name)
        options = ["--batch-size", str(batch_size)]
        commands = {
            "tfsal explain (one process)": [tfsal, "explain", str(listed), "--out", str(folder / "explain"),
                                            *options],
            f"tfsal explain-batch (DirectRunner, {workers} processes)": [
                tfsal, "explain-batch", "--input", str(listed), "--out", str(folder / "batch"), *options,
                f"--direct-num-workers={workers}", "--direct-running-mode=multi_processing"],
        }
        for name, command in commands.items():
            seconds = _timed(command)
            rows.append({"command": name, "images": len(paths), "batch_size": batch_size, "seconds": seconds,
                         "images_per_second": len(paths) / seconds})
            log(rows[-1])
    return rows
