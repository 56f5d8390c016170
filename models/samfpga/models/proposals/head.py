"""The proposal head and its training targets.

Output layout (7 channels per embedding cell) is ``samfpga.everything.proposals``'s (the host decodes it): 0
centre logit; 1-2 centre offset (dx, dy) from the cell centre, in cells; 3-6 box distances (left, top, right,
bottom) from the centre, as fractions of the encoder input size.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CHANNELS = 7


class ProposalHead(nn.Module):
    """(B, C, h, w) float32 embedding -> (B, 7, h, w) float32: ``depth`` 3x3 convolutions with ReLU (``hidden``
    channels) and a 1x1 one; a CNN, as FINN builds best. The default depth 2 is the bundled head's layout; each
    more layer widens what a cell sees by one cell each side (2: 5 x 5 cells)."""

    def __init__(self, in_channels: int, hidden: int = 64, depth: int = 2) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"proposal head depth must be >= 1, got {depth}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(hidden, CHANNELS, 1))
        # start with few confident cells (CenterNet's prior): sigmoid(-2.19) = 0.1
        nn.init.constant_(self.body[-1].bias[:1], -2.19)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def render_targets(centres: np.ndarray, boxes: np.ndarray, grid: tuple[int, int], image_size: int,
                   sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets of one image from the teacher's masks.

    Args:
        centres: (K, 2) float (x, y) encoder-input pixels, one per teacher mask (a pixel of the mask).
        boxes: (K, 4) float XYXY encoder-input pixels.
        grid: (h, w) embedding cells; sigma: Gaussian radius of the centre heatmap, in cells.

    Returns:
        heat (h, w) float32 in [0, 1] (1 exactly at each centre's cell), reg (6, h, w) float32 (offsets and box
        distances at the centre cells, 0 elsewhere), pos (h, w) bool (the centre cells).
    """
    h, w = grid
    cell_w, cell_h = image_size / w, image_size / h
    heat = np.zeros((h, w), np.float32)
    reg = np.zeros((6, h, w), np.float32)
    pos = np.zeros((h, w), bool)
    yy, xx = np.mgrid[0:h, 0:w]
    # larger objects first so that a small object's regression wins a shared cell
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for k in np.argsort(-area, kind="stable"):
        gx, gy = centres[k, 0] / cell_w - 0.5, centres[k, 1] / cell_h - 0.5
        ix, iy = int(np.clip(round(gx), 0, w - 1)), int(np.clip(round(gy), 0, h - 1))
        g = np.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma**2)).astype(np.float32)
        heat = np.maximum(heat, g)
        pos[iy, ix] = True
        cx, cy = centres[k]
        reg[:, iy, ix] = [gx - ix, gy - iy, (cx - boxes[k, 0]) / image_size, (cy - boxes[k, 1]) / image_size,
                          (boxes[k, 2] - cx) / image_size, (boxes[k, 3] - cy) / image_size]
    return heat, reg, pos
