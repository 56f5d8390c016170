"""Verification chain of the FINN build: QONNX -> FINN-ONNX -> streamlined -> HW layers.

Input: the quantized encoder exported by samfpga.models.quant (seeded random TinyViT of the default ReLU
student family at 64x64, one block per stage: tests/test_quant.py's TINY, W8A8 po2 scales, PTQ-calibrated).
The whole encoder takes several minutes through the flow on the 2-core CI machine, so the chain runs on reduced
SLICES of that graph: the stem (conv+BN+ReLU, conv) with the first MBConv (1x1, depthwise 3x3, 1x1, residual add,
ReLU), and the first TinyViT block. Each stage is executed with finn.core.onnx_exec.execute_onnx on the same input
and compared with the previous stage: tolerance 0 (bit-exact; power-of-two scales make every float op on these
integers exact; the round-half-up activation quantizers, exported as Add(s/2) -> Quant(FLOOR), become uniform
thresholds and then arithmetic Requant layers, see hw/samfpga/hw/build/quant_rounding.py and requant.py). The full encoder runs through the same steps in bench/hw_estimates.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samfpga.hw.build.config import BuildOptions
from samfpga.hw.build.verify import run_chain, slice_qonnx
from tests.support.tiny_encoder import STEM_MBCONV, VIT_BLOCK, images

HEAVY_OPS = {"Conv", "MatMul", "MultiThreshold", "Add", "Mul", "Relu"}  # must not stay on the host
BLOCK_OPS = HEAVY_OPS | {"Split", "Softmax", "LayerNormalization"}


@pytest.fixture(scope="module")
def encoder_qonnx(tiny_qonnx: Path) -> Path:
    """``tiny_encoder_qonnx()``, exported once per session (tests/conftest.py)."""
    return tiny_qonnx


@pytest.fixture(scope="module")
def stem_chain(encoder_qonnx, tmp_path_factory):
    d = tmp_path_factory.mktemp("chain")
    sliced = slice_qonnx(encoder_qonnx, d / "stem_mbconv.onnx", *STEM_MBCONV)
    x = images(1, seed=5).numpy().astype(np.float32)
    return run_chain(sliced, x, d / "work")


@pytest.fixture(scope="module")
def block_chain(encoder_qonnx, tmp_path_factory):
    d = tmp_path_factory.mktemp("chain_block")
    sliced = slice_qonnx(encoder_qonnx, d / "vit_block.onnx", *VIT_BLOCK)
    from qonnx.core.modelwrapper import ModelWrapper

    shape = ModelWrapper(str(sliced)).get_tensor_shape("Conv_7_out0")
    x = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    # the float-LayerNorm model: its LayerNorm / softmax stay float (int_ops would replace them approximately;
    # the integer chain is tests/test_int_norm_chain.py)
    return run_chain(sliced, x, d / "work", options=BuildOptions(int_ops=False))


def test_each_stage_bit_exact(stem_chain) -> None:
    names = [s.step for s in stem_chain]
    assert names == ["qonnx", "qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw"]
    ref = stem_chain[0].output
    assert ref.shape == (1, 16, 16, 16) or ref.size == 16 * 16 * 16
    assert np.unique(ref).size > 8  # a non-trivial output (not all zeros / saturated)
    for prev, cur in zip(stem_chain, stem_chain[1:], strict=False):
        np.testing.assert_array_equal(cur.output.reshape(ref.shape), prev.output.reshape(ref.shape),
                                      err_msg=f"{cur.step} differs from {prev.step}")


def test_slice_on_hw_layers(stem_chain) -> None:
    hw = stem_chain[-1]
    print(f"HW graph: {hw.hw_nodes}/{hw.nodes} nodes on HW layers; host: {hw.host_nodes}; ops {hw.op_types}")
    left = [(n, op) for n, op in hw.host_nodes if op in HEAVY_OPS]
    assert not left, f"compute nodes left on the host: {left}"
    assert hw.hw_nodes / hw.nodes >= 0.8
    # integer-input channels-last requantizers are arithmetic; thresholds remain for the float graph input's
    # quantizer, a channel-first (NCHW) one and where float32 bias absorption left integer thresholds one off
    # uniform (measured: 4 Requant, 3 Thresholding)
    assert hw.op_types.get("Requant", 0) >= 4 and hw.op_types.get("Thresholding", 0) <= 3, hw.op_types


def test_vit_block_chain(block_chain) -> None:
    """Transformer block (LayerNorm, qkv Linear, StreamingSplit, QK^T, softmax, AV, proj, residual, local conv,
    LayerNorm + MLP, residual): every stage equal to the previous one, tolerance 0, and every compute node on a
    HW layer. Softmax and LayerNorm stay float in FINN+ (HWSoftmax, LayerNorm HW layers), whose float32 results
    may differ in the last ulp from onnxruntime's (measured: 1.2e-7 on some LayerNorm outputs after convert_to_hw);
    such a difference changes a quantized output only if the value lies within an ulp of a threshold, which does
    not happen for this input (measured: 0 of 2048 block outputs differ at every stage)."""
    names = [s.step for s in block_chain]
    assert names == ["qonnx", "qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw"]
    ref = block_chain[0].output
    assert ref.size == 32 * 8 * 8 and np.unique(ref).size > 32  # a non-trivial block output
    for prev, cur in zip(block_chain, block_chain[1:], strict=False):
        np.testing.assert_array_equal(cur.output.reshape(ref.shape), prev.output.reshape(ref.shape),
                                      err_msg=f"{cur.step} differs from {prev.step}")
    hw = block_chain[-1]
    print(f"HW graph: {hw.hw_nodes}/{hw.nodes} nodes on HW layers; host: {hw.host_nodes}; ops {hw.op_types}")
    left = [(n, op) for n, op in hw.host_nodes if op in BLOCK_OPS]
    assert not left, f"compute nodes left on the host: {left}"
    # integer-input requantizers (qkv, residuals, MLP, local conv) are Requant; thresholds remain only behind
    # the float LayerNorm / Softmax outputs
    # (measured: 7 Requant, 5 Thresholding: float inputs = 2 LayerNorm outputs, the softmax output, the windowed
    # LN output; one channel-first (NCW) local-conv requantizer)
    assert hw.op_types.get("Requant", 0) >= 7 and hw.op_types.get("Thresholding", 0) <= 5, hw.op_types


def _ties_graph(path: Path, half_up: bool) -> None:
    """x -> two requantizers (2**-4 grid, then 2**-2: half of the inputs are ties, as after a residual add) and
    a parallel 2**-3 one, summed. ``half_up``: each quantizer as the export writes round half up,
    Add(x, s/2) -> Quant(FLOOR); else QONNX's Quant(ROUND) (ties to even)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    nodes, inits = [], []

    def quant(name: str, inp: str, scale: float) -> None:
        inits.extend([helper.make_tensor(f"{name}_s", TensorProto.FLOAT, [], [scale]),
                      helper.make_tensor(f"{name}_z", TensorProto.FLOAT, [], [0.0]),
                      helper.make_tensor(f"{name}_b", TensorProto.FLOAT, [], [8.0])])
        if half_up:
            inits.append(helper.make_tensor(f"{name}_h", TensorProto.FLOAT, [], [scale / 2]))
            nodes.append(helper.make_node("Add", [inp, f"{name}_h"], [f"{name}_in"], name=f"{name}_half"))
            inp = f"{name}_in"
        nodes.append(helper.make_node("Quant", [inp, f"{name}_s", f"{name}_z", f"{name}_b"], [f"{name}_out"],
                                      name=name, domain="qonnx.custom_op.general", signed=1, narrow=0,
                                      rounding_mode="FLOOR" if half_up else "ROUND"))

    quant("qa", "x", 2.0**-4)
    quant("qb", "qa_out", 2.0**-2)
    quant("qc", "x", 2.0**-3)
    nodes.append(helper.make_node("Add", ["qb_out", "qc_out"], ["y"], name="add"))
    io = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 512]) for t in ("x", "y")]
    graph = helper.make_graph(nodes, "ties", io[:1], io[1:], inits)
    cleanup_model(ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))).save(str(path))


def test_quant_ties_round_half_up_to_requant(tmp_path) -> None:
    """The project's rule, round half up: every stage equal to ``floor(x/s + 0.5)`` at tolerance 0, and the
    integer-input requantizer (2**-4 -> 2**-2 grid, half of its inputs ties) becomes an arithmetic Requant (the
    float-input ones stay thresholds: their input is the float graph input)."""
    x = (np.arange(-256, 256, dtype=np.float32) / 32).reshape(1, 512)  # ties for both scales, no clipping
    path = tmp_path / "ties_up.onnx"
    _ties_graph(path, half_up=True)
    stages = run_chain(path, x, tmp_path / "work")

    def up(v: np.ndarray, s: float) -> np.ndarray:
        return np.floor(v / s + 0.5) * s

    expect = up(up(x, 2.0**-4), 2.0**-2) + up(x, 2.0**-3)
    assert np.mean(expect != np.round(np.round(x * 16) / 4) / 4 + np.round(x * 8) / 8) > 0.2  # rules differ here
    for s in stages:
        np.testing.assert_array_equal(s.output.reshape(expect.shape), expect, err_msg=s.step)
    assert stages[-1].op_types.get("Requant") == 1, stages[-1].op_types


def test_quant_ties_round_to_even(tmp_path) -> None:
    """QONNX's Quant(ROUND) rounds half to even (numpy/torch round); FINN's stock MultiThreshold conversion rounds
    ties up. The chain must stay equal to QONNX (half-even thresholds; they alternate, so they stay threshold
    tables), and FINN's stock conversion must not."""
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.verify import execute

    path = tmp_path / "ties.onnx"
    _ties_graph(path, half_up=False)
    x = (np.arange(-256, 256, dtype=np.float32) / 32).reshape(1, 512)  # ties for both scales, no clipping
    stages = run_chain(path, x, tmp_path / "work")
    expect = np.round(np.round(x * 16) / 4) / 4 + np.round(x * 8) / 8
    np.testing.assert_array_equal(stages[0].output, expect)
    for s in stages[1:]:
        np.testing.assert_array_equal(s.output.reshape(expect.shape), expect, err_msg=s.step)
    assert "Requant" not in stages[-1].op_types, stages[-1].op_types

    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    stock = execute(ModelWrapper(str(path)).transform(ConvertQONNXtoFINN()), x).reshape(expect.shape)
    assert np.mean(stock != expect) > 0.2  # FINN alone rounds every tie up


def test_build_cli_on_slice(encoder_qonnx, tmp_path) -> None:
    """The whole software flow through ``samfpga build-hw`` on the stem+MBConv slice: report, per-step graphs,
    HDL per RTL node, and the stop before the first Vivado step."""
    import json

    from samfpga.hw.build_cli import main
    from samfpga.hw.finn_env import vivado_available

    sliced = slice_qonnx(encoder_qonnx, tmp_path / "stem_mbconv.onnx", *STEM_MBCONV)
    out = tmp_path / "build"
    assert main(["--board", "kv260", "--model", str(sliced), "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert (out / "report.md").read_text().startswith("# FINN build report: kv260")
    n = rep["nodes"]
    assert n["on_hw"] + n["on_host"] == n["total"] and n["on_hw"] >= 0.9 * n["total"]
    assert "partitions" not in rep["total"] and rep["verdict"]["fits"] == rep["total"]["fits"]  # one pipeline
    # the figures are computed from the built graph: every HW layer is costed once, the totals are the sums of
    # the layers, and the cycle figures are FINN's per-node model (get_exp_cycles) of the generated graph
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops in the graph)
    from samfpga.hw import HW_DOMAIN

    (graph,) = (out / "intermediate").glob("*_hw_codegen.onnx")
    hw_nodes = [nd for nd in ModelWrapper(str(graph)).graph.node if nd.domain.startswith(HW_DOMAIN)]
    # every HW layer, then the width converters and FIFOs the stitched pipeline will need (estimated)
    rows = rep["layers"]
    layers = [lay for lay in rows if not lay["op_type"].endswith("(estimated)")]
    fifos = [lay for lay in rows if lay["op_type"] == "StreamingFIFO_rtl (estimated)"]
    dwcs = [lay for lay in rows if lay["op_type"] == "StreamingDataWidthConverter_rtl (estimated)"]
    assert len(layers) + len(fifos) + len(dwcs) == len(rows)
    assert sorted(lay["name"] for lay in layers) == sorted(nd.name for nd in hw_nodes) and len(hw_nodes) == n["on_hw"]
    assert fifos and all(f["depth"] >= 32 and f["LUT"] + f["BRAM36"] > 0 for f in fifos)
    assert all(d["LUT"] > 0 for d in dwcs)
    for r, total in rep["total"]["resources"].items():
        assert total == pytest.approx(sum(lay[r] for lay in rows)), r
    # every compute layer costs something (an RTL MVAU may be all DSP: FINN estimates 0 LUT for it)
    assert all(lay["LUT"] + lay["DSP"] > 0 for lay in layers if lay["op_type"].startswith("MVAU"))
    cycles = {nd.name: int(getCustomOp(nd).get_exp_cycles()) for nd in hw_nodes}
    assert {lay["name"]: lay["cycles"] for lay in layers} == cycles
    assert rep["total"]["bottleneck_cycles"] == max(cycles.values()) > 0
    assert rep["total"]["fps"] == pytest.approx(rep["clock_mhz"] * 1e6 / max(cycles.values()))
    assert len(list((out / "intermediate").glob("*_hw_codegen.onnx"))) == 1
    rtl = [p for p in (out / "hdl").iterdir() if "_rtl_" in p.name]
    assert rtl and all(any(f.suffix in (".v", ".sv") for f in p.iterdir()) for p in rtl)
    if not vivado_available():
        assert rep["stopped"]["step"] == "hls_ipgen"
