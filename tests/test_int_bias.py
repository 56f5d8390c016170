"""Biases on the accumulator grid (``QuantConfig.bias_on_grid``, samfpga.models.quant.bias_grid), tolerance 0.

The chain tests' 64² tiny encoder with seeded NON-ZERO Linear biases (the random student's Linear biases are
zero, which would make the Linear requantizers uniform anyway): every bias becomes ``b_int * s_in * s_w``, the
QONNX export carries exactly that, Brevitas vs QONNX is bit-exact, the FINN chain of the first TinyViT block is
bit-exact after every step, and its requantizers after the biased Linears become Requant (fewer threshold tables
than with float biases).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.tiny_encoder import INT_VIT_BLOCK, images, tiny_quant_encoder


def _quant(bias_on_grid: bool):
    return tiny_quant_encoder(int_norm=True, bias_on_grid=bias_on_grid, linear_bias_std=0.1)


@pytest.fixture(scope="module")
def grid_model():
    return _quant(True)


@pytest.fixture(scope="module")
def grid_qonnx(grid_model, tmp_path_factory) -> Path:
    from samfpga.models.quant import export_qonnx

    return export_qonnx(grid_model, tmp_path_factory.mktemp("int_bias") / "enc.onnx", (1, 3, 64, 64))


def _biased(model):
    layers = model.quant_sites["weight"]
    return {n: (layers[n], q) for n, q in model.bias_inputs.items() if layers[n].bias is not None}


def test_biases_on_accumulator_grid(grid_model) -> None:
    """Every biased Linear/Conv: bias / (s_in * s_w) is an integer, of the recorded bit width (at most 25)."""
    from samfpga.models.quant.bias_grid import accumulator_scale

    linears = 0
    for name, (layer, in_quant) in _biased(grid_model).items():
        b_int = layer.bias.detach().double() / accumulator_scale(layer, in_quant).double()
        assert torch.equal(b_int, torch.round(b_int)), name
        peak = int(b_int.abs().max())
        assert 1 + int(np.ceil(np.log2(peak + 1))) == grid_model.bias_bits[name] <= 25, name
        linears += isinstance(layer, torch.nn.Linear) and peak > 0
    assert len(_biased(grid_model)) > 20
    assert linears == 12  # qkv, proj, fc1, fc2 of the 3 TinyViT blocks, all with non-zero integer biases


def test_float_biases_are_off_grid_without_the_option() -> None:
    """The same model without the option keeps float biases that are not on the grid (what the option changes),
    and the option needs power-of-two scales."""
    from samfpga.models.quant import QuantConfig
    from samfpga.models.quant.bias_grid import accumulator_scale, snap_biases

    with pytest.raises(ValueError, match="po2"):
        QuantConfig(bias_on_grid=True, scale="float")
    q = _quant(False)
    with pytest.raises(ValueError, match="bias_on_grid"):
        snap_biases(torch.nn.Module())
    layers = q.quant_sites["weight"]
    off = [n for n, iq in q.bias_inputs.items() if layers[n].bias is not None
           and not torch.equal(r := layers[n].bias.double() / accumulator_scale(layers[n], iq).double(), r.round())]
    assert len(off) > 20, off


@pytest.mark.slow
def test_brevitas_vs_qonnx_exact(grid_model, grid_qonnx) -> None:
    """The whole tiny encoder with integer biases: the export holds every rounded float32 bias exactly as an
    initializer, and QONNX execution equals Brevitas, tolerance 0."""
    import onnx
    from onnx import numpy_helper

    from samfpga.models.quant.export import compare_with_qonnx

    inits = [numpy_helper.to_array(t) for t in onnx.load(str(grid_qonnx)).graph.initializer]
    for name, (layer, _) in _biased(grid_model).items():
        b = layer.bias.detach().numpy()
        assert any(a.shape == b.shape and np.array_equal(a, b) for a in inits), f"{name}: bias not in the export"

    x = images(2, seed=5)
    for i in range(2):
        r = compare_with_qonnx(grid_model, grid_qonnx, x[i:i + 1])
        assert r["mismatch_fraction"] == 0.0 and r["max_abs_diff"] == 0.0, r


def _block_chain(qonnx: Path, tmp: Path):
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.build.config import BuildOptions
    from samfpga.hw.build.verify import run_chain, slice_qonnx

    tmp.mkdir(parents=True, exist_ok=True)
    sliced = slice_qonnx(qonnx, tmp / "slice.onnx", *INT_VIT_BLOCK)
    shape = ModelWrapper(str(sliced)).get_tensor_shape(INT_VIT_BLOCK[0][0])
    x = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    stages = run_chain(sliced, x, tmp / "work", options=BuildOptions(int_ops=True))
    assert [s.step for s in stages] == ["qonnx", "qonnx_to_finn", "tidy_up", "streamline", "convert_to_hw"]
    ref = stages[0].output
    assert np.unique(ref).size > 32
    for prev, cur in zip(stages, stages[1:], strict=False):
        np.testing.assert_array_equal(cur.output.reshape(ref.shape), prev.output.reshape(ref.shape),
                                      err_msg=f"{cur.step} differs from {prev.step}")
    return stages[-1].op_types


@pytest.mark.slow
def test_vit_block_chain_requant(grid_qonnx, tmp_path) -> None:
    """First TinyViT block: bit-exact after every FINN step, and the requantizers behind its biased Linears
    (qkv, fc1 -> act, fc2 -> residual, proj -> residual) are arithmetic Requant: more Requant and fewer
    threshold tables than the same block with float biases."""
    from samfpga.models.quant import export_qonnx

    grid = _block_chain(grid_qonnx, tmp_path / "grid")
    flt_qonnx = export_qonnx(_quant(False), tmp_path / "float.onnx", (1, 3, 64, 64))
    flt = _block_chain(flt_qonnx, tmp_path / "float")
    def tables(d):
        return sum(v for k, v in d.items() if k.startswith("Thresholding"))

    print("bias on grid:", grid, "\nfloat bias:", flt)
    assert grid.get("Requant", 0) > flt.get("Requant", 0), (grid, flt)
    assert tables(grid) < tables(flt), (grid, flt)
