"""raw_rows.sv: the GEMM unit's raw QK^T sums (three bytes each, folds of PE) as rows of keys for the softmax
(lanes per beat, padded keys dropped), in Verilator + cocotb against its model (tolerance 0), fed with the unit's
own raw output beats (token_batch_mvu.pack_outputs), under random stalls. About 10-20 s per test (Verilator)."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.raw_rows import RawRowsConfig, simulate


def _small_unit() -> tb.TokenBatchConfig:
    unit = tb.TokenBatchConfig(mw=16, mh=12, simd=4, pe=4, batch=4, requant=True, dot="pack", rt_shape=True,
                               acc_bits=26, raw_out=True, raw_bits=20)
    return tb.layer_shape(unit, 4, 12, raw=True)  # a QK^T-like raw frame: 3 folds of 4 sums, 3 beats each


def test_raw_rows_model_and_refusals() -> None:
    s = _small_unit()
    cfg = RawRowsConfig.for_unit(s, n=10, lanes=2, out_bits=20)
    assert (cfg.pe, cfg.k, cfg.nf) == (4, 3, 3) and cfg.cycles_per_row() == 9
    sums = np.arange(24).reshape(2, 12) - 7
    beats = cfg.expected(sums)
    assert len(beats) == 2 * 5 and beats[0] == ((-7) & 0xFFFFF) | ((-6) & 0xFFFFF) << 20
    assert beats[5] == (5 & 0xFFFFF) | (6 & 0xFFFFF) << 20  # the second row starts at its own first key
    with pytest.raises(ValueError, match="exceed"):
        RawRowsConfig(4, 3, 3, 13, 1, 20)
    with pytest.raises(ValueError, match="multiple of lanes"):
        RawRowsConfig(4, 3, 3, 10, 4, 20)
    with pytest.raises(ValueError, match="not a raw frame"):
        RawRowsConfig.for_unit(tb.layer_shape(tb.TokenBatchConfig(mw=16, mh=12, simd=4, pe=4, batch=4, requant=True,
                                                                   dot="pack", rt_shape=True, acc_bits=26,
                                                                   raw_out=True, raw_bits=20), 4, 12), 10, 2, 20)


@pytest.mark.timeout(300)
def test_raw_rows_takes_the_units_raw_frame(tmp_path) -> None:
    """The unit's model computes a raw frame (2 iterations x 5 queries of 12 sums); its output beats through
    raw_rows (10 keys kept per row, 2 a beat) equal the model's rows, under stalls and free-running; rows that kept
    the padded keys are not what comes out."""
    s = _small_unit()
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(2, 5, 4))
    w = rng.integers(-128, 128, size=(2, 12, 4))
    y = tb.reference(x, w, s)  # (2, 5, 12) sums
    cfg = RawRowsConfig.for_unit(s, n=10, lanes=2, out_bits=20)
    passes = simulate(cfg, tb.pack_outputs(y, s), cfg.expected(y.reshape(-1, 12)), tmp_path / "a")
    assert [p["mismatches"] for p in passes] == [0, 0] and all(p["words_compared"] == 50 for p in passes)
    # free-running: a row per max(NF*K, N/L) = 9 cycles once the pipeline is full
    assert passes[0]["cycles"] <= 10 * 9 + 20
    # negative control: expected rows that keep the last 10 sums (the padded ones) instead of the first 10
    wrong = cfg.expected(np.roll(y.reshape(-1, 12), -2, axis=1))
    bad = simulate(cfg, tb.pack_outputs(y, s), wrong, tmp_path / "b", pauses=(0.0,))
    assert 0 < bad[0]["mismatches"] <= 50


@pytest.mark.timeout(300)
def test_raw_rows_at_the_engines_size(tmp_path) -> None:
    """The KV260 1024² engine's QK^T (engine.layer_config on engine.gemm_unit: PE 40, 2 folds, 4 beats per fold: the
    unit's raw sums are as wide as the neck's 28-bit ones) into its softmax's 16 lanes of 21-bit logits, 64 keys of
    the 80 sums kept: 12 rows bit-exact."""
    from samfpga.hw.plan import engine
    from samfpga.hw.plan.pricing import acc_bits

    cfg_e = engine.EngineConfig(board="kv260", image_size=1024, pe=40, simd=32, batch=256, sm_lanes=16)
    units = engine.encoder_units(cfg_e)
    gemm = engine.gemm_unit(cfg_e, units)
    unit, layer = next((u, x) for u in units for x in u.blocks[0] if x.name.endswith("matmul_qk"))
    s = engine.layer_config(cfg_e, unit, layer, gemm)
    cfg = RawRowsConfig.for_unit(s, n=unit.window * unit.window, lanes=cfg_e.sm_lanes,
                                 out_bits=acc_bits(layer, 8))
    assert (cfg.pe, cfg.k, cfg.nf, cfg.n, cfg.lanes, cfg.out_bits) == (40, 4, 2, 64, 16, 21)
    rng = np.random.default_rng(4)
    y = rng.integers(-(1 << 20), 1 << 20, size=(1, 12, 80))
    passes = simulate(cfg, tb.pack_outputs(y, s), cfg.expected(y.reshape(-1, 80)), tmp_path / "e")
    assert [p["mismatches"] for p in passes] == [0, 0] and all(p["words_compared"] == 12 * 4 for p in passes)
