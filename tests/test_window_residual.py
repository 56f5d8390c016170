"""``WindowOrderResidual`` (hw/samfpga/hw/build/window_residual.py): the residual around windowed attention taken in
window order. Hand-built HW graphs (fork -> window partition -> body -> unpartition -> join) executed with FINN's
Python execution before and after, at tolerance 0; a refused case left unchanged; the 64² test encoder through the
real build steps with and without the option, bit-exact."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from samfpga.hw import HW_DOMAIN
from tests.support.graphs import hw_graph

C = 4  # channels
# a 4x4 token map (16 tokens) in 2x2 windows: [1, 16, C] <-> [4 windows, 4 tokens, C]
MAP, WIN = [1, 16, C], [4, 4, C]
PARTITION = dict(perm=[0, 1, 3, 2, 4, 5], in_shape=MAP, out_shape=WIN, transpose_in_shape=[1, 2, 2, 2, 2, C],
                 transpose_out_shape=[1, 2, 2, 2, 2, C])
UNPARTITION = dict(perm=[0, 1, 3, 2, 4, 5], in_shape=WIN, out_shape=MAP, transpose_in_shape=[1, 2, 2, 2, 2, C],
                   transpose_out_shape=[1, 2, 2, 2, 2, C])


def _hw(op, ins, outs, name, **attrs):
    return helper.make_node(op, ins, outs, name=name, domain=HW_DOMAIN, backend="fpgadataflow", **attrs)


def _shuffle(inp, out, name, dtype, spec):
    return _hw("Shuffle", [inp], [out], name, data_type=dtype, NumChannels=C, SIMD=1, **spec)


def _thresholds(inp, thr, out, name, vecs):
    # per-channel thresholds on INT4 -> UINT2 (3 steps)
    return _hw("Thresholding", [inp, thr], [out], name, NumChannels=C, PE=1, numSteps=3, inputDataType="INT4",
               weightDataType="INT4", outputDataType="UINT2", numInputVectors=vecs, ActVal=0)


def _window_graph(chains: bool, in_the_way: bool = False):
    """x (INT4, [1,16,C]) -> DuplicateStreams -> [Thresholding] -> [ElementwiseAdd of a per-token constant] ->
    Shuffle (partition) -> Shuffle (swap of tokens within each window: a position-dependent body) -> Shuffle
    (unpartition) -> AddStreams <- [Thresholding] <- skip. ``chains``: the Thresholding layers on the branch (before
    the partition) and on the skip; ``in_the_way``: the per-token constant add (not movable: refused)."""
    from qonnx.core.datatype import DataType

    from samfpga.hw.custom_ops.addstreams import sum_datatype

    rng = np.random.default_rng(0)
    vecs = MAP[:-1]
    nodes = [_hw("DuplicateStreams", ["x"], ["a0", "s0"], "fork", NumChannels=C, PE=1, NumOutputStreams=2,
                 inputDataType="INT4", numInputVectors=vecs)]
    inits, dts = {}, {"x": "INT4"}
    a, s, adt = "a0", "s0", "INT4"
    if chains:
        inits["t1"] = np.sort(rng.integers(-8, 8, size=(C, 3)), axis=1)
        inits["t3"] = np.sort(rng.integers(-8, 8, size=(C, 3)), axis=1)
        nodes += [_thresholds("a0", "t1", "a1", "thr_branch", vecs), _thresholds("s0", "t3", "s1", "thr_skip", vecs)]
        a, s, adt = "a1", "s1", "UINT2"
    if in_the_way:
        inits["pos"] = rng.integers(-3, 4, size=MAP)
        dts["pos"] = "INT4"
        nodes.append(_hw("ElementwiseAdd", [a, "pos"], ["a2"], "pos_add", lhs_dtype=adt, rhs_dtype="INT4",
                         out_dtype="INT8", lhs_shape=MAP, rhs_shape=MAP, out_shape=MAP, lhs_style="input",
                         rhs_style="const"))
        a, adt = "a2", "INT8"
    body = dict(perm=[0, 2, 1, 3], in_shape=WIN, out_shape=WIN, transpose_in_shape=[4, 2, 2, C],
                transpose_out_shape=[4, 2, 2, C])
    nodes += [
        _shuffle(a, "w", "partition", adt, PARTITION),
        _shuffle("w", "v", "body", adt, body),
        _shuffle("v", "u", "unpartition", adt, UNPARTITION),
    ]
    sdt = "UINT2" if chains else "INT4"
    odt = sum_datatype(DataType[adt], DataType[sdt]).name
    nodes.append(_hw("AddStreams", ["u", s], ["r"], "join", NumChannels=C, PE=1, inputDataTypes=[adt, sdt],
                     outputDataType=odt, numInputVectors=vecs, preferred_impl_style="rtl"))
    return _model(nodes, inits, dts)


def _model(nodes, inits, dts):
    """ModelWrapper of ``nodes`` (input x, output r), every tensor's shape given (ONNX shape inference does not
    see a fork's second output nor the own AddStreams output), datatypes from the nodes' attributes."""
    from qonnx.transformation.infer_datatypes import InferDataTypes

    import samfpga.hw.custom_ops  # noqa: F401  (registers AddStreams)

    shapes = {"x": MAP, **{t: WIN if n.name in ("partition", "body") else MAP for n in nodes for t in n.output}}
    return hw_graph(nodes, shapes, ["x"], ["r"], inits, dts, "window_residual").transform(InferDataTypes())


def _run(model, x):
    from finn.core.onnx_exec import execute_onnx

    import samfpga.hw.custom_ops  # noqa: F401  (registers AddStreams)

    return execute_onnx(model, {"x": x})["r"]


def _inputs():
    return np.random.default_rng(1).integers(-8, 8, size=MAP).astype(np.float32)


@pytest.mark.parametrize("chains", [False, True])
def test_window_partition_moves_outside_fork_and_join(chains: bool) -> None:
    import copy

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.window_residual import window_order_residual

    model = _window_graph(chains)
    x = _inputs()
    ref = _run(model, x)
    notes: dict = {}
    out = window_order_residual(copy.deepcopy(model), notes)
    assert notes["window_residual"] == {"moved": ["fork"], "refused": {}}
    got = _run(out, x)
    np.testing.assert_array_equal(got, ref)  # tolerance 0
    assert np.unique(ref).size > 4
    order = [n.name for n in out.graph.node]
    # partition before the fork, unpartition after the join: the skip is in window order
    assert order.index("partition") < order.index("fork") < order.index("body") < order.index("join") \
        < order.index("unpartition")
    assert out.find_producer("x") is None and out.find_consumer("x").name == "partition"
    assert out.graph.output[0].name == "r" and out.find_producer("r").name == "unpartition"
    moved = ["fork", "join", *(["thr_branch", "thr_skip"] if chains else [])]
    for n in out.graph.node:
        if n.name in moved:
            assert list(getCustomOp(n).get_nodeattr("numInputVectors")) == WIN[:-1], n.name
            for t in n.output:
                assert out.get_tensor_shape(t) == WIN, (n.name, t)
    join_dt = out.get_tensor_datatype(out.find_producer("r").input[0])
    assert getCustomOp(out.get_node_from_name("unpartition")).get_nodeattr("data_type") == join_dt.name
    if not chains:
        # numpy model of the graph: the body (a swap of tokens within each 2x2 window) applied in window order;
        # the same body on the row-order stream (the windows taken wrongly) gives another result, so an
        # ordering mistake of the rewrite could not pass
        def body(t):
            return t.reshape(4, 2, 2, C).transpose(0, 2, 1, 3).reshape(WIN)

        def part(t):
            return t.reshape(PARTITION["transpose_in_shape"]).transpose(PARTITION["perm"]).reshape(WIN)

        def unpart(t):
            return t.reshape(UNPARTITION["transpose_in_shape"]).transpose(UNPARTITION["perm"]).reshape(MAP)

        np.testing.assert_array_equal(ref, x + unpart(body(part(x))))
        assert not np.array_equal(ref, x + body(x).reshape(MAP))


def test_non_token_layer_in_the_way_is_refused() -> None:
    """A per-token constant (ElementwiseAdd) between the fork and the partition does not commute with the window
    permutation: the graph is left unchanged and the reason recorded."""
    import copy

    from samfpga.hw.build.window_residual import window_order_residual

    model = _window_graph(chains=True, in_the_way=True)
    before = copy.deepcopy(model.model)
    notes: dict = {}
    out = window_order_residual(model, notes)
    assert notes["window_residual"]["moved"] == []
    assert "ElementwiseAdd pos_add" in notes["window_residual"]["refused"]["fork"]
    assert out.model.SerializeToString() == before.SerializeToString()
    np.testing.assert_array_equal(_run(out, _inputs()), _run(_window_graph(True, True), _inputs()))


def test_channel_moving_shuffle_is_refused() -> None:
    """A 'partition' whose permutation moves the channel axis is not a token permutation: refused, unchanged."""
    import copy

    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.window_residual import window_order_residual

    model = _window_graph(chains=False)
    for name in ("partition", "unpartition"):
        getCustomOp(model.get_node_from_name(name)).set_nodeattr("perm", [0, 1, 3, 2, 5, 4])
    before = copy.deepcopy(model.model)
    notes: dict = {}
    out = window_order_residual(model, notes)
    assert "moves the channel axis" in notes["window_residual"]["refused"]["fork"]
    assert out.model.SerializeToString() == before.SerializeToString()


@pytest.mark.slow
def test_encoder_bit_exact_with_window_residual(tmp_path, tiny_int_norm_qonnx) -> None:
    """The chain tests' 64² int_norm encoder through the build's software steps to ``convert_to_hw``: the
    transformation on that HW graph moves every windowed attention residual (none refused) and FINN's
    python execution stays equal to QONNX's at tolerance 0 (the 64² encoder has one
    windowed block: its later maps are one window each). Then the real ``specialize`` step (where the build
    applies it; specialised layers run only in cppsim/rtlsim, so this stage is checked by structure) with and without
    ``window_residual``: the same forks moved, the same layers, the partitions feeding the forks."""
    import copy
    from pathlib import Path

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS, BuildContext
    from samfpga.hw.build.verify import execute
    from samfpga.hw.build.window_residual import window_order_residual
    from samfpga.hw.finn_env import boot
    from tests.support.tiny_encoder import images

    enc = tiny_int_norm_qonnx  # tiny_encoder_qonnx(int_norm=True), exported once per session (tests/conftest.py)
    x = images(1, seed=5).numpy()
    boot(tmp_path / "finn_build")
    ref = execute(ModelWrapper(str(enc)), x)
    assert np.unique(ref).size > 8

    def ctx_for(on: bool) -> BuildContext:
        work = tmp_path / f"b_{on}"
        return BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(work),
                                            options=BuildOptions(window_residual=on)), out=Path(work))

    model = ModelWrapper(str(enc))
    with installed():
        for name in ("qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw"):
            model = STEPS[name](model, ctx_for(True))
    hw_out = execute(model, x)
    np.testing.assert_array_equal(hw_out.reshape(ref.shape), ref)
    # windowed attention blocks: those with a window partition and unpartition (6-d shuffles); a block whose map is
    # one window (the 64² encoder's later stages) has none and nothing to move
    windowed = sum(n.op_type == "Shuffle" and len(getCustomOp(n).get_nodeattr("perm")) == 6
                   for n in model.graph.node) // 2

    notes: dict = {}
    moved = window_order_residual(copy.deepcopy(model), notes)
    assert len(notes["window_residual"]["moved"]) == windowed > 0, notes
    assert notes["window_residual"]["refused"] == {}
    np.testing.assert_array_equal(execute(moved, x), hw_out)  # tolerance 0

    census, forks = {}, {}
    for on in (True, False):
        ctx = ctx_for(on)
        with installed():
            spec = STEPS["specialize"](copy.deepcopy(model), ctx)
        census[on] = sorted(n.op_type for n in spec.graph.node)
        forks[on] = ctx.results.window_residual
        for fork in forks[on].get("moved", []):
            assert spec.find_producer(spec.get_node_from_name(fork).input[0]).op_type == "Shuffle", fork
    assert forks[False] == {}
    assert len(forks[True]["moved"]) == windowed and forks[True]["refused"] == {}
    assert census[True] == census[False]  # the same layers: the shuffles only moved
