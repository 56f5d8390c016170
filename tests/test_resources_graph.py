"""Every HW layer of a real FINN graph gets an own-model figure: the first TinyViT block of the tiny test encoder
(attention with LayerNorm/softmax HLS layers, MVAUs, thresholds, shuffles, split, residual fork/join, local
depthwise conv) built by ``samfpga build-hw`` up to HDL generation, then priced by ``layer_costs`` and
``fifo_costs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny_encoder import VIT_BLOCK


@pytest.fixture(scope="module")
def encoder_qonnx(tiny_qonnx: Path) -> Path:
    """``tiny_encoder_qonnx()``, exported once per session (tests/conftest.py)."""
    return tiny_qonnx


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_layer_of_a_vit_block_is_priced(encoder_qonnx, tmp_path) -> None:
    from qonnx.core.modelwrapper import ModelWrapper

    from samfpga.hw.boards import get_board
    from samfpga.hw.build.verify import slice_qonnx
    from samfpga.hw.build_cli import main
    from samfpga.hw.resources import fifo_costs, layer_costs
    from samfpga.hw.resources.cost import _MODELS

    sliced = slice_qonnx(encoder_qonnx, tmp_path / "vit_block.onnx", *VIT_BLOCK)
    out = tmp_path / "build"
    # --no-int-ops: the float-LayerNorm block keeps LayerNorm_hls / HWSoftmax_hls, whose pricing is checked here
    assert main(["--board", "kv260", "--model", str(sliced), "--no-int-ops", "--out", str(out)]) == 0
    last = sorted((out / "intermediate").glob("*.onnx"))[-1]
    model = ModelWrapper(str(last))
    costs = layer_costs(model, get_board("kv260"))
    op_types = {c.op_type for c in costs}
    # the block's layer types, including those FINN prices at 0 LUT
    assert {"MVAU_rtl", "Thresholding_rtl", "LayerNorm_hls", "HWSoftmax_hls"} <= op_types, op_types
    unpriced = sorted(op_types - set(_MODELS))
    assert not unpriced, f"op types without an own model: {unpriced}"
    zero = [(c.name, c.op_type) for c in costs if (c.LUT <= 0 or c.FF <= 0) and not c.detail.get("free")]
    assert not zero, zero
    assert all(c.source == "own model" for c in costs)
    fifos = fifo_costs(model, get_board("kv260"))
    assert fifos and all(f.LUT > 0 for f in fifos)
    # the residual fork(s) buffer more than the minimum on their skip edge
    assert any(f.detail["reason"].startswith("fork") and f.detail["depth"] > 32 for f in fifos)
