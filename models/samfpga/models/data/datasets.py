"""Torch datasets over the synthetic generator (and the common sample format of the real-data loaders)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .synthetic import SyntheticConfig, generate_sample


class SyntheticSegmentation(Dataset):
    """``length`` images of the synthetic split ``seed``; item ``i`` is ``generate_sample(seed, i)``.

    Items are dicts: ``image`` (3, S, S) uint8, ``masks`` (N, S, S) bool, ``index`` int.
    """

    def __init__(self, seed: int, length: int, cfg: SyntheticConfig | None = None) -> None:
        if length <= 0:
            raise ValueError(f"SyntheticSegmentation length must be positive, got {length}")
        self.seed, self.length, self.cfg = int(seed), int(length), cfg or SyntheticConfig()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} images")
        s = generate_sample(self.seed, index, self.cfg)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(s.image.transpose(2, 0, 1))),
            "masks": torch.from_numpy(s.masks),
            "index": index,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images (B, 3, S, S); masks stay a list (instance counts differ)."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "masks": [it["masks"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
    }
