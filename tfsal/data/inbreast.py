"""Build ``labels.csv`` from INbreast: its DICOMs, the per-image XML ROI files and its CSV.

Reference: I. C. Moreira, I. Amaral, I. Domingues, A. Cardoso, M. J. Cardoso, J. S. Cardoso,
"INbreast: toward a full-field digital mammographic database", Academic Radiology 19(2),
pp. 236-248, 2012 (distributed on request under its own terms: the images may not be shared).

Layout: ``AllDICOMs/<file name>_<patient>_MG_<laterality>_<view>_ANON.dcm``, ``AllXML/<file
name>.xml`` for the images with annotations (OsiriX ROI property lists: ``Images`` -> ``ROIs``,
each with a ``Name`` such as ``Mass``, ``Calcification`` or ``Cluster`` and its outline
``Point_px`` as ``(x, y)`` strings in pixels), and ``INbreast.csv`` (semicolon-separated:
``Laterality``, ``View``, ``File Name``, ``ACR``, ``Bi-Rads``, ...). The second part of a DICOM
file name identifies the woman (the CSV's own patient column is blanked), so the split is drawn
by woman (the manifest's ``patient`` column numbers the women; the identifiers stay out).

Labels: an image with a ROI named in :data:`MASS_NAMES` is 1, and its mask is the union of those
outlines, filled; an image with no ROI at all is 0; an image with other ROIs only
(calcifications, clusters, distortions, asymmetries) is left out unless ``include_other`` (then
0: no mass). Masks are written as ``masks/inbreast_<file name>.png`` (the file names are the
database's image numbers, not patient data).
"""

from __future__ import annotations

import csv
import logging
import plistlib
import re
from dataclasses import dataclass
from pathlib import Path
from xml.parsers.expat import ExpatError

import numpy as np

from tfsal.data.image_io import write_mask
from tfsal.data.manifest import Record, write_manifest
from tfsal.data.splits import assign_splits
from tfsal.errors import InbreastError

__all__ = ["MASS_NAMES", "InbreastError", "build_manifest", "read_rois", "roi_mask"]

log = logging.getLogger(__name__)

MASS_NAMES = ("Mass", "Spiculated Region")
"""ROI names that mark a mass (INbreast names a spiculated mass's outline ``Spiculated Region``)."""

_DICOM = re.compile(r"^(\d+)_([0-9a-fA-F]+)_MG_([LR])_([A-Z]+)_ANON$")
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,[^)]*)?\)")



@dataclass
class Roi:
    """One ROI of an XML file: its name and its outline, ``[N, 2]`` (x, y) pixels."""

    name: str
    points: np.ndarray


def read_rois(path: str | Path) -> list[Roi]:
    """The ROIs of one INbreast XML file (an OsiriX ROI property list).

    Raises:
        InbreastError: the file is not a readable property list.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            plist = plistlib.load(handle)
    except (OSError, plistlib.InvalidFileException, ExpatError, ValueError, TypeError) as exc:
        raise InbreastError(f"{path}: not a readable INbreast ROI file ({exc})") from None
    rois = []
    for image in plist.get("Images", []) if isinstance(plist, dict) else []:
        for roi in image.get("ROIs", []) if isinstance(image, dict) else []:
            points = [_POINT.match(str(p).strip()) for p in roi.get("Point_px", [])]
            xy = np.array([[float(m.group(1)), float(m.group(2))] for m in points if m], float).reshape(-1, 2)
            rois.append(Roi(str(roi.get("Name", "")).strip(), xy))
    return rois


def roi_mask(rois: list[Roi], size: tuple[int, int]) -> np.ndarray | None:
    """The filled outlines of the mass ROIs (a one- or two-point ROI as its pixels), bool ``size``;
    None when there is none."""
    import cv2

    masses = [roi for roi in rois if roi.name in MASS_NAMES and len(roi.points)]
    if not masses:
        return None
    canvas = np.zeros(size, np.uint8)
    for roi in masses:
        outline = np.round(roi.points).astype(np.int32).reshape(-1, 1, 2)
        if len(roi.points) >= 3:
            cv2.fillPoly(canvas, [outline], 1)
        else:
            cv2.polylines(canvas, [outline], False, 1)
            inside = outline[:, 0][(outline[:, 0, 0] >= 0) & (outline[:, 0, 0] < size[1])
                                   & (outline[:, 0, 1] >= 0) & (outline[:, 0, 1] < size[0])]
            canvas[inside[:, 1], inside[:, 0]] = 1  # a one-point ROI is its pixel
    return canvas > 0


def _read_csv(path: Path) -> dict[str, dict]:
    """The CSV's rows by ``File Name`` (empty when the file is absent)."""
    if not path.is_file():
        log.warning("%s: not found; the manifest goes without BI-RADS and ACR", path)
        return {}
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    rows = csv.DictReader(text.splitlines(), delimiter=";" if text.count(";") > text.count(",") else ",")
    return {str(r.get("File Name", "")).strip(): {k.strip(): (v or "").strip() for k, v in r.items() if k}
            for r in rows if r.get("File Name")}


def build_manifest(root: str | Path, out_dir: str | Path, *, include_other: bool = False, val: float = 0.1,
                   test: float = 0.2, seed: int = 0) -> Path:
    """Write ``out_dir/labels.csv`` (and ``out_dir/masks/``) for the INbreast folder ``root``.

    Args:
        root: the folder with ``AllDICOMs/``, ``AllXML/`` and ``INbreast.csv``.
        out_dir: where the manifest and the masks go.
        include_other: keep images whose ROIs are all other than masses, labelled 0.
        val, test: shares of the women in the validation and test splits.
        seed: the split's seed.

    Raises:
        InbreastError: no DICOM named as INbreast names them under ``root/AllDICOMs``.
    """
    import pydicom

    root, out_dir = Path(root), Path(out_dir)
    table = _read_csv(root / "INbreast.csv")
    chosen = []
    for path in sorted((root / "AllDICOMs").glob("*.dcm")):
        match = _DICOM.match(path.stem)
        if not match:
            continue
        number, woman, laterality, view = match.groups()
        xml = root / "AllXML" / f"{number}.xml"
        rois = read_rois(xml) if xml.is_file() else []
        mass = any(roi.name in MASS_NAMES for roi in rois)
        if rois and not mass and not include_other:
            continue
        chosen.append((path, number, woman, laterality, view, rois, mass))
    if not chosen:
        raise InbreastError(f"{root}: no INbreast DICOM (AllDICOMs/<number>_<patient>_MG_<L|R>_<view>_ANON.dcm)")
    splits = assign_splits([c[2] for c in chosen], val=val, test=test, seed=seed)
    women = {w: f"inbreast{i:03d}" for i, w in enumerate(sorted({c[2] for c in chosen}), start=1)}
    records = []
    for path, number, woman, laterality, view, rois, mass in chosen:
        mask_path = None
        if mass:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            mask = roi_mask(rois, (int(header.Rows), int(header.Columns)))
            mask_path = write_mask(out_dir / "masks" / f"inbreast_{number}.png", mask)
        info = table.get(number, {})
        records.append(Record(image=path, label=int(mass), mask=mask_path, split=splits[woman], extra={
            "patient": women[woman], "laterality": laterality, "view": view, "birads": info.get("Bi-Rads", ""),
            "acr": info.get("ACR", ""), "rois": "|".join(sorted({roi.name for roi in rois}))}))
    return write_manifest(out_dir / "labels.csv", records)
