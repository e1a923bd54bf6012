"""`benchmarks/run.py` runs its parts end to end on tiny settings and writes its tables (speed is
measured there, never asserted here)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfsal.data.synthetic_dataset import write_dataset

pytestmark = pytest.mark.slow  # runs the benchmark scripts

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_speed_profile_and_peers_parts_write_json_and_markdown(tmp_path):
    write_dataset(tmp_path / "data", n_mass=8, n_healthy=2, seed=1)
    out = tmp_path / "bench"
    command = [sys.executable, str(RUN), "--out", str(out), "--data", str(tmp_path / "data"), "--sizes", "64x64",
               "--batches", "1,2", "--steps", "2", "--images", "2", "--repeats", "2"]
    subprocess.run([*command, "--parts", "speed,profile"], check=True, capture_output=True)
    peers = ["counterfactual", "cam"]  # a mask method and a map method (the methods part below times them all)
    subprocess.run([*command, "--parts", "peers", "--methods", ",".join(peers)], check=True,
                   capture_output=True)  # a second run keeps the first's
    results = json.loads((out / "results.json").read_text())
    assert [(r["size"], r["batch"]) for r in results["speed"]] == [("64x64", 1), ("64x64", 2)]
    assert all(r["seconds_per_image"] > 0 and r["overhead_ratio"] > 0 for r in results["speed"])
    assert all(r["repeats"] == 2 for r in results["speed"] + results["profile"])
    for r in results["speed"]:  # the floor with the refills and the final pass is above the minimal one
        assert r["floor_seconds_per_image"] > r["minimal_floor_seconds_per_image"] > 0
        assert r["ratio_spread"][0] <= r["ratio_spread"][1]
    assert all(r["total"] >= r["optimise"] > 0 and r["loop_ratio"] <= r["loop_minimal_ratio"]
               for r in results["profile"])
    tfsal_rows = [r for r in results["peers"] if r["toolbox"] == "tfsal"]
    assert [r["method"] for r in tfsal_rows] == ["counterfactual", "counterfactual", "cam"]  # the mask method twice:
    assert [r["mask"] for r in tfsal_rows] == ["top 10 %", "its own (M < 0.5)", "top 10 %"]  # thresholded and its own
    assert all(r["images"] == 2 for r in tfsal_rows)
    markdown = (out / "results.md").read_text()
    assert "## Speed against the compute floor" in markdown and "## Peers" in markdown


def test_methods_part_times_every_registered_method_at_batch_1_and_16(tmp_path):
    from tfsal.explain import registry

    out = tmp_path / "bench"
    subprocess.run([sys.executable, str(RUN), "--out", str(out), "--sizes", "64x64", "--steps", "2", "--parts",
                    "methods"], check=True, capture_output=True)
    rows = json.loads((out / "results.json").read_text())["methods"]
    assert {(r["method"], r["batch"]) for r in rows} == {(m, b) for m in registry.names() for b in (1, 16)}
    assert all(r["seconds_per_image"] > 0 and r["images"] == max(r["batch"], 4) for r in rows)
    assert "## Every method, seconds per image" in (out / "results.md").read_text()
