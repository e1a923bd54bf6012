"""The results tables of ``tfsal explain-batch``: one row per input (``results.csv``), the failed
inputs (``dead_letters.csv``), merged with earlier runs and written atomically."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from tfsal.evaluation.metrics import count_components
from tfsal.util import atomic

__all__ = ["DEAD_LETTERS", "DEAD_LETTER_FIELDS", "RESULTS", "RESULT_FIELDS", "BatchReport", "merge_table",
           "read_table", "result_row", "write_csv"]

RESULTS, DEAD_LETTERS = "results.csv", "dead_letters.csv"
"""The tables' file names in the output folder."""
RESULT_FIELDS = ("input", "status", "score_original", "score_counterfactual", "area_fraction", "components",
                 "seconds", "error")
"""The columns of ``results.csv``."""
DEAD_LETTER_FIELDS = ("input", "reason")
"""The columns of ``dead_letters.csv``."""


def result_row(path: str, status: str, record: dict | None = None, count: int | None = None, error: str = "") -> dict:
    record = record or {}
    return {"input": path, "status": status, "score_original": record.get("score_original"),
            "score_counterfactual": record.get("score_counterfactual"),
            "area_fraction": record.get("area_fraction"), "components": count, "seconds": record.get("seconds"),
            "error": error}


def dead_letter_row(path: str, reason: str) -> dict:
    return result_row(path, "error", error=reason)


@dataclass
class BatchReport:
    """What one run did: ``rows`` of this run's inputs, how many were ``skipped`` as done, and the
    whole merged ``table`` (what ``results.csv`` holds)."""

    rows: list[dict]
    skipped: int
    table: list[dict]

    @property
    def failed(self) -> list[dict]:
        return [row for row in self.rows if row["status"] != "ok"]


def read_table(path: Path) -> dict[str, dict]:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            return {row["input"]: row for row in csv.DictReader(file) if row.get("input")}
    except (OSError, csv.Error, KeyError):
        return {}


def _row_from_outputs(out: Path, path: str, stem: str) -> dict:
    """The row of an input explained earlier whose row is missing (e.g. by ``tfsal explain``)."""
    import cv2

    try:
        record = json.loads((out / f"{stem}.json").read_text(encoding="utf-8"))
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError) as exc:
        return result_row(path, "error", error=f"cannot read its earlier outputs: {exc}")
    return result_row(path, "ok", record, None if mask is None else count_components(mask > 0))


def merge_table(inputs: list[str], earlier: dict[str, dict], done: list[tuple[str, str]], rows: list[dict],
           out: Path) -> list[dict]:
    """One row per input in their order: this run's, else the earlier one of an input done before
    (rebuilt from its outputs when missing or not ok); then the earlier rows of inputs not listed."""
    table = {row["input"]: row for row in rows}
    for path, stem in done:
        row = earlier.get(path)
        table[path] = row if row and row.get("status") == "ok" else _row_from_outputs(out, path, stem)
    return [table[path] for path in dict.fromkeys(inputs) if path in table] + [
        row for path, row in earlier.items() if path not in table]


def write_csv(path: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """Write the table atomically, unless the file already holds exactly this."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: "" if row.get(k) is None else row[k] for k in fields} for row in rows)
    text = buffer.getvalue()
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic.write_text(path, text)
