"""The proposal head's training configuration (``samfpga.models.proposals.train``): one dataclass, loaded from
YAML plus ``key=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..yaml_config import check_fields, read_mapping

CENTRES = ("mask", "prompt")
TARGETS = ("heatmap", "cells")


@dataclass
class ProposalTrainConfig:
    name: str = "proposals"
    bundle: str = ""  # teacher and frozen encoder; default: the bundled default model
    generator: str = "synthetic"  # samfpga.models.data split generator
    data_seed: int = 0
    images: int = 160
    cache_dir: str = "out/proposals_cache"
    # the teacher's dense everything run (thresholds where the bundled default finds masks)
    dense_points_per_side: int = 16
    dense_pred_iou_thresh: float = 0.5
    dense_stability_score_thresh: float = 0.8
    # a proposal's centre target: "mask" (the mask pixel nearest its centroid) or "prompt" (the grid point whose
    # prompt produced the mask: this model's dense masks depend on where they were prompted, so reproducing a
    # mask means prompting where the teacher did)
    centre: str = "mask"
    # channel 0's target: "heatmap" (CenterNet: a Gaussian of ``sigma`` cells round each centre, focal loss) or
    # "cells" (1 where a centre lies in the cell, else 0, binary cross-entropy): the score then ranks cells by
    # "holds a centre", which is what a first pass that prompts every grid point of the top cells needs
    target: str = "heatmap"
    # head and optimisation
    hidden: int = 64
    depth: int = 2  # 3x3 convolutions of the head (ProposalHead): its view is 2 * depth + 1 cells wide
    sigma: float = 1.0
    steps: int = 1500
    batch: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    w_reg: float = 5.0
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 0
    # teacher targets computed by this many spawned processes, each at one thread (0 or 1: in this process);
    # the targets do not depend on it
    workers: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProposalTrainConfig:
        check_fields(cls, d, "proposal training config keys")
        cfg = cls(**d)
        if cfg.centre not in CENTRES:
            raise ValueError(f"centre must be one of {CENTRES}, got {cfg.centre!r}")
        if cfg.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {cfg.target!r}")
        return cfg


def load_train_config(path: str | Path | None, overrides: list[str] | None = None) -> ProposalTrainConfig:
    """A YAML mapping of ``ProposalTrainConfig`` fields (or none: the defaults) plus ``key=value`` overrides."""
    return ProposalTrainConfig.from_dict(read_mapping(path, overrides, "proposal training config"))
