"""The engine's attention operands (samfpga.hw.sim.attention_operands, docs/engine.md): a weight image is one
PagePermute of a row-major matrix (FINN's python execution of the PagePermute_rtl node against the unit's packer,
tolerance 0), and one window-head's QK^T (raw), V^T (transposed on the unit) and AV (requantised) run through the
unit's numpy model on those images equal the matrix products (tolerance 0)."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import attention_operands as ao
from samfpga.hw.sim import token_batch_mvu as tb


def _unit() -> tb.TokenBatchConfig:
    """A small engine unit: PE 8 x SIMD 8, batch 16, buffers for 32 -> 32, raw 20-bit sums (three bytes)."""
    return tb.TokenBatchConfig(mw=32, mh=32, simd=8, pe=8, batch=16, requant=True, dot="pack", axi_dw=128,
                               rt_shape=True, raw_out=True, raw_bits=20)


def test_weight_image_is_the_packer_and_refuses_bad_input():
    unit = _unit()
    rng = np.random.default_rng(0)
    rows = rng.integers(-128, 128, (24, 16))  # 24 keys x 16 dims: NF 3, SF 2
    raw = tb.layer_shape(unit, 16, 24, 4, raw=True)
    # pack_weights pads each iteration to whole bursts; the image is one pass (the writer's stride adds the gap)
    assert ao.weight_image(rows, raw) == tb.pack_weights(rows[None], raw)[:raw.pass_bytes]
    rq = tb.sample_requant(tb.layer_shape(unit, 16, 24, 8), 1, rng)
    req = tb.layer_shape(unit, 16, 24, 8)
    assert ao.weight_image(rows, req, rq) == tb.pack_weights(rows[None], req, rq=rq)[:req.pass_bytes]
    assert ao.weight_image_permute(24, 16, unit) == ((3, 8, 2, 8), (0, 2, 1, 3))
    with pytest.raises(ValueError, match="PE=8 must divide"):
        ao.weight_image_permute(20, 16, unit)
    with pytest.raises(ValueError, match="expected"):
        ao.weight_image(rows[:, :8], raw)
    with pytest.raises(ValueError, match="exactly when"):
        ao.weight_image(rows, req)
    with pytest.raises(ValueError, match="exceed 8 bits"):
        ao.weight_image(rows * 4, raw)


def test_weight_image_is_one_page_permute():
    """The permutation as the project's PagePermute_rtl node (SIMD-value words, the innermost axis in place): FINN's
    python execution of it on the rows gives the image's bytes."""
    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    from finn.core.onnx_exec import execute_onnx

    unit = _unit()
    rows = np.random.default_rng(1).integers(-128, 128, (24, 16))
    cfg = tb.layer_shape(unit, 16, 24, 4, raw=True)
    shape, perm = ao.weight_image_permute(24, 16, unit)
    spec = nodes.page_permute((1, 24, 16), perm, dt="INT8", simd=unit.simd, transpose_in_shape=shape,
                              out_shape=(1, 24, 16))
    model = nodes.build_hw_graph([spec])
    assert model.graph.node[0].op_type == "PagePermute_rtl"
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    y = execute_onnx(model, {name_in: rows.reshape(1, 24, 16).astype(np.float32)})[name_out]
    image = (y.astype(np.int64).ravel() & 0xFF).astype(np.uint8).tobytes()
    assert image == ao.weight_image(rows, cfg)[:len(image)]
    assert image != (rows.ravel() & 0xFF).astype(np.uint8).tobytes()  # the permutation is not the identity


def test_window_head_attention_on_the_unit_model():
    """One window-head (t = 16 queries and keys, d = 12 dims): QK^T raw with K's image (sums exact, three bytes
    each), V transposed by the unit (one-hot inputs, identity requantisation), AV requantised with V^T's image:
    each equal to the product it stands for; a wrong permutation (the rows' own order) is not."""
    unit = _unit()
    rng = np.random.default_rng(2)
    t, d = 16, 12
    q, k, v = (rng.integers(-128, 128, (t, d)) for _ in range(3))
    dp, tp = tb.whole_folds(d, unit.simd), tb.whole_folds(t, unit.pe)

    qk = tb.layer_shape(unit, dp, tp, raw=True)  # as many queries per pass as the banks hold raw (10 of 16)
    assert qk.batch == 10
    s = tb.unit_model(ao.padded(q, t, dp)[None], ao.weight_image(ao.padded(k, tp, dp), qk), qk)[0]
    np.testing.assert_array_equal(s[:, :t], q @ k.T)
    wrong = (ao.padded(k, tp, dp).ravel() & 0xFF).astype(np.uint8).tobytes()
    assert not np.array_equal(tb.unit_model(ao.padded(q, t, dp)[None], wrong + bytes(qk.pass_bytes - len(wrong)),
                                            qk)[0], s)

    cfg, x, ident = ao.transpose_frame(v, unit)
    assert (cfg.mw, cfg.mh, x.shape) == (dp, tp, (1, d, dp))
    vt = tb.unit_model(x, tb.pack_weights(ao.padded(v, tp, dp)[None], cfg, rq=ident), cfg)[0]
    np.testing.assert_array_equal(vt[:, :t], v.T)
    assert tb.schedule_cycles(cfg, 1, d)["compute"] == d * (tp // unit.pe) * (dp // unit.simd)

    a = rng.integers(-128, 128, (t, t))  # stands for the softmax's 8-bit rows
    av = tb.layer_shape(unit, tp, dp, t)
    rq = tb.sample_requant(av, 1, rng)
    o = tb.unit_model(ao.padded(a, t, tp)[None], ao.weight_image(ao.padded(vt[:, :t], dp, tp), av, rq), av)
    np.testing.assert_array_equal(o, tb.requantize((a @ v)[None].astype(np.int64) @ np.eye(d, dp, dtype=np.int64),
                                                   rq, av))


def _k_region_unit(max_burst: int = 2) -> tb.TokenBatchConfig:
    """PE 6 x SIMD 8 on a 64-bit port (bursts of 16 bytes): 16 keys pad to 18, so each QK^T pass (3 words of 48
    bytes) reads 16 bytes into the next 128-byte K block."""
    return tb.TokenBatchConfig(mw=16, mh=24, simd=8, pe=6, batch=16, requant=True, dot="pack", rt_shape=True,
                               acc_bits=26, raw_out=True, raw_bits=20, max_burst=max_burst)


def _qkv(rng, windows=3, t=16, heads=2, d=8):
    return rng.integers(-128, 128, size=(windows, t, heads, 3, d))


def test_qk_over_the_k_region_model():
    """The writer's Q / K / V regions ((window, head, token, dim) per region) and QK^T run over the K region at a
    stride of one block (t x d bytes) although each pass is longer: the unit's reads (token_batch_mvu.unpack_weights,
    the reader the RTL is verified against) give each window-head its own t keys first, so the first t sums of every
    row are q k^T (tolerance 0); the sums past them are another head's keys (not zero) and raw_rows drops them."""
    from samfpga.hw.sim.raw_rows import RawRowsConfig

    unit = _k_region_unit()
    rng = np.random.default_rng(5)
    qkv = _qkv(rng)
    cfg, stride, slack = ao.qk_frame(16, 8, unit)
    assert (cfg.mh, cfg.nf, cfg.sf, stride) == (18, 3, 1, 128) and cfg.pass_bytes > stride and slack == cfg.pass_bytes - 128
    q, k, v = ao.qkv_regions(qkv, slack)
    assert len(k) == 3 * 2 * 16 * 8 + slack and k[:128] == (qkv[0, :, 0, 1].ravel() & 0xFF).astype(np.uint8).tobytes()
    with pytest.raises(ValueError, match="stride"):
        tb.pack_weights(np.zeros((6, 18, 8)), cfg, stride)  # a writer of whole passes could not lay this out
    n = 3 * 2
    w = tb.unpack_weights(k, n, cfg, stride)
    qs = np.transpose(qkv[:, :, :, 0], (0, 2, 1, 3)).reshape(n, 16, 8)
    ks = np.transpose(qkv[:, :, :, 1], (0, 2, 1, 3)).reshape(n, 16, 8)
    sums = tb.reference(qs, w, cfg)
    np.testing.assert_array_equal(sums[..., :16], qs @ np.transpose(ks, (0, 2, 1)))
    np.testing.assert_array_equal(sums[:-1, :, 16:], qs[:-1] @ np.transpose(ks[1:, :2], (0, 2, 1)))
    assert np.abs(sums[:-1, :, 16:]).sum() > 0
    feed = RawRowsConfig.for_unit(cfg, n=16, lanes=4, out_bits=20)
    assert feed.expected(sums.reshape(-1, 18)) == feed.expected(
        np.pad(qs @ np.transpose(ks, (0, 2, 1)), ((0, 0), (0, 0), (0, 2))).reshape(-1, 18))
    assert v[128:256] == (qkv[0, :, 1, 2].ravel() & 0xFF).astype(np.uint8).tobytes()  # window 0, head 1
    assert q[:128] == (qkv[0, :, 0, 0].ravel() & 0xFF).astype(np.uint8).tobytes()
    with pytest.raises(ValueError, match="SIMD"):
        ao.qk_frame(16, 16, unit)


@pytest.mark.timeout(300)
def test_qk_over_the_k_region_rtl(tmp_path):
    """token_batch_mvu.sv (Verilator + cocotb) running QK^T over the writer's K region with the block stride: every
    raw output word equals the model's (tolerance 0) under stalls, its DDR reads overlapping the next block."""
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, build, simulate

    unit = _k_region_unit()
    rng = np.random.default_rng(6)
    qkv = _qkv(rng)
    cfg, stride, slack = ao.qk_frame(16, 8, unit)
    _, k, _ = ao.qkv_regions(qkv, slack)
    n = 3 * 2
    qs = np.transpose(qkv[:, :, :, 0], (0, 2, 1, 3)).reshape(n, 16, 8)
    frame = Frame(x=qs, w=tb.unpack_weights(k, n, cfg, stride), base=0, stride=stride, shape=cfg)
    build(unit, tmp_path)
    res = simulate(unit, [frame], [Pass("free"), Pass("stalls", pause=0.3, ar_pause=0.3, r_pause=0.3)], tmp_path,
                   ddr=k)
    assert res.passed, (res.error, res.passes)
    assert all(p["ddr_bytes"] == n * -(-16 // cfg.batch) * cfg.pass_bytes for p in res.passes)


def test_v_transpose_over_the_v_region_model():
    """V's region holds each window-head's transpose pass without its padded rows (the identity's requantisation
    words in place): at that stride the unit's reads give each iteration its own requantisation words and V rows
    first, so the transpose's first t outputs of every row are V^T (tolerance 0), the rest the next block's bytes."""
    unit = _k_region_unit()
    rng = np.random.default_rng(7)
    vs = rng.integers(-128, 128, size=(6, 16, 8))
    cfg, stride, slack = ao.vt_frame(16, 8, unit)
    assert cfg.requantises and cfg.mh == 18 and stride == cfg.pass_bytes - 2 * 8 and stride % cfg.burst_bytes == 0
    region = ao.v_region(vs, cfg, stride, slack)
    w = tb.unpack_weights(region, 6, cfg, stride)
    rq = tb.unpack_requant(region, 6, cfg, stride)
    assert (rq.scale == 1).all() and (rq.bias == 0).all() and (rq.shift == 0).all()
    np.testing.assert_array_equal(w[:, :16], vs)
    _, x, _ = ao.transpose_frame(vs[0], unit)
    y = tb.reference(np.repeat(x, 6, axis=0), w, cfg, rq)  # (6, d, 18)
    np.testing.assert_array_equal(y[..., :16], np.transpose(vs, (0, 2, 1)))
    with pytest.raises(ValueError, match="bursts"):  # 272-byte blocks on 128-byte bursts
        ao.vt_frame(16, 8, _k_region_unit(max_burst=16))


@pytest.mark.timeout(300)
def test_v_transpose_over_the_v_region_rtl(tmp_path):
    """token_batch_mvu.sv (Verilator + cocotb) transposing V over that region at its stride: every output word equals
    the model's (tolerance 0) under stalls, its first t values per row V^T."""
    from samfpga.hw.sim.token_batch_runner import Frame, Pass, build, simulate

    unit = _k_region_unit()
    rng = np.random.default_rng(8)
    vs = rng.integers(-128, 128, size=(6, 16, 8))
    cfg, stride, slack = ao.vt_frame(16, 8, unit)
    region = ao.v_region(vs, cfg, stride, slack)
    _, x, _ = ao.transpose_frame(vs[0], unit)
    frame = Frame(x=np.repeat(x, 6, axis=0), w=tb.unpack_weights(region, 6, cfg, stride), base=0, stride=stride,
                  rq=tb.unpack_requant(region, 6, cfg, stride), shape=cfg)
    build(unit, tmp_path)
    res = simulate(unit, [frame], [Pass("free"), Pass("stalls", pause=0.3, ar_pause=0.3, r_pause=0.3)], tmp_path,
                   ddr=region)
    assert res.passed, (res.error, res.passes)
