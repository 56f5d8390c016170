"""RTL benches: every RTL layer type FINN generates for the encoder, the project's own RTL blocks and a stitched
stem segment, simulated with Verilator under random backpressure and compared word by word with FINN's python
execution (tolerance: none, bit-exact on every meaningful output bit). About 15-30 s per bench on 2 cores,
Verilator's compile dominating."""

from __future__ import annotations

import json

import numpy as np
import pytest

from samfpga.hw.sim.benches import bench_names, get_bench, run_one


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", bench_names())
def test_bench_bit_exact(name, tmp_path):
    res = run_one(get_bench(name), tmp_path, seed=1, pause=0.3)
    assert res.error == "", res.error
    spec = json.loads((tmp_path / name / "spec.json").read_text())
    n_expected = sum(len(w) for w in spec["expected"].values())
    # two passes (with and without backpressure), each comparing every expected word
    assert res.words_compared == 2 * n_expected > 0
    assert res.mismatches == 0, res.first_mismatches
    assert res.passed
    # a stream delivers at most one word per cycle per output (``cycles_simulated``: the first frame's)
    assert res.cycles_simulated >= n_expected // (len(spec["expected"]) * spec["frames"]) - 1
    assert res.cycles_with_backpressure >= res.cycles_simulated * 0.9


@pytest.mark.timeout(300)
def test_bench_fails_without_axilite_programming(tmp_path):
    """Negative control: the thresholds are changed for FINN's execution but not written over AXI-Lite, so the
    HDL still holds its init-file thresholds and the bench must report mismatching words."""
    import numpy as np

    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.benches import program_thresholds_axilite
    from samfpga.hw.sim.runner import run_bench

    spec = nodes.thresholding(runtime_writeable=1)
    model = nodes.build_hw_graph([spec])
    node_name, writes = program_thresholds_axilite(model)
    assert len(writes) > 0
    x = nodes._rand("INT12", spec.inputs["thr_in"][0], np.random.default_rng(3))
    res = run_bench("no_axilite", model, {"thr_in": x}, tmp_path / "b", axilite=(node_name, []))
    assert not res.passed
    assert 0 < res.mismatches <= res.words_compared


@pytest.mark.timeout(300)
def test_runtime_weights_need_the_flush_frame(tmp_path):
    """Why the driver streams one dropped frame after writing runtime weights (``mvau_axilite``, flush 1, passes in
    the catalogue): without it the memstream's words prefetched before the AXI-Lite writes reach the unit, and only
    the start of the first frame differs (the memory is right; the stale words are used once)."""
    res = run_one(get_bench("mvau_axilite"), tmp_path, seed=1, pause=0.3, flush=0)
    assert res.axilite_writes > 0 and not res.passed
    per_pass = res.words_compared // 2  # one frame per pass
    assert 0 < res.mismatches < per_pass
    # the stale words are what the memstream fetched ahead (up to 8): the outputs that used them lead the frame
    assert all(m["index"] < per_pass // 2 for m in res.first_mismatches)


@pytest.mark.timeout(300)
def test_looped_runtime_weights_need_every_set(tmp_path):
    """Negative control of ``mvau_looped_axilite``: only iteration 0's words written over AXI-Lite, the other sets
    left as the URAM starts: the first pass (iteration 0) agrees and the later passes differ."""
    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.benches import program_looped_weights_axilite
    from samfpga.hw.sim.runner import run_bench

    spec = nodes.mvau(mw=12, mh=8, simd=3, pe=2, n=3, iters=3, ram_style="ultra", runtime_writeable=1)
    model = nodes.build_hw_graph([spec])
    name, writes = program_looped_weights_axilite(model)
    assert len(writes) % 3 == 0
    rng = np.random.default_rng(2)
    frames = [{"mvau_in": nodes._rand("INT4", (1, 3, 12), rng)} for _ in range(3)]
    res = run_bench("looped_one_set", model, frames, tmp_path / "b", pause=0.0, axilite=(name, writes[:len(writes) // 3]),
                    flush_frames=3)
    per_frame = 3 * 8 // 2
    assert res.words_compared == 2 * 3 * per_frame and not res.passed
    assert all(m["index"] >= per_frame for m in res.first_mismatches)


@pytest.mark.timeout(300)
def test_float_thresholding_orders_negative_zero_below_positive_zero(tmp_path):
    """Known deviation of FINN+'s float Thresholding_rtl (FPARG sign/magnitude compare) from its python execution:
    an input of -0.0 against a threshold of +0.0 does not count in the RTL (IEEE: -0.0 >= +0.0 is true). Every
    other pairing of signed zeros, and ordinary values, agree. Exactly the one affected word differs, in both passes."""
    import numpy as np

    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.runner import run_bench

    spec = nodes.thresholding(ch=2, pe=1, n=4, idt="FLOAT32", odt="UINT2")
    # channel 0 has a +0.0 threshold, channel 1 a -0.0 threshold
    spec.initializers["thr_t"] = (np.array([[-1.0, 0.0, 1.0], [-1.0, -0.0, 1.0]], dtype=np.float32), "FLOAT32")
    x = np.array([[[-0.0, -0.0], [0.0, 0.0], [0.5, -0.5], [-2.0, 2.0]]], dtype=np.float32)
    res = run_bench("negzero", nodes.build_hw_graph([spec]), {"thr_in": x}, tmp_path / "b", pause=0.0)
    assert res.words_compared == 16
    assert res.mismatches == 2
    # word 0 = (vector 0, channel 0): -0.0 vs thresholds (-1, +0, 1): FINN counts 2, the RTL 1
    assert all(m["index"] == 0 and m["expected"] == "0x2" and m["got"] == "0x1" for m in res.first_mismatches)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_uram_weights_preloaded_with_the_drivers_words(tmp_path):
    """An MVAU whose weights sit in URAM (``runtime_writeable_weights``: FINN generates its memstream without an
    init file on Zynq; the driver writes them over AXI-Lite): the bench loads the node's memblock.dat at time 0,
    and the result is bit-exact (with the memory left empty every output word would be 0)."""
    import numpy as np

    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.runner import finn_reference, run_bench

    spec = nodes.mvau(mw=12, mh=8, simd=3, pe=2, n=4, idt="INT4", wdt="INT4", odt="INT16", seed=5)
    spec.attrs.update(ram_style="ultra", runtime_writeable_weights=1)
    model = nodes.build_hw_graph([spec])
    from pathlib import Path

    from qonnx.custom_op.registry import getCustomOp

    name = model.graph.node[0].name
    code_dir = Path(getCustomOp(model.graph.node[0]).get_nodeattr("code_gen_dir_ipgen"))
    assert 'INIT_FILE = ""' in (code_dir / f"{name}_memstream_wrapper.v").read_text()  # as FINN generates it
    x = nodes._rand("INT4", spec.inputs["mvau_in"][0], np.random.default_rng(4))
    assert np.count_nonzero(finn_reference(model, {"mvau_in": x})[model.graph.output[0].name]) > 0
    res = run_bench("uram", model, {"mvau_in": x}, tmp_path / "b")
    assert res.error == "" and res.mismatches == 0 and res.passed, res.first_mismatches
    staged = (tmp_path / "b" / "hdl" / f"{name}_memstream_wrapper.v").read_text()
    assert "memblock.dat" in staged
