"""Prompt simulation for training and evaluation (SAM conventions).

Coordinates are (x, y) in pixels of the mask/image grid, integer pixel indices (the prompt encoder adds the
half-pixel shift). Boxes are XYXY with inclusive pixel bounds.

- evaluation (deterministic, numpy): ``centre_point`` (interior point farthest from the boundary),
  ``random_point``, ``mask_box``, ``next_click`` (SAM's iterative-click protocol: click the point farthest
  from the boundary of the largest error region, positive if it is a missed foreground pixel).
- training (batched, torch): ``sample_points`` uniformly inside masks, ``boxes_from_masks`` with SAM's
  box jitter, ``error_clicks`` sampling the next click uniformly from each error region.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage


def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"prompt simulation needs a 2-D mask, got shape {mask.shape}")
    if not mask.any():
        raise ValueError("prompt simulation needs a non-empty mask")
    return mask


def centre_point(mask: np.ndarray) -> tuple[int, int]:
    """The interior pixel farthest from the mask boundary, as (x, y); among equally far pixels (a plateau
    along a bar's axis) the one nearest the mask's centroid, then the first in row-major order."""
    mask = _check_mask(mask)
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    ys, xs = np.nonzero(dist >= dist.max() - 1e-6)
    my, mx = np.nonzero(mask)
    d2 = (xs - mx.mean()) ** 2 + (ys - my.mean()) ** 2
    k = int(np.argmin(d2))
    return int(xs[k]), int(ys[k])


def random_point(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly random pixel of the mask, as (x, y)."""
    ys, xs = np.nonzero(_check_mask(mask))
    k = int(rng.integers(len(xs)))
    return int(xs[k]), int(ys[k])


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight XYXY box (inclusive pixel bounds)."""
    ys, xs = np.nonzero(_check_mask(mask))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def next_click(pred: np.ndarray, gt: np.ndarray) -> tuple[tuple[int, int], int] | None:
    """SAM / RITM iterative click: the point farthest from the boundary of the largest error, and its label.

    Returns ((x, y), 1) for a missed foreground region, ((x, y), 0) for a false positive region, or None if
    the prediction is already perfect.
    """
    pred, gt = np.asarray(pred, bool), _check_mask(gt)
    fn, fp = gt & ~pred, pred & ~gt
    if not fn.any() and not fp.any():
        return None
    d_fn = ndimage.distance_transform_edt(np.pad(fn, 1))[1:-1, 1:-1]
    d_fp = ndimage.distance_transform_edt(np.pad(fp, 1))[1:-1, 1:-1]
    positive = d_fn.max() >= d_fp.max()
    dist = d_fn if positive else d_fp
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return (int(x), int(y)), int(positive)


# ---------------------------------------------------------------------------------------------- training
def sample_points(masks: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniformly random pixel per mask.

    Args:
        masks: (B, H, W) bool, every mask non-empty.
    Returns:
        (B, 2) float32 (x, y).
    """
    b, h, w = masks.shape
    flat = masks.reshape(b, -1).float()
    if (flat.sum(1) == 0).any():
        raise ValueError("sample_points: an empty mask has no interior point")
    idx = torch.multinomial(flat, 1, generator=generator).squeeze(1)
    return torch.stack([(idx % w).float(), (idx // w).float()], dim=1)


def boxes_from_masks(
    masks: torch.Tensor, jitter: float = 0.1, max_jitter: float = 20.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """XYXY boxes of (B, H, W) bool masks, each coordinate moved by N(0, jitter * side), at most ``max_jitter``
    pixels (SAM's training noise), clipped to the image. Returns (B, 4) float32."""
    b, h, w = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    ar_h, ar_w = torch.arange(h, device=masks.device), torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ar_h, h).min(1).values
    y1 = torch.where(rows, ar_h, -1).max(1).values
    x0 = torch.where(cols, ar_w, w).min(1).values
    x1 = torch.where(cols, ar_w, -1).max(1).values
    boxes = torch.stack([x0, y0, x1, y1], 1).float()
    if jitter > 0:
        side = torch.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0], 1).float()
        noise = torch.randn(boxes.shape, generator=generator, device=masks.device) * jitter * side
        boxes = boxes + noise.clamp(-max_jitter, max_jitter)
        lim = torch.tensor([w - 1, h - 1, w - 1, h - 1], device=masks.device, dtype=boxes.dtype)
        boxes = torch.minimum(boxes.clamp(min=0), lim)
    return boxes


def error_clicks(
    pred: torch.Tensor, target: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next click for each (prediction, target) pair, drawn uniformly from the error region.

    Positive (label 1) on a missed target pixel, negative (0) on a false positive; a perfect prediction gets
    a positive click inside the target. Used with ground-truth targets (supervised) and with the teacher's
    mask as target (online hard prompts, see ``training.hard_prompts``).

    Args:
        pred, target: (B, H, W) bool.
    Returns:
        points (B, 2) float32 (x, y), labels (B,) float32.
    """
    b, h, w = pred.shape
    err = (pred ^ target).reshape(b, -1)
    fallback = target.reshape(b, -1)
    weights = torch.where(err.any(1, keepdim=True), err, fallback).float()
    if (weights.sum(1) == 0).any():
        weights = weights + (weights.sum(1, keepdim=True) == 0).float()  # empty target and no error: anywhere
    idx = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    labels = target.reshape(b, -1).gather(1, idx[:, None]).squeeze(1).float()
    return torch.stack([(idx % w).float(), (idx // w).float()], dim=1), labels
