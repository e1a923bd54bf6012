"""``tfsal report``: one static HTML page from an ``explain``, ``explain-batch``, ``predict`` or
``evaluate`` output folder.

The page needs no network: thumbnails are embedded (base64 PNG) and open the full-size overlay,
copied beside the page into ``report_images/`` (linked where they are when the page goes into
the results' own folder). It holds a table of cases, sortable by any
column (click its header; ``#sort=<column>`` or ``#sort=-<column>`` in the address sorts on
load), with the input as the results name it, the method, the scores before and after, the
region's share of the breast, and the status of inputs that failed (``results.csv``); then the
evaluation's tables (``results.md``, ``metrics.json``) and figures (``roc.png``, ``cases.png``)
when the folder has them. Names come from the results themselves, so a run made with
``--redact-paths`` gives a page without paths. Loads no TensorFlow.
"""

from __future__ import annotations

import base64
import csv
import html
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np

from tfsal.errors import TfsalError
from tfsal.outputs.provenance import read_record
from tfsal.util import atomic

__all__ = ["COLUMNS", "REPORT_NAME", "collect_cases", "markdown_to_html", "write_report"]

REPORT_NAME = "report.html"
IMAGES = "report_images"
FIGURES = ("roc.png", "cases.png", "fig2.png")
COLUMNS = (("picture", "overlay"), ("input", "input"), ("method", "method"), ("before", "score_original"),
           ("after", "score_counterfactual"), ("area %", "area"), ("status", "status"))
"""The table's columns: header and the key of a case that fills it."""
THUMB_HEIGHT = 160


def collect_cases(folder: Path) -> list[dict]:
    """One case per result JSON in ``folder`` (``input`` plus the scores or the probability), in
    file-name order, and one per failed input of a ``results.csv`` (``status`` not ok)."""
    cases = []
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        if record is None or "input" not in record:
            continue
        overlay = next((name for name in record.get("files", []) if name.endswith("_overlay.png")), None)
        area = record.get("area_fraction")
        cases.append({"input": str(record["input"]), "method": record.get("method") or record.get("signature", ""),
                      "score_original": record.get("score_original", record.get("probability")),
                      "score_counterfactual": record.get("score_counterfactual"),
                      "area": None if area is None else round(100 * area, 2), "status": "ok",
                      "overlay": overlay if overlay and (folder / overlay).is_file() else None})
    table = folder / "results.csv"
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                if row.get("status") and row["status"] != "ok":
                    cases.append({"input": row.get("input", ""), "method": "", "score_original": None,
                                  "score_counterfactual": None, "area": None, "overlay": None,
                                  "status": f"{row['status']}: {row.get('error', '')}".strip()})
    return cases


def _thumbnail(path: Path) -> str:
    """A data URI of the PNG at ``path`` scaled to :data:`THUMB_HEIGHT` rows."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return ""
    scale = THUMB_HEIGHT / image.shape[0]
    if scale < 1:
        image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", image)
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode() if ok else ""


def _cell(case: dict, key: str, folder: Path, out: Path) -> str:
    value = case.get(key)
    if key == "overlay":
        if not value:
            return "<td></td>"
        if out.resolve() == folder.resolve():  # the overlay is beside the page already
            link = quote(value)
        else:
            shutil.copyfile(folder / value, out / IMAGES / value)
            link = quote(f"{IMAGES}/{value}")
        return f'<td><a href="{link}" target="_blank"><img src="{_thumbnail(folder / value)}" alt=""></a></td>'
    if isinstance(value, float):
        return f'<td data-value="{value}">{value:.2f}</td>' if key == "area" else \
            f'<td data-value="{value}">{value:.3f}</td>'
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _cases_table(cases: list[dict], folder: Path, out: Path) -> str:
    if out.resolve() != folder.resolve():
        (out / IMAGES).mkdir(exist_ok=True)
    head = "".join(f'<th data-key="{key}">{html.escape(name)}</th>' for name, key in COLUMNS)
    rows = ["<tr class=\"case\">" + "".join(_cell(case, key, folder, out) for _, key in COLUMNS) + "</tr>"
            for case in cases]
    return (f"<p>Click a header to sort; a picture opens at full size.</p>\n<table id=\"cases\"><thead><tr>{head}"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def markdown_to_html(markdown: str) -> str:
    """The subset of Markdown the evaluation writes: ``#`` headings, pipe tables, paragraphs and
    ``code`` spans; everything escaped."""
    blocks, table = [], []

    def flush_table():
        if table:
            cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in table
                     if not re.fullmatch(r"\|?[\s:|-]+\|?", row.strip())]
            table.clear()
            if not cells:
                return
            head = "".join(f"<th>{_inline(c)}</th>" for c in cells[0])
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
            blocks.append(f'<table class="evaluation"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')

    for line in markdown.splitlines():
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        flush_table()
        heading = re.match(r"(#{1,6})\s+(.*)", line)
        if heading:
            level = min(6, len(heading[1]) + 1)  # the page's own title is the h1
            blocks.append(f"<h{level}>{_inline(heading[2])}</h{level}>")
        elif line.strip():
            blocks.append(f"<p>{_inline(line)}</p>")
    flush_table()
    return "\n".join(blocks)


def _evaluation(folder: Path) -> str:
    parts = []
    if (folder / "results.md").is_file():
        parts.append(markdown_to_html((folder / "results.md").read_text(encoding="utf-8")))
    metrics = read_record(folder / "metrics.json")
    if metrics:
        flat = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
        parts.append("<h2>Classifier metrics</h2><table class=\"evaluation\">" + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in flat.items()) + "</table>")
    for name in FIGURES:
        if (folder / name).is_file():
            data = base64.b64encode((folder / name).read_bytes()).decode()
            parts.append(f'<h2>{html.escape(name)}</h2><img class="figure" src="data:image/png;base64,{data}" '
                         f'alt="{html.escape(name)}">')
    return "\n".join(parts)


STYLE = """body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}th[data-key]{cursor:pointer;
background:#eef}td img{height:THUMBpx}img.figure{max-width:100%}code{background:#f4f4f4}""".replace(
    "THUMB", str(THUMB_HEIGHT))

SCRIPT = """const table=document.getElementById('cases');
function sortBy(key,descending){if(!table)return;const heads=[...table.tHead.rows[0].cells];
const i=heads.findIndex(h=>h.dataset.key===key);if(i<0)return;const body=table.tBodies[0];
const value=r=>{const c=r.cells[i];return c.dataset.value!==undefined?parseFloat(c.dataset.value):c.textContent};
const rows=[...body.rows].sort((a,b)=>{const x=value(a),y=value(b);
const o=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));return descending?-o:o;});
rows.forEach(r=>body.appendChild(r));heads.forEach(h=>delete h.dataset.sorted);
heads[i].dataset.sorted=descending?'down':'up';}
if(table){[...table.tHead.rows[0].cells].forEach(h=>h.addEventListener('click',()=>
sortBy(h.dataset.key,h.dataset.sorted==='up')));}
const wanted=new URLSearchParams(location.hash.slice(1)).get('sort');
if(wanted){sortBy(wanted.replace(/^-/,''),wanted.startsWith('-'));}"""


def write_report(folder: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write ``report.html`` (and ``report_images/``) for the results in ``folder`` into ``out``
    (None: ``folder``); returns the page's path.

    Raises:
        TfsalError: ``folder`` is not a folder, or holds no result of tfsal.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TfsalError(f"{folder}: not a folder")
    out = Path(out) if out is not None else folder
    out.mkdir(parents=True, exist_ok=True)
    cases = collect_cases(folder)
    evaluation = _evaluation(folder)
    if not cases and not evaluation:
        raise TfsalError(f"{folder}: no results of tfsal explain, explain-batch, predict or evaluate here")
    scores = np.array([c["score_original"] for c in cases if isinstance(c["score_original"], float)])
    summary = f" ({len(scores)} scored, {int((scores >= 0.5).sum())} at p >= 0.5)" if scores.size else ""
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tfsal report: "
            f"{html.escape(folder.name)}</title><style>{STYLE}</style></head><body>\n"
            f"<h1>tfsal report: {html.escape(folder.name)}</h1>\n"
            + (f"<p>{len(cases)} cases{summary}.</p>\n{_cases_table(cases, folder, out)}\n" if cases else "")
            + f"{evaluation}\n<script>{SCRIPT}</script>\n</body></html>\n")
    atomic.write_text(out / REPORT_NAME, page)
    return out / REPORT_NAME
