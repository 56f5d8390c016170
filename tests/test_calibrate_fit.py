"""Fitting the output calibration (``samfpga.models.calibrate``): isotonic regression, the IoU map, Platt
scaling, determinism, and the records of one image collected with the bundled default on the host runtime."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.calibration import Calibration
from samfpga.models import calibrate as C


def test_isotonic_pools_adjacent_violators():
    y = np.array([1.0, 3.0, 2.0, 4.0, 0.0, 6.0])
    w = np.ones_like(y)
    got = C.isotonic(y, w)
    # blocks: [1], [3, 2] -> 2.5, then 4, 0 pools back over the 2.5 block: (3+2+4+0)/4 = 2.25 -> [1, 2.25 x4, 6]
    np.testing.assert_allclose(got, [1.0, 2.25, 2.25, 2.25, 2.25, 6.0])
    assert np.all(np.diff(C.isotonic(np.random.default_rng(0).standard_normal(200), np.ones(200))) >= 0)


def test_iou_map_recovers_a_known_monotone_relation():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.2, 0.9, 20000)
    actual = np.clip((pred - 0.2) ** 2 * 1.5 + rng.normal(0, 0.05, pred.size), 0, 1)
    xs, ys = C.fit_iou_map(pred, actual, bins=20)
    cal = Calibration(xs, ys)
    probe = np.linspace(0.3, 0.85, 12)
    np.testing.assert_allclose(cal.iou(probe), (probe - 0.2) ** 2 * 1.5, atol=0.03)
    assert np.all(np.diff(ys) > 0)
    # equal weights per source: 100 masks of one source outweigh 10,000 of another only by their share
    src = np.r_[np.zeros(100, np.int8), np.full(10000, 2, np.int8)]
    w = C.source_weights(src)
    assert w[:100].sum() == pytest.approx(w[100:].sum()) == pytest.approx(0.5)


def test_platt_recovers_scale_and_offset():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 8, 200000)
    for a, b in ((0.35, 0.0), (0.5, -1.2)):
        label = rng.random(z.size) < 1 / (1 + np.exp(-(a * z + b)))
        sa, sb = C.fit_platt(z, label, fit_offset=b != 0.0)
        assert sa == pytest.approx(a, rel=0.03) and sb == pytest.approx(b, abs=0.05)


def test_reliability_ece():
    p = np.array([0.05, 0.15, 0.15, 0.95])
    a = np.array([0.05, 0.35, 0.15, 0.55])
    r = C.reliability(p, a, bins=10)
    assert r["count"][0] == 1 and r["count"][1] == 2 and r["count"][9] == 1
    assert r["ece"] == pytest.approx((0 + 2 * 0.1 + 0.4) / 4)


@pytest.fixture(scope="module")
def default_predictor():
    from dataclasses import replace

    from samfpga.assets import default_bundle_dir
    from samfpga.bundle import load_bundle
    from samfpga.calibration import IDENTITY
    from samfpga.predictor import Predictor

    return Predictor.from_bundle(replace(load_bundle(default_bundle_dir()), calibration=IDENTITY), threads=1)


def test_collect_and_fit_reproduce(default_predictor):
    """One calibration image, twice: identical records and identical fit; the records are consistent."""
    runs = [C.collect(default_predictor, ["heldout"], 2, 1, points_per_side=4, progress=False) for _ in range(2)]
    a, b = runs
    for k in C.Records.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    n_inst = int((a.source == 1).sum())  # one box output per instance
    assert n_inst > 0 and (a.source == 0).sum() == 3 * n_inst and (a.source == 2).sum() == 3 * 16
    assert len(a.pixel_logit) == len(a.pixel_label) == 4 * n_inst * 512
    assert np.all((a.actual_iou >= 0) & (a.actual_iou <= 1))
    fa, fb = C.fit(a, bins=5), C.fit(b, bins=5)
    assert fa == fb and not fa.is_identity
