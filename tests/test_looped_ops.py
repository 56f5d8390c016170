"""Per-iteration parameters of own-RTL layers in a rolled body (``samfpga.hw.custom_ops.looped``): what may vary,
and that python execution follows the iteration. Pure (no simulation); the RTL is checked by the
``int_layernorm_looped`` bench (tests/test_sim_benches.py) and its negative control (tests/test_sim_int_ops.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def layernorm():
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    import samfpga.hw.custom_ops  # noqa: F401  (registers IntLayerNorm; the test must not rely on an earlier one)

    model = nodes._make_graph([nodes.int_layernorm(ch=12, pe=3, n=4)])
    return model, getCustomOp(model.graph.node[0])


def test_make_looped_sets_iteration_zero_and_refuses_what_the_rtl_cannot_vary(layernorm) -> None:
    from samfpga.hw.custom_ops import looped

    model, op = layernorm
    with pytest.raises(ValueError, match=r"'frac_bits' cannot differ per iteration .*'eps_int', 'negate'"):
        looped.make_looped(op, {"eps_int": [1, 2], "frac_bits": [8, 7]})
    with pytest.raises(ValueError, match="one length"):
        looped.make_looped(op, {"eps_int": [1, 2], "negate": [[0] * 12]})
    with pytest.raises(ValueError, match="at least 2 iterations"):
        looped.make_looped(op, {"eps_int": [np.int64(5)]})
    assert looped.iterations(op) == 1 and looped.loop_values(op) == {}
    looped.make_looped(op, {"eps_int": [np.int64(3), np.int64(40)], "negate": [[0] * 12, [1] * 12]})
    assert looped.iterations(op) == 2 and op.get_nodeattr("eps_int") == 3
    assert looped.tokens_per_pass(op) == 4
    assert [p.eps_int for p in op.iteration_params()] == [3, 40]
    # a hand-edited attribute that the RTL cannot take per iteration is refused when read, too
    op.set_nodeattr("loop_values", '{"lut_bits": [10, 8]}')
    with pytest.raises(ValueError, match="'lut_bits' cannot differ"):
        looped.loop_values(op)


def test_loop_frames_multiply_the_tokens_a_set_serves(layernorm) -> None:
    """``set_frames(model, k)``: each looped layer keeps a set for k passes (its HDL counts k x the pass's tokens);
    layers not looped are left alone, and k < 1 is refused."""
    from samfpga.hw.custom_ops import looped

    model, op = layernorm
    looped.set_frames(model, 3)  # not looped yet: nothing to set
    assert looped.frames(op) == 1 and looped.tokens_per_pass(op) == 4
    looped.make_looped(op, {"eps_int": [1, 2]})
    looped.set_frames(model, 3)
    assert looped.frames(op) == 3 and looped.tokens_per_pass(op) == 12
    with pytest.raises(ValueError, match="at least 1"):
        looped.set_frames(model, 0)


def test_python_execution_follows_the_iteration(layernorm) -> None:
    from finn.core.onnx_exec import execute_onnx

    from samfpga.hw.custom_ops import looped
    from samfpga.kernels.layernorm import int_layernorm

    model, op = layernorm
    flags = [[0] * 12, [int(c % 2 == 0) for c in range(12)], [1] * 12]
    looped.make_looped(op, {"eps_int": [0, 500, 9000], "negate": flags})
    x = np.random.default_rng(0).integers(-3, 4, size=(1, 4, 12)).astype(np.float32)
    outs = []
    for i in range(4):  # wraps: iteration 3 is iteration 0
        looped.at_iteration(model, i)
        outs.append(execute_onnx(model, {"ln_in": x})["ln_out"])
        want = int_layernorm(x.astype(np.float64), op.iteration_params()[i % 3])
        assert np.array_equal(outs[-1], want)
    assert np.array_equal(outs[0], outs[3])
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])


def test_self_counting_memstream_wrapper_from_finns_template() -> None:
    """The memstream wrapper of a looped MVAU / Requant: FINN's template rendered with SETS = 1, patched to hold the
    sets and feed its own set select; a template that changed is refused rather than patched wrongly."""
    from samfpga.hw.custom_ops.looped_memstream import concat_memblocks, self_counting
    from samfpga.hw.sim.rtllib import finn_rtllib

    text = (finn_rtllib() / "memstream" / "hdl" / "memstream_wrapper_template.v").read_text()
    for key, val in {"$MODULE_NAME$": "n0", "$SETS$": "1", "$DEPTH$": "16", "$WIDTH$": "24", "$INIT_FILE$": "m.dat",
                     "$RAM_STYLE$": "auto", "$PUMPED_MEMORY$": "0"}.items():
        text = text.replace(key, val)
    out = self_counting(text, sets=3, repeat=5)
    assert "parameter  SETS = 3," in out and "localparam  REPEAT = 5;" in out
    assert ".s_axis_0_tdata(SeqSet)" in out and ".s_axis_0_tdata(s_axis_0_tdata)" not in out
    assert "module n0_memstream_wrapper" in out and "output\ts_axis_0_tready" in out  # FINN's ports kept
    with pytest.raises(ValueError, match="sets >= 2"):
        self_counting(text, sets=1, repeat=5)
    with pytest.raises(ValueError, match="finn-rtllib changed"):
        self_counting(out, sets=3, repeat=5)  # already patched: FINN's anchors are gone
    assert concat_memblocks(["0a\n0b\n", "1a\n1b\n"]) == "0a\n0b\n1a\n1b\n"
