"""``ChannelsLast`` (hw/samfpga/hw/build/channels_last.py): the layout transposes of the two patterns the encoder
has (the MBConv residual forked and joined in NCHW; TinyViT's local conv between ``[B, HW, C] -> [B, C, H, W]`` and
back, with a channel-first threshold inside) sink until they cancel; outputs equal at tolerance 0. A transpose
that cannot cancel is not multiplied by the fork rule, and the whole tiny encoder streamlines with only the window
and head shuffles left, bit-exact with Brevitas."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_finn_streamline import _thresholds, _tiny_graph

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
    inits = {"W": rng.integers(-3, 4, size=(8, 8)), "T": np.round(_thresholds(8) * 40)}
    model = _tiny_graph(nodes, {"x": [1, 4, 5, 8]}, "y", inits, {"x": "INT4", "W": "INT4"})
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
    inits = {"shape": [1, 6, 3, 4], "T": np.round(_thresholds(6) * 40)}
    model = _tiny_graph(nodes, {"x": [1, 12, 6]}, "y", inits, {"x": "INT8"})
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
    model = _tiny_graph(nodes, {"x": [1, 4, 6]}, "y", {"W": np.ones((4, 4))}, {"x": "INT8", "W": "INT2"})
    out = model.transform(ChannelsLast())
    assert _ops(out).count("Transpose") == 1


def _streamlined(onnx_path, work, channels_last: bool):  # noqa: FBT001
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.context import BuildContext
    from samfpga.hw.build.steps import STEPS
    from samfpga.hw.finn_env import boot

    boot(work / "finn_build")
    opts = BuildOptions(channels_last=channels_last)
    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(work), options=opts), out=work)
    model = ModelWrapper(str(onnx_path))
    for step in ("qonnx_to_finn", "tidy_up", "streamline"):
        model = STEPS[step](model, ctx)
    return model


def _map_transposes(model) -> int:
    """Transposes between a [1, HW, C] / [1, H, W, C] layout and a channel-first one, except the input's (which
    the host does): what ChannelsLast removes."""
    count = 0
    for n in model.get_nodes_by_op_type("Transpose"):
        shape = model.get_tensor_shape(n.input[0])
        perm = list(n.attribute[0].ints)
        src = model.find_producer(n.input[0])
        from_input = src is not None and src.input[0] == model.graph.input[0].name
        if shape[0] == 1 and perm in ([0, 3, 1, 2], [0, 2, 3, 1], [0, 2, 1]) and not from_input:
            count += 1
    return count


@pytest.mark.slow
def test_tiny_encoder_streamlines_channels_last(tmp_path) -> None:
    """The chain tests' whole 64² encoder (int_norm) through qonnx_to_finn, tidy_up, streamline without
    ChannelsLast, and with it applied after: both bit-exact with Brevitas at tolerance 0; with it no NCHW <-> NHWC map transpose is left
    (only the window partition/reverse and head split/merge permutations), without it there are several."""
    import torch

    from samfpga.hw.build.channels_last import ChannelsLast
    from samfpga.hw.build.verify import execute
    from samfpga.models.quant import export_qonnx
    from tests.support.tiny_encoder import images, tiny_quant_encoder

    q = tiny_quant_encoder(int_norm=True)
    onnx_path = export_qonnx(q, tmp_path / "enc.onnx", (1, 3, 64, 64))
    x = images(1, seed=5)
    with torch.no_grad():
        ref = q(x).numpy()
    off = _streamlined(onnx_path, tmp_path / "off", False)
    on = off.transform(ChannelsLast())  # what step_streamline runs last with options.channels_last
    for model in (on, off):
        np.testing.assert_array_equal(execute(model, x.numpy()).reshape(ref.shape), ref)
    assert _map_transposes(off) >= 4
    assert _map_transposes(on) == 0
