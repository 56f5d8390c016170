"""``ChannelsLast`` (hw/samfpga/hw/build/channels_last.py): the layout transposes of the two patterns the encoder
has (the MBConv residual forked and joined in NCHW; TinyViT's local conv between ``[B, HW, C] -> [B, C, H, W]`` and
back, with a channel-first threshold inside) sink until they cancel; outputs equal at tolerance 0. A transpose
that cannot cancel is not multiplied by the fork rule, and the whole tiny encoder streamlines with only the window
and head shuffles left, bit-exact at every step."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.graphs import thresholds, tiny_graph

MT = dict(domain="qonnx.custom_op.general", out_dtype="INT4", out_bias=-8.0)


def _ops(model) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _run(model, feeds: dict) -> np.ndarray:
    from finn.core.onnx_exec import execute_onnx

    return execute_onnx(model, feeds)[model.graph.output[0].name]


def test_residual_fork_and_join_in_nchw_cancel() -> None:
    """x (NHWC) -> T(NCHW) -fork-> [T(NHWC) -> MatMul -> T(NCHW)] + skip -> Add -> MT(NCHW) -> T(NHWC): no
    Transpose left, the threshold channels-last, same output."""
    from onnx import helper

    from samfpga.hw.build.channels_last import ChannelsLast, channel_axis, transposed_elements
    from samfpga.hw.finn_env import boot

    boot()
    nodes = [
        helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2]),
        helper.make_node("Transpose", ["xc"], ["xl"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["xl", "W"], ["m"]),
        helper.make_node("Transpose", ["m"], ["mc"], perm=[0, 3, 1, 2]),
        helper.make_node("Add", ["xc", "mc"], ["r"]),
        helper.make_node("MultiThreshold", ["r", "T"], ["q"], data_layout="NCHW", **MT),
        helper.make_node("Transpose", ["q"], ["y"], perm=[0, 2, 3, 1]),
    ]
    rng = np.random.default_rng(0)
    inits = {"W": rng.integers(-3, 4, size=(8, 8)), "T": np.round(thresholds(8) * 40)}
    model = tiny_graph(nodes, {"x": [1, 4, 5, 8]}, "y", inits, {"x": "INT4", "W": "INT4"})
    out = model.transform(ChannelsLast())
    assert "Transpose" not in _ops(out)
    (mt,) = out.get_nodes_by_op_type("MultiThreshold")
    assert channel_axis(out, mt) == 3
    assert transposed_elements(out) == 0 < transposed_elements(model)
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-8, 8, size=(1, 4, 5, 8)).astype(np.float32)
        np.testing.assert_array_equal(_run(out, {"x": x}), _run(model, {"x": x}))


def test_token_map_transposes_around_a_threshold_collapse() -> None:
    """[1, HW, C] -> T -> Reshape [1, C, H, W] -> MT (channel axis 1) -> T(NHWC): one Reshape and a channels-last
    MT, same output."""
    from onnx import helper

    from samfpga.hw.build.channels_last import ChannelsLast, channel_axis
    from samfpga.hw.finn_env import boot

    boot()
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["xt", "shape"], ["xm"]),
        helper.make_node("MultiThreshold", ["xm", "T"], ["q"], **MT),
        helper.make_node("Transpose", ["q"], ["y"], perm=[0, 2, 3, 1]),
    ]
    inits = {"shape": [1, 6, 3, 4], "T": np.round(thresholds(6) * 40)}
    model = tiny_graph(nodes, {"x": [1, 12, 6]}, "y", inits, {"x": "INT8"})
    out = model.transform(ChannelsLast())
    assert _ops(out) == ["MultiThreshold", "Reshape"]
    assert channel_axis(out, out.graph.node[0]) == 2
    x = np.random.default_rng(1).integers(-128, 128, size=(1, 12, 6)).astype(np.float32)
    np.testing.assert_array_equal(_run(out, {"x": x}), _run(model, {"x": x}))


def test_fork_rule_kept_only_when_it_removes_transposes() -> None:
    """A Transpose feeding two MatMuls (nothing to cancel with) stays one Transpose: duplicating it past the fork
    would move twice the elements."""
    from onnx import helper

    from samfpga.hw.build.channels_last import ChannelsLast

    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["xt", "W"], ["a"]), helper.make_node("MatMul", ["xt", "W"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    model = tiny_graph(nodes, {"x": [1, 4, 6]}, "y", {"W": np.ones((4, 4))}, {"x": "INT8", "W": "INT2"})
    out = model.transform(ChannelsLast())
    assert _ops(out).count("Transpose") == 1


@pytest.mark.slow
def test_encoder_slices_streamline_channels_last(tmp_path, tiny_int_norm_qonnx) -> None:
    """The chain tests' 64² encoder, its stem + MBConv stage (fork and join in NCHW) and first TinyViT block (local
    conv between token and map layouts), each through qonnx_to_finn, tidy_up, streamline with and without
    ChannelsLast: every stage bit-exact with the QONNX slice (tolerance 0), and ChannelsLast leaves fewer
    Transposes: in the block exactly the two around the local conv fewer, the window and head permutations stay."""
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.config import BuildOptions
    from samfpga.hw.build.verify import run_chain, slice_qonnx
    from tests.support.tiny_encoder import INT_VIT_BLOCK, STEM_MBCONV, images

    enc = tiny_int_norm_qonnx  # tiny_encoder_qonnx(int_norm=True), exported once per session (tests/conftest.py)
    stem = slice_qonnx(enc, tmp_path / "stem.onnx", *STEM_MBCONV)
    block = slice_qonnx(enc, tmp_path / "block.onnx", *INT_VIT_BLOCK)
    shape = ModelWrapper(str(block)).get_tensor_shape(INT_VIT_BLOCK[0][0])
    inputs = {stem: images(1, seed=5).numpy(), block: np.random.default_rng(7).normal(size=shape).astype(np.float32)}
    steps = ("qonnx_to_finn", "tidy_up", "streamline")
    transposes = {}
    for path, x in inputs.items():
        for on in (True, False):
            stages = run_chain(path, x, tmp_path / f"{path.stem}_{on}", steps=steps,
                               options=BuildOptions(channels_last=on))
            ref = stages[0].output
            assert np.unique(ref).size > 8
            for st in stages[1:]:
                np.testing.assert_array_equal(st.output.reshape(ref.shape), ref, err_msg=f"{path.stem} {st.step}")
            transposes[path.stem, on] = stages[-1].op_types.get("Transpose", 0)
    assert transposes["stem", True] < transposes["stem", False], transposes
    assert transposes["block", True] == transposes["block", False] - 2, transposes
