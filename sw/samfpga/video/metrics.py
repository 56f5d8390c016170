"""DAVIS J&F (davis2017-evaluation semantics) in numpy: region similarity J (IoU) and boundary F-measure with a
tolerance of ceil(0.008 × image diagonal) pixels."""

from __future__ import annotations

import math

import numpy as np


def j_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; 1 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """davis ``seg2bmap``: pixels whose right, lower or lower-right neighbour differs (last row/column compared
    along the edge only)."""
    m = mask.astype(bool)
    e = np.zeros_like(m)
    s = np.zeros_like(m)
    se = np.zeros_like(m)
    e[:, :-1] = m[:, 1:]
    s[:-1, :] = m[1:, :]
    se[:-1, :-1] = m[1:, 1:]
    b = (m ^ e) | (m ^ s) | (m ^ se)
    b[-1, :] = m[-1, :] ^ e[-1, :]
    b[:, -1] = m[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _dilate(b: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation with a disk of radius r (x² + y² ≤ r²)."""
    h, w = b.shape
    out = np.zeros_like(b)
    pad = np.pad(b, r)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                out |= pad[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    h, w = gt.shape
    r = int(math.ceil(bound_th * math.hypot(h, w)))
    bp, bg = boundary(pred), boundary(gt)
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = float((bp & _dilate(bg, r)).sum() / n_p)
    recall = float((bg & _dilate(bp, r)).sum() / n_g)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def sequence_j_and_f(preds: np.ndarray, gts: np.ndarray) -> dict[str, float]:
    """preds, gts (T, N, H, W) bool for N objects. First and last frames are skipped (DAVIS), per-object means,
    then the mean over objects. Returns J, F and J&F."""
    t = preds.shape[0]
    frames = range(1, t - 1) if t > 2 else range(t)
    js, fs = [], []
    for o in range(preds.shape[1]):
        js.append(np.mean([j_measure(preds[i, o], gts[i, o]) for i in frames]))
        fs.append(np.mean([f_measure(preds[i, o], gts[i, o]) for i in frames]))
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"J": j, "F": f, "J&F": (j + f) / 2}
