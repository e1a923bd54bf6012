"""`tfsal report`: a self-contained HTML page of an output folder, rendered in headless Chromium
(CI installs Debian's `chromium`; set TFSAL_REQUIRE_BROWSER=1 to fail rather than skip without it)."""

import json
import os
import re
import shutil
import subprocess

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tfsal.cli.main import cli
from tfsal.outputs.report import markdown_to_html

from ..explain.conftest import mammogram_like


def browser() -> str:
    found = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(name)), None)
    if found is None:
        if os.environ.get("TFSAL_REQUIRE_BROWSER"):
            pytest.fail("no Chromium on PATH (apt-get install chromium)")
        pytest.skip("no Chromium on PATH")
    return found


def chromium(*args, url):
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", *args, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.fixture(scope="module")
def explained(blob_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    for i in range(3):
        cv2.imwrite(str(folder / f"case{i}.png"), (mammogram_like(i, blob=i != 1)[..., 0] * 65535).astype(np.uint16))
    out = tmp_path_factory.mktemp("explained")
    result = CliRunner().invoke(cli, ["explain", str(folder), "--out", str(out), "--steps", "3",
                                      *map(str, blob_models)])
    assert result.exit_code == 0, result.output
    return out


def test_the_page_renders_in_chromium_with_one_sorted_row_per_case(explained, tmp_path):
    result = CliRunner().invoke(cli, ["report", str(explained), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    page = tmp_path / "report" / "report.html"
    assert not re.search(r"(src|href)=\"(https?:)?//", page.read_text())  # nothing from the network
    dom = chromium("--dump-dom", url=page.as_uri() + "#sort=-score_original")
    rows = re.findall(r'<tr class="case">(.*?)</tr>', dom, re.S)
    assert len(rows) == 3
    shown = [float(re.findall(r'data-value="([0-9.e-]+)"', row)[0]) for row in rows]
    records = [json.loads((explained / f"case{i}.json").read_text())["score_original"] for i in range(3)]
    assert shown == pytest.approx(sorted(records, reverse=True), abs=1e-6)  # sorted by the page's script
    for row in rows:  # each thumbnail links to its full-size overlay beside the page
        link = re.search(r'href="(report_images/[^"]+)"', row)[1]
        assert (tmp_path / "report" / link).is_file()
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,900", url=page.as_uri())
    pixels = cv2.imread(str(shot))
    assert pixels is not None and pixels.std() > 20  # not blank
    assert (pixels.max(axis=2).astype(int) - pixels.min(axis=2) > 60).sum() > 50  # the overlays' colour bars


def test_an_evaluation_folder_gives_its_tables_and_figures(tmp_path):
    (tmp_path / "results.md").write_text("# Evaluation\n\n`tfsal evaluate ...`\n\n| method | D |\n|---|---|\n"
                                         "| ours | 9.4 |\n| SAL | 12.0 |\n")
    cv2.imwrite(str(tmp_path / "roc.png"), np.full((20, 20, 3), 128, np.uint8))
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert page.count("<tr>") == 3 and "<code>tfsal evaluate ...</code>" in page and "data:image/png;base64" in page
    assert 'id="cases"' not in page  # no table of cases in an evaluation folder


def test_markdown_tables_are_escaped():
    html = markdown_to_html("## a <b>\n| x | y |\n|---|---|\n| <script> | 1 |\n")
    assert "<h3>a &lt;b&gt;</h3>" in html and "<td>&lt;script&gt;</td>" in html and "<script>" not in html


def test_a_folder_without_results_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "no results of tfsal" in result.output and "Traceback" not in result.output


@pytest.mark.slow  # the README's first command as it is: 100 steps
def test_the_demos_report_renders_and_its_healthy_overlays_have_no_colour(tmp_path):
    """The README's first command, then its report in Chromium: four rows; the images the shipped
    classifier calls healthy come out without a region and are drawn without a coloured pixel,
    the masses with their outline. (With a few steps only, the optimisation has not yet emptied
    the healthy images' masks.)"""
    demo = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["explain", "--demo", "--out", str(demo)])
    assert result.exit_code == 0, result.output
    for record in (json.loads(p.read_text()) for p in demo.glob("*.json")):
        overlay = cv2.imread(str(demo / next(f for f in record["files"] if f.endswith("_overlay.png"))))
        colour = (overlay.max(axis=2).astype(int) - overlay.min(axis=2)) > 0
        if record["score_original"] < 0.5:
            assert record["area_fraction"] == 0 and not colour.any(), record["input"]
        else:
            assert record["area_fraction"] > 0 and colour.sum() > 100, record["input"]
    assert CliRunner().invoke(cli, ["report", str(demo)]).exit_code == 0
    dom = chromium("--dump-dom", url=(demo / "report.html").as_uri())
    assert len(re.findall(r'<tr class="case">', dom)) == 4
