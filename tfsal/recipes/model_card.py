"""The model card ``tfsal train all`` writes: ``README.md`` for people, ``card.json`` for tools.

The card says what data made the models (the manifest's fingerprint and counts, never file
names), every setting, the time of each stage, the classifier's validation and test metrics
with their intervals, the Fig. 2 check, the figures, and the command that reproduces it. A
classifier whose validation AUC interval includes 0.5 is marked weak, on top of the card and in
``card.json`` (read by :mod:`tfsal.models.card` whenever the classifier is loaded).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from tfsal import __version__
from tfsal.models.card import CARD_NAME, is_weak, weak_warning
from tfsal.util import atomic
from tfsal.util.hashing import file_sha256

FIGURES = (("evaluation/test/roc.png", "ROC on the test split"),
           ("evaluation/val/roc.png", "ROC on the validation split"),
           ("check/fig2.png", "The paper's Fig. 2 check"), ("check/examples.png", "In-fill examples"))


def reproduce_command(settings: dict, defaults: dict, manifest: str, out: str) -> str:
    """The ``tfsal train all`` command line that makes a run with ``settings``: each setting that
    differs from ``defaults`` as its option (``size`` as HxW, a pair as LOW,HIGH, a flag for True,
    0 for None)."""
    words = ["tfsal train all", f"--data {manifest}", f"--out {out}"]
    for name, value in settings.items():
        if value == defaults.get(name):
            continue
        option = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(option)
        elif name == "size":
            words.append(f"{option} {value[0]}x{value[1]}")
        elif isinstance(value, (list, tuple)):
            words.append(f"{option} {','.join(repr(v).removesuffix('.0') for v in value)}")
        else:
            words.append(f"{option} {0 if value is None else value}")
    return " ".join(words)


def write_card(out: Path, settings: dict, data: dict, stages: dict, defaults: dict) -> dict:
    """Write ``card.json`` and ``README.md`` into ``out`` from a finished run (``defaults``: the
    settings a plain ``tfsal train all`` uses, for the reproducing command); return the card."""
    models = {name: {"sha256": file_sha256(out / name), "bytes": (out / name).stat().st_size}
              for name in ("classifier.keras", "inpainter.keras", "classifier_base.keras") if (out / name).is_file()}
    metrics = stages["evaluate"]["metrics"]
    card = {
        "tfsal_version": __version__, "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "weak": is_weak(metrics), "models": models, "data": data, "settings": settings, "metrics": metrics,
        "stages": {name: {k: v for k, v in stage.items() if k != "lines"} for name, stage in stages.items()},
        "command": reproduce_command(settings, defaults, data["manifest"], out.name),
    }
    atomic.write_text(out / CARD_NAME, json.dumps(card, indent=1) + "\n")
    atomic.write_text(out / "README.md", _markdown(out, card, stages))
    return card


def _metric_rows(metrics: dict) -> list[str]:
    rows = ["| split | mass | healthy | ROC AUC (95 % interval) | sensitivity | specificity |",
            "|---|---|---|---|---|---|"]
    for split, m in metrics.items():
        low, high = m["roc_auc_interval"]
        rows.append(f"| {split} | {m['n_mass']} | {m['n_healthy']} | {m['roc_auc']:.3f} ({low:.3f}-{high:.3f}) "
                    f"| {m['sensitivity']:.3f} | {m['specificity']:.3f} |")
    return rows


def _size_rows(metrics: dict) -> list[str]:
    """The AUC of the mass images in thirds by their mask's size, per split that has mass masks."""
    rows = [f"| {split} | {g['value']} | {g['n_mass']} | {g['roc_auc']:.3f} ({g['roc_auc_interval'][0]:.3f}-"
            f"{g['roc_auc_interval'][1]:.3f}) |" for split, m in metrics.items() for g in m.get("by_lesion_size", [])]
    if not rows:
        return []
    return ["By lesion size (the manifest's `lesion_size` column if it has one, else the mass images in thirds "
            "by their mask's equivalent diameter over the image height, each against every healthy image of "
            "the split; as `tfsal evaluate-classifier --by lesion_size`):", "",
            "| split | lesion size | mass | ROC AUC (95 % interval) |", "|---|---|---|---|", *rows, ""]


def _markdown(out: Path, card: dict, stages: dict) -> str:
    lines = [f"# Models trained by `tfsal train all` (tfsal {card['tfsal_version']})", ""]
    warning = weak_warning(card)
    if warning:
        advice = ("more data or more fine-tuning epochs" if card["settings"].get("init_from_shipped")
                  else "more data, or `--init-from-shipped` for a small data set")
        lines += [f"> **WEAK CLASSIFIER.** {warning[0].upper() + warning[1:]}. Explanations of its decisions "
                  f"explain noise. What may help: {advice}.", ""]
    lines += ["## Classifier", "", *_metric_rows(card["metrics"]), "",
              f"At a threshold of {next(iter(card['metrics'].values()))['threshold']}; the intervals are "
              "stratified bootstrap intervals of the AUC.", "", *_size_rows(card["metrics"])]
    lines += ["## Data", "", f"Manifest `{card['data']['manifest']}`, fingerprint (SHA-256 of the images' and "
              f"masks' bytes with labels and splits) `{card['data']['fingerprint']}`.", "",
              "| split | mass | healthy | mass masks |", "|---|---|---|---|"]
    lines += [f"| {split} | {c['mass']} | {c['healthy']} | {c['mass_masks']} |"
              for split, c in card["data"]["counts"].items()]
    lines += ["", "## Models", "", "| file | bytes | SHA-256 |", "|---|---|---|"]
    lines += [f"| `{name}` | {m['bytes']} | `{m['sha256']}` |" for name, m in card["models"].items()]
    lines += ["", "## Stages", "", "| stage | seconds | result |", "|---|---|---|"]
    for name, stage in stages.items():
        lines.append(f"| {name} | {stage['seconds']:.0f} | {_stage_result(name, stage)} |")
    check = stages.get("check")
    if check:
        lines += ["", f"## The Fig. 2 check ({check['split']} split, {check['images']} images, {check['runs']} runs)",
                  "", *[f"- {line}" for line in check["lines"]]]
    lines += ["", "## Figures", ""]
    lines += [f"![{title}]({path})" for path, title in FIGURES if (out / path).is_file()]
    lines += ["", "## Settings", "", "```json", json.dumps(card["settings"], indent=1), "```", "",
              "## Reproduce", "", "```bash", card["command"], "```", ""]
    return "\n".join(lines)


def _stage_result(name: str, stage: dict) -> str:
    if "best_val_auc" in stage:
        return (f"`{stage['out']}`: best validation AUC {stage['best_val_auc']:.4f} at whole-image epoch "
                f"{stage['best_epoch'] + 1} ({stage['epochs_run']} epochs run, pre-training included)")
    if "best_val_hole_l1" in stage:
        return (f"`{stage['out']}`: best validation hole L1 {stage['best_val_hole_l1']:.4f} at epoch "
                f"{stage['best_epoch'] + 1} ({stage['epochs_run']} epochs run)")
    if name == "check":
        return f"AUC original {stage['original_auc']:.3f}, masses inpainted {stage['mass_inpainted_auc']:.3f}"
    return ", ".join(f"{split} AUC {m['roc_auc']:.3f}" for split, m in stage.get("metrics", {}).items())
