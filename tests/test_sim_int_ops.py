"""RTL of the integer LayerNorm / softmax against their kernels: the bit-exact benches themselves are in the
catalogue (samfpga.hw.sim.benches: int_layernorm*, int_softmax*; run by tests/test_sim_benches.py). Here the
negative controls: the comparison notices a wrong word, and a hardware table that differs from the one the
python model uses, and per-iteration parameter sets of a rolled body's layers (LayerNorm, softmax, the
depthwise VVAU, FINN+'s requantiser, matrix unit and thresholding) that the python model does not follow.
About 30-100 s per test on 2 cores (Verilator compile)."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.sim import nodes
from samfpga.hw.sim.benches import get_bench, run_one
from samfpga.hw.sim.runner import run_bench


@pytest.mark.timeout(300)
def test_int_softmax_bench_catches_a_wrong_word(tmp_path) -> None:
    res = run_one(get_bench("int_softmax"), tmp_path, seed=2, pause=0.2, tamper=3)
    assert not res.passed
    assert res.mismatches == 6  # 3 tampered words, in both passes


@pytest.mark.timeout(300)
def test_int_softmax_pipelined_keeps_up_and_meets_its_cycle_model(tmp_path) -> None:
    """The pipelined architecture takes N/PE cycles per row (compact window bias: no priming) plus its latency,
    the serial one 3 N/PE + quotient bits: both measured by Verilator without backpressure against the op's own
    count (IntSoftmax.row_cycles / latency_cycles, what FINN's folding and the engine plan use)."""
    from qonnx.custom_op.registry import getCustomOp

    cycles = {}
    for pipelined in (0, 1):
        spec = nodes.int_softmax(n=16, pe=4, heads=3, windows=2, bias="window", pipelined=pipelined)
        model = nodes.build_hw_graph([spec])
        op = getCustomOp(model.graph.node[0])
        rows = int(np.prod(op.get_nodeattr("numInputVectors")))
        x = nodes._rand("INT16", spec.inputs["sm_in"][0], np.random.default_rng(6))
        res = run_bench(f"sm{pipelined}", model, {"sm_in": x}, tmp_path / f"b{pipelined}", pause=0.0)
        assert res.passed, res.first_mismatches
        expected = rows * op.row_cycles(model) + op.latency_cycles()
        assert expected - 2 <= res.cycles_simulated <= expected + 2, (pipelined, res.cycles_simulated, expected)
        cycles[pipelined] = res.cycles_simulated
    assert op.row_cycles(model) == 16 // 4  # one row per N/PE cycles: the input's own rate
    assert cycles[0] > 10 * cycles[1]


@pytest.mark.timeout(300)
def test_int_softmax_pipelined_divides_at_the_extreme_sums(tmp_path) -> None:
    """The pipelined divider finds only the quotient bits that can be non-zero (S >= 2^E): rows whose sum is
    exactly 2^E (one logit far above the rest) and as large as it gets (all logits equal: N 2^E), bit-exact
    against the kernel, and their outputs are what the softmax says (255 and 256/N)."""
    spec = nodes.int_softmax(n=16, pe=4, heads=1, windows=1, bias=False, pipelined=1, div_step_bits=4)
    model = nodes.build_hw_graph([spec])
    shape = spec.inputs["sm_in"][0]  # (1, 1, 16, 16)
    x = np.zeros(shape, dtype=np.float32)
    x[..., 0::2, :] = 7  # equal logits
    x[..., 1::2, 5] = 30000  # one far above
    x[..., 1::2, 6] = -30000
    res = run_bench("sm_extremes", model, {"sm_in": x}, tmp_path / "b", pause=0.3)
    assert res.passed and res.mismatches == 0, res.first_mismatches
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.kernels.softmax import int_softmax

    y = int_softmax(x, getCustomOp(model.graph.node[0]).params())
    assert (y[..., 0::2, :] == 16).all()  # 1/16 of 256, rounded: the output scale is 2^-8
    assert (y[..., 1::2, 5] == 255).all() and (np.delete(y[..., 1::2, :], 5, axis=-1) == 0).all()


@pytest.mark.timeout(300)
def test_int_layernorm_bench_sees_a_different_rsqrt_table(tmp_path) -> None:
    """HDL generated with a 10-bit rsqrt table, python model executed with a 6-bit one: words must differ."""
    from qonnx.custom_op.registry import getCustomOp

    spec = nodes.int_layernorm(ch=16, pe=4, n=6)
    model = nodes.build_hw_graph([spec])
    getCustomOp(model.graph.node[0]).set_nodeattr("lut_bits", 6)
    x = nodes._rand("INT8", spec.inputs["ln_in"][0], np.random.default_rng(4))
    res = run_bench("ln_table", model, {"ln_in": x}, tmp_path / "b", pause=0.0)
    assert res.words_compared > 0 and not res.passed
    assert 0 < res.mismatches <= res.words_compared


def _looped_layernorm():
    from samfpga.hw.sim.benches import _with_range

    return _with_range(nodes.int_layernorm(ch=12, pe=3, n=4, iters=3), (-3, 3)), 4 * 12 // 3


def _looped_softmax():
    return nodes.int_softmax(n=16, pe=4, heads=2, windows=1, bias="window", iters=3), 2 * 16 * 16 // 4


def _looped_softmax_pipelined():
    spec = nodes.int_softmax(n=16, pe=4, heads=2, windows=1, bias="window", iters=3, pipelined=1)
    return spec, 2 * 16 * 16 // 4


def _looped_dw_vvau():
    return nodes.depthwise_vvau(ch=8, dim=3, pe=2, simd=3, iters=3), 3 * 3 * 8 // 2


def _looped_requant():
    from samfpga.hw.sim.benches import _with_range

    return _with_range(nodes.requant(ch=8, pe=2, n=3, k_range=(1, 4), iters=3), (-9000, 9000)), 3 * 8 // 2


def _looped_mvau():
    return nodes.mvau(mw=12, mh=8, simd=3, pe=2, n=3, iters=3), 3 * 8 // 2


def _looped_thresholding():
    return nodes.thresholding_looped(), 3 * 8 // 2


@pytest.mark.timeout(300)
@pytest.mark.parametrize("make", [_looped_layernorm, _looped_softmax, _looped_softmax_pipelined, _looped_dw_vvau,
                                  _looped_requant, _looped_mvau, _looped_thresholding],
                         ids=["layernorm", "softmax", "softmax_pipelined", "dw_vvau", "requant", "mvau", "thresholding"])
def test_looped_rtl_uses_each_iterations_parameters(make, tmp_path) -> None:
    """Negative control of the ``*_looped`` benches: HDL generated with 3 parameter sets, python model told that
    every iteration uses iteration 0's. The first pass (iteration 0) must agree word for word and the later ones
    must not; and a frame count that is not a multiple of the iterations is refused."""
    import json

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops import looped

    spec, words_per_frame = make()
    model = nodes.build_hw_graph([spec])
    op = getCustomOp(model.graph.node[0])
    values = looped.loop_values(op)
    assert all(v[0] != v[1] and v[1] != v[2] for v in values.values())
    op.set_nodeattr("loop_values", json.dumps({k: [v[0]] * 3 for k, v in values.items()}))
    name, (shape, dt) = next(iter(spec.inputs.items()))
    lo, hi = spec.input_ranges.get(name, (None, None))
    rng = np.random.default_rng(5)
    frames = [{name: nodes._rand(dt, shape, rng) if lo is None else
               rng.integers(lo, hi + 1, size=shape).astype(np.float32)} for _ in range(3)]
    res = run_bench("looped_ctrl", model, frames, tmp_path / "b", pause=0.0)
    assert res.words_compared == 2 * 3 * words_per_frame and not res.passed
    assert res.first_mismatches and all(m["index"] >= words_per_frame for m in res.first_mismatches)
    with pytest.raises(ValueError, match="multiple of 3 frames"):
        run_bench("looped_frames", model, frames[:2], tmp_path / "c", pause=0.0)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("pipelined", [1, 0], ids=["pipelined", "serial"])
def test_int_softmax_runtime_parameter_set(pipelined, tmp_path) -> None:
    """RT_SET = 1 (the engine's softmax): ``cfg_set`` picks MULT, K and the bias table (compact, in block RAM) per
    step of rows, in any order, bit-exact against the kernel with that step's parameters under random stalls;
    the negative control computes one step's expected words with another set and must see them differ."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim.int_softmax_sets import simulate

    spec = nodes.int_softmax(n=16, pe=4, heads=2, windows=1, bias="window", iters=3)
    model = nodes.build_hw_graph([spec])
    sets = getCustomOp(model.graph.node[0]).iteration_params(model)  # three sets: other scales and tables
    rng = np.random.default_rng(8)
    order = [2, 0, 2, 1]
    steps = [(s, rng.integers(-2000, 2000, size=(2 * 16, 16))) for s in order]  # heads x n rows a step
    res = simulate(sets, steps, tmp_path / "ok", pe=4, pipelined=pipelined)
    assert res.passed, (res.error, [p["first_mismatches"] for p in res.passes])
    assert all(p["words_compared"] == 4 * 2 * 16 * 16 for p in res.passes)
    bad = simulate(sets, steps, tmp_path / "bad", pe=4, pipelined=pipelined, pauses=(0.0,),
                   expected_sets=[2, 0, 1, 1])
    assert not bad.error and bad.passes[0]["mismatches"] > 0
    assert all(m["index"] >= 2 * 2 * 16 * 16 for m in bad.passes[0]["first_mismatches"])  # only the third step


@pytest.mark.timeout(300)
def test_int_softmax_layers_with_different_heads(tmp_path) -> None:
    """The engine's layers have 4, 5 or 10 heads: each set's compact window table holds its own heads (SET_HEADS),
    the tables packed one after the other in block RAM (what ``engine.softmax_bias`` prices). Three layers of 3, 1
    and 2 heads over 4 x 4 windows (n = 16), steps of two windows each, pipelined, bit-exact under stalls."""
    from samfpga.hw.sim.int_softmax_sets import simulate
    from samfpga.kernels.softmax import make_params

    rng = np.random.default_rng(9)
    y, x = np.divmod(np.arange(16), 4)
    idx = np.abs(y[:, None] - y[None, :]) * 4 + np.abs(x[:, None] - x[None, :])
    heads = [3, 1, 2]
    sets = [make_params(16, 2.0 ** -9 * (1.5 ** i), 2.0 ** -8, rng.normal(scale=2.0, size=(h, 16))[:, idx]
                        .reshape(h * 16, 16)) for i, h in enumerate(heads)]
    steps = [(s, rng.integers(-3000, 3000, size=(2 * heads[s] * 16, 16))) for s in (1, 2, 0, 1, 0)]
    res = simulate(sets, steps, tmp_path / "ok", pe=4)
    assert res.parameters["SET_HEADS"] == "24'h20103"
    assert res.passed, (res.error, [p["first_mismatches"] for p in res.passes])
    assert all(p["words_compared"] == sum(r.size for _, r in steps) for p in res.passes)
