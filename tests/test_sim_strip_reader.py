"""Strip reader (hw/samfpga/hw/rtl/strip_reader.sv): the numpy reference against direct slicing and the planner's
column count, and the RTL under Verilator + cocotb against the reference (tolerance 0, byte for byte) with
cocotbext-axi's AxiRamRead as the DDR and random stalls on AR, R and the output stream. One Verilator build
(about 30 s on the 2-core machine) shared by the RTL tests, which are marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import strip_reader as sr
from samfpga.hw.sim.strip_reader import ReaderConfig, StripFrame

CFG = ReaderConfig(axi_dw=64, stream_w=32, max_burst=4)
PASSES = [{"name": "stalls", "ar_pause": 0.3, "r_pause": 0.4, "out_pause": 0.3}, {"name": "free"}]


def _map(h: int, w: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def test_reference_by_hand():
    """W = 4, tiles 2, halo 1, C = 1: strips cover columns [0, 3) and [1, 4)."""
    f = StripFrame(np.arange(8, dtype=np.uint8).reshape(2, 4, 1), tiles=2, halo=1)
    assert sr.reference(f) == [bytes([0, 1, 2, 4, 5, 6]), bytes([1, 2, 3, 5, 6, 7])]
    assert sr.payload_bytes(2, 4, 1, 2, 1) == 12
    assert sr.segments(f) == [(0, 3), (4, 3), (1, 3), (5, 3)]


@pytest.mark.parametrize(("w", "tiles", "halo"), [(64, 1, 0), (64, 2, 1), (64, 4, 3), (96, 4, 0), (64, 8, 16)])
def test_byte_count_equals_the_planners_columns(w, tiles, halo):
    """The reader's payload bytes are the planner's columns read (halos included, clipped) x H x C."""
    from samfpga.hw.plan.strips import _columns

    h, c = 5, 3
    assert sr.payload_bytes(h, w, c, tiles, halo) == _columns(w, tiles, halo)[0] * h * c
    f = StripFrame(_map(h, w, c, 0), tiles, halo)
    assert sum(len(s) for s in sr.reference(f)) == sr.payload_bytes(h, w, c, tiles, halo)


def test_bursts_stay_in_pages_and_cover_the_segments():
    f = StripFrame(_map(3, 40, 3, 1), tiles=4, halo=3, base=4096 - 37)
    db = CFG.axi_dw // 8
    for a, b in sr.bursts(f, CFG):
        assert a % db == 0 and 1 <= b <= CFG.max_burst and a // 4096 == (a + b * db - 1) // 4096
    covered = {a + k for a, b in sr.bursts(f, CFG) for k in range(b * db)}
    assert all(x in covered for a, n in sr.segments(f) for x in range(a, a + n))
    # aligned map (C = 8 = one beat, base aligned): no byte read beyond the payload
    g = StripFrame(_map(3, 16, 8, 2), tiles=2, halo=1, base=0x100)
    assert sr.axi_bytes(g, CFG) == sr.payload_bytes(3, 16, 8, 2, 1)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="equal strips"):
        StripFrame(_map(2, 10, 1, 0), tiles=4, halo=0)
    with pytest.raises(ValueError, match="power of 2"):
        ReaderConfig(axi_dw=48)


# ---------------------------------------------------------------------------------------------------------------
# RTL (Verilator + cocotb)

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("strip_reader")
    sr.build(CFG, work)
    return work


def _check(res: sr.ReaderResult, frames: list[StripFrame]) -> None:
    assert not res.error, res.error
    assert len(res.passes) == len(PASSES)
    for p in res.passes:
        assert not p["timed_out"] and p["err"] == 0 and not p["busy"] and p["extra_beats"] == 0, p["name"]
        got = [[bytes.fromhex(s) for s in fs] for fs in p["packets"]]
        assert got == [sr.reference(f) for f in frames], p["name"]
        assert p["ddr_bytes"] == sum(sr.axi_bytes(f, CFG) for f in frames)
        assert [tuple(b) for b in p["bursts"]] == [b for f in frames for b in sr.bursts(f, CFG)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_strips_bit_exact_with_runtime_config_changes(built):
    """Six frames back to back, each with its own configuration: tiles 1 / 2 / 4, halo 0 / 1 / 3, C = 3 (row
    segments not beat aligned), C = 8 (aligned), unaligned bases, a map crossing a 4 KiB page."""
    frames = [StripFrame(_map(4, 16, 3, 10), tiles=1, halo=0, base=0x13),
              StripFrame(_map(5, 16, 3, 11), tiles=2, halo=1, base=0x1000 - 101),
              StripFrame(_map(3, 24, 3, 12), tiles=4, halo=3, base=0x2005),
              StripFrame(_map(3, 16, 8, 13), tiles=4, halo=1, base=0x3000),
              StripFrame(_map(2, 12, 5, 14), tiles=2, halo=3, base=0x3801),
              StripFrame(_map(4, 16, 3, 10), tiles=1, halo=0, base=0x13)]
    res = sr.simulate(CFG, frames, PASSES, built, seed=1, tag="frames")
    _check(res, frames)
    aligned = frames[3]
    assert sr.axi_bytes(aligned, CFG) == sr.payload_bytes(3, 16, 8, 4, 1)
    # free-running: each frame takes its lower bound (divider + max(AXI beats, stream beats)) plus a start-up
    # latency (start pulse, first request, RAM model latency, drain) measured at 7-11 cycles here
    done = res.passes[1]["frame_done_cycles"]
    spans = np.diff([0, *done])
    bounds = [sr.min_cycles(f, CFG) for f in frames]
    assert all(0 <= s - b <= 12 for s, b in zip(spans, bounds)), (spans, bounds)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_flipped_ddr_byte_mismatches_where_predicted(built):
    """Negative control: one DDR byte flipped (pixel (2, 7), channel 1 of a tiles 2 halo 3 map): the received
    strips differ from the reference in exactly the positions the reference places that pixel (both strips)."""
    f = StripFrame(_map(4, 12, 3, 20), tiles=2, halo=3, base=0x40)
    img = bytearray(sr.ddr_image([f]))
    off = f.base + (2 * 12 + 7) * 3 + 1
    img[off] ^= 0x5A
    bad = f.fmap.copy()
    bad[2, 7, 1] ^= 0x5A
    predicted = [np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8)).tolist()
                 for a, b in zip(sr.reference(f), sr.reference(StripFrame(bad, 2, 3, 0x40)))]
    assert [len(x) for x in predicted] == [1, 1]  # column 7 is in strip 0's halo and in strip 1
    res = sr.simulate(CFG, [f], [{"name": "free"}], built, seed=2, ddr=bytes(img), tag="corrupt")
    assert not res.error, res.error
    got = [bytes.fromhex(s) for s in res.passes[0]["packets"][0]]
    diff = [np.flatnonzero(np.frombuffer(g, np.uint8) != np.frombuffer(r, np.uint8)).tolist()
            for g, r in zip(got, sr.reference(f))]
    assert diff == predicted


CFG_ALIGNED = ReaderConfig(axi_dw=64, stream_w=64, max_burst=4, aligned=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_aligned_variant_bit_exact(tmp_path_factory):
    """ALIGNED = 1 (no realignment buffer: what the planner prices for maps whose channels fill whole beats): frames
    with C a multiple of the 8-byte beat and beat-aligned bases, tiles 1 / 2 / 4, halo 0 / 1 / 3, a page crossing;
    the strips, bytes and bursts equal the model's under stalls and free-running."""
    work = tmp_path_factory.mktemp("strip_reader_aligned")
    sr.build(CFG_ALIGNED, work)
    frames = [StripFrame(_map(4, 16, 8, 40), tiles=1, halo=0, base=0x10),
              StripFrame(_map(5, 16, 16, 41), tiles=2, halo=1, base=0x1000 - 0x200),
              StripFrame(_map(3, 24, 8, 42), tiles=4, halo=3, base=0x2008)]
    res = sr.simulate(CFG_ALIGNED, frames, PASSES, work, seed=5, tag="aligned")
    assert not res.error, res.error
    for p in res.passes:
        assert not p["timed_out"] and p["err"] == 0 and not p["busy"] and p["extra_beats"] == 0, p["name"]
        assert [[bytes.fromhex(s) for s in fs] for fs in p["packets"]] == [sr.reference(f) for f in frames]
        assert p["ddr_bytes"] == sum(sr.payload_bytes(*f.fmap.shape, f.tiles, f.halo) for f in frames)
        assert [tuple(b) for b in p["bursts"]] == [b for f in frames for b in sr.bursts(f, CFG_ALIGNED)]
