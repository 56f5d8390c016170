"""Integer thresholds of requantizers with a float bias (samfpga.hw.build.threshold_reference), tolerance 0.

A requantizer ``MultiThreshold(fl32(acc * s_acc + b))`` whose bias has bits below float32's ulp of the sum is not
uniform in the reference model: Brevitas (torch) and QONNX add the bias with one float32 rounding, which moves
some breakpoints by one. These tests pin down which thresholds are right: FINN's float32 streamlining reproduces
the reference; the "exact" rational thresholds (uniform, convertible to Requant) do not, so converting them would
change outputs. With the bias on the accumulator grid the reference is uniform and becomes a Requant layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samfpga.hw.build.threshold_reference import (
    bias_chain,
    bias_on_accumulator_grid,
    exact_thresholds,
    execute_float_chain,
    reference_thresholds,
)

S_IN, S_OUT = 2.0**-6, 2.0**-4  # input and output activation scales (po2, as the project's quantizers)
S_W = np.array([2.0**-11, 2.0**-11, 2.0**-10, 2.0**-11], dtype=np.float32)  # per-channel weight scales
# biases with bits below the accumulator grid (as calibrated float biases have): channel 0 is the bundled
# default's MultiThreshold_19 channel 63 (447 * 2**-23), where float32 rounding of the sum moves 191 of 255
# breakpoints; channel 2 moves 223; channel 1 is off the grid too but no breakpoint moves; channel 3 on the grid
BIAS = np.array([447 * 2.0**-23, (-4204 + 2**-7) * 2.0**-17, (810 - 2**-8) * 2.0**-16, -3.0 * 2.0**-17],
                dtype=np.float32)
RADIX = np.array([1, 256, 65536], dtype=np.float32)  # INT8 digits -> every accumulator in about +-2**23


def _half_up_thresholds(out_bits: int = 8) -> np.ndarray:
    """(1, 2**bits - 1) float32: the half steps of a signed round-half-up quantizer with scale S_OUT."""
    k = np.arange(2**out_bits - 1) - (2 ** (out_bits - 1) - 1)
    return ((k - 0.5) * S_OUT).astype(np.float32)[None, :]


def test_torch_adds_the_bias_with_one_float32_rounding() -> None:
    """Brevitas' QuantLinear/QuantConv2d call F.linear / conv2d with the float bias: the result is exactly
    fl32(exact integer sum * scale + bias), the model ``reference_thresholds`` evaluates."""
    g = torch.Generator().manual_seed(0)
    n, k, c = 2048, 64, 64
    x = torch.randint(-128, 128, (n, k), generator=g).float() * 2**-6
    w = torch.randint(-127, 128, (c, k), generator=g).float() * 2**-8  # sums up to ~16: ulp above 2**-23
    b = torch.randint(-(2**20), 2**20, (c,), generator=g).float() * 2**-23
    want = (x.double() @ w.double().T).float() + b  # the sum is exact in float32 here, then one rounding
    exact = x.double() @ w.double().T + b.double()
    assert (want.double() != exact).sum() > 1000  # the rounding does occur
    assert torch.equal(torch.nn.functional.linear(x, w, b), want)
    # a conv over 4x4 feature maps (a 1x1 map with batch 2048 takes another torch path whose sums are not exact)
    fmap = x.reshape(128, 16, k).permute(0, 2, 1).reshape(128, k, 4, 4)
    y = torch.nn.functional.conv2d(fmap, w[:, :, None, None], b).reshape(128, c, 16).permute(0, 2, 1).reshape(n, c)
    assert torch.equal(y, want)


def test_reference_breakpoints_by_direct_evaluation() -> None:
    """Each reference threshold r: fl32(r * s + b) >= T and fl32((r - 1) * s + b) < T; where it differs from
    the exact ceil, the exact one is the wrong side of the float32 comparison."""
    t = _half_up_thresholds()
    s = (S_W * np.float32(S_IN)).astype(np.float32)
    ref = reference_thresholds(t, BIAS, s)
    ex = exact_thresholds(t, BIAS, s)

    def passes(acc: np.ndarray) -> np.ndarray:
        return (acc.astype(np.float32) * s[:, None]).astype(np.float32) + BIAS[:, None] >= t

    assert np.all(passes(ref)) and not np.any(passes(ref - 1))
    assert (ref != ex).sum(axis=1).tolist() == [191, 0, 223, 0]  # channel 0: as in the default's graph
    assert np.all(np.abs(ref - ex) <= 1)


def _bias_graph(bias: np.ndarray, rows: int = 1):
    """INT8 (rows, 3) -> Mul(S_IN) -> MatMul(RADIX x ones) -> Mul(S_W) -> Add(bias) -> MultiThreshold (INT8 out,
    round half up at S_OUT): the shape of a quantized Linear with a float bias after FINN's qonnx_to_finn."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    c = S_W.size
    nodes = [
        helper.make_node("Mul", ["x", "s_in"], ["xs"], name="Mul_0"),
        helper.make_node("MatMul", ["xs", "w"], ["acc"], name="MatMul_0"),
        helper.make_node("Mul", ["acc", "s_w"], ["y0"], name="Mul_1"),
        helper.make_node("Add", ["y0", "b"], ["y"], name="Add_0"),
        helper.make_node("MultiThreshold", ["y", "t"], ["q"], domain="qonnx.custom_op.general", name="MT_0",
                         out_dtype="INT8", out_bias=-128.0, data_layout="NC"),
    ]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "bias_rq", [vi("x", TensorProto.FLOAT, [rows, 3])],
                          [vi("q", TensorProto.FLOAT, [rows, c])])
    m = ModelWrapper(qonnx_make_model(g))
    m.set_initializer("s_in", np.array(S_IN, dtype=np.float32))
    m.set_initializer("w", np.repeat(RADIX[:, None], c, axis=1))
    m.set_initializer("s_w", S_W[None, :])
    m.set_initializer("b", bias.astype(np.float32))
    m.set_initializer("t", _half_up_thresholds())
    m.set_tensor_datatype("x", DataType["INT8"])
    m.set_tensor_datatype("w", DataType["INT32"])
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    # names as FINN's tidy_up gives them (streamlining renames tensors and nodes the same way again)
    m = m.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())
    return m.transform(InferShapes()).transform(InferDataTypes())


def _digits(acc: np.ndarray) -> np.ndarray:
    """INT8 digits (n, 3) with ``d0 + 256 d1 + 65536 d2 == acc`` (|acc| < 2**23)."""
    acc = acc.astype(np.int64)
    d0 = (acc + 128) % 256 - 128
    r = (acc - d0) // 256
    d1 = (r + 128) % 256 - 128
    d2 = (r - d1) // 256
    out = np.stack([d0, d1, d2], axis=1)
    assert np.all(np.abs(out) <= 128) and np.all(out @ RADIX.astype(np.int64) == acc)
    return out.astype(np.float32)


def _streamlined(m):
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    m = m.transform(Streamline()).transform(RoundAndClipThresholds())
    ops = [n.op_type for n in m.graph.node]
    assert ops == ["MatMul", "MultiThreshold"], ops  # every scale and the bias absorbed into the thresholds
    return m


def _run(m, x: np.ndarray) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(m, {m.graph.input[0].name: x})[m.graph.output[0].name]


def _breakpoint_inputs(*tables: np.ndarray) -> np.ndarray:
    """Every accumulator at and just below each threshold of each table (all channels), as INT8 digit rows."""
    acc = np.unique(np.concatenate([np.concatenate([t.ravel(), t.ravel() - 1]) for t in tables]))
    acc = acc[np.abs(acc) < 2**23 - 1]
    return _digits(acc)


@pytest.mark.parametrize("ch", [0, 2])
def test_streamlined_thresholds_equal_the_float32_reference(ch: int) -> None:
    """FINN's float32 streamlining (AbsorbAddIntoMultiThreshold computes fl32(T - b)) gives exactly the
    reference breakpoints; the rational ones differ, and a graph holding them differs from the QONNX-style graph
    on the inputs at those breakpoints (why InferExactRequant must keep these tables)."""
    chain = bias_chain(*_with_mt(_bias_graph(BIAS)))
    assert chain is not None and np.array_equal(chain.bias, BIAS)
    ref = reference_thresholds(chain.thresholds, chain.bias, chain.acc_scale)
    ex = exact_thresholds(chain.thresholds, chain.bias, chain.acc_scale)
    x = _breakpoint_inputs(ref[ch], ex[ch])
    m = _bias_graph(BIAS, rows=x.shape[0])
    s = _streamlined(m)
    g = s.get_initializer(s.graph.node[1].input[1]).astype(np.float64)
    np.testing.assert_array_equal(g, ref)
    # execution, tolerance 0: original float graph == streamlined graph at every breakpoint of channel ``ch``
    want = _run(m, x)
    np.testing.assert_array_equal(_run(s, x), want)
    bad = s.transform(_SetThresholds(ex))
    n_diff = int((_run(bad, x)[:, ch] != want[:, ch]).sum())
    assert n_diff == int((ref[ch] != ex[ch]).sum()) > 0


def _with_mt(m):
    return m, m.get_nodes_by_op_type("MultiThreshold")[0]


class _SetThresholds:
    def __init__(self, t: np.ndarray) -> None:
        self.t = t

    def apply(self, model):
        mt = model.get_nodes_by_op_type("MultiThreshold")[0]
        model.set_initializer(mt.input[1], self.t.astype(np.float32))
        return model, False


def test_bias_on_accumulator_grid_is_uniform_and_becomes_requant() -> None:
    """With the bias on the accumulator grid the reference is exact and uniform: InferExactRequant converts it,
    and FINN's Requant execution equals the float graph at every breakpoint (tolerance 0)."""
    from samfpga.hw.build.requant import InferExactRequant
    from samfpga.hw.finn_env import boot

    boot(None)
    s_acc = (S_W * np.float32(S_IN)).astype(np.float32)
    b = bias_on_accumulator_grid(BIAS, s_acc)
    ref = reference_thresholds(_half_up_thresholds(), b, s_acc)
    np.testing.assert_array_equal(ref, exact_thresholds(_half_up_thresholds(), b, s_acc))
    x = _breakpoint_inputs(ref[:, ::7])
    m = _bias_graph(b, rows=x.shape[0])
    s = _streamlined(m)
    np.testing.assert_array_equal(s.get_initializer(s.graph.node[1].input[1]), ref)
    r = s.transform(InferExactRequant())
    assert [n.op_type for n in r.graph.node] == ["MatMul", "Requant"]
    np.testing.assert_array_equal(_run(r, x), _run(m, x))


def test_use_reference_thresholds_restores_breakpoints() -> None:
    """UseReferenceThresholds (recorded before streamlining by RecordBiasChains) puts the reference breakpoints
    back where float32 streamlining is one off (simulated here: the default's depthwise-conv requantizer
    MultiThreshold_57 had 14 such levels, bench/results/thresholds_exact.json), and leaves a node whose
    thresholds are further off alone (another requantizer, not a rounding)."""
    import json

    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    from samfpga.hw.build.threshold_reference import RecordBiasChains, UseReferenceThresholds

    s_acc = (S_W * np.float32(S_IN)).astype(np.float32)
    ref = reference_thresholds(_half_up_thresholds(), BIAS, s_acc)
    x = _breakpoint_inputs(ref[[0, 2]])
    m = _bias_graph(BIAS, rows=x.shape[0]).transform(RecordBiasChains())
    s = _streamlined(m).transform(RoundAndClipThresholds())
    t = s.get_initializer(s.graph.node[1].input[1]).copy()
    t[0, 100] += 1
    t[2, 17] -= 1
    off = s.transform(_SetThresholds(t))
    assert np.any(_run(off, x) != _run(m, x))
    fixed = off.transform(UseReferenceThresholds())
    assert json.loads(fixed.get_metadata_prop("samfpga_reference_thresholds"))["levels_changed"] == 2
    np.testing.assert_array_equal(fixed.get_initializer(fixed.graph.node[1].input[1]), ref)
    np.testing.assert_array_equal(_run(fixed, x), _run(m, x))
    t[1, 50] += 3
    far = s.transform(_SetThresholds(t)).transform(UseReferenceThresholds())
    assert json.loads(far.get_metadata_prop("samfpga_reference_thresholds"))["nodes"] == 0
    np.testing.assert_array_equal(far.get_initializer(far.graph.node[1].input[1]), t)


@pytest.mark.slow
def test_stem_chain_reference_thresholds(tmp_path, tiny_qonnx) -> None:
    """The 64² test encoder's stem + MBConv slice through qonnx_to_finn, tidy_up, streamline and the start of
    convert_to_hw: every float-bias requantizer matched, and its thresholds after UseReferenceThresholds are the
    breakpoints of the original float nodes as QONNX executes them (tolerance 0: each level flips exactly at its
    threshold), whatever float32 streamlining computed."""
    import json

    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.build.threshold_reference import UseReferenceThresholds
    from samfpga.hw.build.verify import slice_qonnx
    from samfpga.hw.finn_env import boot
    from tests.support.tiny_encoder import STEM_MBCONV

    boot(tmp_path / "finn_build")
    import samfpga.hw.custom_ops  # noqa: F401

    sliced = slice_qonnx(tiny_qonnx, tmp_path / "stem.onnx", *STEM_MBCONV)
    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(tmp_path)), out=tmp_path)
    model = ModelWrapper(str(sliced))
    for step in ("qonnx_to_finn", "tidy_up"):
        model = STEPS[step](model, ctx)
    tidy = ModelWrapper(model.model.__deepcopy__())
    model = STEPS["streamline"](model, ctx)
    chains = json.loads(model.get_metadata_prop("samfpga_bias_chains"))
    model = model.transform(RoundAndClipThresholds()).transform(UseReferenceThresholds())
    done = json.loads(model.get_metadata_prop("samfpga_reference_thresholds"))
    assert len(chains) >= 3 and done["nodes"] == len(chains), (len(chains), done)
    for rec in chains.values():
        name = rec["node"]
        t = model.get_initializer(model.get_node_from_name(name).input[1]).astype(np.float64)  # (C, N)
        c, n = t.shape
        acc_scale = np.array(rec["acc_scale"], dtype=np.float32)
        mt = tidy.get_node_from_name(name)
        s_w = tidy.get_initializer(tidy.find_producer(tidy.find_producer(mt.input[0]).input[0]).input[1]).ravel()
        s_in = float(acc_scale[0]) / float(s_w[0])  # acc_scale = s_in * s_w
        for delta, passed in ((0, 1), (-1, 0)):  # at each threshold level k+1 is reached, one below it is not
            acc = (t + delta).T  # (N, C): row k holds every channel's threshold k
            levels = execute_float_chain(tidy, name, (acc * s_in).astype(np.float32))
            ob = int(getCustomOp(mt).get_nodeattr("out_bias"))
            want = np.arange(n)[:, None] + passed + ob
            inside = np.abs(acc) < 2**23  # clipped (unreachable) thresholds aside
            np.testing.assert_array_equal(levels[inside], np.broadcast_to(want, acc.shape)[inside],
                                          err_msg=f"{name} delta {delta}")
