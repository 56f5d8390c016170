"""Own PagePermute RTL (hw/samfpga/hw/rtl/page_permute.sv): a Transpose through one buffered page, replacing FINN+'s
InnerShuffle decomposition of window partition / reverse and the attention head split / merge.

Fast: the page view of the bundled default's permutations, the python model (numpy transpose) in a FINN graph, the
build's rewrite ``ShuffleToPagePermute`` (and what it leaves to FINN), the generated HDL and the resource model.
Slow: Verilator benches, bit-exact against FINN's python execution (tolerance 0), 3 frames back to back (the first
under random backpressure) at one word per cycle, for the default's shapes and irregular ones (ping-pong)."""

from __future__ import annotations

import numpy as np
import pytest

from samfpga.hw.custom_ops.page_permute import page_view, pages_for
from samfpga.hw.sim import nodes
from tests.support.graphs import shuffle_model as _shuffle_model


@pytest.mark.parametrize("shape,perm,page,pperm,pages", [
    ((1, 4, 8, 4, 8, 64), (0, 1, 3, 2, 4, 5), (8, 4, 512), (1, 0, 2), 4),   # window partition, 32x32 map
    ((1, 4, 4, 8, 8, 64), (0, 1, 3, 2, 4, 5), (4, 8, 512), (1, 0, 2), 4),   # window reverse
    ((16, 64, 2, 32), (0, 2, 1, 3), (64, 2, 32), (1, 0, 2), 16),            # head split q / v
    ((16, 64, 2, 32), (0, 2, 3, 1), (64, 64), (1, 0), 16),                  # K^T: axes 2, 3 merge
    ((16, 2, 64, 32), (0, 2, 1, 3), (2, 64, 32), (1, 0, 2), 16),            # head merge
    ((1, 2, 8, 2, 8, 128), (0, 1, 3, 2, 4, 5), (8, 2, 1024), (1, 0, 2), 2), # stage-2 partition
])
def test_page_view_of_default_permutations(shape, perm, page, pperm, pages):
    v = page_view(shape, perm, 1)
    assert (v.shape, v.perm, v.pages) == (page, pperm, pages)
    assert v.pow2 and pages_for(v) == 1
    assert v.pages * v.words == np.prod(shape)


def test_page_view_simd_and_refusals():
    v = page_view((1, 4, 8, 4, 8, 64), (0, 1, 3, 2, 4, 5), 4)
    assert v.shape == (8, 4, 128) and v.simd == 4  # the innermost group carries the SIMD word
    assert not page_view((2, 6, 3, 4), (0, 2, 1, 3), 2).pow2
    # an innermost axis that stays may be any size: one page, mixed radix (outer 4 x 2 bit-permuted, 40 words inner)
    mixed = page_view((1, 2, 4, 2, 4, 20), (0, 1, 3, 2, 4, 5), 2)
    assert (mixed.pages, mixed.shape, mixed.perm, mixed.inner) == (2, (4, 2, 40), (1, 0, 2), 40)
    assert mixed.in_place and not mixed.pow2 and pages_for(mixed) == 1
    assert page_view((2, 4, 3), (1, 0, 2), 1).inner == 3 and pages_for(page_view((2, 4, 3), (1, 0, 2), 1)) == 1
    # ... but not an innermost axis that moves, nor a moved axis of another size
    assert pages_for(page_view((3, 5), (1, 0), 1)) == 2 and page_view((3, 5), (1, 0), 1).inner == 1
    assert pages_for(page_view((4, 5, 3), (1, 0, 2), 1)) == 2
    assert pages_for(page_view((2, 6, 3, 4), (0, 2, 1, 3), 2)) == 2
    with pytest.raises(ValueError, match="power-of-two"):
        pages_for(page_view((2, 6, 3, 4), (0, 2, 1, 3), 2), 1)
    with pytest.raises(ValueError, match="moves nothing"):
        page_view((1, 8, 1, 4), (0, 2, 1, 3), 1)
    with pytest.raises(ValueError, match="SIMD must be 1"):
        page_view((16, 64, 2, 32), (0, 2, 3, 1), 2)
    with pytest.raises(ValueError, match="does not divide"):
        page_view((2, 4, 6), (1, 0, 2), 4)


@pytest.mark.parametrize("shape,perm,simd,reshape_to,replaced", [
    ((1, 64, 8), (0, 1, 3, 2, 4, 5), 2, (1, 2, 4, 2, 4, 8), True),  # window partition with its Reshape fused
    ((2, 8, 2, 4), (0, 2, 1, 3), 4, None, True),                     # head split at SIMD 4
    ((2, 8, 2, 4), (0, 2, 3, 1), 2, None, False),                    # K^T at SIMD 2: left to FINN
])
def test_rewrite_executes_like_shuffle(shape, perm, simd, reshape_to, replaced):
    from samfpga.hw.sim.finn_boot import boot_finn

    boot_finn()
    from finn.core.onnx_exec import execute_onnx
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from samfpga.hw.custom_ops.transforms import ShuffleToPagePermute

    m = _shuffle_model(shape, perm, simd, reshape_to)
    x = nodes._rand("INT8", shape, np.random.default_rng(0))
    ref = execute_onnx(m, {"x": x})["y"]
    np.testing.assert_array_equal(ref, np.transpose(x.reshape(reshape_to or shape), perm))
    own = m.transform(ShuffleToPagePermute()).transform(SpecializeLayers(nodes.ZYNQ_PART))
    types = [n.op_type for n in own.graph.node]
    assert types == (["PagePermute_rtl"] if replaced else ["Shuffle"]), types
    np.testing.assert_array_equal(execute_onnx(own, {"x": x})["y"], ref)


def test_hdl_and_cost_model():
    from pathlib import Path

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.boards import get_board
    from samfpga.hw.resources import layer_costs
    from samfpga.hw.resources.memory import bram36

    spec = nodes.page_permute((16, 64, 64), (0, 1, 3, 2, 4, 5), dt="INT22", transpose_in_shape=(1, 4, 4, 8, 8, 64),
                              out_shape=(1, 1024, 64), ram_style="block")
    model = nodes.build_hw_graph([spec])
    node = model.graph.node[0]
    assert node.op_type == "PagePermute_rtl"
    op = getCustomOp(node)
    text = Path(op.get_rtl_file_list(abspath=True)[-1]).read_text()
    assert (".K(3), .SHAPE({32'd512, 32'd8, 32'd4}), .PERM({32'd2, 32'd0, 32'd1}), .WIDTH(24), .DBITS(22), "
            ".PAGES(1), .RAM_STYLE(\"block\")") in text
    assert op.get_exp_cycles() == 16 * 64 * 64 and op.get_exp_latency() == 4 * 8 * 512 + 2
    c = layer_costs(model, get_board("kv260"))[0]
    # one page of 16384 x 22 bits: 11 BRAM36 (22 BRAM18 of 8Kx2) where FINN's two InnerShuffles hold two pages each
    assert c.source == "own model" and c.BRAM36 == bram36(16384, 22) == 11 and c.URAM == 0 and c.LUT > 0 and c.FF > 0
    assert c.detail["pages_buffered"] == 1 and c.detail["memory"] == "BRAM"
    for style, key in (("ultra", "URAM"), ("distributed", "LUT")):
        op.set_nodeattr("ram_style", style)
        c2 = layer_costs(model, get_board("kv260"))[0]
        assert c2.BRAM36 == 0 and getattr(c2, key) > getattr(c, key), (style, c2)
    assert layer_costs(model, get_board("kv260"))[0].LUT > 16384 * 22 / 64  # LUTRAM: 64 bits per LUT


def _bench(spec, frames, tmp_path, name):
    from samfpga.hw.sim.runner import run_bench

    model = nodes.build_hw_graph([spec])
    rng = np.random.default_rng(1)
    dt, shape = spec.attrs["data_type"], spec.inputs["pp_in"][0]
    return run_bench(name, model, [{"pp_in": nodes._rand(dt, shape, rng)} for _ in range(frames)], tmp_path / name,
                     pause=0.3, bp_frames=1, fast_compile=False)


#: (name, page_permute args): the bundled default's permutations and irregular ones
BENCH_CONFIGS = {
    "partition_32x32_c64": dict(in_shape=(1, 1024, 64), perm=(0, 1, 3, 2, 4, 5),
                                transpose_in_shape=(1, 4, 8, 4, 8, 64), out_shape=(16, 64, 64)),
    "head_merge_int22_block": dict(in_shape=(16, 2, 64, 32), perm=(0, 2, 1, 3), dt="INT22", out_shape=(16, 64, 64),
                                   ram_style="block"),
    "kt_int8_ultra": dict(in_shape=(16, 64, 2, 32), perm=(0, 2, 3, 1), ram_style="ultra"),
    "pingpong_simd2_int9": dict(in_shape=(2, 6, 3, 4), perm=(0, 2, 1, 3), simd=2, dt="INT9"),
    "pingpong_rank5_uint4_dist": dict(in_shape=(1, 3, 5, 2, 7), perm=(0, 3, 1, 4, 2), dt="UINT4",
                                      ram_style="distributed"),
    # in place with a mixed-radix innermost axis: window partition of 20 channels at SIMD 2 (page 4 x 2 x 40 words,
    # 2 pages a frame), and 3 words that stay innermost under a swap of two outer axes
    "inplace_mixed_partition_c20_simd2": dict(in_shape=(1, 64, 20), perm=(0, 1, 3, 2, 4, 5), simd=2,
                                              transpose_in_shape=(1, 2, 4, 2, 4, 20), out_shape=(4, 16, 20)),
    "inplace_mixed_inner3_int9_ultra": dict(in_shape=(2, 4, 3), perm=(1, 0, 2), dt="INT9", ram_style="ultra"),
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(BENCH_CONFIGS))
def test_rtl_bit_exact_full_rate(name, tmp_path):
    spec = nodes.page_permute(**BENCH_CONFIGS[name])
    res = _bench(spec, 3, tmp_path, name)
    assert res.error == "", res.error
    words = int(np.prod(spec.inputs["pp_in"][0])) // spec.attrs["SIMD"]
    assert res.words_compared == 4 * words  # 1 frame under backpressure, 3 free-running
    assert res.mismatches == 0, res.first_mismatches
    # back to back at one word per cycle: frames leave exactly one frame of words apart
    assert res.frame_interval == words, (res.frame_interval, words)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("spec,memory", [
    (dict(in_shape=(16, 64, 2, 32), perm=(0, 2, 3, 1), ram_style="ultra"), (1, 0)),
    # a stage-2 window partition at 512² (4 x 4 windows of 8 x 8, 160 channels) in one mixed-radix page of 64-bit
    # words: 2 URAM where two pages took 3
    (dict(in_shape=(1, 1024, 160), perm=(0, 1, 3, 2, 4, 5), transpose_in_shape=(1, 4, 8, 4, 8, 160),
          out_shape=(16, 64, 160), simd=8, ram_style="ultra"), (2, 0)),
])
def test_model_against_yosys(spec, memory, tmp_path):
    """The own model within LUT 25 % / FF 10 % of Yosys ``synth_xilinx -family xcup``, memory blocks exact."""
    from samfpga.hw.boards import get_board
    from samfpga.hw.resources import layer_costs
    from samfpga.hw.synth.yosys import synthesize_node

    model = nodes.build_hw_graph([nodes.page_permute(**spec)])
    synth = synthesize_node(model, model.graph.node[0], tmp_path / "y")
    c = layer_costs(model, get_board("kv260"))[0]
    assert (synth.URAM, synth.BRAM36) == (c.URAM, c.BRAM36) == memory
    assert abs(c.FF - synth.FF) <= 0.10 * synth.FF, (c, synth)
    assert abs(c.LUT - synth.LUT) <= 0.25 * synth.LUT, (c, synth)
