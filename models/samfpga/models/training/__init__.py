"""Training: supervised SAM training and TinySAM-style full-stage distillation (see ``trainer``)."""

from .config import DataConfig, LossConfig, TrainConfig, load_config, save_config

__all__ = ["DataConfig", "LossConfig", "TrainConfig", "load_config", "save_config"]
