"""Feature-map padding (FINN ``FMPadding``): zero padding of an NHWC image, ``padding`` = (top, left, bottom, right)."""

from __future__ import annotations

import numpy as np


def fmpadding(x: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    t, left, b, r = padding
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), mode="constant")
