"""Build ``labels.csv`` from the CBIS-DDSM description CSVs and its DICOM tree from TCIA.

CBIS-DDSM (Lee et al., 2017) ships description CSVs (``mass_case_description_train_set.csv``
and ``_test_set``, ``calc_case_description_*``) whose path columns look like
``Mass-Training_P_00001_LEFT_CC/<StudyInstanceUID>/<SeriesInstanceUID>/000000.dcm``, while
The Cancer Imaging Archive delivers ``<root>/Mass-Training_P_00001_LEFT_CC/<date>-DDSM-<n>/
<n>.000000-<series description>-<n>/1-1.dcm``. Files are therefore found by content: every
DICOM file under the root is indexed by its SeriesInstanceUID (header only), and a CSV path
resolves to the files of its series, or, where the UID is not found, to the files under its
top-level folder.

The "cropped image file path" and "ROI mask file path" columns are sometimes swapped (and
both may sit in one series as ``1-1.dcm`` and ``1-2.dcm``), so the ROI mask is chosen by
content: it is binary (at most two values) and has the full mammogram's size; the crop is
smaller and grayscale.

Mass images get label 1 and the union of their abnormalities' ROI masks, written as 8-bit
PNG (0/255) named ``masks/cbis_00000.png`` in a stable order, never after the patient.
Calcification-only images are skipped unless ``include_calc`` (then label 0, no mask).
Training CSVs give ``train`` (with ``val`` of the training *patients* moved to
``val``), test CSVs give ``test``.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfsal.data.image_io import write_mask
from tfsal.data.manifest import Record, write_manifest
from tfsal.errors import CbisDdsmError, ImageReadError

__all__ = ["REQUIRED_COLUMNS", "build_manifest"]

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = (
    "patient_id", "left or right breast", "image view", "abnormality id", "abnormality type",
    "pathology", "image file path", "cropped image file path", "ROI mask file path",
)
_MAX_PIXELS = 200_000_000  # CBIS-DDSM full mammograms reach about 5000 x 7000 pixels


@dataclass
class _Row:
    """One abnormality of one CSV row, with the fields the manifest needs."""

    patient: str
    kind: str  # "mass" or "calc"
    pathology: str
    split: str  # "train" or "test"
    image: str
    crop: str
    roi: str


@dataclass
class _Image:
    """One full mammogram and the abnormalities found on it."""

    path: Path
    patient: str
    split: str
    masks: list = field(default_factory=list)
    kinds: set = field(default_factory=set)
    pathologies: set = field(default_factory=set)


@dataclass
class _Index:
    """DICOM files under the root: by SeriesInstanceUID and by top-level folder."""

    by_series: dict = field(default_factory=lambda: defaultdict(list))
    by_folder: dict = field(default_factory=lambda: defaultdict(list))
    size: dict = field(default_factory=dict)  # path -> (rows, columns)
    unreadable: int = 0


def build_manifest(
    csv_paths: list[Path],
    root: Path,
    out_dir: Path,
    *,
    include_calc: bool = False,
    val: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write ``out_dir/labels.csv`` and ``out_dir/masks/`` from CBIS-DDSM CSVs and DICOM files.

    Args:
        csv_paths: official description CSVs (mass or calc, training or test).
        root: the CBIS-DDSM folder (its DICOM tree) as TCIA delivers it.
        out_dir: the folder for ``labels.csv`` and the combined ROI masks.
        include_calc: keep calcification-only images as label 0 (skipped by default).
        val: share of training patients moved to the ``val`` split.
        seed: seed of the validation split.
        progress: show progress bars on stderr.

    Returns:
        The path of ``labels.csv``.

    Raises:
        CbisDdsmError: a CSV cannot be read or lacks required columns, or no row resolves
            to files under ``root``.
    """
    rows = [row for path in csv_paths for row in _read_csv(Path(path))]
    index = _index_dicoms(Path(root), progress)
    images, skipped = _resolve_rows(rows, index, progress)
    if skipped:
        log.warning("skipped %d of %d CBIS-DDSM rows whose files were not found under %s "
                    "(%d unreadable DICOM files there)", skipped, len(rows), root, index.unreadable)
    if not images:
        raise CbisDdsmError(f"{root}: none of the {len(rows)} CSV rows resolves to DICOM files "
                            "(is --root the CBIS-DDSM folder from TCIA?)")
    kept = [im for im in images if "mass" in im.kinds or include_calc]
    val_patients = _val_patients(kept, val, seed)
    out_dir = Path(out_dir)
    records = [_record(i, image, out_dir, val_patients) for i, image in enumerate(kept)]
    return write_manifest(out_dir / "labels.csv", records)


def _read_csv(path: Path) -> list[_Row]:
    """Read one description CSV; values and headers stripped of stray whitespace."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CbisDdsmError(f"{path}: cannot read CSV ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CbisDdsmError(f"{path}: not a CBIS-DDSM description CSV; missing column(s): {', '.join(missing)}")
    rows = []
    for raw in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        rows.append(_Row(
            patient=row["patient_id"],
            kind="calc" if row["abnormality type"].lower().startswith("calc") else "mass",
            pathology=row["pathology"],
            split=_split_of(path, row["image file path"]),
            image=row["image file path"], crop=row["cropped image file path"], roi=row["ROI mask file path"],
        ))
    return rows


def _split_of(csv_path: Path, image_path: str) -> str:
    """``test`` for Mass-Test/Calc-Test rows (or a *test* CSV), else ``train``."""
    prefix = image_path.split("/", 1)[0].split("_", 1)[0].lower()
    if prefix.endswith("-test"):
        return "test"
    if prefix.endswith("-training"):
        return "train"
    return "test" if "test" in csv_path.name.lower() else "train"


def _index_dicoms(root: Path, progress: bool) -> _Index:
    """Index every ``*.dcm`` file under ``root`` by header (no pixels read)."""
    import pydicom
    from tqdm import tqdm

    index = _Index()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() == ".dcm" and p.is_file())
    for path in tqdm(files, desc="indexing DICOM", unit="file", disable=not progress, file=sys.stderr):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            index.size[path] = (int(ds.Rows), int(ds.Columns))
        except Exception as exc:
            index.unreadable += 1
            log.debug("unreadable DICOM header skipped (%s)", type(exc).__name__)  # no path: it names the patient
            continue
        if ds.get("SeriesInstanceUID"):
            index.by_series[str(ds.SeriesInstanceUID)].append(path)
        index.by_folder[path.relative_to(root).parts[0]].append(path)
    return index


def _candidates(index: _Index, csv_path: str) -> list[Path]:
    """Files that a CSV path may name: its series' files, else its top-level folder's."""
    parts = [p for p in csv_path.replace("\\", "/").split("/") if p]
    if not parts:
        return []
    if len(parts) >= 3 and parts[-2] in index.by_series:
        return sorted(index.by_series[parts[-2]])
    return sorted(index.by_folder.get(parts[0], []))


def _resolve_rows(rows: list[_Row], index: _Index, progress: bool) -> tuple[list[_Image], int]:
    """Group rows by their full mammogram; attach ROI masks. Returns images and rows skipped."""
    from tqdm import tqdm

    images: dict[Path, _Image] = {}
    skipped = 0
    for row in tqdm(rows, desc="matching rows", unit="row", disable=not progress, file=sys.stderr):
        full = _full_image(index, row.image)
        roi = None
        if full is not None and row.kind == "mass":
            roi = _roi_mask(index, row, index.size[full])
        if full is None or (row.kind == "mass" and roi is None):
            skipped += 1
            continue
        image = images.setdefault(full, _Image(path=full, patient=row.patient, split=row.split))
        image.kinds.add(row.kind)
        image.pathologies.add(row.pathology)
        if roi is not None:
            image.masks.append(roi)
    return [images[path] for path in sorted(images)], skipped


def _full_image(index: _Index, csv_path: str) -> Path | None:
    """The largest file among the candidates of the "image file path" column."""
    files = _candidates(index, csv_path)
    if not files:
        return None
    return max(files, key=lambda p: (index.size[p][0] * index.size[p][1], str(p)))


def _roi_mask(index: _Index, row: _Row, full_size: tuple[int, int]) -> np.ndarray | None:
    """The ROI mask among the crop and ROI columns' files: binary and of the full image's size."""
    from tfsal.data import dicom

    files = sorted(set(_candidates(index, row.roi)) | set(_candidates(index, row.crop)))
    for path in files:
        if index.size[path] != full_size:
            continue  # the crop is smaller than the mammogram
        try:
            values, _ = dicom.read_dicom(path, max_pixels=_MAX_PIXELS, raw=True)
        except ImageReadError:
            continue
        if np.unique(values).size <= 2:
            return values > values.min() if values.max() > values.min() else np.zeros(full_size, bool)
    return None


def _val_patients(images: list[_Image], val: float, seed: int) -> set[str]:
    """A seeded share of the training patients, moved to ``val``."""
    patients = sorted({im.patient for im in images if im.split == "train"})
    count = round(val * len(patients))
    if count == 0:
        return set()
    chosen = np.random.default_rng(seed).choice(len(patients), size=count, replace=False)
    return {patients[i] for i in chosen}


def _record(number: int, image: _Image, out_dir: Path, val_patients: set[str]) -> Record:
    """The manifest row of one image; writes its mask (union of its ROI masks) if it has one."""
    mask_path = None
    if "mass" in image.kinds:
        union = np.logical_or.reduce(image.masks)
        mask_path = out_dir / "masks" / f"cbis_{number:05d}.png"
        write_mask(mask_path, union)
    split = "val" if image.split == "train" and image.patient in val_patients else image.split
    kinds = sorted(image.kinds)
    return Record(
        image=image.path, label=1 if "mass" in kinds else 0, mask=mask_path, split=split,
        extra={"pathology": "|".join(sorted(image.pathologies)), "abnormality_type": "|".join(kinds)},
    )

