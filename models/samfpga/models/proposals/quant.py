"""The proposal head quantized for the FPGA (issue 16): W8A8 Brevitas, all-integer, exported to QONNX.

``quantize_head`` mirrors ``ProposalHead``: an input quantizer (INT8, the embedding as the encoder's accelerator
hands it over), each 3x3 convolution with per-channel power-of-two INT8 weights and a QuantReLU (UINT8), the
1x1 output convolution and an INT8 output quantizer. Scales are powers of two and every bias is rounded to its
accumulator grid after calibration (``samfpga.models.quant.bias_grid``), so FINN maps each requantizer onto an
arithmetic Requant rather than a threshold table, as for the encoder.

    python -m samfpga.models.proposals.quant HEAD.pt OUT.onnx [--cache-dir out/proposals_cache] [--images 64]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
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


def cached_embeddings(cache_folder: Path, images: int) -> torch.Tensor:
    """(N, C, h, w) float32: the embeddings of the first ``images`` files of a proposal target cache folder."""
    files = sorted(Path(cache_folder).glob("[0-9]*.npz"))[:images]
    if not files:
        raise FileNotFoundError(f"no proposal targets (NNNNN.npz) in {cache_folder}")
    out = []
    for f in files:
        with np.load(f) as z:
            out.append(z["embedding"])
    return torch.from_numpy(np.stack(out))


def main(argv: list[str] | None = None) -> int:
    from samfpga.models.quant.export import compare_with_qonnx, export_qonnx

    p = argparse.ArgumentParser(prog="samfpga.models.proposals.quant", description=__doc__.splitlines()[0])
    p.add_argument("head", type=Path, help="head.pt of samfpga.models.proposals.train")
    p.add_argument("out", type=Path, help="QONNX file to write")
    p.add_argument("--cache", type=Path, required=True, help="a proposal target cache folder (calibration)")
    p.add_argument("--images", type=int, default=64, help="calibration embeddings")
    p.add_argument("--bits", type=int, default=8)
    a = p.parse_args(argv)
    ck = torch.load(a.head, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    head = ProposalHead(ck["in_shape"][0], cfg["hidden"], cfg.get("depth", 2))
    head.load_state_dict(ck["head"])
    emb = cached_embeddings(a.cache, a.images)
    q = quantize_head(head, emb, a.bits)
    export_qonnx(q, a.out, (1, *ck["in_shape"]))
    print(json.dumps({"qonnx": str(a.out), "vs_brevitas": compare_with_qonnx(q, a.out, emb[:1])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
