"""The engine's LayerNorm unit (hw/samfpga/hw/rtl/layernorm_lanes.sv: int_layernorm.sv at run-time channels, then
its requantiser lanes) in Verilator + cocotb against the kernel (samfpga.kernels.layernorm.int_layernorm, then
LaneRequant.apply), on every LayerNorm of the tiny engine program; tolerance 0."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from samfpga.hw.sim import layernorm_lanes as ll
from samfpga.hw.sim.lane_requant import LaneRequant
from samfpga.kernels.layernorm import IntLayerNormParams

PASSES = [{"name": "stalls", "p_pause": 0.3, "in_pause": 0.3, "out_pause": 0.3}, {"name": "free"}]


def _program_layernorms():
    """The program's LayerNorm passes as frames (LayerNorm, lanes, inputs) and the LayerNorm input width it needs."""
    from tests.test_engine_program import program_run

    lanes = []
    _, prog, _ = program_run(0, lanes=lanes)
    return [(p.ln, p.rq, p.ln_x) for p in lanes if p.where == "layernorm"], prog.needs["layernorm_in_bits"]


def _rq(c: int) -> LaneRequant:
    return LaneRequant(np.full(c, 3), np.full(c, 5), np.full(c, 4), 8, True)


def test_configuration_by_hand():
    """Beats of PE channels per token, eps and negated channels as registers, inputs packed lane by lane at
    IN_BITS; layers the build cannot serve are refused by name."""
    p = IntLayerNormParams(channels=8, eps_int=300, negate=(0, 1, 0, 0, 0, 0, 0, 1))
    cfg = ll.LayerNormLanesConfig.covering([(p, _rq(8), np.arange(-8, 8).reshape(2, 8))], pe=4, in_bits=6)
    assert (cfg.channels, cfg.in_bits, cfg.ln_bits, cfg.beats, cfg.lanes.depth, cfg.lanes.lanes) == (8, 6, 14, 2, 2, 4)
    x = np.arange(-8, 8).reshape(2, 8)
    assert ll.frame_config(p, _rq(8), x, cfg) == {"beats": 2, "tokens": 2, "unsigned": 0, "eps": 300,
                                                  "neg": 0b1000_0010}
    data = ll.data_beats(x, p, cfg)  # 4 lanes x 6 bits = 3 bytes per beat
    assert len(data) == 4 * 3 and int.from_bytes(data[:3], "little") == sum(
        (v & 63) << (6 * k) for k, v in enumerate((-8, -7, -6, -5)))
    with pytest.raises(ValueError, match="do not fit 6 signed bits"):
        ll.data_beats(x * 8, p, cfg)
    with pytest.raises(ValueError, match="12 channels on a unit of 8"):
        ll.frame_config(replace(p, channels=12, negate=None), _rq(12), x, cfg)
    with pytest.raises(ValueError, match="6 channels are not whole beats of 4 lanes"):
        ll.LayerNormLanesConfig.covering([(replace(p, channels=6, negate=None), _rq(6), x[:, :6])], pe=4)
    with pytest.raises(ValueError, match="lut_bits 8 \\(not 10\\)"):
        ll.LayerNormLanesConfig.covering([(p, _rq(8), x), (replace(p, lut_bits=8), _rq(8), x)], pe=4)


@pytest.mark.timeout(900)
def test_rtl_runs_every_layernorm_of_the_program(tmp_path):
    """The program's 8 LayerNorms with their lanes (32, 48 and 64 channels, the blocks' 8-bit inputs and the neck's
    raw sums; 16 to 64 tokens) on one build of 16 lanes at the program's LayerNorm input width, back to back with
    refused configurations (0 beats, more beats than the build has) and a layer with negated channels and another
    eps among them, under stalls and free-running: every output equal to the kernel's, as the program computes it.
    The negated layer's outputs differ from the same layer's without (a control that the flags reach the RTL)."""
    frames, in_bits = _program_layernorms()
    assert len(frames) == 8 and {p.channels for p, _, _ in frames} == {32, 48, 64}
    assert in_bits > 20 and max(int(np.abs(x).max()) for _, _, x in frames) > 1 << 16  # the neck's raw sums
    assert all(p.negate is None or not any(p.negate) for p, _, _ in frames)  # the negated layer is ours (below)
    cfg = ll.LayerNormLanesConfig.covering(frames, pe=16, in_bits=in_bits)
    assert (cfg.channels, cfg.in_bits, cfg.beats) == (64, in_bits, 4)
    p0, rq0, x0 = frames[2]
    flags = tuple(int(c % 3 == 1) for c in range(p0.channels))
    negated = (replace(p0, negate=flags, eps_int=p0.eps_int * 7 + 1), rq0, x0)
    assert not np.array_equal(ll.reference(*negated), ll.reference(p0, rq0, x0))
    bad = [{"beats": 0, "tokens": 4, "unsigned": 0, "eps": 0, "neg": 0},
           {"beats": cfg.beats + 1, "tokens": 4, "unsigned": 0, "eps": 0, "neg": 0}]
    run = [*frames[:3], bad[0], negated, *frames[3:6], bad[1], *frames[6:]]
    ll.build(cfg, tmp_path, p0.table)
    res = ll.simulate(cfg, run, PASSES, tmp_path, seed=1, tag="program")
    assert not res.error, res.error
    assert [p["name"] for p in res.passes] == ["stalls", "free"]
    for ps in res.passes:
        assert not ps["timed_out"] and ps["busy"] == 0 and ps["extra_beats"] == 0
        assert ps["frame_err"] == [int(isinstance(f, dict)) for f in run]
        for f, out in zip(run, ps["outputs"], strict=True):
            if isinstance(f, dict):
                assert out == ""
                continue
            p, rq, x = f
            got = ll.unpack_outputs(bytes.fromhex(out), rq, cfg)
            np.testing.assert_array_equal(got, ll.reference(p, rq, x), err_msg=f"{ps['name']} C={p.channels}")
    # free-running (PIPELINED: a token streams in while the previous one streams out), a token of C' channels
    # costs max(C'/16, 5) cycles, 5 here (the statistics' 4 stages and the last beat; 2 + 4 + 2 = 8 without), after
    # the frame's 32 parameter beats
    free = res.passes[1]["frame_done_cycles"]
    k = run.index(frames[1])  # 64 tokens of 32 channels
    assert 64 * 5 + 32 <= free[k] - free[k - 1] <= 64 * 5 + 32 + 4
