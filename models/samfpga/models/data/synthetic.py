"""Synthetic segmentation benchmark: images of textured objects with per-instance ground-truth masks.

Everything is a pure function of ``(seed, index)``: ``generate_sample(seed, i)`` always returns the same
image and masks, so a split is just a seed (training seed 0, held-out seed 1 by default) and nothing needs
to be stored. Shapes are described in object-local coordinates (unit radius) and placed by a similarity
transform (scale, rotation, translation), so the same objects can also be animated (``video.py``). Textures
are evaluated in local coordinates too, so they move with the object.

Shape kinds: ellipse, convex polygon, concave star, thin elongated bar, L-shaped bent bar, ring (hole),
polygon with a hole. Objects are drawn back to front; the masks are the *visible* parts after occlusion.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SHAPE_KINDS = ("ellipse", "convex", "star", "bar", "bent_bar", "ring", "holed_polygon")
TEXTURE_KINDS = ("solid", "gradient", "stripes", "checker", "noise")


@dataclass
class SyntheticConfig:
    """Parameters of the image generator (sizes in pixels of the square image)."""

    image_size: int = 256
    min_objects: int = 2
    max_objects: int = 6
    min_radius_frac: float = 0.08  # object radius as a fraction of the image side
    max_radius_frac: float = 0.25
    min_visible_frac: float = 0.25  # drop instances occluded to less than this fraction of their area
    min_area: int = 48  # pixels; smaller visible parts are not instances
    pixel_noise: float = 4.0  # std of additive per-pixel noise (0..255 scale)

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise ValueError(f"SyntheticConfig.image_size must be >= 32, got {self.image_size}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")


@dataclass
class Texture:
    kind: str
    colors: np.ndarray  # (2, 3) float 0..255
    freq: float
    angle: float
    phase: float
    grid: np.ndarray  # (g, g) float 0..1 lookup for "noise", sampled bilinearly in local coordinates


@dataclass
class ShapeSpec:
    """An object in local coordinates: outer polygon and hole polygons, each (K, 2) float (x, y), radius ~1."""

    kind: str
    outer: np.ndarray
    holes: list[np.ndarray] = field(default_factory=list)


@dataclass
class Placement:
    cx: float
    cy: float
    scale: float  # pixels per local unit
    angle: float  # radians


@dataclass
class SyntheticSample:
    """image: (H, W, 3) uint8 RGB. masks: (N, H, W) bool visible instance masks, back to front order.
    kinds: shape kind of each instance."""

    image: np.ndarray
    masks: np.ndarray
    kinds: list[str]


def sample_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """Independent generator per (seed, index, stream); ``stream`` separates uses (image vs. prompts)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))


# --------------------------------------------------------------------------------------------------- shapes
def _ellipse(n: int, ax: float, ay: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([ax * np.cos(t), ay * np.sin(t)], axis=1)


def random_shape(rng: np.random.Generator) -> ShapeSpec:
    kind = SHAPE_KINDS[rng.integers(len(SHAPE_KINDS))]
    if kind == "ellipse":
        return ShapeSpec(kind, _ellipse(48, 1.0, rng.uniform(0.4, 1.0)))
    if kind == "convex":
        n = int(rng.integers(3, 9))
        t = np.sort(rng.uniform(0, 2 * np.pi, n))
        r = rng.uniform(0.8, 1.0, n)
        return ShapeSpec(kind, np.stack([r * np.cos(t), r * np.sin(t)], axis=1))
    if kind == "star":
        n = int(rng.integers(3, 7))
        t = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
        r = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.35, 0.6))
        return ShapeSpec(kind, np.stack([r * np.cos(t), r * np.sin(t)], axis=1))
    if kind == "bar":
        w = rng.uniform(0.1, 0.22)
        return ShapeSpec(kind, np.array([[-1, -w], [1, -w], [1, w], [-1, w]], dtype=float))
    if kind == "bent_bar":
        w = rng.uniform(0.15, 0.3)
        return ShapeSpec(
            kind, np.array([[-1, -1], [-1 + 2 * w, -1], [-1 + 2 * w, 1 - 2 * w], [1, 1 - 2 * w], [1, 1], [-1, 1]], float)
        )
    if kind == "ring":
        ay = rng.uniform(0.6, 1.0)
        k = rng.uniform(0.35, 0.6)
        return ShapeSpec(kind, _ellipse(48, 1.0, ay), [_ellipse(40, k, k * ay)])
    n = int(rng.integers(4, 8))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    outer = np.stack([np.cos(t), np.sin(t)], axis=1) * rng.uniform(0.85, 1.0, (n, 1))
    hole = _ellipse(24, rng.uniform(0.2, 0.35), rng.uniform(0.2, 0.35)) + rng.uniform(-0.1, 0.1, 2)
    return ShapeSpec("holed_polygon", outer, [hole])


def _transform(points: np.ndarray, p: Placement) -> np.ndarray:
    c, s = np.cos(p.angle), np.sin(p.angle)
    rot = np.array([[c, -s], [s, c]])
    return points @ rot.T * p.scale + np.array([p.cx, p.cy])


def render_shape(shape: ShapeSpec, placement: Placement, size: int) -> np.ndarray:
    """Rasterise a placed shape: (size, size) bool, True inside the outer polygon and outside the holes."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon([tuple(v) for v in _transform(shape.outer, placement)], fill=1)
    for hole in shape.holes:
        draw.polygon([tuple(v) for v in _transform(hole, placement)], fill=0)
    return np.asarray(canvas, dtype=bool)


# ------------------------------------------------------------------------------------------------- textures
def random_texture(rng: np.random.Generator, contrast: float = 1.0) -> Texture:
    base = rng.uniform(0, 255, 3)
    other = np.clip(base + rng.normal(0, 70 * contrast, 3), 0, 255)
    return Texture(
        kind=TEXTURE_KINDS[rng.integers(len(TEXTURE_KINDS))],
        colors=np.stack([base, other]),
        freq=float(rng.uniform(2.0, 8.0)),
        angle=float(rng.uniform(0, np.pi)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        grid=rng.uniform(0, 1, (6, 6)),
    )


def _bilinear_lookup(grid: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample a (g, g) grid at local coordinates u, v in [-1.5, 1.5] (wrapping outside), bilinear."""
    g = grid.shape[0]
    x = ((u + 1.5) / 3.0 * (g - 1)) % (g - 1)
    y = ((v + 1.5) / 3.0 * (g - 1)) % (g - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    x1, y1 = np.minimum(x0 + 1, g - 1), np.minimum(y0 + 1, g - 1)
    top = grid[y0, x0] * (1 - fx) + grid[y0, x1] * fx
    bottom = grid[y1, x0] * (1 - fx) + grid[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def texture_values(tex: Texture, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colour (…, 3) float of a texture at local coordinates u, v (arrays of equal shape)."""
    d = u * np.cos(tex.angle) + v * np.sin(tex.angle)
    if tex.kind == "solid":
        t = np.zeros_like(u)
    elif tex.kind == "gradient":
        t = np.clip((d + 1) / 2, 0, 1)
    elif tex.kind == "stripes":
        t = 0.5 + 0.5 * np.sin(tex.freq * np.pi * d + tex.phase)
    elif tex.kind == "checker":
        e = -u * np.sin(tex.angle) + v * np.cos(tex.angle)
        t = ((np.floor(tex.freq * d) + np.floor(tex.freq * e)) % 2).astype(float)
    else:
        t = _bilinear_lookup(tex.grid, u, v)
    return tex.colors[0] * (1 - t[..., None]) + tex.colors[1] * t[..., None]


def _local_coords(placement: Placement, size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(float)
    dx, dy = (xs + 0.5 - placement.cx) / placement.scale, (ys + 0.5 - placement.cy) / placement.scale
    c, s = np.cos(placement.angle), np.sin(placement.angle)
    return c * dx + s * dy, -s * dx + c * dy


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A low-contrast textured background (size, size, 3) float: blended textures plus soft blobs."""
    whole = Placement(size / 2, size / 2, size / 2, 0.0)
    u, v = _local_coords(whole, size)
    a = texture_values(random_texture(rng, contrast=0.6), u, v)
    b = texture_values(random_texture(rng, contrast=0.6), u * 2, v * 2)
    w = _bilinear_lookup(rng.uniform(0, 1, (5, 5)), u, v)[..., None]
    img = a * w + b * (1 - w)
    for _ in range(int(rng.integers(0, 4))):  # soft unlabelled blobs: "photographic" clutter, not objects
        cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(0.1, 0.3) * size]
        ys, xs = np.mgrid[0:size, 0:size]
        g = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * r * r))[..., None]
        img = img * (1 - 0.5 * g) + rng.uniform(0, 255, 3) * 0.5 * g
    return img


# ------------------------------------------------------------------------------------------------- objects
@dataclass
class SceneObject:
    shape: ShapeSpec
    texture: Texture
    placement: Placement


def random_object(rng: np.random.Generator, cfg: SyntheticConfig) -> SceneObject:
    size = cfg.image_size
    r = rng.uniform(cfg.min_radius_frac, cfg.max_radius_frac) * size
    placement = Placement(
        cx=float(rng.uniform(0.1, 0.9) * size),
        cy=float(rng.uniform(0.1, 0.9) * size),
        scale=float(r),
        angle=float(rng.uniform(0, 2 * np.pi)),
    )
    return SceneObject(random_shape(rng), random_texture(rng), placement)


def composite(
    background: np.ndarray, objects: list[SceneObject], size: int, rng: np.random.Generator, noise: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw objects back to front. Returns the uint8 image and each object's full (unoccluded) mask."""
    img = background.copy()
    full = []
    for obj in objects:
        m = render_shape(obj.shape, obj.placement, size)
        full.append(m)
        if m.any():
            u, v = _local_coords(obj.placement, size)
            img[m] = texture_values(obj.texture, u[m], v[m])
    img = img + rng.normal(0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), full


def visible_masks(full: list[np.ndarray]) -> list[np.ndarray]:
    """Visible part of each mask: minus everything drawn later (on top)."""
    out = []
    covered = np.zeros_like(full[0]) if full else None
    for m in reversed(full):
        out.append(m & ~covered)
        covered = covered | m
    return out[::-1]


def generate_sample(seed: int, index: int, cfg: SyntheticConfig | None = None) -> SyntheticSample:
    """Image ``index`` of the split ``seed`` (deterministic). At least one instance is always returned."""
    cfg = cfg or SyntheticConfig()
    rng = sample_rng(seed, index)
    size = cfg.image_size
    background = render_background(rng, size)
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects = [random_object(rng, cfg) for _ in range(n)]
    image, full = composite(background, objects, size, rng, cfg.pixel_noise)
    masks, kinds = [], []
    for obj, m_full, m_vis in zip(objects, full, visible_masks(full)):
        area = int(m_vis.sum())
        if area >= cfg.min_area and area >= cfg.min_visible_frac * max(int(m_full.sum()), 1):
            masks.append(m_vis)
            kinds.append(obj.shape.kind)
    if not masks:  # every object was occluded or tiny: fall back to the largest visible part
        vis = visible_masks(full)
        k = int(np.argmax([v.sum() for v in vis]))
        masks, kinds = [vis[k]], [objects[k].shape.kind]
    return SyntheticSample(image=image, masks=np.stack(masks), kinds=kinds)
