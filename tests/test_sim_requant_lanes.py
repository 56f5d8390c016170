"""Requantiser lanes (hw/samfpga/hw/rtl/requant_lanes.sv): the beats they take and send, then the RTL under
Verilator + cocotb running every pass of requantiser lanes in the tiny build's engine program (after its LayerNorms,
depthwise convs and residual adders, with the program's own parameters and inputs) back to back: every output equal
to the program's (``lane_requant.LaneRequant.apply``), tolerance 0."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from samfpga.hw.sim import requant_lanes as rl
from samfpga.hw.sim.lane_requant import LaneRequant
from samfpga.hw.sim.requant_lanes import LanesConfig

PASSES = [{"name": "stalls", "p_pause": 0.3, "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}]


def _program_lanes():
    from tests.test_engine_program import program_run

    lanes = []
    program_run(0, lanes=lanes)
    return lanes


def test_beats_by_hand():
    """6 channels on 4 lanes: 2 beats per token, channels 6 and 7 padded (zero parameters, outputs dropped);
    parameters {T, B, S} with S in the low bits, two's complement."""
    rq = LaneRequant(np.array([3, -1, 2, 1, 1, 5]), np.array([-4, 0, 1, 0, 2, 0]), np.array([1, 0, 2, 0, 1, 3]),
                     8, True)
    cfg = LanesConfig(lanes=4, in_bits=8, s_bits=4, b_bits=4, t_bits=2, depth=2)
    assert rl.groups(rq, cfg) == 2
    p = rl.param_beats(rq, cfg)
    assert p[0] == 3 | (0xC << 4) | (1 << 8) and p[1] == 0xF and len(p) == 8 and p[6:] == [0, 0]
    x = np.array([[1, 2, 3, 4, 5, -6]])
    data = rl.data_beats(x, rq, cfg)
    assert data == bytes([1, 2, 3, 4, 5, 0xFA, 0, 0])
    y = rq.apply(x)
    assert rl.unpack_outputs(bytes(int(v) & 0xFF for v in [*y[0], 0, 0]), rq, cfg).tolist() == y.tolist()
    with pytest.raises(ValueError, match="scale .* does not fit 4 signed bits"):
        rl.param_beats(replace(rq, scale=np.array([9, 0, 0, 0, 0, 0])), cfg)
    with pytest.raises(ValueError, match="more than 4 lanes x 1 entries"):
        rl.param_beats(rq, replace(cfg, depth=1))


@pytest.mark.timeout(900)
def test_rtl_runs_every_lane_pass_of_the_program(tmp_path):
    """The 22 lane passes of one image (7 after depthwise convs, 7 after residual adders, 8 after LayerNorms; 16 to
    64 channels, 16 to 256 tokens, scales to 2^23, biases of 39 bits, shifts to 32, signed and unsigned clips) on
    4 lanes built to cover them all, back to back with a refused configuration (0 tokens) among them, under stalls
    and free-running: every output equal to the program's. Negative control: a depthwise pass with every bias one
    output step high gives that model's outputs, not the program's."""
    passes = _program_lanes()
    assert len(passes) == 22 and {p.where for p in passes} == {"layernorm", "depthwise", "residual"}
    cfg = LanesConfig.covering([(p.rq, p.x) for p in passes], lanes=4)
    assert cfg.s_bits >= 25 and cfg.b_bits >= 39 and cfg.depth == 16
    rl.build(cfg, tmp_path)
    frames = [(p.rq, p.x) for p in passes]
    bad = {"groups": 4, "tokens": 0, "unsigned": 0}
    res = rl.simulate(cfg, [*frames[:3], bad, *frames[3:]], PASSES, tmp_path, seed=1, tag="program")
    assert not res.error, res.error
    for r in res.passes:
        assert not r["timed_out"] and not r["busy"] and r["extra_beats"] == 0, r["name"]
        assert r["frame_err"] == [0, 0, 0, 1] + [0] * 19, r["name"]
        outs = r["outputs"][:3] + r["outputs"][4:]
        for p, hexed in zip(passes, outs, strict=True):
            got = rl.unpack_outputs(bytes.fromhex(hexed), p.rq, cfg)
            np.testing.assert_array_equal(got, p.y.reshape(-1, p.rq.channels), err_msg=f"{p.step} {p.where}")
    k = next(i for i, p in enumerate(passes) if p.where == "depthwise" and np.unique(p.y).size > 20)
    p = passes[k]
    off = replace(p.rq, bias=p.rq.bias + (np.int64(1) << p.rq.shift))
    res = rl.simulate(cfg, [(off, p.x)], [{"name": "free"}], tmp_path, seed=2, tag="bias")
    got = rl.unpack_outputs(bytes.fromhex(res.passes[0]["outputs"][0]), p.rq, cfg)
    np.testing.assert_array_equal(got, off.apply(p.x).reshape(got.shape))  # the RTL follows its parameters
    assert (got != p.y.reshape(got.shape)).sum() > got.size // 4  # and no longer equals the program's outputs
