"""Training configuration: one dataclass tree, read from / written to YAML.

A run is either ``supervised`` (masks from ground truth, SAM-style point / box prompts with iterative clicks)
or ``distill`` (TinySAM full-stage distillation from a teacher: embedding, token and output losses, later
prompts from online hard-prompt sampling), optionally with a ground-truth term.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.randomized import FAMILIES
from ..data.splits import GENERATORS
from ..yaml_config import check_fields, read_mapping


@dataclass
class DataConfig:
    """Training images. ``synthetic``: a fixed pool of ``train_images`` from split ``train_seed`` (held-out split
    ``val_seed``) drawn by ``generator`` (``synthetic``: the original scenes; ``randomized``: domain-randomised
    scenes of the family partition ``families``, see ``data.randomized``); ``coco``: ``annotations`` (COCO json)
    + ``image_dir``; ``sa1b``: ``image_dir`` of SA-1B tiles."""

    source: str = "synthetic"
    generator: str = "synthetic"
    families: str = "train"  # randomized: never "shift" for a model that is then measured on the shift split
    annotations: str | None = None
    image_dir: str | None = None
    image_size: int = 256
    train_seed: int = 0
    train_images: int = 2000
    val_seed: int = 1
    val_images: int = 100
    min_objects: int = 2
    max_objects: int = 6
    cache_dir: str = "out/data"  # generated pools are cached here (they are pure functions of the seed)
    workers: int = 1  # processes drawing a synthetic pool (each image is a function of (seed, index): same pool)

    def __post_init__(self) -> None:
        if self.source not in ("synthetic", "coco", "sa1b"):
            raise ValueError(f"DataConfig.source must be synthetic, coco or sa1b, got {self.source!r}")
        if self.generator not in GENERATORS:
            raise ValueError(f"DataConfig.generator must be one of {list(GENERATORS)}, got {self.generator!r}")
        if self.families not in FAMILIES:
            raise ValueError(f"DataConfig.families must be one of {sorted(FAMILIES)}, got {self.families!r}")
        if self.source == "coco" and not (self.annotations and self.image_dir):
            raise ValueError("DataConfig: source 'coco' needs annotations and image_dir")
        if self.source == "sa1b" and not self.image_dir:
            raise ValueError("DataConfig: source 'sa1b' needs image_dir")
        if self.workers < 1:
            raise ValueError(f"DataConfig.workers must be >= 1, got {self.workers}")


@dataclass
class LossConfig:
    """Weights of each loss term (0 switches a term off)."""

    focal: float = 20.0  # SAM's 20:1 focal:dice on ground-truth masks
    dice: float = 1.0
    iou: float = 1.0  # MSE of the IoU head against the real IoU
    embedding: float = 1.0  # distill: MSE student vs teacher image embedding
    token: float = 1.0  # distill: MSE of decoder output tokens
    output: float = 1.0  # distill: focal+dice of student logits against the teacher's masks
    gt_in_distill: float = 0.0  # distill: weight of the ground-truth (supervised) term
    hq: float = 1.0  # models with HQ-SAM's head (model.hq_token): focal+dice of the HQ mask against ground truth


@dataclass
class TrainConfig:
    """A training run. ``model`` is a SamConfig dict (see ``samfpga.models.SamConfig.to_dict``) or
    ``{"variant": name, **overrides}``."""

    name: str = "run"
    mode: str = "supervised"  # "supervised" | "distill"
    model: dict[str, Any] = field(default_factory=lambda: {"variant": "vit_t"})
    teacher_checkpoint: str | None = None
    teacher_variant: str = "vit_t"  # architecture of a plain (official-layout) teacher file; samfpga files carry theirs
    teacher_cache: bool = True  # distill: precompute teacher embeddings of the pool to disk, reuse them
    init_checkpoint: str | None = None  # start the student from these weights (strict load), e.g. a pretraining run
    init_decoder_from_teacher: bool = True  # distill: start the student's prompt encoder + decoder as the teacher's
    trainable: str = "all"  # "all", or "hq": only HQ-SAM's head learns (HQ-SAM's recipe on a trained model)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    steps: int = 1000  # length of the learning-rate schedule (warmup + cosine)
    stop_after: int | None = None  # end the run early (after this many steps) on the same schedule
    batch_size: int = 8
    instances_per_image: int = 4
    click_rounds: int = 2  # extra prompts after the first (iterative clicks / hard prompts)
    box_prob: float = 0.5  # probability that a step's first prompt is a box rather than a point
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1  # torch intra-op threads per process (shared machines: keep low)
    device: str = "cpu"  # "cpu", "cuda" or "auto" (cuda when available): where the models and losses run
    amp: str = "none"  # "none" or "bf16": autocast of the forward passes (a GPU's tensor cores; off on CPU runs)
    time_budget_s: float = 0.0  # > 0: end the run after the first step past this many seconds, as stop_after would,
    # but with the final model.pt written (a bounded run on a lent GPU must bring a model back)
    out_dir: str = "out/train/run"
    save_every: int = 200
    log_every: int = 20
    resume: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("supervised", "distill"):
            raise ValueError(f"TrainConfig.mode must be 'supervised' or 'distill', got {self.mode!r}")
        if self.mode == "distill" and not self.teacher_checkpoint:
            raise ValueError("TrainConfig: mode 'distill' needs teacher_checkpoint")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"TrainConfig.device must be 'cpu', 'cuda' or 'auto', got {self.device!r}")
        if self.amp not in ("none", "bf16"):
            raise ValueError(f"TrainConfig.amp must be 'none' or 'bf16', got {self.amp!r}")
        if self.trainable not in ("all", "hq"):
            raise ValueError(f"TrainConfig.trainable must be 'all' or 'hq', got {self.trainable!r}")
        for name in ("steps", "batch_size", "instances_per_image"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {getattr(self, name)}")
        if isinstance(self.data, dict):
            self.data = DataConfig(**self.data)
        if isinstance(self.loss, dict):
            self.loss = LossConfig(**self.loss)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        check_fields(cls, d, "TrainConfig fields")
        d = dict(d)
        for key, sub in (("data", DataConfig), ("loss", LossConfig)):
            if key in d and isinstance(d[key], dict):
                sub_known = {f.name for f in dataclasses.fields(sub)}
                bad = set(d[key]) - sub_known
                if bad:
                    raise ValueError(f"unknown TrainConfig.{key} fields: {sorted(bad)}")
                d[key] = sub(**d[key])
        return cls(**d)


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config; ``overrides`` are ``key=value`` strings (dotted keys, YAML values)."""
    return TrainConfig.from_dict(read_mapping(path, overrides, "training config", nested=True))


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    tmp.replace(path)
