"""Domain-randomised segmentation scenes: many shape, texture, layout and camera families, so that a model
learns objects rather than one generator's habits.

Like ``synthetic.py`` every image is a pure function of ``(seed, index, families)``. Shapes and textures come in
named **families**, partitioned into a training partition and a disjoint **shift** partition that training never
sees (``FAMILIES``); the shift split measures generalisation to shapes and textures of kinds the model has
not met, drawn by the same layout and camera code.

- shapes (object-local coordinates, radius ~1, placed by scale / rotation / translation):
  train: ``fourier_blob`` (smooth contour, random Fourier radius), ``bezier_blob`` (closed Catmull-Rom spline),
  ``polygon`` (sharp, often concave), ``holed_blob`` (blob with 1-3 blob holes), ``branching`` (thin random
  tree of strokes), ``stroke`` (one thick Bezier curve);
  shift: ``gear`` (toothed wheel with an axle hole), ``spiral`` (thin Archimedean spiral), ``crescent``,
  ``glyph`` (a character of Pillow's bundled font), ``lattice`` (plate with a grid of holes).
- textures (whole-canvas colour fields, shown through each object's mask):
  train: ``flat``, ``pink_noise`` (1/f^beta spectrum, the power law of natural images), ``gradient`` (linear or
  radial), ``stripes``;
  shift: ``checker``, ``cells`` (Voronoi), ``dots``, ``waves`` (sum of plane waves).
- layout: 1..N objects, radius log-uniform over an order of magnitude, centres beyond the border (objects cut by
  the image edge), occlusion (back to front; masks are the visible parts), nesting (an object placed inside the
  previous one, e.g. in its hole), background regions (large unlabelled blobs of other textures).
- camera: per-object shading, global lighting gradient, colour gain and gamma, Gaussian blur, sensor noise,
  JPEG compression.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from .synthetic import SyntheticSample, visible_masks

FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "shapes": ("fourier_blob", "bezier_blob", "polygon", "holed_blob", "branching", "stroke"),
        "textures": ("flat", "pink_noise", "gradient", "stripes"),
    },
    "shift": {
        "shapes": ("gear", "spiral", "crescent", "glyph", "lattice"),
        "textures": ("checker", "cells", "dots", "waves"),
    },
}
THIN_SHAPES = frozenset({"branching", "stroke", "spiral"})  # for boundary-quality measures on thin structures
HOLED_SHAPES = frozenset({"holed_blob", "gear", "lattice"})
_PARTITION_STREAM = {"train": 101, "shift": 102}  # keeps the two partitions' random streams unrelated


@dataclass
class RandomizedConfig:
    """Parameters of the domain-randomised generator (pixel sizes of the square image; probabilities per image
    unless stated)."""

    image_size: int = 256
    families: str = "train"  # partition of FAMILIES
    min_objects: int = 1
    max_objects: int = 8
    min_radius_frac: float = 0.04  # object radius / image side, log-uniform: an order of magnitude of scales
    max_radius_frac: float = 0.45
    border_margin: float = 0.08  # centres drawn in [-margin, 1 + margin] * side: objects cut by the border
    nest_prob: float = 0.15  # per object: placed inside the previous object at 0.3-0.55 of its size
    region_prob: float = 0.6  # background split into large unlabelled regions of other textures
    min_visible_frac: float = 0.2
    min_area: int = 32
    blur_prob: float = 0.3
    max_blur_sigma: float = 1.5
    max_noise: float = 8.0  # std of additive Gaussian noise (0..255), drawn uniformly in [0, max_noise]
    jpeg_prob: float = 0.5
    min_jpeg_quality: int = 30

    def __post_init__(self) -> None:
        if self.families not in FAMILIES:
            raise ValueError(f"RandomizedConfig.families must be one of {sorted(FAMILIES)}, got {self.families!r}")
        if self.image_size < 32:
            raise ValueError(f"RandomizedConfig.image_size must be >= 32, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 0 < self.min_radius_frac <= self.max_radius_frac:
            raise ValueError(f"need 0 < min_radius_frac <= max_radius_frac, got {self.min_radius_frac}, "
                             f"{self.max_radius_frac}")


def randomized_rng(seed: int, index: int, families: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _PARTITION_STREAM[families]]))


# --------------------------------------------------------------------------------------------------- shapes
# A shape is a list of drawing operations in local coordinates, applied in order to a 0/1 canvas:
#   ("poly", (K, 2) points, fill)        ("line", (K, 2) points, width, fill)        ("glyph", char)
Op = tuple


def _closed_curve(r: np.ndarray) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, len(r), endpoint=False)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _fourier_radius(rng: np.random.Generator, n: int = 128) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    k_max, amp, decay = int(rng.integers(2, 9)), rng.uniform(0.1, 0.5), rng.uniform(0.8, 2.0)
    r = np.ones(n)
    for k in range(1, k_max + 1):
        r += rng.uniform(-1, 1) * amp / k**decay * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.maximum(r, 0.15 * r.max())
    return r / r.max()


def _catmull_rom(ctrl: np.ndarray, per_segment: int = 16, closed: bool = True) -> np.ndarray:
    p = np.concatenate([ctrl[-1:], ctrl, ctrl[:2]]) if closed else np.concatenate([ctrl[:1], ctrl, ctrl[-1:]])
    out = []
    s = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * s**3))
    return np.concatenate(out)


def _bezier(ctrl: np.ndarray, n: int = 48) -> np.ndarray:
    """(n, 2) points of the Bezier curve of control points ``ctrl`` (k, 2) (de Casteljau)."""
    t = np.linspace(0, 1, n)[:, None]
    pts = np.broadcast_to(ctrl[:, None, :].astype(float), (len(ctrl), n, 2))
    while len(pts) > 1:
        pts = (1 - t) * pts[:-1] + t * pts[1:]
    return pts[0]


def _fourier_blob(rng: np.random.Generator) -> list[Op]:
    return [("poly", _closed_curve(_fourier_radius(rng)), 1)]


def _bezier_blob(rng: np.random.Generator) -> list[Op]:
    n = int(rng.integers(4, 9))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.4, 1.0, n)
    return [("poly", _catmull_rom(np.stack([r * np.cos(t), r * np.sin(t)], axis=1)), 1)]


def _polygon(rng: np.random.Generator) -> list[Op]:
    n = int(rng.integers(3, 11))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.3, 1.0, n)
    return [("poly", np.stack([r * np.cos(t), r * np.sin(t)], axis=1), 1)]


def _holed_blob(rng: np.random.Generator) -> list[Op]:
    ops: list[Op] = [("poly", _closed_curve(0.5 + 0.5 * _fourier_radius(rng)), 1)]
    for _ in range(int(rng.integers(1, 4))):
        k = rng.uniform(0.12, 0.3)
        ang, rad = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.45 - k)
        centre = rad * np.array([np.cos(ang), np.sin(ang)])
        ops.append(("poly", _closed_curve(k * _fourier_radius(rng, 48)) + centre, 0))
    return ops


def _branching(rng: np.random.Generator) -> list[Op]:
    width = rng.uniform(0.03, 0.1)
    ops: list[Op] = []

    def grow(p: np.ndarray, theta: float, length: float, depth: int) -> None:
        q = p + length * np.array([np.cos(theta), np.sin(theta)])
        ops.append(("line", np.stack([p, q]), width * (0.7 + 0.3 * depth / 4), 1))
        if depth > 0:
            for _ in range(int(rng.integers(2, 4))):
                grow(q, theta + rng.uniform(-0.9, 0.9), length * rng.uniform(0.5, 0.8), depth - 1)

    grow(np.array([0.0, 1.0]), -np.pi / 2 + rng.uniform(-0.3, 0.3), rng.uniform(0.6, 0.9), int(rng.integers(2, 4)))
    return _normalise_ops(ops)


def _stroke(rng: np.random.Generator) -> list[Op]:
    ctrl = rng.uniform(-1, 1, (int(rng.integers(3, 6)), 2))
    return _normalise_ops([("line", _bezier(ctrl), rng.uniform(0.05, 0.2), 1)])


def _gear(rng: np.random.Generator) -> list[Op]:
    teeth, depth = int(rng.integers(6, 17)), rng.uniform(0.12, 0.25)
    t = np.linspace(0, 2 * np.pi, teeth * 8, endpoint=False)
    phase = (t * teeth / (2 * np.pi)) % 1.0
    r = np.where((phase > 0.25) & (phase < 0.75), 1.0, 1.0 - depth)
    hole = rng.uniform(0.15, 0.4)
    return [("poly", _closed_curve(r), 1), ("poly", _closed_curve(np.full(32, hole)), 0)]


def _spiral(rng: np.random.Generator) -> list[Op]:
    turns = rng.uniform(1.5, 3.5)
    theta = np.linspace(0, 2 * np.pi * turns, int(60 * turns))
    r = theta / theta[-1]
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return [("line", pts, rng.uniform(0.04, 0.4 / turns), 1)]


def _crescent(rng: np.random.Generator) -> list[Op]:
    k = rng.uniform(0.6, 0.95)
    off = rng.uniform(0.25, 0.6)
    return [("poly", _closed_curve(np.ones(64)), 1), ("poly", _closed_curve(np.full(64, k)) + [off, 0.0], 0)]


_GLYPHS = "ABCDEFGHKMNPQRSWXYZabdefghkmnpqrsy23456789&@#%?"


def _glyph(rng: np.random.Generator) -> list[Op]:
    return [("glyph", _GLYPHS[int(rng.integers(len(_GLYPHS)))])]


def _lattice(rng: np.random.Generator) -> list[Op]:
    n, m = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    ax, ay = 1.0, rng.uniform(0.6, 1.0)
    ops: list[Op] = [("poly", np.array([[-ax, -ay], [ax, -ay], [ax, ay], [-ax, ay]]), 1)]
    bar = rng.uniform(0.15, 0.35)  # fraction of each cell taken by the bars
    cw, ch = 2 * ax / n, 2 * ay / m
    for i in range(n):
        for j in range(m):
            x0, y0 = -ax + (i + bar / 2 + 0.05) * cw, -ay + (j + bar / 2 + 0.05) * ch
            x1, y1 = -ax + (i + 1 - bar / 2 - 0.05) * cw, -ay + (j + 1 - bar / 2 - 0.05) * ch
            ops.append(("poly", np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), 0))
    return ops


def _normalise_ops(ops: list[Op]) -> list[Op]:
    """Centre a shape's points on their bounding box and scale them to radius 1; line widths are already in
    units of that radius (so a short stroke stays as thin as a long one)."""
    pts = np.concatenate([op[1] for op in ops])
    lo, hi = pts.min(0), pts.max(0)
    c, s = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6)
    out: list[Op] = []
    for op in ops:
        out.append((op[0], (op[1] - c) / s, *op[2:]))
    return out


SHAPES: dict[str, Callable[[np.random.Generator], list[Op]]] = {
    "fourier_blob": _fourier_blob, "bezier_blob": _bezier_blob, "polygon": _polygon, "holed_blob": _holed_blob,
    "branching": _branching, "stroke": _stroke, "gear": _gear, "spiral": _spiral, "crescent": _crescent,
    "glyph": _glyph, "lattice": _lattice,
}


@dataclass
class Placed:
    """Pixel placement of a shape: centre (cx, cy), pixels per local unit, rotation in radians."""

    cx: float
    cy: float
    scale: float
    angle: float

    def apply(self, pts: np.ndarray) -> list[tuple[float, float]]:
        c, s = np.cos(self.angle), np.sin(self.angle)
        q = pts @ np.array([[c, s], [-s, c]]) * self.scale + np.array([self.cx, self.cy])
        return [tuple(v) for v in q]


def render_ops(ops: list[Op], placed: Placed, size: int) -> np.ndarray:
    """Rasterise a shape's operations at a placement: (size, size) bool."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for op in ops:
        if op[0] == "poly":
            draw.polygon(placed.apply(op[1]), fill=op[2])
        elif op[0] == "line":
            draw.line(placed.apply(op[1]), fill=op[3], width=max(1, int(round(op[2] * placed.scale))), joint="curve")
        else:
            _draw_glyph(canvas, op[1], placed)
    return np.asarray(canvas, dtype=bool)


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _draw_glyph(canvas: Image.Image, char: str, placed: Placed) -> None:
    font = _font(max(8, int(2.2 * placed.scale)))
    x0, y0, x1, y1 = font.getbbox(char)
    tile = Image.new("L", (x1 - x0 + 2, y1 - y0 + 2), 0)
    ImageDraw.Draw(tile).text((1 - x0, 1 - y0), char, fill=255, font=font)
    tile = tile.rotate(np.degrees(-placed.angle), resample=Image.NEAREST, expand=True).point(
        lambda v: 255 if v >= 128 else 0)
    at = (int(round(placed.cx - tile.width / 2)), int(round(placed.cy - tile.height / 2)))
    canvas.paste(tile.point(lambda v: 1 if v else 0), at, mask=tile)


# ------------------------------------------------------------------------------------------------- textures
def _palette(rng: np.random.Generator, contrast: float = 1.0) -> np.ndarray:
    a = rng.uniform(0, 255, 3)
    b = np.clip(a + rng.normal(0, 80 * contrast, 3), 0, 255)
    return np.stack([a, b])


def _blend(t: np.ndarray, pal: np.ndarray) -> np.ndarray:
    return pal[0] * (1 - t[..., None]) + pal[1] * t[..., None]


def _grid(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel grid rotated by a random angle: (d, e) coordinates in units of the image side, and (x, y)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(float) / size
    a = rng.uniform(0, np.pi)
    return xs * np.cos(a) + ys * np.sin(a), -xs * np.sin(a) + ys * np.cos(a), np.stack([xs, ys])


def pink_noise(size: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """(size, size) float noise in [0, 1] with power spectrum ~ 1/f^beta (beta ~ 2 for natural images)."""
    f = np.sqrt(np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** (beta / 2)
    spec[0, 0] = 0
    x = np.fft.irfft2(spec, s=(size, size))
    return (x - x.min()) / max(float(np.ptp(x)), 1e-9)


def _tex_flat(size, rng):
    return np.broadcast_to(_palette(rng)[0], (size, size, 3)).copy()


def _tex_pink_noise(size, rng):
    beta = rng.uniform(1.0, 2.6)
    if rng.uniform() < 0.3:  # independent channels: colourful noise
        return np.stack([pink_noise(size, beta, rng) for _ in range(3)], -1) * rng.uniform(60, 255) \
            + rng.uniform(0, 128, 3)
    return _blend(pink_noise(size, beta, rng), _palette(rng))


def _tex_gradient(size, rng):
    d, _, (xs, ys) = _grid(size, rng)
    if rng.uniform() < 0.5:
        t = (d - d.min()) / np.ptp(d)
    else:
        cx, cy = rng.uniform(0, 1, 2)
        t = np.clip(np.hypot(xs - cx, ys - cy) / rng.uniform(0.3, 1.2), 0, 1)
    return _blend(t, _palette(rng))


def _tex_stripes(size, rng):
    d, _, _ = _grid(size, rng)
    s = np.sin(2 * np.pi * rng.uniform(3, 25) * d + rng.uniform(0, 2 * np.pi))
    return _blend(0.5 + 0.5 * np.tanh(rng.uniform(0.5, 6) * s), _palette(rng))


def _tex_checker(size, rng):
    d, e, _ = _grid(size, rng)
    f = rng.uniform(3, 20)
    return _blend(((np.floor(f * d) + np.floor(f * e)) % 2).astype(float), _palette(rng))


def _tex_cells(size, rng):
    k = int(rng.integers(8, 60))
    pts = rng.uniform(0, size, (k, 2))
    ys, xs = np.mgrid[0:size, 0:size]
    d = (xs[..., None] - pts[:, 0]) ** 2 + (ys[..., None] - pts[:, 1]) ** 2
    pal = rng.uniform(0, 255, (int(rng.integers(2, 5)), 3))
    colour = pal[rng.integers(len(pal), size=k)]
    return colour[np.argmin(d, axis=-1)]


def _tex_dots(size, rng):
    d, e, _ = _grid(size, rng)
    f = rng.uniform(4, 20)
    r = rng.uniform(0.15, 0.45)
    dist = np.hypot((f * d) % 1 - 0.5, (f * e) % 1 - 0.5)
    return _blend((dist < r).astype(float), _palette(rng))


def _tex_waves(size, rng):
    _, _, (xs, ys) = _grid(size, rng)
    t = np.zeros((size, size))
    for _ in range(3):
        a, f = rng.uniform(0, np.pi), rng.uniform(2, 12)
        t += np.sin(2 * np.pi * f * (xs * np.cos(a) + ys * np.sin(a)) + rng.uniform(0, 2 * np.pi))
    return _blend((t - t.min()) / np.ptp(t), _palette(rng))


TEXTURES: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "flat": _tex_flat, "pink_noise": _tex_pink_noise, "gradient": _tex_gradient, "stripes": _tex_stripes,
    "checker": _tex_checker, "cells": _tex_cells, "dots": _tex_dots, "waves": _tex_waves,
}


# ---------------------------------------------------------------------------------------------------- scene
def _shade(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiply by a random linear lighting ramp of relative amplitude ``strength``: (S, S, 3) float."""
    size = img.shape[0]
    d, _, _ = _grid(size, rng)
    ramp = 1 + strength * rng.uniform(-1, 1) * (d - d.mean()) / max(float(np.ptp(d)), 1e-9) * 2
    return img * ramp[..., None]


def _camera(img: np.ndarray, rng: np.random.Generator, cfg: RandomizedConfig) -> np.ndarray:
    """Global lighting, colour gain and gamma, blur, noise, JPEG: float (S, S, 3) -> uint8 (S, S, 3)."""
    img = _shade(img, rng, 0.4)
    img = img * rng.uniform(0.8, 1.2, 3)
    img = 255.0 * (np.clip(img, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
    if rng.uniform() < cfg.blur_prob:
        img = ndimage.gaussian_filter(img, sigma=(rng.uniform(0.3, cfg.max_blur_sigma),) * 2 + (0,))
    img = img + rng.normal(0, rng.uniform(0, cfg.max_noise), img.shape)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if rng.uniform() < cfg.jpeg_prob:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(cfg.min_jpeg_quality, 96)))
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()
    return out


def _background(rng: np.random.Generator, cfg: RandomizedConfig, textures: tuple[str, ...]) -> np.ndarray:
    size = cfg.image_size
    img = TEXTURES[textures[int(rng.integers(len(textures)))]](size, rng)
    if rng.uniform() < cfg.region_prob:  # large unlabelled regions (ground, wall, sky ...): context, not objects
        for _ in range(int(rng.integers(1, 4))):
            placed = Placed(*(rng.uniform(0, size, 2)), rng.uniform(0.4, 1.0) * size, rng.uniform(0, 2 * np.pi))
            m = render_ops(_fourier_blob(rng), placed, size)
            img[m] = TEXTURES[textures[int(rng.integers(len(textures)))]](size, rng)[m]
    return img


def _random_placement(rng: np.random.Generator, cfg: RandomizedConfig, prev: Placed | None) -> Placed:
    size, angle = cfg.image_size, float(rng.uniform(0, 2 * np.pi))
    if prev is not None and rng.uniform() < cfg.nest_prob:
        return Placed(prev.cx, prev.cy, prev.scale * float(rng.uniform(0.3, 0.55)), angle)
    lo, hi = -cfg.border_margin * size, (1 + cfg.border_margin) * size
    r = float(np.exp(rng.uniform(np.log(cfg.min_radius_frac), np.log(cfg.max_radius_frac)))) * size
    return Placed(float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)), r, angle)


def _instances(full: list[np.ndarray], kinds: list[str], cfg: RandomizedConfig) -> tuple[list[np.ndarray], list[str]]:
    """Visible masks large enough (absolute and relative to the unoccluded object) to count as instances."""
    masks, keep = [], []
    for kind, m_full, m_vis in zip(kinds, full, visible_masks(full)):
        area = int(m_vis.sum())
        if area >= cfg.min_area and area >= cfg.min_visible_frac * max(int(m_full.sum()), 1):
            masks.append(m_vis)
            keep.append(kind)
    return masks, keep


def generate_randomized(seed: int, index: int, cfg: RandomizedConfig | None = None) -> SyntheticSample:
    """Image ``index`` of the split ``(seed, cfg.families)`` (deterministic): ``image`` (S, S, 3) uint8, ``masks``
    (N, S, S) bool visible instances (disjoint), ``kinds`` their shape family names. N >= 1."""
    cfg = cfg or RandomizedConfig()
    rng = randomized_rng(seed, index, cfg.families)
    size = cfg.image_size
    shapes, textures = FAMILIES[cfg.families]["shapes"], FAMILIES[cfg.families]["textures"]
    img = _background(rng, cfg, textures)
    full: list[np.ndarray] = []
    kinds: list[str] = []

    def add(placed: Placed) -> Placed:
        kind = shapes[int(rng.integers(len(shapes)))]
        m = render_ops(SHAPES[kind](rng), placed, size)
        tex = TEXTURES[textures[int(rng.integers(len(textures)))]](size, rng)
        if m.any():
            img[m] = _shade(tex, rng, 0.3)[m]
        full.append(m)
        kinds.append(kind)
        return placed

    prev: Placed | None = None
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        prev = add(_random_placement(rng, cfg, prev))
    masks, keep = _instances(full, kinds, cfg)
    while not masks:  # nothing visible enough (tiny, occluded, outside): one more object near the centre, on top
        add(Placed(size * float(rng.uniform(0.35, 0.65)), size * float(rng.uniform(0.35, 0.65)),
                   size * float(rng.uniform(0.15, 0.3)), float(rng.uniform(0, 2 * np.pi))))
        masks, keep = _instances(full, kinds, cfg)
    return SyntheticSample(image=_camera(img, rng, cfg), masks=np.stack(masks), kinds=keep)
