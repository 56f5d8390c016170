"""J&F as DAVIS defines it, on hand-checkable masks."""

from __future__ import annotations

import numpy as np

from samfpga.video.metrics import boundary, f_measure, j_measure, sequence_j_and_f


def _square(y0: int, x0: int, n: int, size: int = 100) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[y0 : y0 + n, x0 : x0 + n] = True
    return m


def test_j():
    a, b = _square(10, 10, 20), _square(10, 20, 20)
    assert j_measure(a, b) == 200 / 600
    assert j_measure(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


def test_boundary_of_a_square():
    b = boundary(_square(10, 10, 20))
    # seg2bmap marks the object's own last row/column and the outside pixels before its first row/column
    assert b[9, 10:29].all() and b[29, 10:30].all() and not b[10, 15] and not b[20, 20]


def test_f_tolerance():
    # 100² image: diagonal 141.4, tolerance ceil(1.13) = 2 pixels
    a = _square(10, 10, 40)
    assert f_measure(a, a) == 1.0
    assert f_measure(a, _square(12, 10, 40)) == 1.0  # shifted by 2: within tolerance
    assert f_measure(a, _square(20, 10, 40)) < 0.7  # shifted by 10: top/bottom edges miss
    assert f_measure(a, np.zeros_like(a)) == 0.0
    assert f_measure(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_sequence_skips_first_and_last():
    gt = np.stack([_square(10, 10, 20)] * 4)[:, None]
    pred = gt.copy()
    pred[0, 0] = False  # first and last frames do not count
    pred[3, 0] = False
    assert sequence_j_and_f(pred, gt) == {"J": 1.0, "F": 1.0, "J&F": 1.0}
    pred[1, 0] = False
    r = sequence_j_and_f(pred, gt)
    assert r["J"] == 0.5 and r["F"] == 0.5
