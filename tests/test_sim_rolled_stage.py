"""Rolled stage (hw/samfpga/hw/rtl/rolled_stage.sv): strip reader -> token-batched linear body (weights and
requantisation per block from DDR) -> strip writer, N blocks through two DDR loop buffers, the host's loop in the
bench. The numpy model against the body's own, then the RTL under Verilator + cocotb against the model, tolerance 0:
the whole DDR image after every frame, byte for byte, with random stalls on every AXI channel and free-running; the
bytes each port moved against the units' models; a corrupted weight of one block changes exactly the blocks after
it. One Verilator build (about a minute here) shared by the RTL tests, which are marked slow."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import rolled_stage as rs
from samfpga.hw.sim import token_batch_mvu as tb

CFG = rs.StageConfig(c=8, simd=4, pe=2, batch=4)
PASSES = [rs.Pass("stalls", ar_pause=0.3, r_pause=0.3, aw_pause=0.3, w_pause=0.3, b_pause=0.3), rs.Pass("free")]


def _frame(h: int, w: int, n: int, tiles: int, seed: int, weights_base: int, buffers: tuple[int, int]) -> rs.StageFrame:
    rng = np.random.default_rng(seed)
    rq = tb.sample_requant(CFG.body, n, rng)
    rq = tb.RequantParams(rq.scale, rq.bias, rq.shift + 1)  # C = 8: smaller sums than the sampler assumes
    return rs.StageFrame(x0=rng.integers(-128, 128, (h, w, CFG.c)).astype(np.int8),
                         w=rng.integers(-128, 128, (n, CFG.c, CFG.c)).astype(np.int64),
                         rq=rq, tiles=tiles, weights_base=weights_base, buffers=buffers)


FRAMES = [_frame(4, 6, 3, 2, 0, 0x1000, (0x4003, 0x5000)),   # 3 blocks: x3 ends in buffer 1, unaligned buffer 0
          _frame(3, 8, 2, 1, 1, 0x2000, (0x6000, 0x6100))]   # 2 blocks, whole rows: x2 back in buffer 0


def _background(size: int) -> bytes:
    return np.random.default_rng(99).integers(0, 256, size, dtype=np.uint8).tobytes()


def test_model_chains_the_bodys_own_schedule():
    """Each block of the model is the token-batch unit's schedule (``unit_model``, reading block i's weights and
    parameters from the packed image at i x stride) on the previous block's map; the maps change from block to block
    and the requantisation clips some values but not most; the reference DDR holds x3 in buffer 1, x2 in buffer 0."""
    f = FRAMES[0]
    maps = rs.block_maps(f, CFG)
    img = rs.weights_image(f, CFG)
    h, w, c = f.x0.shape
    for i in range(f.blocks):
        x = maps[i].astype(np.int64).reshape(1, h * w, c)
        y = tb.unit_model(x, img, CFG.body, base=i * f.stride_for(CFG))
        assert np.array_equal(y.reshape(h, w, c), maps[i + 1]), i
        assert not np.array_equal(maps[i], maps[i + 1])
        clipped = np.mean((maps[i + 1] == 127) | (maps[i + 1] == -128))
        assert 0.0 < clipped < 0.5, clipped
    bg = _background(0x8000)
    ref = rs.reference(bg, FRAMES, CFG)
    n0 = f.x0.size
    assert ref[0x5000:0x5000 + n0] == maps[3].tobytes() and ref[0x4003:0x4003 + n0] == maps[2].tobytes()
    assert ref[:0x1000] == bg[:0x1000]  # nothing below the first frame's weights is touched


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("rolled_stage")
    rs.build(CFG, work)
    return work


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rtl_ddr_image_bit_exact(built):
    bg = _background(0x8000)
    res = rs.simulate(CFG, FRAMES, PASSES, bg, built, seed=3, tag="frames")
    assert not res.error, res.error
    ref = rs.reference(bg, FRAMES, CFG)
    traffic = [rs.loop_traffic(f, CFG) for f in FRAMES]
    for p, img in zip(res.passes, res.images, strict=True):
        assert not p["timed_out"] and not p["busy"] and p["err"] == {"reader": 0, "body": 0, "writer": 0}, p
        assert len(p["block_cycles"]) == sum(f.blocks for f in FRAMES), p["name"]
        assert img == ref, p["name"]
        assert p["reader_bytes"] == sum(t["reader"] for t in traffic), p["name"]
        assert p["weight_bytes"] == sum(t["weights"] for t in traffic), p["name"]
        assert p["writer_bytes"] == sum(t["writer"] for t in traffic), p["name"]
    print("block cycles", {p["name"]: p["block_cycles"] for p in res.passes}, "wall", res.wall_s)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rtl_corrupted_weight_changes_only_the_later_blocks(built):
    """Negative control: one weight of block 1 of the second frame (2 blocks) flipped in the DDR the RTL reads. The
    image equals the model's reference for the flipped weights, not the clean one: buffer 1 (x1, block 0's output) is
    unchanged, buffer 0 (x2) differs; the first frame is untouched."""
    bg = _background(0x8000)
    f = FRAMES[1]
    bad_w = f.w.copy()
    bad_w[1, 3, 5] = -bad_w[1, 3, 5] - 1  # a different int8 value (never equal to itself)
    bad = rs.StageFrame(f.x0, bad_w, f.rq, f.tiles, f.weights_base, f.buffers)
    res = rs.simulate(CFG, FRAMES, [rs.Pass("free")], bg, built, seed=4, tag="corrupt",
                      ddr=rs.initial_image(bg, [FRAMES[0], bad], CFG))
    assert not res.error, res.error
    img, clean = res.images[0], rs.reference(bg, FRAMES, CFG)
    assert img == rs.reference(bg, [FRAMES[0], bad], CFG) and img != clean
    n = f.x0.size
    b0, b1 = f.buffers
    assert img[b1:b1 + n] == clean[b1:b1 + n] and img[b0:b0 + n] != clean[b0:b0 + n]
    lo = FRAMES[0].weights_base
    assert img[lo:0x2000] == clean[lo:0x2000] and img[0x4003:0x6000] == clean[0x4003:0x6000]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rtl_ddr_image_bit_exact_with_packed_dot_products(tmp_path):
    """The same frames with the body's dot products on dot_pack.sv (two per DSP slice): the same DDR image, byte for
    byte, under stalls and free-running."""
    import dataclasses

    cfg = dataclasses.replace(CFG, dot="pack")
    rs.build(cfg, tmp_path)
    bg = _background(0x8000)
    res = rs.simulate(cfg, FRAMES, PASSES, bg, tmp_path, seed=5, tag="packed")
    assert not res.error, res.error
    ref = rs.reference(bg, FRAMES, CFG)
    for p, img in zip(res.passes, res.images, strict=True):
        assert not p["timed_out"] and p["err"] == {"reader": 0, "body": 0, "writer": 0}, p
        assert img == ref, p["name"]
    print("block cycles", {p["name"]: p["block_cycles"] for p in res.passes})
