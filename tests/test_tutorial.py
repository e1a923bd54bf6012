"""docs/tutorial.md runs: its python blocks, in order, in one namespace, in a fresh folder."""

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"

pytestmark = pytest.mark.slow  # explains nine images with the shipped classifier


def test_the_tutorial_runs_and_writes_its_figures(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), re.S)
    assert len(blocks) == 3
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__tutorial__"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{TUTORIAL.name}, python block {number}", "exec"), namespace)
    assert (tmp_path / "mass_2_explained.png").stat().st_size > 10_000
    assert (tmp_path / "my_classifier.png").stat().st_size > 10_000
    assert namespace["explanation"].score_original > 0.5  # the shipped classifier finds the demo's mass
    assert namespace["explanations"].saliency.shape == (4, 320, 240)
