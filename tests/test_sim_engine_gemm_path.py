"""The engine's GEMM path as one design (hw/samfpga/hw/rtl/engine_gemm_path.sv: access reader -> widened
activations -> token_batch_mvu -> access writer) under Verilator + cocotb, DDR to DDR: the tiny build's program's
plain GEMM steps, each configured as the host's sequencer would, from one DDR image holding the program's weight
image and stored tensors; every output tensor in DDR byte for byte the program's (whose stored tensors equal FINN's
execution, tests/test_engine_program.py), tolerance 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samfpga.hw.sim import engine_gemm_path as gp

DEPLOY = Path(__file__).parent / "runtime" / "data" / "tiny_deploy"
PASSES = [{"name": "stalls", "ar_pause": 0.2, "r_pause": 0.2, "aw_pause": 0.2, "w_pause": 0.2, "b_pause": 0.2},
          {"name": "free"}]


def _program():
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from samfpga.intexec.executor import load_intgraph

    g = load_intgraph(DEPLOY)
    prog = compile_program(g, engine_unit(g, pe=8, simd=16, batch=16))
    x = np.random.default_rng(3).integers(0, 256, g.shape(g.input)).astype(np.float32)
    return prog, run_program(prog, g.run_host_pre(x))


def test_plain_steps_and_refusal():
    """The tiny program's 8 plain GEMM steps (INT8 and UINT8 inputs, signed and unsigned outputs, one raw frame);
    a step with anything on the unit's streams is refused by name."""
    prog, _ = _program()
    steps = gp.plain_gemm_steps(prog)
    assert len(steps) == 8 and {s.in_dtype for s in steps} == {"INT8", "UINT8"}
    assert sum(s.layer.raw for s in steps) == 1 and {s.layer.out_signed for s in steps if not s.layer.raw} == {
        True, False}
    lay = gp.layout(prog, [t for s in steps for t in (s.input.tensor, s.output)])
    with pytest.raises(ValueError, match=r"step MVAU_rtl_0 \(gemm\): not a plain GEMM step"):
        gp.step_config(prog, prog.steps[0], lay)


@pytest.mark.timeout(900)
def test_rtl_runs_the_programs_plain_gemm_steps_ddr_to_ddr(tmp_path):
    """The 8 steps back to back on engine_gemm_path.sv built as the program's unit (PE 8 x SIMD 16, 9-bit
    activations, RT_SHAPE, RAW_OUT) with its access DMAs, under stalls on every AXI channel and free-running: each
    output tensor in DDR equals the program's stored bytes, every other byte keeps its value. Negative control: a
    step run with the input's sign flipped (UINT8 read as INT8) writes a different tensor."""
    prog, mem = _program()
    steps = gp.plain_gemm_steps(prog)
    lay = gp.layout(prog, [t for s in steps for t in (s.input.tensor, s.output)])
    rng = np.random.default_rng(4)
    img = bytearray(rng.integers(0, 256, lay.size, dtype=np.uint8).tobytes())
    img[:len(prog.image)] = prog.image
    for s in steps:
        b = lay.bases[s.input.tensor]
        data = prog.stored(s.input.tensor, mem[s.input.tensor])
        img[b:b + len(data)] = data
    want = bytearray(img)
    for s in steps:
        b = lay.bases[s.output]
        data = prog.stored(s.output, mem[s.output])
        want[b:b + len(data)] = data
    assert want != img
    gp.build(prog, tmp_path)
    cfgs = [gp.step_config(prog, s, lay) for s in steps]
    res = gp.simulate(cfgs, bytes(img), PASSES, tmp_path, seed=5, tag="steps")
    assert not res.error, res.error
    for p, got in zip(res.passes, res.images, strict=True):
        assert not p["timed_out"] and not p["busy"] and p["err"] == {"reader": 0, "unit": 0, "writer": 0}, p
        for s in steps:
            b, n = lay.bases[s.output], len(prog.stored(s.output, mem[s.output]))
            assert got[b:b + n] == want[b:b + n], (p["name"], s.name)
        assert got == bytes(want), p["name"]
        assert p["writer_bytes"] == sum(len(prog.stored(s.output, mem[s.output])) for s in steps)
    # free-running, a step takes the unit's schedule plus the DMAs' start and drain (measured: 26-94 cycles)
    over = [c - s.unit_cycles for c, s in zip(res.passes[1]["step_cycles"], steps, strict=True)]
    assert all(0 < o <= 120 for o in over), over
    k = next(i for i, s in enumerate(steps) if s.in_dtype == "UINT8")
    bad = {**cfgs[k], "cfg_in_unsigned": 0}
    res = gp.simulate([bad], bytes(img), [{"name": "free"}], tmp_path, seed=6, tag="sign")
    b, n = lay.bases[steps[k].output], len(prog.stored(steps[k].output, mem[steps[k].output]))
    assert not res.error and res.images[0][b:b + n] != want[b:b + n]
