"""Synthetic images and videos, prompt simulation, COCO / SA-1B loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from samfpga.models.data import SyntheticConfig, SyntheticSegmentation, generate_sample
from samfpga.models.data.coco import COCOSegmentation, SA1BSegmentation, decode_segmentation
from samfpga.models.data.prompts import (
    boxes_from_masks,
    centre_point,
    error_clicks,
    mask_box,
    next_click,
    random_point,
    sample_points,
)
from samfpga.models.data.synthetic import SHAPE_KINDS, sample_rng
from samfpga.models.data.video import VideoConfig, generate_video


def test_samples_are_deterministic_and_splits_differ():
    a, b = generate_sample(0, 3), generate_sample(0, 3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    c = generate_sample(1, 3)
    assert not np.array_equal(a.image, c.image)


def test_sample_contents():
    cfg = SyntheticConfig(image_size=128)
    kinds = set()
    for i in range(30):
        s = generate_sample(0, i, cfg)
        assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8
        assert s.masks.dtype == bool and s.masks.shape[1:] == (128, 128) and len(s.masks) >= 1
        assert (s.masks.reshape(len(s.masks), -1).sum(1) >= cfg.min_area).all()
        assert s.masks.sum(0).max() <= 1  # visible parts of occluding objects never overlap
        kinds.update(s.kinds)
    assert kinds == set(SHAPE_KINDS)


def test_holes_are_not_in_the_mask():
    for i in range(200):
        s = generate_sample(0, i)
        for m, kind in zip(s.masks, s.kinds):
            if kind == "ring" and m.sum() > 400:
                from scipy import ndimage

                filled = ndimage.binary_fill_holes(m)
                assert filled.sum() > m.sum()  # the hole is background (or another object), not this instance
                return
    pytest.fail("no ring in 200 images")


def test_dataset_items():
    ds = SyntheticSegmentation(seed=0, length=4, cfg=SyntheticConfig(image_size=64))
    it = ds[2]
    assert it["image"].shape == (3, 64, 64) and it["image"].dtype == torch.uint8
    assert it["masks"].dtype == torch.bool
    with pytest.raises(IndexError):
        ds[4]


def test_video_motion_occlusion_and_reentry():
    v = generate_video(0, 0, VideoConfig(frames=16))
    t, n = v.masks.shape[:2]
    assert v.frames.shape == (16, 256, 256, 3) and t == 16 and n == len(v.ids)
    assert (v.masks.sum(1) <= 1).all()  # per frame, visible masks are disjoint
    area = v.masks.reshape(t, n, -1).sum(-1)
    assert (area.max(0) > 0).all()
    assert not np.array_equal(v.masks[0], v.masks[-1])  # things move
    assert np.array_equal(generate_video(0, 0, VideoConfig(frames=16)).frames, v.frames)
    # some object leaves the frame (or gets hidden) and comes back within a few clips
    found = False
    for i in range(6):
        a = generate_video(0, i, VideoConfig(frames=16)).masks.reshape(16, -1, 256 * 256).sum(-1)
        for k in range(a.shape[1]):
            low = np.nonzero(a[:, k] < 0.2 * a[:, k].max())[0]
            if len(low) and low.min() > 0 and low.max() < 15:
                found = True
    assert found


def test_eval_prompts():
    m = np.zeros((20, 30), dtype=bool)
    m[5:15, 2:20] = True
    assert centre_point(m) in [(x, y) for x in range(10, 12) for y in range(9, 11)]
    assert mask_box(m) == (2, 5, 19, 14)
    x, y = random_point(m, np.random.default_rng(0))
    assert m[y, x]
    pred = m.copy()
    pred[5:15, 15:20] = False
    (cx, cy), label = next_click(pred, m)
    assert label == 1 and 15 <= cx < 20 and m[cy, cx] and not pred[cy, cx]
    pred2 = m.copy()
    pred2[0:4, 0:10] = True
    (cx, cy), label = next_click(pred2, m)
    assert label == 0 and pred2[cy, cx] and not m[cy, cx]
    assert next_click(m, m) is None
    with pytest.raises(ValueError, match="non-empty"):
        centre_point(np.zeros((4, 4), bool))


def test_training_prompts():
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(3, 32, 32, dtype=torch.bool)
    masks[0, 2:10, 3:8] = True
    masks[1, 20:30, 20:31] = True
    masks[2, 0:32, 0:1] = True
    pts = sample_points(masks, g).long()
    assert all(masks[i, pts[i, 1], pts[i, 0]] for i in range(3))
    boxes = boxes_from_masks(masks, jitter=0.0)
    assert boxes.tolist() == [[3, 2, 7, 9], [20, 20, 30, 29], [0, 0, 0, 31]]
    jittered = boxes_from_masks(masks, jitter=0.1, max_jitter=2, generator=g)
    assert (jittered - boxes).abs().max() <= 2 and jittered.min() >= 0 and jittered.max() <= 31
    pred = masks.clone()
    pred[0, 2:10, 5:8] = False  # missed part -> positive click there
    pred[1, 0:5, 0:5] = True  # false positive -> negative click there
    p, lab = error_clicks(pred, masks, g)
    p = p.long()
    assert lab.tolist() == [1.0, 0.0, 1.0]
    assert masks[0, p[0, 1], p[0, 0]] and not pred[0, p[0, 1], p[0, 0]]
    assert pred[1, p[1, 1], p[1, 0]] and not masks[1, p[1, 1], p[1, 0]]
    assert masks[2, p[2, 1], p[2, 0]]  # perfect prediction: positive click inside
    with pytest.raises(ValueError, match="empty"):
        sample_points(torch.zeros(1, 4, 4, dtype=torch.bool))


def test_rng_streams_are_independent():
    assert sample_rng(0, 1, 0).integers(1 << 30) != sample_rng(0, 1, 1).integers(1 << 30)


def _coco_fixture(tmp_path):
    img = np.zeros((40, 60, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    m = np.zeros((40, 60), dtype=np.uint8, order="F")
    m[10:20, 5:25] = 1
    rle = mask_utils.encode(m)
    rle["counts"] = rle["counts"].decode("ascii")
    anns = {
        "images": [{"id": 7, "file_name": "a.png", "height": 40, "width": 60}],
        "annotations": [
            {"id": 1, "image_id": 7, "segmentation": [[30, 5, 50, 5, 50, 30, 30, 30]], "iscrowd": 0},
            {"id": 2, "image_id": 7, "segmentation": rle, "iscrowd": 0},
            {"id": 3, "image_id": 7, "segmentation": rle, "iscrowd": 1},
        ],
    }
    (tmp_path / "ann.json").write_text(json.dumps(anns))
    return m.astype(bool), rle


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2 copy keyword
def test_coco_and_sa1b_loaders(tmp_path):
    m, rle = _coco_fixture(tmp_path)
    assert np.array_equal(decode_segmentation(rle, 40, 60), m)
    ds = COCOSegmentation(tmp_path / "ann.json", tmp_path, image_size=120)
    it = ds[0]
    assert it["image"].shape == (3, 120, 120) and it["masks"].shape == (2, 120, 120)  # crowd skipped
    assert it["masks"][1, 20:40, 10:50].all() and not it["masks"][1, 80:].any()  # scaled x2, padded below
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "sa_1.jpg")
    (tmp_path / "sa_1.json").write_text(json.dumps({"image": {"image_id": 1}, "annotations": [{"segmentation": rle}]}))
    sa = SA1BSegmentation(tmp_path, image_size=60)
    assert len(sa) == 1 and np.array_equal(sa[0]["masks"][0, :40].numpy(), m)
    with pytest.raises(FileNotFoundError, match="no such file"):
        COCOSegmentation(tmp_path / "missing.json", tmp_path)
