"""Synthetic mammograms with ground-truth mass and breast masks.

DDSM cannot be downloaded here, so tfsal's default data are made by this module. One image
is built in four layers, in normalised coordinates so that any size works:

1. **Silhouette.** CC views: a half ellipse against the chest wall with a slightly wavy
   contour. MLO views: a longer ellipse cut by the top edge (the axilla) with the pectoral
   muscle, a bright curved triangle in the upper chest-wall corner. Laterality ``L`` puts the
   chest wall on the left edge, ``R`` on the right (images hung back to back).
2. **Tissue.** Fat plus fibroglandular tissue. The glandular share follows a Gaussian random
   field with a ``1/f**beta`` power spectrum (beta 2.5-3.2, as measured on mammograms by
   Burgess et al. 2001), thresholded at the quantile of the density class (BI-RADS a-d) and
   confined to an envelope that leaves a subcutaneous fat layer. A few vessels, fine texture
   and the fall-off of compressed thickness towards the skin, with a thin skin line.
3. **Masses** (images labelled 1; sometimes two): round, oval, lobulated, irregular or
   spiculated, defined by a polar radius function; a dome-shaped density with a sharp
   (circumscribed) or blurred (ill-defined) margin, spicules drawn outside the core.
   Sizes and contrasts range from obvious to subtle. The ground-truth mask is the core.
4. **Acquisition.** Detector blur and noise; background (air) near black.

Other worlds (tissue textures, lesion kinds, distractors, film acquisition) are drawn per image when
the configuration asks for them (:mod:`tfsal.data.synthetic_families`, ``SynthConfig.mixture()``).

Everything is drawn from ``numpy.random.Generator`` seeded per image, so the same seed gives
the same image on any machine with the same numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from tfsal.data import synthetic_families as families

MASS_SHAPES = ("round", "oval", "lobulated", "irregular", "spiculated")
DENSITY_CLASSES = ("a", "b", "c", "d")
VIEWS = ("CC", "MLO")
LATERALITIES = ("L", "R")
LESION_SHAPES = MASS_SHAPES + families.EXTRA_LESIONS
# SynthConfig's family settings: at their defaults, the classic world (nothing more is drawn)
_FAMILY_RANGES = ("falloff_range", "gamma_range", "noise_factor_range", "breast_scale_range", "film_width_range",
                  "film_gain_range", "film_lift_range")
_AT_MOST = {"breast_scale_range": 1.0, "film_width_range": 1.0}  # a film's breast fits its frame
_FAMILY_FIELDS = ("textures", "acquisitions", "distractor_probability", *_FAMILY_RANGES)

# Share of the glandular envelope filled with dense tissue for each BI-RADS density class
# (a: almost entirely fatty ... d: extremely dense).
_DENSITY_FILL = {"a": (0.08, 0.22), "b": (0.22, 0.42), "c": (0.42, 0.62), "d": (0.62, 0.82)}


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the generator; the defaults give the shipped data set.

    Lengths are fractions of the image height, so images of any size look alike.
    """

    beta_range: tuple[float, float] = (2.5, 3.2)
    mlo_probability: float = 0.5
    density_probabilities: tuple[float, float, float, float] = (0.1, 0.4, 0.4, 0.1)
    shapes: tuple[str, ...] = MASS_SHAPES
    two_mass_probability: float = 0.12
    mass_radius_range: tuple[float, float] = (0.022, 0.07)
    # Peak density a mass adds, in units of the glandular-minus-fat contrast.
    mass_contrast_range: tuple[float, float] = (0.25, 0.9)
    fat_level: float = 0.30
    gland_level: float = 0.62
    noise_sigma: float = 0.012
    # The families of tfsal.data.synthetic_families; the defaults are the classic world alone.
    textures: tuple[str, ...] = ("gaussian",)
    acquisitions: tuple[str, ...] = ("digital",)
    distractor_probability: float = 0.0
    falloff_range: tuple[float, float] = (0.04, 0.04)
    gamma_range: tuple[float, float] = (1.0, 1.0)
    noise_factor_range: tuple[float, float] = (1.0, 1.0)
    breast_scale_range: tuple[float, float] = (1.0, 1.0)
    # Film only: the breast's width as a share of its scaled width (scanned films hold narrow, oblique
    # breasts), and the film's tone: contrast gain about the breast's mean and a lift of the tissue.
    film_width_range: tuple[float, float] = (1.0, 1.0)
    film_gain_range: tuple[float, float] = (1.0, 1.0)
    film_lift_range: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def mixture(cls, textures: tuple[str, ...] = families.TEXTURES) -> SynthConfig:
        """Every family at once (domain randomisation; ``tfsal data synth --world mixture``)."""
        return cls(textures=tuple(textures), acquisitions=families.ACQUISITIONS, shapes=LESION_SHAPES,
                   distractor_probability=0.5, mass_radius_range=(0.022, 0.08), mass_contrast_range=(0.25, 0.9),
                   falloff_range=(0.03, 0.10), gamma_range=(0.7, 1.4), noise_factor_range=(0.6, 2.0),
                   breast_scale_range=(0.7, 1.0), two_mass_probability=0.1, film_width_range=(0.5, 1.0),
                   film_gain_range=(1.0, 1.8), film_lift_range=(0.0, 0.25))

    @property
    def classic(self) -> bool:
        """True when no family setting departs from the classic world (nothing more is drawn)."""
        return all(getattr(self, n) == getattr(SynthConfig, n) for n in _FAMILY_FIELDS)

    def __post_init__(self):
        for name, allowed in (("shapes", LESION_SHAPES), ("textures", families.TEXTURES),
                              ("acquisitions", families.ACQUISITIONS)):
            value = getattr(self, name)
            if set(value) - set(allowed) or not value:
                raise ValueError(f"{name} must be a non-empty subset of {allowed}; received {value}")
        if not 0 <= self.distractor_probability <= 1:
            raise ValueError(f"distractor_probability must lie in [0, 1]; received {self.distractor_probability}")
        for name in ("beta_range", "mass_radius_range", "mass_contrast_range", *_FAMILY_RANGES):
            (lo, hi), zero, top = getattr(self, name), name == "film_lift_range", _AT_MOST.get(name, np.inf)
            if not ((lo >= 0 if zero else lo > 0) and lo <= hi <= top):
                raise ValueError(f"{name} must satisfy 0 {'<=' if zero else '<'} low <= high"
                                 f"{f' <= {top}' if top < np.inf else ''}; received {(lo, hi)}")
        if len(self.density_probabilities) != 4 or not np.isclose(sum(self.density_probabilities), 1):
            raise ValueError(
                f"density_probabilities must be 4 numbers summing to 1; received {self.density_probabilities}")


@dataclass(frozen=True)
class SyntheticMammogram:
    """One generated image with its ground truth.

    Attributes:
        image: float32 [H, W] in [0, 1], bright = dense (MONOCHROME2 sense).
        mass_mask: bool [H, W], the union of the mass cores (all False for healthy images).
        organ_mask: bool [H, W], the breast without the pectoral muscle.
        params: what was drawn: laterality, view, density, beta and one dict per mass.
    """

    image: np.ndarray
    mass_mask: np.ndarray
    organ_mask: np.ndarray
    params: dict = field(default_factory=dict)


def make_mammogram(
    seed: int | np.random.SeedSequence | np.random.Generator,
    size: tuple[int, int] = (256, 192),
    n_masses: int = 0,
    config: SynthConfig = SynthConfig(),
) -> SyntheticMammogram:
    """Generate one synthetic mammogram.

    Args:
        seed: anything ``numpy.random.default_rng`` accepts; equal seeds give equal images.
        size: (height, width) in pixels, both at least 32.
        n_masses: number of masses to place (0 for a healthy image).
        config: generator parameters.

    Returns:
        A :class:`SyntheticMammogram`.
    """
    height, width = size
    if min(height, width) < 32:
        raise ValueError(f"size must be at least 32x32; received {size}")
    if n_masses < 0:
        raise ValueError(f"n_masses must be >= 0; received {n_masses}")
    rng = np.random.default_rng(seed)
    view = "MLO" if rng.random() < config.mlo_probability else "CC"
    laterality = LATERALITIES[int(rng.integers(2))]
    density = DENSITY_CLASSES[int(rng.choice(4, p=config.density_probabilities))]
    beta = float(rng.uniform(*config.beta_range))
    world = families.CLASSIC if config.classic else families.draw_world(rng, config)

    breast, muscle = _silhouette(rng, height, width, view)
    organ = breast & ~muscle
    depth = _skin_depth(breast, view)
    envelope = _glandular_envelope(rng, depth, breast, height)
    gland = _glandular_tissue(rng, envelope, organ, beta, density, world.texture)
    density_map = _density_map(rng, gland, organ, config)
    extras = families.add_distractors(
        rng, density_map, organ, config.gland_level - config.fat_level) if world.distractors else []
    mass_mask, masses = _add_masses(rng, density_map, organ, depth, envelope, n_masses, config)
    image = _acquire(rng, density_map, breast, muscle, depth, config, world)
    if world != families.CLASSIC:
        image = families.tone(image, world)
    if world.acquisition == "film":
        image, moved, masses = families.filmify(
            rng, image, {"breast": breast, "organ": organ, "mass": mass_mask}, masses, world)
        organ, mass_mask = moved["organ"], moved["mass"]

    if laterality == "R":
        image, mass_mask, organ = image[:, ::-1], mass_mask[:, ::-1], organ[:, ::-1]
        for info in masses:
            info["centre"] = (info["centre"][0], width - 1 - info["centre"][1])
    params = {"view": view, "laterality": laterality, "density": density, "beta": round(beta, 4), "masses": masses}
    if not config.classic:
        params["world"] = {**world.as_params(), "distractors": extras}
    return SyntheticMammogram(
        np.ascontiguousarray(image), np.ascontiguousarray(mass_mask), np.ascontiguousarray(organ), params)


def _skin_depth(breast, view):
    """Depth below the skin, in pixels; the chest wall (x = 0) and, in MLO views, the top edge (the
    axilla) cut through tissue, so they are not skin."""
    height, width = breast.shape
    top = 0 if view == "MLO" else 1
    padded = np.pad(breast, ((top, 1), (0, 1)), constant_values=False)
    return ndimage.distance_transform_edt(padded)[top:top + height, :width]


def _density_map(rng, gland, organ, cfg):
    """Tissue density before masses: fat plus glandular tissue, vessels and fine texture."""
    height, width = gland.shape
    density_map = cfg.fat_level + (cfg.gland_level - cfg.fat_level) * gland
    density_map += _vessels(rng, organ, height, width) * (cfg.gland_level - cfg.fat_level) * 0.35
    density_map += 0.03 * _power_law_noise(rng, (height, width), 2.0)
    return density_map


def _add_masses(rng, density_map, organ, depth, envelope, n_masses, cfg):
    """Place ``n_masses`` masses, adding their density to ``density_map`` in place.

    Returns:
        ``(mass_mask, masses)``: the union of the cores and one dict per placed mass.
    """
    height = organ.shape[0]
    mass_mask = np.zeros(organ.shape, bool)
    masses = []
    for _ in range(n_masses):
        placed = _place_mass(rng, organ, mass_mask, depth, envelope, height, cfg)
        if placed is None:
            continue
        profile, core, info = placed
        density_map += profile * (cfg.gland_level - cfg.fat_level) * info["contrast"]
        mass_mask |= core
        masses.append(info)
    if n_masses and not masses:
        raise RuntimeError("could not place a mass inside the breast; the image is too small")
    return mass_mask, masses


def _acquire(rng, density_map, breast, muscle, depth, cfg, world=families.CLASSIC):
    """The detector image: pectoral muscle, thickness fall-off and skin line, blur, background, noise."""
    height, width = breast.shape
    muscle_level = rng.uniform(0.62, 0.78)
    muscle_soft = cv2.GaussianBlur(muscle.astype(np.float32), (0, 0), max(0.6, 0.004 * height))
    tissue = density_map * (1 - muscle_soft) + muscle_level * muscle_soft * (
        1 + 0.04 * _power_law_noise(rng, (height, width), 2.5))

    # Compressed thickness falls off over the last ~4 % of the height before the skin;
    # the skin itself is a thin brighter line.
    falloff = 0.35 + 0.65 * (1 - np.exp(-depth / (world.falloff * height)))
    skin = 0.10 * np.exp(-np.maximum(depth - 1, 0) / max(0.6, 0.003 * height))
    image = np.where(breast, tissue * falloff + skin, 0.0)
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.6)
    background = 0.03 + 0.01 * rng.random()
    image = image + background * (1 - cv2.GaussianBlur(breast.astype(np.float32), (0, 0), 0.8))
    noise = rng.normal(0, cfg.noise_sigma * world.noise_factor, image.shape)
    image = image + noise * np.sqrt(np.clip(image, 0.01, 1) / 0.5)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _silhouette(rng, height, width, view):
    """Breast and pectoral-muscle masks with the chest wall at x = 0."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if view == "CC":
        centre_y = height * rng.uniform(0.46, 0.54)
        semi_y = height * rng.uniform(0.36, 0.46)
        semi_x = width * rng.uniform(0.62, 0.88)
    else:
        centre_y = height * rng.uniform(0.40, 0.46)
        semi_y = height * rng.uniform(0.50, 0.56)
        semi_x = width * rng.uniform(0.68, 0.92)
    theta = np.arctan2((y - centre_y) / semi_y, x / semi_x)
    radius = np.hypot((y - centre_y) / semi_y, x / semi_x)
    wobble = 1.0
    for order in (2, 3, 5):
        wobble = wobble + rng.uniform(0.0, 0.025) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    breast = radius <= wobble
    muscle = np.zeros_like(breast)
    if view == "MLO":
        # Pectoral muscle: curved triangle between the top edge and the chest wall.
        top = width * rng.uniform(0.22, 0.40)
        side = height * rng.uniform(0.32, 0.55)
        bulge = rng.uniform(0.0, 0.12)
        t = x / top + y / side
        muscle = (t <= 1 + bulge * np.sin(np.pi * np.clip(x / top, 0, 1))) & breast
    return breast, muscle


def _glandular_envelope(rng, depth, breast, height):
    """Where fibroglandular tissue may lie: away from the skin, densest centrally."""
    fat_layer = height * rng.uniform(0.025, 0.05)
    inner = np.clip((depth - fat_layer) / (0.08 * height), 0, 1)
    inner = inner * inner * (3 - 2 * inner)  # smoothstep
    return np.where(breast, inner, 0.0).astype(np.float32)


def _power_law_noise(rng, shape, beta):
    """Zero-mean, unit-variance Gaussian field with power spectrum 1/f**beta."""
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2)
    amplitude[0, 0] = 0.0
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) * amplitude
    field_ = np.fft.irfft2(spectrum, s=shape)
    return ((field_ - field_.mean()) / (field_.std() + 1e-12)).astype(np.float32)


def _glandular_tissue(rng, envelope, organ, beta, density, texture="gaussian"):
    """Glandular share in [0, 1]: a 1/f**beta field thresholded at the density's quantile."""
    field_, softness = families.texture_field(
        rng, texture, envelope > 0, beta, lambda shape, b: _power_law_noise(rng, shape, b))
    fill = rng.uniform(*_DENSITY_FILL[density])
    inside = organ & (envelope > 0.5)
    level = np.quantile(field_[inside], 1 - fill) if inside.any() else 0.0
    gland = 1 / (1 + np.exp(-(field_ - level) / softness))
    return (gland * envelope).astype(np.float32)


def _vessels(rng, organ, height, width):
    """A few thin curvilinear structures (vessels, ligaments) inside the breast."""
    canvas = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(2, 6))):
        n = 40
        start = np.array([rng.uniform(0.1, 0.9) * height, rng.uniform(0.0, 0.3) * width])
        heading = rng.uniform(-0.6, 0.6)
        step = 0.9 * width / n
        points = [start]
        for _ in range(n):
            heading += rng.normal(0, 0.12)
            points.append(points[-1] + step * np.array([np.sin(heading), np.cos(heading)]))
        pts = np.round(np.array(points)[:, ::-1] * 4).astype(np.int32)  # (x, y), 2 bits subpixel
        cv2.polylines(canvas, [pts], False, float(rng.uniform(0.4, 1.0)), 1, cv2.LINE_AA, shift=2)
    canvas = cv2.GaussianBlur(canvas, (0, 0), max(0.5, 0.002 * height))
    return canvas * organ


def _radius_function(rng, shape, theta):
    """Relative radius r(theta) of a mass core of the given shape (mean about 1)."""
    if shape == "round":
        r = 1 + 0.04 * np.cos(2 * theta + rng.uniform(0, 2 * np.pi))
    elif shape == "oval":
        aspect = rng.uniform(1.3, 1.9)
        phase = rng.uniform(0, np.pi)
        r = 1 / np.sqrt((np.cos(theta - phase) / aspect) ** 2 + np.sin(theta - phase) ** 2)
        r = r / np.sqrt(aspect)
    elif shape == "lobulated":
        lobes = int(rng.integers(3, 6))
        r = 1 + rng.uniform(0.12, 0.22) * np.cos(lobes * theta + rng.uniform(0, 2 * np.pi))
    else:  # irregular and spiculated cores
        r = np.ones_like(theta)
        for order in range(2, 9):
            r = r + rng.uniform(0, 0.30 / order ** 0.8) * np.cos(order * theta + rng.uniform(0, 2 * np.pi))
    return r


def _place_mass(rng, organ, taken, depth, envelope, height, cfg):
    """Draw one mass somewhere in the breast; None if no room is left."""
    shape = str(rng.choice(cfg.shapes))
    lo, hi = cfg.mass_radius_range
    radius = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) * height
    contrast = float(rng.uniform(*cfg.mass_contrast_range))
    margin_sigma = rng.choice([0.05, 0.15, 0.3]) * radius  # circumscribed ... ill-defined
    extent = radius
    if shape in families.EXTRA_LESIONS:
        radius, margin_sigma, dome_weight, n_spicules, spicule_weight, extent = families.lesion_kind(
            rng, shape, radius, margin_sigma)
    need = 1.5 * extent + 2 if extent == radius else min(1.5 * extent + 2, 0.6 * float(depth.max()))
    allowed = organ & (depth > need) & ~ndimage.binary_dilation(taken, iterations=int(2 * extent) + 1)
    candidates = np.flatnonzero(allowed)
    if candidates.size == 0:
        return None
    weights = 0.3 + envelope.ravel()[candidates]
    index = rng.choice(candidates, p=weights / weights.sum())
    cy, cx = divmod(int(index), organ.shape[1])
    cy += rng.uniform(-0.5, 0.5)
    cx += rng.uniform(-0.5, 0.5)

    y, x = np.mgrid[0:organ.shape[0], 0:organ.shape[1]].astype(np.float32)
    theta = np.arctan2(y - cy, x - cx)
    rel = np.hypot(y - cy, x - cx) / (radius * _radius_function(rng, shape, theta))
    core = rel <= extent / radius
    dome = np.sqrt(np.clip(1 - rel ** 2, 0, 1)) * 0.6 + 0.4 * (rel <= 1)
    profile = cv2.GaussianBlur(dome.astype(np.float32), (0, 0), float(max(margin_sigma, 0.5)))
    if shape == "spiculated":
        profile += 0.6 * _spicules(rng, organ.shape, cy, cx, radius)
    elif shape in families.EXTRA_LESIONS:
        profile *= dome_weight
        if n_spicules:
            profile += spicule_weight * _spicules(rng, organ.shape, cy, cx, radius, n_spicules)  # to about the extent
    profile *= organ
    info = {"shape": shape, "radius_px": round(extent, 2), "contrast": round(contrast, 4),
            "margin_sigma_px": round(float(margin_sigma), 2), "centre": (round(cy, 2), round(cx, 2))}
    return profile.astype(np.float32), core & organ, info


def _spicules(rng, shape, cy, cx, radius, count=None):
    canvas = np.zeros(shape, np.float32)
    for _ in range(int(rng.integers(8, 18)) if count is None else count):
        angle = rng.uniform(0, 2 * np.pi)
        length = radius * rng.uniform(0.8, 2.0)
        start = (cx + 0.8 * radius * np.cos(angle), cy + 0.8 * radius * np.sin(angle))
        end = (cx + (0.8 * radius + length) * np.cos(angle), cy + (0.8 * radius + length) * np.sin(angle))
        pts = np.round(np.array([start, end]) * 4).astype(np.int32)
        cv2.polylines(canvas, [pts], False, float(rng.uniform(0.5, 1.0)), 1, cv2.LINE_AA, shift=2)
    return cv2.GaussianBlur(canvas, (0, 0), 0.5)
