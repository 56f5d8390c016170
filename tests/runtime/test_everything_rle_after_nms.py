"""Board environment: run-length coding only the NMS survivors (issue 16) gives the records of coding every
filtered mask first (the official order, ``tests.support.everything_eager``), on the bundled default model and
bundled samples, in dense mode (one crop and with a crop layer) and hierarchical mode.

The default model finds no mask on these 256x256 samples at the official thresholds (0.88 / 0.95), so the filters
are lowered to 0.5 / 0.8 (where dense finds 8-14 masks per sample); the test also checks that NMS did drop
filtered masks, so the deferred coding had rows to skip.
"""

from __future__ import annotations

import numpy as np
import pytest

import samfpga.everything.dense as dense
from samfpga.everything import AutomaticMaskGenerator, HierarchicalMaskGenerator
from samfpga.image_io import read_image
from samfpga.predictor import Predictor
from samfpga.resources import package_path
from tests.support.everything_eager import EagerAutomaticMaskGenerator, EagerHierarchicalMaskGenerator

pytestmark = pytest.mark.board
FOUND = dict(pred_iou_thresh=0.5, stability_score_thresh=0.8, output_mode="uncompressed_rle")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_bundle(package_path("samfpga.assets", "default"))


def _sample(i: int) -> np.ndarray:
    return read_image(package_path("samfpga.assets", "samples", f"sample_{i}.png"))[0]


def _filtered_counter(monkeypatch) -> list[int]:
    """Counts the masks that pass the filters (before NMS) in every batch."""
    counts: list[int] = []
    inner = dense.filter_batch

    def counting(*args, **kwargs):
        data, covered = inner(*args, **kwargs)
        counts.append(len(data["boxes"]))
        return data, covered

    monkeypatch.setattr(dense, "filter_batch", counting)
    monkeypatch.setattr("samfpga.everything.hierarchical.filter_batch", counting)
    return counts


@pytest.mark.parametrize("case", [
    ("dense", 0, dict(points_per_side=16)),
    ("dense", 2, dict(points_per_side=16)),
    ("dense", 2, dict(points_per_side=8, crop_n_layers=1)),
    ("hierarchical", 0, dict(points_per_side=16)),
    ("hierarchical", 2, dict(points_per_side=16)),
])
def test_rle_after_nms_gives_the_same_records(predictor, monkeypatch, case):
    mode, sample, params = case
    image = _sample(sample)
    new_cls, old_cls = ((AutomaticMaskGenerator, EagerAutomaticMaskGenerator) if mode == "dense"
                        else (HierarchicalMaskGenerator, EagerHierarchicalMaskGenerator))
    before = old_cls(predictor, **FOUND, **params).generate(image)
    filtered = _filtered_counter(monkeypatch)
    after = new_cls(predictor, **FOUND, **params).generate(image)
    assert len(after) > 0, "the test needs masks"
    assert sum(filtered) > len(after), "NMS dropped nothing: the deferred coding was not exercised"
    assert len(after) == len(before)
    for a, b in zip(after, before):
        assert a == b  # every field, RLE counts included, in the same order
