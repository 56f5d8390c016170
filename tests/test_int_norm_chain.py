"""Bit-exact chain with the integer LayerNorm / softmax (``QuantConfig(int_norm=True)``): Brevitas -> QONNX ->
FINN python execution after every step, tolerance 0, on the chain tests' 64² tiny encoder.

The Brevitas model computes IntLayerNorm / IntSoftmax with the numpy kernels (samfpga.models.quant.int_norm),
exports them as QONNX nodes (samfpga.models.quant.qonnx_ops) and the FINN flow turns those into the IntLayerNorm /
IntSoftmax HW layers with the same parameters (samfpga.hw.build.int_ops: ConvertQIntLayerNorm folds gamma/beta into
the next thresholds by enumerating the float32 affine, ConvertQIntSoftmax copies the attributes and the int64 bias
table). Slices as in test_finn_chain.py: the first TinyViT block (2 LayerNorms, 1 softmax) and the neck (2 neck
LayerNorms behind their new input quantizers, reached through a Transpose).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.tiny_encoder import INT_NECK, INT_VIT_BLOCK, images

FLOAT_NORM_OPS = {"LayerNormalization", "Softmax", "QIntLayerNorm", "QIntSoftmax", "LayerNorm", "HWSoftmax"}
COMPUTE_OPS = {"Conv", "MatMul", "MultiThreshold", "Add", "Mul", "Relu", "Split"} | FLOAT_NORM_OPS


@pytest.fixture(scope="module")
def int_model(tiny_int_norm_export):
    """``tiny_quant_encoder(int_norm=True)``: a copy of the session's model (tests/conftest.py), the one exported."""
    import copy

    return copy.deepcopy(tiny_int_norm_export.model)


@pytest.fixture(scope="module")
def int_qonnx(tiny_int_norm_export) -> Path:
    """``int_model``'s QONNX export (tests/conftest.py: exported once per session; read only)."""
    return tiny_int_norm_export.qonnx


@pytest.mark.slow
def test_brevitas_vs_qonnx_exact(int_model, int_qonnx) -> None:
    """The whole tiny encoder: QONNX execution of the export equals the Brevitas model (tolerance 0), and the
    export carries the integer nodes (8 LayerNorms: 2 per block, 2 in the neck; 3 softmaxes), no float ones."""
    from samfpga.models.quant.export import compare_with_qonnx, op_census

    census = op_census(int_qonnx)
    assert census.get("QIntLayerNorm") == 8 and census.get("QIntSoftmax") == 3, census
    assert "LayerNormalization" not in census and "Softmax" not in census, census
    x = images(3, seed=5)
    for i in range(3):
        r = compare_with_qonnx(int_model, int_qonnx, x[i:i + 1])
        assert r["mismatch_fraction"] == 0.0 and r["max_abs_diff"] == 0.0, r


def _chain(qonnx: Path, cut, tmp: Path, int_ops: bool):
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.config import BuildOptions
    from samfpga.hw.build.verify import run_chain, slice_qonnx

    sliced = slice_qonnx(qonnx, tmp / "slice.onnx", *cut)
    shape = ModelWrapper(str(sliced)).get_tensor_shape(cut[0][0])
    x = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    return run_chain(sliced, x, tmp / "work", options=BuildOptions(int_ops=int_ops))


def _assert_exact(stages, min_unique: int) -> None:
    assert [s.step for s in stages] == ["qonnx", "qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw"]
    ref = stages[0].output
    assert np.unique(ref).size > min_unique  # a non-trivial output
    for prev, cur in zip(stages, stages[1:], strict=False):
        np.testing.assert_array_equal(cur.output.reshape(ref.shape), prev.output.reshape(ref.shape),
                                      err_msg=f"{cur.step} differs from {prev.step}")


@pytest.mark.slow
def test_vit_block_chain_int_norm(int_qonnx, tmp_path) -> None:
    """First TinyViT block with int_ops on: every stage equal to the previous one (tolerance 0); the integer
    layers are HW layers, nothing float (LayerNorm / softmax) and no compute op is left on the host."""
    stages = _chain(int_qonnx, INT_VIT_BLOCK, tmp_path, int_ops=True)
    _assert_exact(stages, 32)
    hw = stages[-1]
    assert hw.op_types.get("IntLayerNorm") == 2 and hw.op_types.get("IntSoftmax") == 1, hw.op_types
    assert not FLOAT_NORM_OPS & set(hw.op_types), hw.op_types
    left = [(n, op) for n, op in hw.host_nodes if op in COMPUTE_OPS]
    assert not left, f"compute nodes left on the host: {left}"


@pytest.mark.slow
def test_neck_chain_int_norm(int_qonnx, tmp_path) -> None:
    """The neck (conv, quantizer, IntLayerNorm behind a Transpose, conv, quantizer, IntLayerNorm, output
    quantizer), with int_ops OFF: the model's integer nodes are converted all the same (they are its arithmetic,
    not an approximation of it), every stage equal to the previous one."""
    stages = _chain(int_qonnx, INT_NECK, tmp_path, int_ops=False)
    _assert_exact(stages, 32)
    hw = stages[-1]
    assert hw.op_types.get("IntLayerNorm") == 2 and not FLOAT_NORM_OPS & set(hw.op_types), hw.op_types
    left = [(n, op) for n, op in hw.host_nodes if op in COMPUTE_OPS]
    assert not left, f"compute nodes left on the host: {left}"


def test_exact_thresholds_match_float_thresholding() -> None:
    """The thresholds on IntLayerNorm's integers give the same counts as the float32 affine + float thresholds
    for every reachable integer, including negative gamma (negated inside the layer) and per-tensor thresholds."""
    from samfpga.hw.build.int_ops import exact_thresholds
    from samfpga.kernels.int_params import layernorm_affine

    rng = np.random.default_rng(0)
    c, bits, f = 6, 10, 6
    gamma = rng.uniform(0.2, 3.0, c) * np.where(np.arange(c) % 3 == 0, -1, 1)
    beta = rng.normal(scale=0.5, size=c)
    thr = ((np.arange(255) - 127 - 0.5) / 32.0)[None].astype(np.float32)
    t = exact_thresholds(bits, gamma, beta, f, thr)
    assert t.shape == (c, 255) and np.array_equal(t, np.round(t))
    z = np.arange(-(1 << (bits - 1)), 1 << (bits - 1))[:, None].repeat(c, 1)
    y = layernorm_affine(z, gamma, beta, f)
    ref = (y[..., None] >= thr[0]).sum(-1)
    got = (z[..., None] >= t[None]).sum(-1)
    assert np.array_equal(got, ref) and len(np.unique(ref)) > 100


def test_int_norm_config_and_calibration_path() -> None:
    """int_norm needs power-of-two scales; while Brevitas calibrates (quantizers observing), the integer layers
    run their float layer, so the statistics are those of the float model."""
    import torch

    from samfpga.models.quant import QuantConfig, quantize_encoder
    from samfpga.models.quant.int_norm import IntLayerNorm, IntSoftmax
    from samfpga.models.quant.source import tiny_student_encoder

    with pytest.raises(ValueError, match="po2"):
        QuantConfig(int_norm=True, scale="float")
    q = quantize_encoder(tiny_student_encoder(), QuantConfig(int_norm=True))
    names = [type(m).__name__ for m in q.modules()]
    assert names.count("IntLayerNorm") == 8 and names.count("IntSoftmax") == 3
    assert "neck.1.norm_in" in q.quant_sites["act"] and "neck.3.norm_in" in q.quant_sites["act"]
    from brevitas.graph.calibrate import calibration_mode

    ln = next(m for m in q.modules() if isinstance(m, IntLayerNorm))
    x = torch.randn(2, 16, ln.ln.weight.shape[0])
    with torch.no_grad(), calibration_mode(q):
        assert torch.equal(ln(x), ln.ln(x))  # off-grid float input: the float LayerNorm, no error
    assert any(isinstance(m, IntSoftmax) for m in q.modules())


@pytest.mark.slow
def test_int_norm_qat_gradients(int_model) -> None:
    """QAT through the integer layers: the forward value is the integer result (equal to eval's), the gradient
    the float layers' (straight-through), so LayerNorm weights and the attention bias receive gradients."""
    import copy

    import torch

    q = copy.deepcopy(int_model)
    x = images(2, seed=9)
    with torch.no_grad():
        ref = q.eval()(x)
    q.train()
    for m in q.modules():  # keep the calibrated scales fixed: only the value path is under test here
        if hasattr(m, "act_quant"):
            m.eval()
    out = q(x)
    assert torch.equal(out.detach(), ref)
    out.square().mean().backward()
    from samfpga.models.quant.int_norm import IntLayerNorm, IntSoftmaxAttention

    ln = next(m for m in q.modules() if isinstance(m, IntLayerNorm))
    at = next(m for m in q.modules() if isinstance(m, IntSoftmaxAttention))
    assert ln.ln.weight.grad is not None and ln.ln.weight.grad.abs().sum() > 0
    assert at.attention_biases.grad is not None and at.attention_biases.grad.abs().sum() > 0
