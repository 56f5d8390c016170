"""Strip writer (hw/samfpga/hw/rtl/strip_writer.sv): the numpy reference against the raster map and hand-worked
strobes, and the RTL under Verilator + cocotb against the reference (tolerance 0, every byte of the DDR image, the
bytes around each segment included) with cocotbext-axi's AxiRamWrite as the DDR and random stalls on the input
stream, AW, W and B. One Verilator build shared by the RTL tests, which are marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import strip_reader as sr
from samfpga.hw.sim import strip_writer as sw
from samfpga.hw.sim.strip_reader import StripFrame
from samfpga.hw.sim.strip_writer import WriterConfig

CFG = WriterConfig(axi_dw=64, stream_w=32, max_burst=4)
PASSES = [{"name": "stalls", "in_pause": 0.3, "aw_pause": 0.4, "w_pause": 0.4, "b_pause": 0.5}, {"name": "free"}]
DDR = 0x4000


def _map(h: int, w: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


def _written(frames: list[StripFrame]) -> np.ndarray:
    """Mask (DDR bytes,) of the addresses some frame's segment covers."""
    m = np.zeros(DDR, bool)
    for f in frames:
        for a, n in sw.segments(f):
            m[a:a + n] = True
    return m


def _background(frames: list[StripFrame], seed: int) -> bytes:
    """A random pattern, except that every byte a frame writes differs from the value it ends with (so a missed or
    misplaced write cannot go unseen by chance)."""
    bg = np.random.default_rng(seed).integers(0, 256, DDR, dtype=np.uint8)
    final = np.frombuffer(sw.reference(bg.tobytes(), frames), np.uint8)
    m = _written(frames)
    bg[m] = final[m] ^ 0xFF
    return bg.tobytes()


def test_reference_is_the_raster_map_at_base():
    """Strips placed by the reference give the map in raster HWC order at base; nothing else changes."""
    f = StripFrame(_map(3, 12, 5, 0), tiles=4, halo=0, base=0x123)
    bg = bytes(range(256)) * 4
    img = sw.reference(bg, [f])
    data = f.fmap.tobytes()
    assert img[0x123:0x123 + len(data)] == data
    assert img[:0x123] == bg[:0x123] and img[0x123 + len(data):] == bg[0x123 + len(data):]


def test_write_bursts_by_hand():
    """W = 4, tiles 2, C = 3, base 5, 8-byte beats: strip 0 row 0 is bytes [5, 11): beat 0 lanes 5-7, beat 1 lanes
    0-2; strip 1 row 0 is [11, 17): beat 1 lanes 3-7, beat 2 lane 0."""
    f = StripFrame(np.zeros((2, 4, 3), np.uint8), tiles=2, halo=0, base=5)
    bl = sw.write_bursts(f, CFG)
    assert bl[0] == (0, 2, 0b11100000, 0b00000111)
    assert bl[2] == (8, 2, 0b11111000, 0b00000001)
    assert sw.strobed_bytes(bl, CFG) == 2 * 4 * 3
    # a 24-byte segment at 0x1000 - 4 crosses the page: bursts (0xFF8, 1) lanes 4-7, (0x1000, 3) up to lane 3
    g = StripFrame(np.zeros((1, 8, 3), np.uint8), tiles=1, halo=0, base=0x1000 - 4)
    assert sw.write_bursts(g, CFG) == [(0xFF8, 1, 0xF0, 0xF0), (0x1000, 3, 0xFF, 0x0F)]


def test_bursts_in_pages_and_every_byte_strobed_once():
    f = StripFrame(_map(3, 40, 3, 1), tiles=4, halo=0, base=4096 - 37)
    db = CFG.axi_dw // 8
    for a, b, _, _ in sw.write_bursts(f, CFG):
        assert a % db == 0 and 1 <= b <= CFG.max_burst and a // 4096 == (a + b * db - 1) // 4096
    assert sw.strobed_bytes(sw.write_bursts(f, CFG), CFG) == f.fmap.size
    assert [(a, b) for a, b, _, _ in sw.write_bursts(f, CFG)] == sr.bursts(f, CFG)


def test_halo_refused():
    with pytest.raises(ValueError, match="halo"):
        sw.segments(StripFrame(_map(2, 8, 1, 0), tiles=2, halo=1))


# ---------------------------------------------------------------------------------------------------------------
# RTL (Verilator + cocotb)

FRAMES = [StripFrame(_map(4, 16, 3, 10), tiles=1, halo=0, base=0x13),
          StripFrame(_map(5, 16, 3, 11), tiles=2, halo=0, base=0x1000 - 101),
          StripFrame(_map(3, 24, 5, 12), tiles=4, halo=0, base=0x2005),
          StripFrame(_map(3, 16, 8, 13), tiles=4, halo=0, base=0x3000),
          StripFrame(_map(2, 12, 5, 14), tiles=2, halo=0, base=0x3801),
          StripFrame(_map(2, 8, 3, 15), tiles=2, halo=0, base=0x40)]  # overwrites part of frame 0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("strip_writer")
    sw.build(CFG, work)
    return work


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_ddr_image_bit_exact_with_runtime_config_changes(built):
    """Six frames back to back, each with its own configuration: tiles 1 / 2 / 4, C = 3 / 5 (segments not beat
    aligned), C = 8 (aligned), unaligned bases, a map crossing a 4 KiB page, the last frame overwriting part of the
    first. In a pass with random stalls and a free-running pass: the DDR image equals the reference byte for byte
    and differs from the background exactly at the segment bytes; bursts equal the model's one for one."""
    bg = _background(FRAMES, 3)
    res = sw.simulate(CFG, FRAMES, PASSES, bg, built, seed=1, tag="frames")
    assert not res.error, res.error
    assert len(res.passes) == len(PASSES)
    ref = sw.reference(bg, FRAMES)
    model = [b for f in FRAMES for b in sw.write_bursts(f, CFG)]
    for p, img in zip(res.passes, res.images):
        assert not p["timed_out"] and p["err"] == 0 and not p["busy"], p["name"]
        assert len(p["frame_done_cycles"]) == len(FRAMES), p["name"]
        assert p["b_pending_at_done"] == [0] * len(FRAMES), p["name"]  # done only after the frame's last B
        assert img == ref, p["name"]
        changed = np.frombuffer(img, np.uint8) != np.frombuffer(bg, np.uint8)
        assert np.array_equal(changed, _written(FRAMES)), p["name"]
        assert [tuple(b) for b in p["aw_bursts"]] == [(a, b) for a, b, _, _ in model], p["name"]
        assert [tuple(b) for b in p["w_bursts"]] == [(b, fs, ls) for _, b, fs, ls in model], p["name"]
    # free-running: each frame against the reader's lower bound (divider + max(AXI beats, stream beats))
    spans = np.diff([0, *res.passes[1]["frame_done_cycles"]]).tolist()
    bounds = [sr.min_cycles(f, CFG) for f in FRAMES]
    print("stalls", np.diff([0, *res.passes[0]["frame_done_cycles"]]).tolist(), "free", spans, "bounds", bounds,
          "wall", res.wall_s)
    assert all(0 <= s - b <= 16 for s, b in zip(spans, bounds)), (spans, bounds)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_corrupted_input_byte_lands_where_predicted(built):
    """Negative control: one input byte flipped (strip 1, row 2, pixel 1, channel 2 of a 4 x 12 x 3 map, tiles 2,
    base 0x41): the model places it at base + (2*12 + 6 + 1)*3 + 2 and the RTL image differs from the clean reference
    at exactly that address."""
    f = StripFrame(_map(4, 12, 3, 20), tiles=2, halo=0, base=0x41)
    strips = sw.input_strips(f)
    bad = bytearray(strips[1])
    bad[(2 * 6 + 1) * 3 + 2] ^= 0x5A
    bg = _background([f], 4)
    clean = np.frombuffer(sw.reference(bg, [f]), np.uint8)
    predicted = np.flatnonzero(np.frombuffer(sw.reference(bg, [f], [[strips[0], bytes(bad)]]), np.uint8) != clean)
    assert predicted.tolist() == [0x41 + (2 * 12 + 6 + 1) * 3 + 2]
    res = sw.simulate(CFG, [f], [{"name": "free"}], bg, built, seed=2, strips=[[strips[0], bytes(bad)]],
                      tag="corrupt")
    assert not res.error, res.error
    got = np.flatnonzero(np.frombuffer(res.images[0], np.uint8) != clean)
    assert got.tolist() == predicted.tolist()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_flags_b_error_and_bad_config(built):
    """The RAM answers SLVERR for the beat holding byte 0x13A (it drops that beat: bytes 0x138-0x13F, inside strip 0
    row 1 of the first frame); the second frame's configuration is bad (W = 16 in 3 strips); the third is good.
    err at each frame's done: 1 (B error), 3 (bad configuration, B error sticky), 1 (configuration error cleared
    by the next start); every frame finishes with no B outstanding; the image is the reference with the dropped
    beat left at the background and nothing written for the refused frame."""
    a = StripFrame(_map(3, 16, 3, 30), tiles=2, halo=0, base=0x105)
    c = StripFrame(_map(2, 8, 5, 31), tiles=4, halo=0, base=0x301)
    bad = {"base": 0x200, "h": 2, "w": 16, "c": 3, "tiles": 3}
    bg = _background([a, c], 5)
    res = sw.simulate(CFG, [a, bad, c], [{"name": "fault", "fault": [0x13A, 0x13B]}], bg, built, seed=3, tag="err")
    assert not res.error, res.error
    p = res.passes[0]
    assert not p["timed_out"] and not p["busy"]
    assert p["err_at_done"] == [1, 3, 1] and p["b_pending_at_done"] == [0, 0, 0] and p["b_errors"] == 1
    want = bytearray(sw.reference(bg, [a, c]))
    want[0x138:0x140] = bg[0x138:0x140]
    assert res.images[0] == bytes(want)


CFG_ALIGNED = WriterConfig(axi_dw=64, stream_w=64, max_burst=4, aligned=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rtl_aligned_variant_bit_exact_and_refuses_unaligned(tmp_path_factory):
    """ALIGNED = 1 (no realignment buffer): frames with C a multiple of the 8-byte beat and beat-aligned bases, tiles
    1 / 2 / 4, a page crossing: the DDR image equals the reference and the bursts the model's, every strobe set, under
    stalls and free-running. A frame with an unaligned base between them is refused (err 2 at its done, nothing
    written) and the next good frame clears it."""
    work = tmp_path_factory.mktemp("strip_writer_aligned")
    sw.build(CFG_ALIGNED, work)
    frames = [StripFrame(_map(4, 16, 8, 50), tiles=1, halo=0, base=0x10),
              StripFrame(_map(5, 16, 16, 51), tiles=2, halo=0, base=0x1000 - 0x200),
              StripFrame(_map(3, 24, 8, 52), tiles=4, halo=0, base=0x2008)]
    bad = {"base": 0x3004, "h": 2, "w": 8, "c": 8, "tiles": 1}
    bg = _background(frames, 6)
    res = sw.simulate(CFG_ALIGNED, [frames[0], frames[1], bad, frames[2]], PASSES, bg, work, seed=6, tag="aligned")
    assert not res.error, res.error
    ref = sw.reference(bg, frames)
    model = [b for f in frames for b in sw.write_bursts(f, CFG_ALIGNED)]
    assert all(fs == 0xFF and ls == 0xFF for _, _, fs, ls in model)
    for p, img in zip(res.passes, res.images):
        assert not p["timed_out"] and not p["busy"], p["name"]
        assert p["err_at_done"] == [0, 0, 2, 0], p["name"]
        assert img == ref, p["name"]
        assert [tuple(b) for b in p["aw_bursts"]] == [(a, b) for a, b, _, _ in model], p["name"]
