"""The proposal head on the FPGA (issue 16): float head -> W8A8 Brevitas -> QONNX -> FINN build (all HW layers
RTL, every layer's resources counted) -> FINN python execution, each stage against the one before it.

Tolerances: Brevitas vs QONNX and QONNX vs the built graph 0 (power-of-two scales, biases on the accumulator grid:
integer arithmetic throughout); float vs W8A8 is the quantization's own cost, bounded loosely (centre logit within
the output quantizer's range of error). A seeded random head at reduced size (16 channels in, 8 hidden, 6 x 6
cells) keeps the build to seconds; bench/proposal_head_hw.py runs the bundled head.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from samfpga.models.proposals.head import ProposalHead


@pytest.fixture(scope="module")
def head_and_data():
    torch.manual_seed(3)
    head = ProposalHead(16, hidden=8, depth=2).eval()
    calib = torch.randn(16, 16, 6, 6)
    check = torch.randn(4, 16, 6, 6)
    return head, calib, check


def test_head_from_onnx_round_trip(head_and_data, tmp_path):
    """The bench loads an exported head back into torch: same outputs."""
    from bench.proposal_head_hw import head_from_onnx
    from samfpga.models.proposals.train import export_onnx

    head, _, check = head_and_data
    export_onnx(head, (16, 6, 6), tmp_path / "p.onnx")
    again = head_from_onnx(tmp_path / "p.onnx")
    with torch.no_grad():
        torch.testing.assert_close(again(check), head(check), rtol=0, atol=0)
    assert len([m for m in again.body if isinstance(m, torch.nn.Conv2d)]) == 3


def test_quantized_head_is_exact_through_finn(head_and_data, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from bench.proposal_head_hw import software_steps
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.flow import run_build
    from samfpga.hw.build.package import finn_execute
    from samfpga.hw.build.verify import execute
    from samfpga.hw.finn_env import boot
    from samfpga.models.proposals.quant import quantize_head
    from samfpga.models.quant.bias_grid import accumulator_scale
    from samfpga.models.quant.export import export_qonnx

    head, calib, check = head_and_data
    q = quantize_head(head, calib)
    for conv, in_quant in q.convs:  # every bias on its accumulator grid (what makes the requantizers arithmetic)
        k = conv.bias.detach().double() / accumulator_scale(conv, in_quant).double()
        assert torch.equal(k, torch.round(k))
    with torch.no_grad():
        f, qo = head(check).numpy(), q(check).numpy()
    assert np.abs(f - qo).max() < 0.25 * np.abs(f).max()  # quantization error, not a different function

    boot(tmp_path / "finn")
    qonnx = export_qonnx(q, tmp_path / "head_q.onnx", (1, 16, 6, 6))
    qm = ModelWrapper(str(qonnx))
    ref = np.stack([execute(qm, x[None].numpy())[0] for x in check])
    np.testing.assert_array_equal(ref, qo)  # Brevitas vs QONNX, tolerance 0

    rep = run_build(qonnx, BuildConfig(board="kv260", output_dir=str(tmp_path / "build"), steps=software_steps()),
                    screen=io.StringIO())
    y = np.stack([finn_execute(tmp_path / "build", x[None].numpy(), tmp_path / "exec")[0] for x in check])
    np.testing.assert_array_equal(y, ref)  # QONNX vs the built HW graph, tolerance 0

    assert rep["total"]["fits"]
    layers = rep["layers"]
    assert layers and all("_rtl" in row["op_type"] for row in layers), sorted({r["op_type"] for r in layers})
    mvaus = [row for row in layers if row["op_type"].startswith("MVAU")]
    assert len(mvaus) == 3 and all(row["LUT"] > 0 for row in mvaus)  # weight layers are counted, not free
    assert set(rep["nodes"]["host_op_types"]) <= {"Transpose", "Mul"}, rep["nodes"]["host_op_types"]
    assert Path(tmp_path / "build" / "report.md").is_file()
