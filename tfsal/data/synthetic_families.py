"""Families of synthetic mammograms: tissue textures, lesion kinds, distractors and film acquisition.

The classic generator (:mod:`tfsal.data.synthetic` with ``SynthConfig()``) draws one world: 1/f**beta
Gaussian tissue, compact masses, a digital detector and a breast that fills the frame. A classifier
trained on it alone was at chance on an independently built synthetic set (ROC AUC 0.52) and on
mini-MIAS films (0.515). This module widens the world along the axes real acquisitions differ by,
so that a model trained on the mixture must ignore them (domain randomisation: Tobin et al., "Domain
randomization for transferring deep neural networks from simulation to the real world", IROS 2017):

- **Textures** (the glandular field that the density's quantile thresholds, as in the classic
  generator):

  - ``gaussian``: ``1/f**beta`` Gaussian noise (Burgess et al., Med. Phys. 28(4), 2001);
  - ``fibrous``: streaks converging on the nipple (ducts, Cooper's ligaments): white noise in polar
    coordinates about the nipple, smoothed along the radius, plus thin ridges where it crosses zero;
  - ``nodular``: shot noise of nodules of several sizes, clustered by a low-frequency field;
  - ``cloudy``: a very low-frequency field (beta 3.6-4.2) with a soft threshold: smooth dense clouds.

- **Lesions** beyond the five mass shapes: ``asymmetry`` (a large density with a soft margin) and
  ``distortion`` (thin lines radiating from a small, faint core), the two other kinds of lesion that
  mini-MIAS labels as abnormal besides masses and calcifications.
- **Distractors**, in healthy and lesion images alike so they carry no label: calcification specks and
  clusters, lymph nodes (a bright oval with a fatty centre) and skin folds.
- **Acquisition**: ``digital`` (the classic detector) or ``film``: the breast smaller and narrower
  within a dark frame, brighter and of higher contrast under a film's shoulder (``film_tone``), the
  black bands that fitting a square film to the working size adds, bright film edges, burned-in labels
  and letters, scanner lines and film grain. Both get a tone curve (gamma) and a thickness fall-off
  width drawn per image.

Every draw comes from the image's own generator; the classic configuration draws nothing here, so
``tfsal data synth`` with the defaults writes the same bytes as before this module existed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy import ndimage

TEXTURES = ("gaussian", "fibrous", "nodular", "cloudy")
ACQUISITIONS = ("digital", "film")
EXTRA_LESIONS = ("asymmetry", "distortion")


@dataclass(frozen=True)
class World:
    """What was drawn for one image beyond the classic generator."""

    texture: str = "gaussian"
    acquisition: str = "digital"
    falloff: float = 0.04
    gamma: float = 1.0
    noise_factor: float = 1.0
    scale: float = 1.0
    distractors: bool = False
    film_width: float = 1.0
    film_gain: float = 1.0
    film_lift: float = 0.0

    def as_params(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


CLASSIC = World()


def draw_world(rng: np.random.Generator, cfg) -> World:
    """One image's world from a :class:`~tfsal.data.synthetic.SynthConfig`'s family settings."""
    texture = str(cfg.textures[int(rng.integers(len(cfg.textures)))])
    acquisition = str(cfg.acquisitions[int(rng.integers(len(cfg.acquisitions)))])
    film = acquisition == "film"
    return World(
        texture=texture, acquisition=acquisition,
        falloff=float(rng.uniform(*cfg.falloff_range)) * (1.6 if film else 1.0),
        gamma=float(np.exp(rng.uniform(*np.log(cfg.gamma_range)))),
        noise_factor=float(rng.uniform(*cfg.noise_factor_range)),
        scale=float(rng.uniform(*cfg.breast_scale_range)) if film else 1.0,
        distractors=bool(rng.random() < cfg.distractor_probability),
        # drawn last and for film only, so digital images keep every draw they had before
        film_width=float(rng.uniform(*cfg.film_width_range)) if film else 1.0,
        film_gain=float(rng.uniform(*cfg.film_gain_range)) if film else 1.0,
        film_lift=float(rng.uniform(*cfg.film_lift_range)) if film else 0.0)


def _unit(field_: np.ndarray) -> np.ndarray:
    return ((field_ - field_.mean()) / (field_.std() + 1e-12)).astype(np.float32)


def nipple(breast: np.ndarray) -> tuple[float, float]:
    """``(row, column)`` of the breast's point farthest from the chest wall (column 0)."""
    columns = np.flatnonzero(breast.any(axis=0))
    last = int(columns[-1]) if columns.size else breast.shape[1] // 2
    rows = np.flatnonzero(breast[:, last])
    return (float(rows.mean()) if rows.size else breast.shape[0] / 2.0), float(last)


def texture_field(rng, texture: str, breast: np.ndarray, beta: float, noise) -> tuple[np.ndarray, float]:
    """``(field, softness)``: a zero-mean, unit-variance glandular field of the named texture and the
    softness of its threshold. ``noise(shape, beta)`` is the classic power-law generator."""
    height, width = breast.shape
    if texture == "gaussian":
        return noise((height, width), beta), 0.35
    if texture == "cloudy":
        return noise((height, width), float(rng.uniform(3.6, 4.2))), float(rng.uniform(0.6, 1.0))
    if texture == "fibrous":
        return _fibrous(rng, breast, noise), 0.35
    if texture == "nodular":
        return _nodular(rng, breast, noise), 0.3
    raise ValueError(f"unknown texture {texture!r}; expected one of {TEXTURES}")


def _fibrous(rng, breast, noise):
    """Radial streaks about the nipple with thin ridges (ligaments) where the streak field crosses 0."""
    height, width = breast.shape
    ny, nx = nipple(breast)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot(y - ny, x - nx)
    angle = np.arctan2(y - ny, nx - x)  # 0 points from the nipple into the breast: the seam lies outside
    n_r, n_t = 96, 1440
    polar = rng.normal(size=(n_t, n_r)).astype(np.float32)
    polar = cv2.GaussianBlur(polar, (0, 0), sigmaX=float(rng.uniform(6, 14)), sigmaY=float(rng.uniform(1.0, 2.5)))
    map_x = (radius / max(float(radius.max()), 1.0) * (n_r - 1)).astype(np.float32)
    map_y = ((angle + np.pi) / (2 * np.pi) * (n_t - 1)).astype(np.float32)
    streaks = _unit(cv2.remap(polar, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    ridges = np.exp(-(streaks / 0.15) ** 2)
    regional = noise((height, width), 3.0)
    return _unit(regional + 0.3 * streaks + float(rng.uniform(1.0, 2.0)) * ridges)


def _nodular(rng, breast, noise):
    """Nodules (filled discs, several sizes) where a low-frequency field is high, then lightly blurred."""
    height, width = breast.shape
    cluster = noise((height, width), 3.2)
    weights = np.exp(1.2 * cluster) * breast
    total = float(weights.sum())
    canvas = np.zeros((height, width), np.float32)
    if total > 0:
        n = int(rng.integers(60, 160) * breast.mean() * 2 + 10)
        picks = rng.choice(weights.size, size=n, p=(weights / total).ravel())
        radii = np.exp(rng.uniform(np.log(0.005), np.log(0.03), n)) * height
        for index, r in zip(picks, radii, strict=True):
            cy, cx = divmod(int(index), width)
            cv2.circle(canvas, (cx, cy), max(1, round(r)), float(rng.uniform(0.5, 1.0)), -1, cv2.LINE_AA)
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.6, 0.004 * height))
    return _unit(canvas + 0.25 * noise((height, width), 2.5))


# Asymmetry and distortion are findings a reader sees (BI-RADS: an asymmetry is fibroglandular
# density seen on the film; a distortion is thin straight lines radiating from a point), drawn at the
# masses' visibility: with its place known, a lesion's contrast against its ring tells it from healthy
# tissue at ROC AUC 0.88 (asymmetry) and 0.80 (distortion; its fine detail 0.83) against 0.88-0.97 for
# the masses, on a tuning set (seed 11) no run trained or was tested on (docs/lesion_visibility.py,
# docs/data.md). Drawn fainter before 2026-12-03 (a dome weight of 0.6 under a blur of half the radius;
# spicules at a mass's 0.6), both kinds were at 0.71: labels with hardly any image behind them.
ASYMMETRY_BLUR = 0.3  # margin blur, a fraction of the grown radius
DISTORTION_CORE = 0.6  # dome weight of the small core
DISTORTION_SPICULES = 1.0  # spicule weight (a spiculated mass's is 0.6, under a full core)


def lesion_kind(rng, shape: str, radius: float, margin_sigma: float) -> tuple[float, float, float, int, float, float]:
    """``(core radius, margin sigma, dome weight, spicules, spicule weight, extent)`` of an extra lesion
    kind; the extent (the radius of its ground-truth mask) is about where the lines of a distortion end
    (they reach 0.72-1.26 of it, so about half of what they add lies in the mask)."""
    if shape == "asymmetry":
        grown = radius * float(rng.uniform(1.6, 2.4))
        return grown, grown * ASYMMETRY_BLUR, 1.0, 0, 0.0, grown
    if shape == "distortion":
        return radius * 0.45, margin_sigma, DISTORTION_CORE, int(rng.integers(14, 26)), DISTORTION_SPICULES, radius
    raise ValueError(f"unknown lesion kind {shape!r}; expected one of {EXTRA_LESIONS}")


def add_distractors(rng, density_map: np.ndarray, organ: np.ndarray, gain: float) -> list[str]:
    """Add calcifications, a lymph node or a skin fold to ``density_map`` in place; returns their names."""
    height, width = organ.shape
    inside = np.argwhere(ndimage.binary_erosion(organ, iterations=max(1, int(0.03 * height))))
    if inside.size == 0:
        return []
    canvas = np.zeros_like(density_map, dtype=np.float32)
    added = []
    if rng.random() < 0.6:
        cy, cx = inside[int(rng.integers(len(inside)))]
        spread = height * (0.015 if rng.random() < 0.5 else 0.15)
        for _ in range(int(rng.integers(3, 16))):
            py, px = int(cy + rng.normal(0, spread)), int(cx + rng.normal(0, spread))
            if 0 <= py < height and 0 <= px < width:
                cv2.circle(canvas, (px, py), 0 if rng.random() < 0.7 else 1, float(rng.uniform(0.8, 1.6)), -1)
        added.append("calcifications")
    if rng.random() < 0.35:
        cy, cx = inside[int(rng.integers(len(inside)))]
        axes = (max(2, int(height * rng.uniform(0.012, 0.025))), max(2, int(height * rng.uniform(0.008, 0.016))))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, angle, 0, 360, 0.7, -1, cv2.LINE_AA)
        hilum = (max(1, axes[0] // 2), max(1, axes[1] // 2))
        cv2.ellipse(canvas, (int(cx), int(cy)), hilum, angle, 0, 360, 0.1, -1, cv2.LINE_AA)
        added.append("lymph node")
    if rng.random() < 0.25:
        depth = ndimage.distance_transform_edt(organ)
        fold = np.abs(depth - height * rng.uniform(0.03, 0.08)) < 1.2
        first = int(rng.integers(0, max(1, int(0.6 * height))))
        fold[:first], fold[first + int(0.4 * height):] = False, False
        canvas += 0.35 * cv2.GaussianBlur(fold.astype(np.float32), (0, 0), 1.0)
        added.append("skin fold")
    density_map += cv2.GaussianBlur(canvas, (0, 0), 0.5) * organ * gain
    return added


def tone(image: np.ndarray, world: World) -> np.ndarray:
    """The tone curve (gamma) of the acquisition."""
    return np.power(np.clip(image, 0, 1), world.gamma).astype(np.float32)


def filmify(rng, image, masks: dict, masses: list, world: World):
    """A film acquisition of a classic image (chest wall at column 0): the breast scaled into a dark
    frame, film edges, labels, letters, scanner lines and grain.

    Returns:
        ``(image, masks, masses)`` with the masks and the masses' centres and radii moved with the breast.
    """
    height, width = image.shape
    across = world.scale * world.film_width
    small_h, small_w = max(8, round(height * world.scale)), max(8, round(width * across))
    top = int(rng.integers(0, height - small_h + 1))
    frame = np.full((height, width), float(rng.uniform(0.0, 0.06)), np.float32)
    soft = cv2.GaussianBlur(masks["breast"].astype(np.float32), (0, 0), 1.0)
    inner = soft * film_tone(image, masks["breast"], world) + (1 - soft) * frame[0, 0]
    frame[top:top + small_h, :small_w] = cv2.resize(inner, (small_w, small_h), interpolation=cv2.INTER_AREA)
    moved = {}
    for name, mask in masks.items():
        canvas = np.zeros((height, width), bool)
        canvas[top:top + small_h, :small_w] = cv2.resize(
            mask.astype(np.uint8), (small_w, small_h), interpolation=cv2.INTER_NEAREST).astype(bool)
        moved[name] = canvas
    masses = [{**m, "radius_px": round(m["radius_px"] * float(np.sqrt(world.scale * across)), 2),
               "centre": (round(m["centre"][0] * world.scale + top, 2), round(m["centre"][1] * across, 2))}
              for m in masses]
    keep_clear = ndimage.binary_dilation(moved["breast"], iterations=max(2, height // 40))
    _film_marks(rng, frame, keep_clear)
    frame += rng.normal(0, 0.012 * world.noise_factor, frame.shape).astype(np.float32)
    if rng.random() < 0.5:  # a square film fitted to the working size gets black bands
        band = int(height * rng.uniform(0.0, 0.14))
        rows = np.flatnonzero(moved["mass"].any(axis=1))
        if rows.size:  # never over a mass: a mass image keeps its mass
            band = min(band, int(rows[0]), height - 1 - int(rows[-1]))
        frame[:band], frame[height - band:] = 0.0, 0.0
        for mask in moved.values():
            mask[:band], mask[height - band:] = False, False
    return np.clip(frame, 0, 1).astype(np.float32), moved, masses


FILM_SHOULDER = 0.75  # where a film's characteristic curve leaves the straight line


def film_tone(image: np.ndarray, breast: np.ndarray, world: World) -> np.ndarray:
    """Scanned film's tone inside the breast: ``x = m + gain (I - m) + lift`` with ``m`` the breast's mean
    (films are brighter and of higher contrast than the digital detector's image), then the shoulder of
    a film's characteristic curve: ``x`` below ``k = FILM_SHOULDER``, ``k + (1 - k) tanh((x - k) / (1 - k))``
    above it (slope 1 at ``k``, approaching 1 without reaching it), 0 below 0. The shoulder keeps a bright
    lesion's pixels apart from its tissue's, where a clip at 1 whitened them (a tenth of a lesion's pixels
    or more in 53 of 300 film lesion images, before 2026-12-03)."""
    if (world.film_gain == 1.0 and world.film_lift == 0.0) or not breast.any():
        return image
    mean = float(image[breast].mean())
    linear = mean + world.film_gain * (image - mean) + world.film_lift
    return np.maximum(film_shoulder(linear), 0.0).astype(np.float32)


def film_shoulder(x, knee: float = FILM_SHOULDER, xp=np):
    """``x`` up to ``knee``, then ``knee + (1 - knee) tanh((x - knee) / (1 - knee))``: smooth, increasing, below 1.

    ``xp`` is the array module: NumPy for the generator, ``tf.experimental.numpy`` for the training
    augmentation that draws the same tone (:func:`tfsal.data.augment.random_film_tone`).
    """
    room = 1.0 - knee
    return xp.where(x <= knee, x, knee + room * xp.tanh((x - knee) / room))


def _film_marks(rng, frame, keep_clear):
    """Labels, letters, a bright film edge and scanner lines, drawn in place clear of the breast."""
    height, width = frame.shape
    for _ in range(int(rng.integers(0, 3))):
        box_h, box_w = int(height * rng.uniform(0.04, 0.09)), int(height * rng.uniform(0.03, 0.07))
        y0, x0 = int(rng.integers(0, max(1, height - box_h))), int(rng.integers(width // 3, max(width // 3 + 1,
                                                                                               width - box_w)))
        if keep_clear[y0:y0 + box_h, x0:x0 + box_w].any():
            continue
        glyphs = np.zeros((box_h, box_w), np.uint8)
        text = "".join(rng.choice(list("LRMCO0123456789"), size=2))
        cv2.putText(glyphs, text, (1, box_h - 2), cv2.FONT_HERSHEY_PLAIN, max(0.4, box_h / 28), 255, 1)
        frame[y0:y0 + box_h, x0:x0 + box_w] = np.where(glyphs > 127, 0.1, float(rng.uniform(0.8, 1.0)))
    if rng.random() < 0.4:
        edge = int(rng.integers(1, max(2, height // 40)))
        level = float(rng.uniform(0.5, 1.0))
        strip = np.zeros_like(keep_clear)
        if rng.random() < 0.5:
            strip[:edge] = True
        else:
            strip[:, width - edge:] = True
        frame[strip & ~keep_clear] = level
    if rng.random() < 0.25:
        column = int(rng.integers(0, width))
        frame[:, column] += float(rng.uniform(0.02, 0.08))
