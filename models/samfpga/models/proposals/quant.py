"""The proposal head quantized for the FPGA (issue 16): W8A8 Brevitas, all-integer, exported to QONNX.

``quantize_head`` mirrors ``ProposalHead``: an input quantizer (INT8; in hardware a threshold table over the float
embedding), each 3x3 convolution with per-channel power-of-two INT8 weights and a QuantReLU (UINT8), the
1x1 output convolution and an INT8 output quantizer. Scales are powers of two and every bias is rounded to its
accumulator grid after calibration (``samfpga.models.quant.bias_grid``), so FINN maps each requantizer onto an
arithmetic Requant rather than a threshold table, as for the encoder. ``bench/proposal_head_hw.py`` exports the
result to QONNX (``samfpga.models.quant.export``) and builds it.
"""

from __future__ import annotations

import torch
from torch import nn

from samfpga.models.quant.bias_grid import snap_bias
from samfpga.models.quant.layers import act_quant, quant_conv, quant_relu

from .head import ProposalHead


class QuantProposalHead(nn.Module):
    """(B, C, h, w) float32 embedding -> (B, 7, h, w) float32 on the output quantizer's grid."""

    def __init__(self, head: ProposalHead, bits: int = 8) -> None:
        super().__init__()
        self.bits = bits
        self.in_quant = act_quant(bits, signed=True, scale="po2", stats="max")
        layers: list[nn.Module] = []
        self.convs: list[tuple[nn.Module, nn.Module]] = []  # (conv, its input quantizer), for the bias grid
        prev: nn.Module = self.in_quant
        body = list(head.body)
        for i, m in enumerate(body):
            if isinstance(m, nn.Conv2d):
                q = quant_conv(m, None, bits, "po2")
                layers.append(q)
                relu = i + 1 < len(body) and isinstance(body[i + 1], nn.ReLU)
                out = quant_relu(bits, "po2") if relu else act_quant(bits, signed=True, scale="po2", stats="max")
                layers.append(out)
                self.convs.append((q, prev))
                prev = out
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.in_quant(x))


@torch.no_grad()
def quantize_head(head: ProposalHead, embeddings: torch.Tensor, bits: int = 8) -> QuantProposalHead:
    """Calibrate the activation ranges on ``embeddings`` ((N, C, h, w) float32), then snap every bias to its
    accumulator grid. Returns the model in eval mode."""
    from brevitas.graph.calibrate import calibration_mode

    q = QuantProposalHead(head.eval(), bits)
    q.eval()
    with calibration_mode(q):
        for x in embeddings.split(8):
            q(x)
    q.eval()
    for conv, in_quant in q.convs:
        snap_bias(conv, in_quant)
    return q
