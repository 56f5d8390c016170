"""Domain-randomised scenes: determinism, instance masks, the train / shift family partition, natural-image
spectra, and selection from a training config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from samfpga.models.data.randomized import (
    FAMILIES,
    HOLED_SHAPES,
    SHAPES,
    TEXTURES,
    THIN_SHAPES,
    Placed,
    RandomizedConfig,
    generate_randomized,
    pink_noise,
    render_ops,
)
from samfpga.models.data.splits import SPLITS, get_split, sample_function
from samfpga.models.training.config import DataConfig, TrainConfig
from samfpga.models.training.trainer import build_pool, pool_key


def test_deterministic_and_partitions_and_seeds_differ():
    cfg = RandomizedConfig(image_size=96)
    a, b = generate_randomized(0, 5, cfg), generate_randomized(0, 5, cfg)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks) and a.kinds == b.kinds
    assert not np.array_equal(a.image, generate_randomized(1, 5, cfg).image)
    assert not np.array_equal(a.image, generate_randomized(0, 5, RandomizedConfig(image_size=96, families="shift")).image)


def test_family_partitions_are_disjoint_and_complete():
    assert not set(FAMILIES["train"]["shapes"]) & set(FAMILIES["shift"]["shapes"])
    assert not set(FAMILIES["train"]["textures"]) & set(FAMILIES["shift"]["textures"])
    assert set(SHAPES) == set(FAMILIES["train"]["shapes"]) | set(FAMILIES["shift"]["shapes"])
    assert set(TEXTURES) == set(FAMILIES["train"]["textures"]) | set(FAMILIES["shift"]["textures"])
    assert THIN_SHAPES & set(FAMILIES["train"]["shapes"]) and THIN_SHAPES & set(FAMILIES["shift"]["shapes"])
    assert HOLED_SHAPES & set(FAMILIES["train"]["shapes"]) and HOLED_SHAPES & set(FAMILIES["shift"]["shapes"])


@pytest.mark.parametrize("families", ["train", "shift"])
def test_instances(families):
    cfg = RandomizedConfig(image_size=128, families=families)
    kinds = set()
    for i in range(40):
        s = generate_randomized(0, i, cfg)
        assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8
        assert s.masks.dtype == bool and s.masks.shape[1:] == (128, 128) and len(s.masks) == len(s.kinds) >= 1
        assert (s.masks.reshape(len(s.masks), -1).sum(1) >= cfg.min_area).all()
        assert s.masks.sum(0).max() <= 1  # visible parts are disjoint
        kinds.update(s.kinds)
    assert kinds == set(FAMILIES[families]["shapes"])  # every family appears, and only this partition's


def test_layout_spans_scales_and_touches_the_border():
    areas, touching = [], 0
    for i in range(60):
        s = generate_randomized(0, i, RandomizedConfig(image_size=128))
        areas += s.masks.reshape(len(s.masks), -1).sum(1).tolist()
        border = s.masks[:, 0].any(1) | s.masks[:, -1].any(1) | s.masks[:, :, 0].any(1) | s.masks[:, :, -1].any(1)
        touching += int(border.sum())
    assert max(areas) / min(areas) > 100  # > an order of magnitude in radius
    assert touching > 0.15 * len(areas)


@pytest.mark.parametrize("kind", sorted(THIN_SHAPES))
def test_thin_shapes_are_thin(kind):
    ops = SHAPES[kind](np.random.default_rng(3))
    m = render_ops(ops, Placed(128, 128, 100, 0.3), 256)
    # a thin structure: the largest inscribed disc is small against the extent
    assert ndimage.distance_transform_edt(m).max() < 0.15 * 100


@pytest.mark.parametrize("kind", sorted(HOLED_SHAPES))
def test_holed_shapes_have_holes(kind):
    for seed in range(5):
        m = render_ops(SHAPES[kind](np.random.default_rng(seed)), Placed(128, 128, 100, 0.2), 256)
        assert ndimage.binary_fill_holes(m).sum() > m.sum() + 20


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_pink_noise_has_power_law_spectrum(beta):
    x = pink_noise(256, beta, np.random.default_rng(0))
    p = np.abs(np.fft.rfft2(x - x.mean())) ** 2
    f = np.sqrt(np.fft.fftfreq(256)[:, None] ** 2 + np.fft.rfftfreq(256)[None, :] ** 2)
    sel = (f > 0.02) & (f < 0.3)
    slope = np.polyfit(np.log(f[sel]), np.log(p[sel]), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.15)


def test_splits_and_sample_function():
    assert SPLITS["shift"].families == "shift" and SPLITS["dr_heldout"].families == "train"
    assert all(s.seed != 0 for s in SPLITS.values())  # seed 0 is the training split
    s = get_split("shift").sample_function(64)(1, 2)
    assert np.array_equal(s.image, generate_randomized(1, 2, RandomizedConfig(image_size=64, families="shift")).image)
    with pytest.raises(ValueError, match="unknown generator 'nope'"):
        sample_function("nope", 64)
    with pytest.raises(ValueError, match="unknown family partition 'test'"):
        sample_function("randomized", 64, "test")


def test_training_config_selects_the_generator(tmp_path):
    data = DataConfig(generator="randomized", image_size=64, train_images=3, min_objects=1, max_objects=4,
                      cache_dir=str(tmp_path))
    pool = build_pool(0, 3, data)
    cfg = RandomizedConfig(image_size=64, min_objects=1, max_objects=4)
    for i in range(3):
        s = generate_randomized(0, i, cfg)
        assert torch.equal(pool.images[i], torch.from_numpy(s.image.transpose(2, 0, 1).copy()))
        assert torch.equal(pool.masks(i), torch.from_numpy(s.masks))
    assert (tmp_path / f"{pool_key(data, 0, 3)}.pt").is_file()
    assert pool_key(data, 0, 3) != pool_key(DataConfig(image_size=64, min_objects=1, max_objects=4), 0, 3)
    with pytest.raises(ValueError, match="DataConfig.generator must be one of"):
        TrainConfig.from_dict({"data": {"generator": "photos"}})
    with pytest.raises(ValueError, match="DataConfig.families must be one of"):
        TrainConfig.from_dict({"data": {"generator": "randomized", "families": "test"}})
