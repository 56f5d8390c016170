"""RTL of the integer LayerNorm / softmax against their kernels: the bit-exact benches themselves are in the
catalogue (samfpga.hw.sim.benches: int_layernorm*, int_softmax*; run by tests/test_sim_benches.py). Here the
negative controls: the comparison notices a wrong word, and a hardware table that differs from the one the
python model uses. About 30-100 s per test on 2 cores (Verilator compile)."""

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
