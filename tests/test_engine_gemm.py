"""The engine's GEMM steps (samfpga.hw.sim.engine_gemm) against FINN's python execution: a chain of MVAU + Requant
pairs whose shapes are not whole folds of the engine's unit, fused into token-batched nodes, then padded, packed
into one DDR image and run one after another by the run-time-shaped unit's schedule model (tolerance 0)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_token_batch_op import _chain, _run


def _unit():
    from samfpga.hw.sim import token_batch_mvu as tb

    # an engine unit: PE 8 x SIMD 8, batch 4, buffers for 32 -> 32, two products per DSP, requantiser inside
    return tb.TokenBatchConfig(mw=32, mh=32, simd=8, pe=8, batch=4, acc_bits=24, requant=True, dot="pack",
                               rt_shape=True)


def _fused(t: int = 9):
    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU

    # 20 -> 12 -> 44 -> 6: none of them whole folds of PE 8 x SIMD 8; 44 outputs / inputs (> 32) run with fewer
    # tokens per pass
    model, x = _chain([(20, 12, 4, 3), (12, 44, 4, 4), (44, 6, 4, 2)], t, seed=5)
    want = _run(model, x)
    fused = model.transform(UseTokenBatchMVU(batch=4))
    assert [n.op_type for n in fused.graph.node] == ["TokenBatchMVU_rtl"] * 3
    return fused, x, want


def test_engine_chain_equals_finn():
    from samfpga.hw.sim.engine_gemm import PAGE, compile_chain, run_chain

    fused, x, want = _fused()
    assert want.std() > 5  # not all clipped
    layers, image = compile_chain(fused, _unit())
    assert [(lay.shape.mw, lay.shape.mh, lay.shape.batch) for lay in layers] == [(24, 16, 4), (16, 48, 2),
                                                                                    (48, 8, 2)]
    assert all(lay.offset % PAGE == 0 for lay in layers) and len({lay.offset for lay in layers}) == 3
    got = run_chain(layers, image, x[0].astype(np.int64))
    np.testing.assert_array_equal(got, want[0])
    # negative control: a weight byte of the second layer flipped in DDR changes the result
    # (the byte after fold 0's requantisation parameter words: the weight of output 0, input 0)
    bad = bytearray(image)
    s = layers[1].shape
    bad[layers[1].offset + s.param_words * s.word_bits // 8] ^= 0x7F
    assert not np.array_equal(run_chain(layers, bytes(bad), x[0].astype(np.int64)), want[0])


def test_engine_layer_refuses_what_the_unit_cannot_hold():
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim import token_batch_mvu as tb
    from samfpga.hw.sim.engine_gemm import engine_layer

    fused, _, _ = _fused()
    op = getCustomOp(fused.graph.node[1])  # 12 -> 44
    small = tb.TokenBatchConfig(mw=16, mh=16, simd=8, pe=8, batch=1, acc_bits=24, requant=True, dot="pack",
                                rt_shape=True)
    with pytest.raises(ValueError, match="beyond the unit's buffers"):
        engine_layer(op, fused.graph, small)  # 48 outputs at batch 1 need 6 folds, the banks hold 2
    with pytest.raises(ValueError, match="sums"):
        engine_layer(op, fused.graph, tb.TokenBatchConfig(mw=32, mh=48, simd=8, pe=8, batch=4, acc_bits=12,
                                                          requant=True, dot="pack", rt_shape=True))
