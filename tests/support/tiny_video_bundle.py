"""Write the tiny video bundle the board-environment tests use (tests/runtime/data/tiny_video_bundle): an FPGA-family
model at 128² with a one-block-per-stage TinyViT, 32 channels and seeded random weights. It checks mechanics (API, memory bank,
CLI, streams), not accuracy. Regenerate with (dev environment):

    .venv/bin/python -m tests.support.tiny_video_bundle
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from samfpga.models.export.video import export_video_bundle
from samfpga.models.video import VideoConfig, VideoSam

TINY = dict(family="fpga", image_size=128, hidden_dim=32, mem_dim=16, memory_layers=1, memory_ffn_dim=64,
            decoder_mlp_dim=64, tiny_vit=dict(embed_dims=[8, 16, 16, 16], depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                              window_sizes=[4, 4, 4, 4], num_classes=0))


def tiny_video_model(seed: int = 0) -> VideoSam:
    model = VideoSam(VideoConfig(**TINY)).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point() or "running_var" in name:
                continue
            if name.endswith("gamma"):
                t.copy_(0.5 + 0.1 * torch.randn(t.shape, generator=g))
            elif t.ndim == 1 and ("norm" in name or ".bn." in name) and name.endswith("weight"):
                t.copy_(1.0 + 0.05 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
    return model


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "runtime" / "data" / "tiny_video_bundle"
    export_video_bundle(tiny_video_model(), out, source="tests/support/tiny_video_bundle.py (random weights)",
                        overwrite=True)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
