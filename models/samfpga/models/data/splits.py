"""Which generator draws a split, and the named evaluation splits.

A split is a generator (``synthetic``: the project's original scenes, ``randomized``: domain-randomised scenes),
a seed and, for ``randomized``, a family partition (``train`` or the held-out ``shift``). Training uses seed 0;
the evaluation splits use seed 1, so no evaluated image was trained on:

- ``heldout``: synthetic scenes, seed 1 (the split of ``EVAL.json`` since the first default);
- ``dr_heldout``: randomised scenes of the training families, seed 1 (in-distribution for randomised training);
- ``shift``: randomised scenes of the shift families (shapes and textures no training split draws), seed 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .randomized import FAMILIES, RandomizedConfig, generate_randomized
from .synthetic import SyntheticConfig, SyntheticSample, generate_sample

GENERATORS = ("synthetic", "randomized")
SampleFn = Callable[[int, int], SyntheticSample]


def sample_function(generator: str, image_size: int, families: str = "train", min_objects: int | None = None,
                    max_objects: int | None = None) -> SampleFn:
    """``f(seed, index) -> SyntheticSample`` of a generator; object counts default to the generator's own."""
    counts = {k: v for k, v in (("min_objects", min_objects), ("max_objects", max_objects)) if v is not None}
    if generator == "synthetic":
        return partial(_synthetic, cfg=SyntheticConfig(image_size=image_size, **counts))
    if generator == "randomized":
        if families not in FAMILIES:
            raise ValueError(f"unknown family partition {families!r}; known: {sorted(FAMILIES)}")
        return partial(_randomized, cfg=RandomizedConfig(image_size=image_size, families=families, **counts))
    raise ValueError(f"unknown generator {generator!r}; known: {list(GENERATORS)}")


def _synthetic(seed: int, index: int, cfg: SyntheticConfig) -> SyntheticSample:
    return generate_sample(seed, index, cfg)


def _randomized(seed: int, index: int, cfg: RandomizedConfig) -> SyntheticSample:
    return generate_randomized(seed, index, cfg)


@dataclass(frozen=True)
class Split:
    """A named evaluation split (see the module docstring)."""

    name: str
    generator: str
    seed: int
    families: str | None = None

    def sample_function(self, image_size: int) -> SampleFn:
        return sample_function(self.generator, image_size, self.families or "train")

    def describe(self) -> dict:
        gen = {"synthetic": "samfpga.models.data.synthetic", "randomized": "samfpga.models.data.randomized"}
        d = {"name": self.name, "generator": gen[self.generator], "seed": self.seed}
        if self.families is not None:
            d["families"] = self.families
            d["shape_families"] = list(FAMILIES[self.families]["shapes"])
            d["texture_families"] = list(FAMILIES[self.families]["textures"])
        return d


SPLITS: dict[str, Split] = {
    "heldout": Split("heldout", "synthetic", 1),
    "dr_heldout": Split("dr_heldout", "randomized", 1, "train"),
    "shift": Split("shift", "randomized", 1, "shift"),
}


def get_split(name: str, seed: int | None = None) -> Split:
    """The named split, optionally on another seed."""
    if name not in SPLITS:
        raise ValueError(f"unknown evaluation split {name!r}; known: {sorted(SPLITS)}")
    s = SPLITS[name]
    return s if seed is None else Split(s.name, s.generator, int(seed), s.families)
