"""The breast mask on real scanned films: mini-MIAS films of ../shared/realdata/mias-dev (skipped without them).

Five films, chosen for what used to go wrong on them, carry expectations placed by hand on the full-size
films: points that are clearly breast tissue must be inside the mask; points and boxes on a burned-in
label, a bright film edge, the air or the pectoral muscle must be outside. Coordinates are ``(x, y)``:
column and row of the 1024 x 1024 film counted from its top-left corner (Info.txt counts rows from the
bottom). Then every film of mias-dev gets the checks any breast mask must pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from tfsal.data.organ import breast_mask, film_area

MIAS_DEV = Path(__file__).resolve().parents[3] / "shared" / "realdata" / "mias-dev"
pytestmark = pytest.mark.skipif(not MIAS_DEV.is_dir(), reason="../shared/realdata/mias-dev is not here")


@dataclass(frozen=True)
class Expected:
    """What a film's mask must hold: ``inside`` and ``outside`` points ``(x, y)``, ``outside_boxes``
    ``(x0, y0, x1, y1)`` (inclusive) of which no pixel may be in the mask."""

    film: str
    why: str
    inside: tuple = ()
    outside: tuple = ()
    outside_boxes: tuple = field(default=())


EXPECTED = (
    Expected("mdb002", "chest wall left; bright film edge along the top, label beside the breast, muscle",
             inside=((300, 650), (450, 450), (400, 300), (300, 900)),
             outside=((700, 3), (700, 600), (220, 250)),
             outside_boxes=((730, 100, 800, 230), (620, 0, 830, 6))),
    Expected("mdb006", "chest wall left, fatty; the label touches the skin line, with a smear below it",
             inside=((400, 300), (400, 600), (500, 800), (650, 700)),
             outside=((800, 400), (690, 140), (220, 100)),
             outside_boxes=((630, 0, 715, 110),)),
    Expected("mdb025", "chest wall right, fatty, large pectoral muscle",
             inside=((400, 500), (300, 750), (600, 850), (500, 250), (674, 580)),
             outside=((230, 150), (195, 50), (780, 100), (800, 300))),
    Expected("mdb060", "chest wall left, fatty; the film's air is brighter than the black padding around it",
             inside=((450, 700), (500, 450), (380, 900)),
             outside=((650, 300), (650, 900), (700, 50), (100, 500))),
    Expected("mdb115", "chest wall right; a bright film edge touches the breast, label, large muscle",
             inside=((400, 700), (600, 900), (500, 300), (461, 491)),
             outside=((240, 400), (750, 150)),
             outside_boxes=((225, 75, 305, 200), (192, 0, 200, 1023))),
)


@lru_cache(maxsize=8)
def _film_and_mask(reference: str) -> tuple[np.ndarray, np.ndarray]:
    from tfsal.data.image_io import read_image

    image = read_image(MIAS_DEV / f"{reference}.pgm")[0][..., 0]
    return image, breast_mask(image)


@pytest.mark.parametrize("expected", EXPECTED, ids=[e.film for e in EXPECTED])
def test_hand_placed_points_on_chosen_films(expected):
    _, mask = _film_and_mask(expected.film)
    missing = [point for point in expected.inside if not mask[point[1], point[0]]]
    taken = [point for point in expected.outside if mask[point[1], point[0]]]
    boxes = [box for box in expected.outside_boxes if mask[box[1]:box[3] + 1, box[0]:box[2] + 1].any()]
    assert not (missing or taken or boxes), (expected.why, {"not inside": missing, "not outside": taken + boxes})


def _chest_wall_on_left(mask: np.ndarray) -> bool:
    """The side of the mask's columns whose outermost column holds more of the mask."""
    columns = np.flatnonzero(mask.any(axis=0))
    return mask[:, columns[0]].sum() >= mask[:, columns[-1]].sum()


def test_every_mias_dev_film_gets_a_sane_mask():
    from tfsal.data.image_io import read_image
    from tfsal.data.mias import read_info

    films = read_info(MIAS_DEV / "Info.txt")
    failures = []
    for reference, film in films.items():
        image = read_image(MIAS_DEV / f"{reference}.pgm")[0][..., 0]
        mask = breast_mask(image)
        height = mask.shape[0]
        if not mask.any():
            failures.append((reference, "empty"))
            continue
        left = _chest_wall_on_left(mask)
        far_image_edge = mask[:, -1] if left else mask[:, 0]
        columns = film_area(image)[1]
        far_film_edge = mask[:, columns.stop - 1] if left else mask[:, columns.start]
        problems = {
            "components": ndimage.label(mask)[1] != 1,
            "touches the image edge opposite the chest wall": far_image_edge.any(),
            "runs along the film edge opposite the chest wall": far_film_edge.sum() > 0.25 * height,
            "area": not 0.1 <= mask.mean() <= 0.8,
            "lesion centre outside": any(not mask[height - 1 - lesion.centre[1], lesion.centre[0]]
                                         for lesion in film.lesions if lesion.centre is not None),
        }
        failures += [(reference, name) for name, failed in problems.items() if failed]
    assert len(films) == 120
    assert not failures, failures
