"""The ``quant`` backend's integer executor (samfpga.intexec over samfpga.kernels, numpy only) against FINN's
Python execution (finn/qonnx ``execute_onnx``, FINN's per-layer Python models of the specialised layers) of the
same build, and the deployment package of that build under ``quant``.

Build: the whole tiny 64x64 test encoder (tests/test_quant.py's TINY, seeded random weights, W8A8 PTQ) through
``samfpga build-hw`` (every software step but HDL generation: tests/support/tiny_deploy.py), built in the test,
once with FINN+'s float LayerNorm/softmax and once with ``--int-ops`` (the project's IntLayerNorm/IntSoftmax:
integer end to end, so there every tensor, float or not, must be equal).

Tolerances: integer layers 0 (bit-exact). The float layers FINN+ runs on Zynq (LayerNorm via torch, HWSoftmax via
scipy) are reproduced in numpy float32; LayerNorm can differ in the last ulp from torch's reduction order
(measured and printed); the test requires every integer tensor of the graph and the encoder output to be equal.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from samfpga.backends.packing import pack, unpack


@pytest.mark.parametrize("dt, simd", [("INT8", 4), ("UINT4", 3), ("INT3", 5), ("FLOAT32", 3), ("INT19", 2),
                                      ("UINT8", 1), ("BIPOLAR", 5), ("INT16", 2), ("UINT2", 7)])
def test_packing_matches_finn(dt: str, simd: int) -> None:
    """pack/unpack == FINN's finnpy_to_packed_bytearray / packed_bytearray_to_finnpy (reverse_inner and
    reverse_endian, as FINN's driver calls them)."""
    from samfpga.hw.finn_env import boot

    boot()
    from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy
    from qonnx.core.datatype import DataType

    rng = np.random.default_rng(0)
    d = DataType[dt]
    if dt == "FLOAT32":
        x = rng.normal(size=(2, 6, simd)).astype(np.float32)
    elif dt == "BIPOLAR":
        x = rng.choice([-1.0, 1.0], size=(2, 6, simd)).astype(np.float32)
    else:
        x = rng.integers(int(d.min()), int(d.max()) + 1, size=(2, 6, simd)).astype(np.float32)
    ref = finnpy_to_packed_bytearray(x, d, reverse_inner=True, reverse_endian=True)
    got = pack(x, dt)
    np.testing.assert_array_equal(got, ref)
    back = packed_bytearray_to_finnpy(np.ascontiguousarray(ref), d, x.shape, reverse_inner=True, reverse_endian=True)
    np.testing.assert_array_equal(unpack(got, dt, simd), back)


@pytest.mark.parametrize("spec", ["layernorm_negate_int20", "softmax_bias"])
def test_int_ops_nodes_bit_identical_to_finn(spec: str) -> None:
    """IntLayerNorm (negated channels, INT20 inputs as wide as a conv accumulator) and IntSoftmax (with its bias
    table input, a float32 initializer in the graph and in weights.npz; INT11 logits, so that the rows are not
    one-hot), each a one-node graph after specialisation and HDL generation (samfpga.hw.sim.nodes):
    samfpga.intexec's output equals FINN's execution of the node (the custom ops' execute_node), tolerance 0.
    The tiny build has neither negated channels nor an attention bias (random weights): those paths are here."""
    from finn.core.onnx_exec import execute_onnx

    from samfpga.hw.build.package import intgraph_spec
    from samfpga.hw.sim import nodes
    from samfpga.intexec.executor import IntGraph

    rng = np.random.default_rng(7)
    if spec == "softmax_bias":
        node_spec = nodes.int_softmax(n=8, pe=2, heads=2, windows=3, idt="INT11")
    else:
        node_spec = nodes.int_layernorm(ch=24, pe=2, n=7, idt="INT20", eps=3.0e4)
    model = nodes.build_hw_graph([node_spec])
    spec_json, weights = intgraph_spec(model, None)
    g = IntGraph(spec_json, weights)
    assert [n.op for n in g.nodes] == [node_spec.op_type]
    name, (shape, dt) = next(iter(node_spec.inputs.items()))
    for _ in range(3):
        x = nodes._rand(dt, shape, rng)
        ref = execute_onnx(model, {name: x})[model.graph.output[0].name]
        got = g.run(x)
        assert np.unique(ref).size > 20
        np.testing.assert_array_equal(got, ref)
    if spec == "softmax_bias":
        assert len(g.nodes[0].inputs) == 2 and np.abs(weights[g.nodes[0].inputs[1]]).max() > 0
    else:
        assert any(g.nodes[0].attrs["negate"]) and np.abs(x).max() > 1 << 16


@pytest.fixture(scope="module", params=[False, True], ids=["float_ops", "int_ops"])
def tiny_build(request, tmp_path_factory, tiny_qonnx):
    """(build dir, bundle dir) of the whole tiny encoder through samfpga build-hw (tests/support/tiny_deploy.py),
    with FINN+'s float LayerNorm/softmax and with the project's integer ones (``--int-ops``). Both from the session's
    export (``tiny_qonnx``); the ``--int-ops`` build is the session's ``tiny_int_ops_build`` (test_fit_memory reads
    its report)."""
    if request.param:
        return request.getfixturevalue("tiny_int_ops_build")
    from tests.support.tiny_deploy import build

    return build(tmp_path_factory.mktemp("tiny_build"), int_ops=False, qonnx=tiny_qonnx)


def _inputs(n: int, build_dir) -> list[np.ndarray]:
    """Graph inputs of the build: uint8 pixels (1, 64, 64, 3) for a pixel-input build (the default), else
    normalised float images (1, 3, 64, 64)."""
    from samfpga.hw.build.package import pixel_input_info
    from tests.support.tiny_encoder import images

    if pixel_input_info(build_dir) is not None:
        rng = np.random.default_rng(100)
        return [rng.integers(0, 256, size=(1, 64, 64, 3)).astype(np.float32) for _ in range(n)]
    return [images(1, seed=100 + i).numpy().astype(np.float32) for i in range(n)]


@pytest.mark.slow
def test_every_node_on_random_inputs(tiny_build) -> None:
    """Each node of the final graph alone, on random inputs of its input datatypes: samfpga.kernels vs FINN's
    execute_node of the same node (python view): integer outputs tolerance 0, float outputs (LayerNorm, HWSoftmax,
    float element-wise) rtol 4e-6 (the count of last-ulp differences is printed); every node type covered."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.package import intgraph_spec, load_build, python_view
    from samfpga.intexec.executor import _OPS, IntGraph

    final, parent, _ = load_build(tiny_build[0])
    view = python_view(final)
    spec, weights = intgraph_spec(final, None)
    g = IntGraph(spec, weights)
    rng = np.random.default_rng(0)
    covered: dict[str, int] = {}
    ulp: dict[str, int] = {}
    for node, gnode in zip(view.graph.node, g.nodes, strict=True):
        ctx = {}
        for t in node.input:
            init = view.get_initializer(t)
            if init is not None:
                ctx[t] = init
                continue
            shape, dt = view.get_tensor_shape(t), view.get_tensor_datatype(t)
            if dt.is_integer():
                lo, hi = int(dt.min()), int(dt.max())
                ctx[t] = rng.integers(max(lo, -2**20), min(hi, 2**20) + 1, size=shape).astype(np.float32)
            else:
                ctx[t] = (rng.normal(size=shape) * 4).astype(np.float32)
        ours_in = [ctx[t] if view.get_initializer(t) is None else weights[t] for t in node.input]
        for t in node.output:
            ctx[t] = np.zeros(view.get_tensor_shape(t), dtype=np.float32)
        try:
            getCustomOp(node).execute_node(ctx, view.graph)
        except ValueError as e:  # AddStreams refuses random sums outside its output type: not a layer input
            assert "exceeds" in str(e)
            continue
        ours = _OPS[gnode.op](g, gnode, [x.astype(np.float64) if DataType[g.dtype(t)].is_integer() else x
                                         for x, t in zip(ours_in, node.input, strict=True)])
        for t, v in zip(node.output, ours, strict=True):
            mine = np.asarray(v, np.float32).reshape(ctx[t].shape)
            if DataType[g.dtype(t)].is_integer():
                np.testing.assert_array_equal(mine, ctx[t], err_msg=f"{node.name} ({node.op_type}) output {t}")
            else:  # float layers: numpy float32 vs torch/scipy float32, last-ulp differences allowed
                np.testing.assert_allclose(mine, ctx[t], rtol=4e-6, atol=1e-6, err_msg=f"{node.name} output {t}")
                ulp[gnode.op] = ulp.get(gnode.op, 0) + int(np.count_nonzero(mine != ctx[t]))
                ulp[gnode.op + " values"] = ulp.get(gnode.op + " values", 0) + mine.size
        covered[gnode.op] = covered.get(gnode.op, 0) + 1
    print("node types compared:", covered)
    print("float outputs differing in the last ulp(s):", ulp)
    # on Zynq the depthwise convs run on the project's own RTL VVAU (DepthwiseVVAU) and every Shuffle on the own
    # PagePermute, so neither VVAU nor OuterShuffle is left in the final graph; with int_ops the
    # project's IntLayerNorm / IntSoftmax replace every float LayerNorm / HWSoftmax
    int_ops = json.loads((tiny_build[0] / "build_config.json").read_text())["options"]["int_ops"]
    norm = {"IntLayerNorm", "IntSoftmax"} if int_ops else set()
    float_layers = {"LayerNorm", "HWSoftmax"}
    assert {"Thresholding", "MVAU", "DepthwiseVVAU", "ConvolutionInputGenerator", "FMPadding", "AddStreams",
            "DuplicateStreams", "PagePermute"} | (norm or float_layers) <= set(covered), covered
    assert not {"VVAU", "OuterShuffle"} & set(covered), covered
    if norm:
        assert not float_layers & set(covered) and ulp == {}, (covered, ulp)


@pytest.mark.slow
def test_whole_encoder_bit_identical_to_finn(tiny_build, tmp_path) -> None:
    from finn.core.onnx_exec import execute_onnx

    from samfpga.hw.build.package import finn_execute, intgraph_spec, load_build, python_view
    from samfpga.intexec.executor import IntGraph

    final, parent, _ = load_build(tiny_build[0])
    spec, weights = intgraph_spec(final, parent)
    g = IntGraph(spec, weights)
    view = python_view(final)
    for x in _inputs(3, tiny_build[0]):
        ref = finn_execute(tiny_build[0], x, tmp_path)
        got = g.run(x)
        assert np.unique(ref).size > 50  # a non-trivial embedding
        np.testing.assert_array_equal(got.reshape(ref.shape), ref)
        # every tensor of the accelerator graph (integer and float streams)
        a_in = g.run_host_pre(x)
        ctx = execute_onnx(view, {view.graph.input[0].name: a_in.astype(np.float32)}, return_full_exec_context=True)
        ours = g.run_all(x)
        float_ulp = 0
        for t, v in ctx.items():
            name = {final.graph.input[0].name: spec["accelerator"]["input"],
                    final.graph.output[0].name: spec["accelerator"]["output"]}.get(t, t)
            if name not in ours:
                continue
            mine = np.asarray(ours[name], np.float32).reshape(v.shape)
            if g.dtype(name).startswith("FLOAT"):
                float_ulp += int(np.count_nonzero(mine != v))
                np.testing.assert_allclose(mine, v, rtol=2e-6, atol=1e-6, err_msg=t)
            else:
                np.testing.assert_array_equal(mine, v, err_msg=t)
        print(f"float tensors: {float_ulp} values differ in the last ulp(s); all integer tensors equal")
        if json.loads((tiny_build[0] / "build_config.json").read_text())["options"]["int_ops"]:
            assert float_ulp == 0  # no float layer inside the accelerator


@pytest.mark.slow
def test_engine_program_equals_finn(tiny_int_ops_build) -> None:
    """The layer-sequential engine's program for the fresh ``--int-ops`` build (samfpga.hw.sim.engine_program: the
    GEMM unit's model on its DDR weight image, the depthwise unit, LayerNorm, softmax, requantiser lanes, the
    readers' and writers' address patterns) against FINN's python execution of the final graph: every tensor the
    program stores, tolerance 0 (tests/test_engine_program.py does the same on the committed package)."""
    from finn.core.onnx_exec import execute_onnx

    from samfpga.hw.build.package import intgraph_spec, load_build, python_view
    from samfpga.hw.sim.engine_program import compile_program, engine_unit, run_program
    from samfpga.intexec.executor import IntGraph

    final, parent, _ = load_build(tiny_int_ops_build[0])
    spec, weights = intgraph_spec(final, parent)
    g = IntGraph(spec, weights)
    prog = compile_program(g, engine_unit(g, pe=8, simd=16, batch=16))
    view = python_view(final)
    names = {spec["accelerator"]["input"]: final.graph.input[0].name,
             spec["accelerator"]["output"]: final.graph.output[0].name}
    for x in _inputs(2, tiny_int_ops_build[0]):
        a_in = g.run_host_pre(x)
        ctx = execute_onnx(view, {view.graph.input[0].name: a_in.astype(np.float32)}, return_full_exec_context=True)
        mem = run_program(prog, a_in)
        compared = 0
        for step in prog.steps:
            name = names.get(step.output, step.output)
            if name in ctx:
                np.testing.assert_array_equal(prog.graph_order(step.output, mem[step.output]), ctx[name].ravel().astype(np.int64), err_msg=step.name)
                compared += 1
        assert compared == len([s for s in prog.steps if s.kind != "vt"])
        out = ctx[final.graph.output[0].name]
        assert np.unique(out).size > 20
        np.testing.assert_array_equal(mem[prog.output], out.ravel().astype(np.int64))


@pytest.mark.slow
def test_deploy_package_quant(tiny_build, tmp_path) -> None:
    """samfpga deploy BUILD --out PKG --bundle B --check; the package's quant backend equals FINN's execution.
    (pynq-sim needs pynq, which lives in the board environment: tests/runtime/test_backends_tiny_deploy.py runs
    it on the committed package of this same build.)"""
    from samfpga.backends import create_backend
    from samfpga.backends.quant_backend import to_nchw
    from samfpga.cli import main
    from samfpga.deploy import load_package
    from samfpga.hw.build.package import finn_execute

    pkg_dir = tmp_path / "pkg"
    assert main(["deploy", str(tiny_build[0]), "--out", str(pkg_dir), "--bundle", str(tiny_build[1]),
                 "--check"]) == 0
    pkg = load_package(pkg_dir)
    assert pkg.manifest["absent"]["bitfile"] and pkg.bitfile is None
    quant = create_backend("quant", pkg.bundle, package=pkg)
    assert pkg.input.pixels
    rng = np.random.default_rng(4)
    for hw in ((64, 64), (64, 41)):  # the uint8 image the predictor gives, square and padded with the pad codes
        img = rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)
        ref = finn_execute(tiny_build[0], pkg.input.pixel_tensor(img, 64).astype(np.float32), tmp_path / "w")
        got = quant.encode_image(img, pkg.bundle.pixel_mean, pkg.bundle.pixel_std)
        np.testing.assert_array_equal(got, to_nchw(ref, tuple(pkg.bundle.embedding_shape)))


@pytest.mark.slow
def test_deploy_engine_package(tiny_int_ops_build, tmp_path) -> None:
    """The engine's path to a package on the fresh ``--int-ops`` build: the engine build (``samfpga build-hw
    --engine --graph``, here with the tiny encoder's config, which ``--variant`` cannot name) on its exported graph
    at the tiny program's widths, then ``samfpga deploy BUILD --engine ENGINE_BUILD --check``: the
    package's platform is the engine's, its engine/ holds the build's host files (checked by the package loader
    against the graph's accelerator tensors), its DMA description and DDR image are gone. The board-environment
    tests run such a package on the simulated board (tests/runtime/test_engine_board.py); the host code on the RTL:
    tests/test_sim_engine_gemm_path.py."""
    from samfpga.backends.engine_host import read_engine_host
    from samfpga.cli import main
    from samfpga.deploy import load_package
    from samfpga.hw.build.package import export_build

    build, bundle = tiny_int_ops_build
    export_build(build, tmp_path / "graph")
    from samfpga.hw.engine.build import EngineBuildConfig, run_engine_build
    from tests.test_engine_build import SPACE, _tiny_encoder

    eng = tmp_path / "engine"
    b = run_engine_build(EngineBuildConfig(board="kv260", graph=str(tmp_path / "graph"), output_dir=str(eng),
                                           encoder_config=_tiny_encoder(), space=SPACE), say=lambda *_: None)
    assert b.host and b.stopped.startswith("bitstream")
    pkg_dir = tmp_path / "pkg"
    assert main(["deploy", str(build), "--out", str(pkg_dir), "--bundle", str(bundle), "--engine", str(eng),
                 "--check"]) == 0
    pkg = load_package(pkg_dir)
    assert pkg.driver["platform"] == "engine" and "dma" not in pkg.driver and pkg.bitfile is None
    assert not (pkg_dir / "ddr_weights.bin").exists()
    for f in ("host.json", "ddr.bin"):
        assert (pkg_dir / "engine" / f).read_bytes() == (eng / "host" / f).read_bytes()
    host = read_engine_host(pkg_dir / "engine")
    assert len(host.steps) == 41 and host.spec["input"]["tensor"] == pkg.intgraph().accel["input"]
