"""Training and evaluation data: synthetic images and videos, COCO / SA-1B loaders, prompt simulation."""

from .datasets import SyntheticSegmentation, collate
from .synthetic import SyntheticConfig, SyntheticSample, generate_sample

__all__ = ["SyntheticConfig", "SyntheticSample", "SyntheticSegmentation", "collate", "generate_sample"]
