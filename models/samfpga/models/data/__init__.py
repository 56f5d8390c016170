"""Training and evaluation data: synthetic and domain-randomised images, videos, COCO / SA-1B loaders, prompts."""

from .datasets import SyntheticSegmentation, collate
from .randomized import RandomizedConfig, generate_randomized
from .splits import SPLITS, get_split, sample_function
from .synthetic import SyntheticConfig, SyntheticSample, generate_sample

__all__ = ["SPLITS", "RandomizedConfig", "SyntheticConfig", "SyntheticSample", "SyntheticSegmentation", "collate",
           "generate_randomized", "generate_sample", "get_split", "sample_function"]
