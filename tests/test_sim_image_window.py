"""The image's window (hw/samfpga/hw/rtl/image_window.sv) in Verilator + cocotb against FINN's padding and sliding
window on the table's outputs (samfpga.kernels), byte for byte, under stalls and free-running."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import image_window as iw


@pytest.mark.timeout(900)
@pytest.mark.parametrize("out_b", [16, 32])
def test_patches_equal_finn(tmp_path, out_b):
    """Three images (8 x 16, 12 x 6, and 16 x 32, the widest the build takes) with random int8 tables, stored 4 bytes
    a pixel (the spare byte 0xA5): every output pixel's 3 x 3 x 3 patch (stride 2, padding 1, zeros at the top and
    left edges) equals FINN's sliding window in whole beats of the unit's SIMD (2 beats of 16 bytes or 1 of 32),
    under stalls on every stream and free-running; free-running each step takes the cycle model's cycles exactly;
    a size the window does not take (odd height or width, wider than its build) is refused (err, not busy) and the
    next step runs."""
    rng = np.random.default_rng(out_b)
    sizes = [(8, 16), (12, 6), (16, 32)]
    images = [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.integers(-128, 128, (3, 256))) for h, w in sizes]
    bad = [(np.zeros((7, 8, 3), np.uint8), images[0][1]), (np.zeros((8, 5, 3), np.uint8), images[0][1]),
           (np.zeros((8, 34, 3), np.uint8), images[0][1])]
    steps = [images[0], bad[0], images[1], bad[1], bad[2], images[2]]
    iw.build(32, out_b, tmp_path)
    res, err, _ = iw.simulate(steps, [{"name": "stalls", "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}],
                              tmp_path)
    assert not err, err
    for p in res:
        assert not p["timed_out"], p["name"]
        got = p["steps"]
        assert [g["refused"] for g in got] == [False, True, False, True, True, False], p["name"]
        assert all(g["busy"] == 0 for g in got if g["refused"])
        for g, (im, t) in zip((got[0], got[2], got[5]), images, strict=True):
            assert bytes.fromhex(g["out"]) == iw.reference(im, t, out_b), (p["name"], im.shape)
    for g, (im, _) in zip((res[1]["steps"][0], res[1]["steps"][2], res[1]["steps"][5]), images, strict=True):
        h, w, c = im.shape
        assert g["cycles"] == iw.model_cycles(h, w, c, out_b), (g["cycles"], iw.model_cycles(h, w, c, out_b))


def test_sizes_refused_by_name():
    """The python side refuses what the RTL refuses, naming the size."""
    iw.check_image(16, 32, 32)
    for h, w in ((7, 8), (8, 5), (8, 34), (0, 8)):
        with pytest.raises(ValueError, match=f"got {h} x {w}"):
            iw.check_image(h, w, 32)
