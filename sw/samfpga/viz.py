"""Overlay drawing: masks as translucent colour fills with outlines, prompt points and boxes (numpy + Pillow)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

FOREGROUND = (40, 220, 40)
BACKGROUND = (230, 40, 40)
BOX = (40, 140, 255)


def palette(n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct bright colours, (n, 3) uint8, deterministic (golden-ratio hue steps)."""
    hues = (np.arange(n) * 0.618033988749895 + 0.85 + seed * 0.1) % 1.0  # first: magenta, visible on most scenes
    rgb = [colorsys.hsv_to_rgb(float(h), 0.75, 0.95) for h in hues]
    return (np.array(rgb, dtype=np.float64).reshape(n, 3) * 255).astype(np.uint8)


def outline(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a (H, W) bool mask: set pixels with an unset 4-neighbour (or on the image edge)."""
    m = np.pad(mask.astype(bool), 1, constant_values=False)
    interior = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask.astype(bool) & ~interior


def overlay(
    image: np.ndarray,
    masks: np.ndarray | Sequence[np.ndarray],
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    alpha: float = 0.45,
    colors: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``masks`` over ``image``.

    Args:
        image: (H, W, 3) uint8.
        masks: (K, H, W) bool, drawn in order (later on top).
        points: (N, 2) (x, y) prompt points; labels (N,) 1 fg (green), 0 bg (red).
        box: (4,) XYXY prompt box (blue).
        alpha: fill opacity.
        colors: (K, 3) uint8; default ``palette(K)``.

    Returns:
        (H, W, 3) uint8.
    """
    out = image.astype(np.float32).copy()
    masks = [np.asarray(m, dtype=bool) for m in masks]
    colors = palette(len(masks)) if colors is None else np.asarray(colors, dtype=np.uint8)
    for m, c in zip(masks, colors):
        if m.shape != image.shape[:2]:
            raise ValueError(f"mask shape {m.shape} does not match image {image.shape[:2]}")
        out[m] = (1 - alpha) * out[m] + alpha * c.astype(np.float32)
    for m, c in zip(masks, colors):
        out[outline(m)] = c
    pil = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    r = max(5, round(max(image.shape[:2]) / 80))
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in np.asarray(box).reshape(4))
        draw.rectangle([x0, y0, x1, y1], outline=BOX, width=max(1, r // 2))
    if points is not None:
        labels = np.ones(len(points)) if labels is None else np.asarray(labels)
        for (x, y), lab in zip(np.asarray(points, dtype=float).reshape(-1, 2), labels):
            fill = FOREGROUND if lab == 1 else BACKGROUND
            draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=(255, 255, 255), width=2)
    return np.asarray(pil)
