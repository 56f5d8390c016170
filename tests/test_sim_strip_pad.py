"""Strip padding (hw/samfpga/hw/rtl/strip_pad.sv): the numpy reference against hand-worked bytes; the design's claim,
that a valid convolution on each padded strip computes the padded convolution of the whole map (exact, int64), for
one layer and for a chain of two with the unit before each; and the RTL under Verilator + cocotb against the
reference (tolerance 0, byte for byte) with random stalls on both streams. One Verilator build (about 20 s on the
2-core machine) shared by the RTL tests, which are marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import strip_pad as sp
from samfpga.hw.sim.strip_pad import PadConfig, PadFrame
from samfpga.hw.sim.strip_reader import strip_columns

CFG = PadConfig(bw=32)
PASSES = [{"name": "stalls", "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}]


def _map(h: int, w: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _kernel(k: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (k, k, c)).astype(np.int64)


def test_reference_by_hand():
    """W = 4, H = 1, tiles 2, halo 1, pad 1, C = 1: strip 0 is columns [-1, 3), strip 1 [1, 5), each with a zero row
    above and below."""
    f = PadFrame(np.array([[[1], [2], [3], [4]]], np.uint8), tiles=2, halo=1, pad=1)
    assert sp.padded_columns(4, 2, 1, 1) == [(-1, 3), (1, 5)]
    assert sp.input_strips(f) == [bytes([1, 2, 3]), bytes([2, 3, 4])]
    assert sp.reference(f) == [bytes([0] * 4 + [0, 1, 2, 3] + [0] * 4), bytes([0] * 4 + [2, 3, 4, 0] + [0] * 4)]


@pytest.mark.parametrize(("w", "tiles", "halo", "k"), [(16, 1, 0, 3), (16, 2, 1, 3), (16, 4, 1, 3), (24, 4, 3, 3),
                                                       (20, 2, 2, 5), (8, 4, 3, 3)])
def test_valid_conv_on_padded_strips_is_the_padded_conv_of_the_map(w, tiles, halo, k):
    """Each strip's own S columns of the valid convolution on its padded strip equal the whole map's padded
    convolution (halo >= pad; (8, 4, 3) has interior strips whose halo reaches the image edge)."""
    p = k // 2
    x = _map(5, w, 3, w + tiles)
    kern = _kernel(k, 3, k)
    want = sp.conv_valid(np.pad(x, ((p, p), (p, p), (0, 0))), kern)
    f = PadFrame(x, tiles, halo, p)
    s = w // tiles
    for i, (strip, (lo, hi)) in enumerate(zip(sp.padded_strips(f), sp.out_strip_columns(w, tiles, halo, p, k))):
        y = sp.conv_valid(strip, kern)
        assert y.shape[1] == hi - lo
        own = y[:, i * s - lo:(i + 1) * s - lo]
        np.testing.assert_array_equal(own, want[:, i * s:(i + 1) * s])


def test_chain_of_two_convs_with_the_unit_before_each():
    """Two 3 x 3 convolutions (pad 1) in one strip unit: the reader's strips at halo 2, the unit (pad 1), conv 1,
    the unit again at halo 1, conv 2. Conv 1's output on each strip is exactly the strip of conv 1's map at halo 1
    (the geometry the second unit is configured for), and conv 2's is the two-layer result on the strip's columns.
    Negative control: the same padding on the wrong side of each strip (the interior one) gets the strip's
    columns wrong."""
    w, tiles = 16, 2
    x = _map(6, w, 2, 7)
    k1, k2 = _kernel(3, 2, 1), _kernel(3, 2, 2)
    pad = ((1, 1), (1, 1), (0, 0))
    y1 = sp.conv_valid(np.pad(x, pad), k1)
    y2 = sp.conv_valid(np.pad(y1, pad), k2)
    s = w // tiles
    for i, strip in enumerate(sp.padded_strips(PadFrame(x, tiles, 2, 1))):
        a = sp.conv_valid(strip, k1)
        lo, hi = strip_columns(w, tiles, 1)[i]
        np.testing.assert_array_equal(a, y1[:, lo:hi])
        # the second unit pads a strip whose values need not be bytes; its geometry is the same
        b = np.pad(a, ((1, 1), (1 if lo == 0 else 0, 1 if hi == w else 0), (0, 0)))
        c = sp.conv_valid(b, k2)
        np.testing.assert_array_equal(c, y2[:, i * s:(i + 1) * s])
        swapped = np.pad(a, ((1, 1), (1 if hi == w else 0, 1 if lo == 0 else 0), (0, 0)))
        assert not np.array_equal(sp.conv_valid(swapped, k2)[:, :s], y2[:, i * s:(i + 1) * s])


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="whole 32-bit beats"):
        PadFrame(_map(2, 8, 3, 0), 2, 1, 1).cb(CFG)
    with pytest.raises(ValueError, match="pad -1"):
        PadFrame(_map(2, 8, 4, 0), 2, 1, -1)
    with pytest.raises(ValueError, match="equal strips"):
        PadFrame(_map(2, 10, 4, 0), 4, 1, 1)
    with pytest.raises(ValueError, match="multiple of 8"):
        PadConfig(bw=12)


# ---------------------------------------------------------------------------------------------------------------
# RTL (Verilator + cocotb)

FRAMES = [PadFrame(_map(5, 12, 8, 1), tiles=2, halo=1, pad=1),   # 2 beats per pixel
          PadFrame(_map(4, 16, 4, 2), tiles=4, halo=2, pad=1),   # interior strips, halo above pad
          PadFrame(_map(3, 6, 4, 3), tiles=1, halo=0, pad=2),
          PadFrame(_map(3, 12, 4, 4), tiles=2, halo=3, pad=0),   # no padding: the strips pass unchanged
          PadFrame(_map(2, 8, 12, 5), tiles=4, halo=3, pad=1)]   # halos reaching the image edge, 3 beats per pixel


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("strip_pad")
    sp.build(CFG, work)
    return work


def test_rtl_equals_reference(built):
    """Five frames back to back, with stalls on both streams and free-running: every padded strip equals the
    reference byte for byte, err = 0; free-running, a frame takes its output beats plus the divider's W / tiles
    cycles plus one set-up cycle per strip plus at most 8 (start, the sink's last beat)."""
    res = sp.simulate(CFG, [sp.frame_spec(f, CFG) for f in FRAMES], PASSES, built, seed=3)
    assert not res.error, res.error
    assert len(res.passes) == len(PASSES)
    for p in res.passes:
        assert not p["timed_out"] and not p["busy"] and p["extra_beats"] == 0 and not p["input_left"], p["name"]
        assert p["err"] == [0] * len(FRAMES), p["name"]
        got = [[bytes.fromhex(s) for s in fs] for fs in p["strips"]]
        assert got == [sp.reference(f) for f in FRAMES], p["name"]
    done = res.passes[1]["frame_done_cycles"]
    cycles = np.diff([0, *done])
    for f, n in zip(FRAMES, cycles):
        beats = sum(len(s) for s in sp.reference(f)) // (CFG.bw // 8)
        bound = beats + f.fmap.shape[1] // f.tiles + f.tiles
        assert bound <= n <= bound + 8, (n, bound)


def test_rtl_flags_a_stream_of_the_wrong_geometry_and_a_bad_config(built):
    """Negative controls: (1) the same bytes with the packets cut one beat early: every byte still passes in place
    (the output equals the reference) but err[0] is set, and the next good frame clears it; (2) W not a multiple
    of tiles: err[1], nothing passed."""
    f = FRAMES[0]
    good = sp.input_strips(f)
    moved = [good[0][:-4], good[0][-4:] + good[1]]
    bad_cfg = {**sp.frame_spec(FRAMES[1], CFG), "tiles": 3, "strips": [], "expect": 0}
    frames = [sp.frame_spec(f, CFG, moved), bad_cfg, sp.frame_spec(f, CFG)]
    res = sp.simulate(CFG, frames, [{"name": "free"}], built, tag="neg")
    assert not res.error, res.error
    p = res.passes[0]
    assert not p["timed_out"] and not p["busy"] and p["extra_beats"] == 0 and not p["input_left"]
    assert p["err"] == [1, 2, 0]
    assert [bytes.fromhex(s) for s in p["strips"][0]] == sp.reference(f)
    assert p["strips"][1] == [] and [bytes.fromhex(s) for s in p["strips"][2]] == sp.reference(f)
