"""Synthetic videos with per-frame instance masks, for tracking work.

Each object keeps its shape and texture and follows its own trajectory: linear drift plus a sinusoidal
sweep (so it can leave the frame and come back), growing or shrinking, turning; objects are drawn in a
fixed depth order, so they occlude each other as they cross. Like the images, a video is a pure function of
``(seed, index)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .synthetic import (
    Placement,
    SyntheticConfig,
    composite,
    random_object,
    render_background,
    sample_rng,
    visible_masks,
)


@dataclass
class VideoConfig:
    frames: int = 16
    image: SyntheticConfig = None  # type: ignore[assignment]
    exit_prob: float = 0.5  # probability that an object's sweep carries it out of the frame and back
    max_scale_change: float = 0.5  # total relative size change over the clip

    def __post_init__(self) -> None:
        if self.image is None:
            self.image = SyntheticConfig()
        if self.frames < 1:
            raise ValueError(f"VideoConfig.frames must be >= 1, got {self.frames}")


@dataclass
class SyntheticVideo:
    """frames: (T, H, W, 3) uint8. masks: (T, N, H, W) bool visible masks of the N objects (an object that is
    out of frame or fully occluded has an empty mask in that frame). ids: (N,) object ids (depth order)."""

    frames: np.ndarray
    masks: np.ndarray
    ids: np.ndarray


def generate_video(seed: int, index: int, cfg: VideoConfig | None = None) -> SyntheticVideo:
    """Video ``index`` of split ``seed`` (deterministic)."""
    cfg = cfg or VideoConfig()
    icfg = cfg.image
    size = icfg.image_size
    rng = sample_rng(seed, index, stream=7)
    background = render_background(rng, size)
    n = int(rng.integers(icfg.min_objects, icfg.max_objects + 1))
    objects = [random_object(rng, icfg) for _ in range(n)]
    motions = []
    for _ in objects:
        exits = rng.uniform() < cfg.exit_prob
        amp = rng.uniform(0.6, 0.9) * size if exits else rng.uniform(0.05, 0.2) * size
        motions.append(
            dict(
                vel=rng.normal(0, 0.01 * size, 2),
                amp=amp,
                dir=rng.uniform(0, 2 * np.pi),
                omega=rng.uniform(0.5, 1.0) * 2 * np.pi / max(cfg.frames, 2),
                growth=rng.uniform(-cfg.max_scale_change, cfg.max_scale_change),
                spin=rng.normal(0, 0.05),
            )
        )
    frames, masks = [], []
    for t in range(cfg.frames):
        placed = []
        for obj, mo in zip(objects, motions):
            p0 = obj.placement
            sweep = mo["amp"] * np.sin(mo["omega"] * t)
            frac = t / max(cfg.frames - 1, 1)
            p = Placement(
                cx=float(p0.cx + mo["vel"][0] * t + sweep * np.cos(mo["dir"])),
                cy=float(p0.cy + mo["vel"][1] * t + sweep * np.sin(mo["dir"])),
                scale=float(p0.scale * (1 + mo["growth"] * frac)),
                angle=float(p0.angle + mo["spin"] * t),
            )
            placed.append(type(obj)(obj.shape, obj.texture, p))
        img, full = composite(background, placed, size, rng, icfg.pixel_noise)
        frames.append(img)
        masks.append(np.stack(visible_masks(full)))
    return SyntheticVideo(frames=np.stack(frames), masks=np.stack(masks), ids=np.arange(n))
