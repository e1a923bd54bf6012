"""Build ``labels.csv`` from the mini-MIAS database: ``mdbNNN.pgm`` films and their ``Info.txt``.

Reference: J. Suckling et al., "The Mammographic Image Analysis Society digital mammogram
database", Excerpta Medica, International Congress Series 1069, pp. 375-378, 1994 (its licence:
research use only; cite it in any publication).

``Info.txt`` lists one row per abnormality: the film's reference (``mdb001``), the background
tissue (F, G, D), the class (CALC calcification, CIRC circumscribed mass, SPIC spiculated mass,
MISC ill-defined mass, ARCH architectural distortion, ASYM asymmetry, NORM normal), the severity
(B, M) and, where the lesion is local, the x, y image coordinates of its centre and the radius
of a circle enclosing it, in pixels of the 1024 x 1024 film. The coordinate origin is the
bottom-left corner, so a centre's row is ``height - 1 - y``. A film may have several rows (several
lesions): its mask is the union of their circles, written as an 8-bit PNG (0/255) named after the
film's reference (``masks/mdb001.png``; the references are the database's, not patient data).

Labels: a film with a lesion of :data:`LESION_CLASSES` is 1, with the mask of those lesions'
circles (a lesion row without coordinates leaves it without a mask, with a warning); a normal
film is 0. A film whose only findings are calcifications is left out unless ``include_calc``
(then 0: no mass). Films 2k-1 and 2k are the right and left films of one woman (the database's
note 1), so the train/val/test split is drawn by woman (:func:`tfsal.data.splits.assign_splits`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfsal.data.image_io import write_mask
from tfsal.data.manifest import Record, write_manifest
from tfsal.data.splits import assign_splits
from tfsal.errors import MiasError

__all__ = ["CLASSES", "LESION_CLASSES", "MiasError", "build_manifest", "read_info"]

log = logging.getLogger(__name__)

CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
"""The abnormality classes of ``Info.txt``."""

LESION_CLASSES = ("CIRC", "SPIC", "MISC", "ARCH", "ASYM")
"""The classes that make a film positive (label 1) with a mask: the masses, architectural
distortions and asymmetries."""

_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+([A-Z]{4})(?:\s+([BM]))?(?:\s+(\d+)\s+(\d+)\s+(\d+))?\s*$")



@dataclass
class Lesion:
    """One row of ``Info.txt``."""

    kind: str
    severity: str | None = None
    centre: tuple[int, int] | None = None  # (x, y), origin bottom-left
    radius: int | None = None


@dataclass
class Film:
    """One film's rows of ``Info.txt``."""

    reference: str
    tissue: str
    lesions: list[Lesion] = field(default_factory=list)

    @property
    def woman(self) -> int:
        """The woman the film belongs to: films 2k-1 and 2k are one woman's."""
        return (int(self.reference[3:]) + 1) // 2


def read_info(path: str | Path) -> dict[str, Film]:
    """The films of an ``Info.txt``, by reference, in file order.

    Raises:
        MiasError: the file is missing or has no film row.
    """
    path = Path(path)
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise MiasError(f"{path}: cannot read the mini-MIAS Info.txt ({exc.strerror or exc})") from None
    films: dict[str, Film] = {}
    for line in text.splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        reference, tissue, kind, severity, x, y, radius = match.groups()
        if kind not in CLASSES:
            log.warning("%s: %s has the unknown class %s; skipped", path.name, reference, kind)
            continue
        film = films.setdefault(reference, Film(reference, tissue))
        if kind != "NORM":
            centre = (int(x), int(y)) if x else None
            film.lesions.append(Lesion(kind, severity, centre, int(radius) if radius else None))
    if not films:
        raise MiasError(f"{path}: no film rows (expected lines like 'mdb001 G CIRC B 535 425 197')")
    return films


def lesion_mask(lesions: list[Lesion], height: int, width: int) -> np.ndarray | None:
    """The union of the lesions' circles, bool ``[height, width]``; None when no lesion has one."""
    placed = [lesion for lesion in lesions if lesion.centre is not None and lesion.radius is not None]
    if not placed:
        return None
    rows, cols = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), bool)
    for lesion in placed:
        x, y = lesion.centre
        mask |= (rows - (height - 1 - y)) ** 2 + (cols - x) ** 2 <= max(lesion.radius, 1) ** 2
    return mask


def build_manifest(root: str | Path, out_dir: str | Path, *, include_calc: bool = False, val: float = 0.1,
                   test: float = 0.2, seed: int = 0) -> Path:
    """Write ``out_dir/labels.csv`` (and ``out_dir/masks/``) for the films under ``root``.

    Args:
        root: the folder with ``Info.txt`` and the ``mdbNNN.pgm`` films (films named in
            ``Info.txt`` but absent are left out with a warning, so a part of the database works).
        out_dir: where the manifest and the masks go.
        include_calc: keep calcification-only films, labelled 0.
        val, test: shares of the women in the validation and test splits.
        seed: the split's seed.

    Returns:
        The path of ``labels.csv``.

    Raises:
        MiasError: no ``Info.txt``, or no film of it under ``root``.
    """
    from tfsal.data.image_io import read_image

    root, out_dir = Path(root), Path(out_dir)
    films = read_info(root / "Info.txt")
    chosen, missing = [], 0
    for film in films.values():
        path = root / f"{film.reference}.pgm"
        if not path.is_file():
            missing += 1
            continue
        kinds = {lesion.kind for lesion in film.lesions}
        if kinds and not kinds & set(LESION_CLASSES) and not include_calc:
            continue  # calcifications only
        chosen.append((film, path))
    if missing:
        log.warning("%s: %d films of Info.txt are not in the folder; left out", root, missing)
    if not chosen:
        raise MiasError(f"{root}: none of the films Info.txt names is in the folder")
    splits = assign_splits([film.woman for film, _ in chosen], val=val, test=test, seed=seed)
    records = []
    for film, path in chosen:
        lesions = [lesion for lesion in film.lesions if lesion.kind in LESION_CLASSES]
        mask_path = None
        if lesions:
            height, width = read_image(path)[0].shape[:2]
            mask = lesion_mask(lesions, height, width)
            if mask is None:
                log.warning("%s: a lesion without coordinates; the film has no mask", film.reference)
            else:
                mask_path = out_dir / "masks" / f"{film.reference}.png"
                write_mask(mask_path, mask)
        kinds = "|".join(sorted({lesion.kind for lesion in film.lesions})) or "NORM"
        severity = "|".join(sorted({lesion.severity for lesion in lesions if lesion.severity}))
        records.append(Record(image=path, label=int(bool(lesions)), mask=mask_path, split=splits[film.woman],
                              extra={"patient": f"mias{film.woman:03d}", "tissue": film.tissue,
                                     "abnormality": kinds, "severity": severity}))
    return write_manifest(out_dir / "labels.csv", records)

