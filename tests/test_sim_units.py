"""Fast checks of the simulation toolchain pieces (no Verilator build): patches, env, port parsing, own-op
python models, the word comparator."""

from __future__ import annotations

import os

import numpy as np
import pytest

from samfpga.hw.sim import rtllib, stitch, toolchain


def test_patches_apply_once_to_finn_sources(tmp_path):
    lib = rtllib.finn_rtllib()
    staged = rtllib.stage_sources([lib / "mvu/add_multi.sv", lib / "fifo/hdl/fifo.sv"], tmp_path)
    add_multi = staged[0].read_text()
    # hoisted: the function now sits before the generate block instead of inside it
    assert add_multi.index("function leaf_load_t init_leaf_loads") < add_multi.index("begin : genTree")
    assert "typedef struct packed {" in staged[1].read_text()
    original = (lib / "mvu/add_multi.sv").read_text()
    assert original.index("function leaf_load_t init_leaf_loads") > original.index("begin : genTree")


def test_shuffle_patches_apply_once_to_finn_sources(tmp_path):
    lib = rtllib.finn_rtllib() / "inner_shuffle"
    staged = rtllib.stage_sources([lib / "inner_shuffle.sv", lib / "skid.sv"], tmp_path)
    shuffle = staged[0].read_text()
    # the bit-stream casts are gone, replaced by the streaming concatenations they are defined as
    assert "packed_rotidx_vec_t'(" not in shuffle and "rotidx_vec_t'(" not in shuffle
    assert "assign  rd_pat_packed = {>>{RdPat}};" in shuffle
    assert "assign {>>{rd_pat_forwarded}} = rd_pat_forwarded_packed;" in shuffle
    assert shuffle.index("assign  rd_pat_packed") < shuffle.index(".idat(rd_pat_packed)")
    assert 'SRL capacity.", FEED_STAGES);' in staged[1].read_text()
    with pytest.raises(rtllib.PatchError):
        rtllib.patch_inner_shuffle("module inner_shuffle; endmodule")
    with pytest.raises(rtllib.PatchError):
        rtllib.patch_skid("module skid; endmodule")


def test_float_inputs_are_ieee_words_without_negative_zero():
    from samfpga.hw.sim import nodes

    x = nodes._rand("FLOAT32", (4096,), np.random.default_rng(0))
    assert x.dtype == np.float32 and (x < 0).any() and (x > 0).any()
    assert not np.signbit(x[x == 0]).any()  # -0.0 normalised (see docs/simulation.md: float thresholding)
    np.testing.assert_array_equal(x * 8, np.round(x * 8))  # on the 1/8 grid


def test_patch_fails_loudly_on_changed_source():
    with pytest.raises(rtllib.PatchError):
        rtllib.patch_fifo("module fifo; endmodule")
    with pytest.raises(rtllib.PatchError):
        rtllib.patch_add_multi("module add_multi; endmodule")


def test_stage_sources_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.sv"):
        rtllib.stage_sources([tmp_path / "nope.sv"], tmp_path / "out")


def test_verilator_env_is_applied_by_code():
    env = toolchain.setup_verilator_env({"PATH": "/usr/bin", "MAKEFLAGS": "-s"})
    assert env["PATH"].split(os.pathsep)[0] == str(toolchain.verilator_bin_dir())
    flags = env["MAKEFLAGS"].split()
    assert "-s" in flags and "CFG_CXXFLAGS_STD=-std=gnu++20" in flags and "CFG_CXXFLAGS_PCH_I=-include" in flags
    again = toolchain.setup_verilator_env(dict(env))
    assert again == env  # idempotent


def test_module_ports_parser():
    text = """module foo #(parameter W = 8)(
        (* X_INTERFACE_INFO = "x" *)
        input ap_clk,
        input [(((SETS > 2? $clog2(SETS) : 1)+7)/8)*8-1:0] in1_V_TDATA,
        output logic [W-1:0] out0_V_TDATA, // comment
        input out0_V_TREADY
    );
    endmodule"""
    assert stitch.module_ports(text, "foo") == [
        ("input", "ap_clk"), ("input", "in1_V_TDATA"), ("output", "out0_V_TDATA"), ("input", "out0_V_TREADY")]


def test_addstreams_python_model_and_datatype():
    from qonnx.core.datatype import DataType

    from samfpga.hw.custom_ops.addstreams import sum_datatype

    assert sum_datatype(DataType["INT8"], DataType["INT8"]) == DataType["INT9"]
    assert sum_datatype(DataType["UINT4"], DataType["UINT4"]) == DataType["UINT5"]
    assert sum_datatype(DataType["UINT8"], DataType["INT4"]).min() <= -8

    from samfpga.hw.sim import nodes

    model = nodes._make_graph([nodes.addstreams(ch=4, pe=2, n=3)])
    from finn.core.onnx_exec import execute_onnx

    a = np.arange(-6, 6, dtype=np.float32).reshape(1, 3, 4)
    b = np.full((1, 3, 4), 100, dtype=np.float32)
    out = execute_onnx(model, {"add_in0": a, "add_in1": b})["add_out"]
    np.testing.assert_array_equal(out, a + b)


def test_word_comparator_counts_mismatches():
    from samfpga.hw.sim.axis_bench import _compare

    spec = {"expected": {"m_axis_0": ["1", "2", "3"]}, "masks": {"m_axis_0": str(0xF)}}
    assert _compare({"m_axis_0": [1, 2, 3]}, spec)[:2] == (3, 0)
    assert _compare({"m_axis_0": [1, 0x12, 4]}, spec)[:2] == (3, 1)  # padding bit ignored, LSB flip caught
    assert _compare({"m_axis_0": [1, 2]}, spec)[1] == 1  # a missing word counts


def test_shrink_dynamic_mvau_keeps_one_matrix():
    """An attention matmul of a build is shrunk to one head's matrix and at most max_vectors rows, with the
    streamed-matrix shape still matching its folded stream shape (no Verilator build)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim import nodes
    from samfpga.hw.sim.from_build import single_node_model

    model = nodes._make_graph([nodes.mvau_dynamic(heads=2, n=20)])
    m = single_node_model(model, model.graph.node[0], max_vectors=16)
    op = getCustomOp(m.graph.node[0])
    assert list(op.get_nodeattr("numInputVectors")) == [1, 1, 16]
    assert int(np.prod(m.get_tensor_shape("mm_b"))) == int(np.prod(op.get_folded_input_shape(1)))
    assert int(np.prod(m.get_tensor_shape("mm_a"))) == int(np.prod(op.get_folded_input_shape(0)))
