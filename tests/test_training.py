"""Losses, online hard prompts, supervised training and full-stage distillation on a tiny config:
reproducible, resumable, and actually learning."""

from __future__ import annotations

import json

import pytest
import torch

from samfpga.models import build_sam, read_checkpoint, save_checkpoint
from samfpga.models.build import build_from_config
from samfpga.models.training.cli import main as train_main
from samfpga.models.training.config import TrainConfig, load_config, save_config
from samfpga.models.training.hard_prompts import hard_prompt_points
from samfpga.models.training.losses import dice_loss, focal_loss, mask_iou, output_loss, supervised_loss
from samfpga.models.training.trainer import TrainStep, build_pool, model_config, train
from tests.support.training import TINY_MODEL, tiny_config


def test_mask_losses():
    t = torch.zeros(2, 8, 8, dtype=torch.bool)
    t[:, 2:6, 2:6] = True
    good = torch.where(t, 20.0, -20.0)
    bad = -good
    assert focal_loss(good, t).max() < 1e-6 and dice_loss(good, t).max() < 1e-3
    assert (focal_loss(bad, t) > 1).all() and (dice_loss(bad, t) > 0.9).all()
    assert mask_iou(good, t).tolist() == [1.0, 1.0] and mask_iou(bad, t).tolist() == [0.0, 0.0]
    # ambiguity-aware: the best of the K outputs is what counts; the IoU head is trained on all of them
    logits = torch.stack([bad, good, bad], 1)
    iou_pred = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    assert supervised_loss(logits, iou_pred, t, 20, 1, 1) < 1e-3
    assert supervised_loss(logits, iou_pred.flip(1) * 0 + 1, t, 20, 1, 1) > 0.5
    assert output_loss(good[:, None], good[:, None], 20, 1) < 1e-3


def test_hard_prompts_come_from_disagreement():
    g = torch.Generator().manual_seed(0)
    teacher = torch.full((3, 16, 16), -5.0)
    teacher[:, 4:12, 4:12] = 5.0
    student = teacher.clone()
    student[0, 4:12, 8:12] = -5.0  # student misses the right half: positive click there
    student[1, 0:3, 0:3] = 5.0  # student hallucinates a corner: negative click there
    for _ in range(5):
        pts, labels = hard_prompt_points(student, teacher, g)
        x, y = pts.long().unbind(1)
        assert labels.tolist() == [1.0, 0.0, 1.0]
        assert 8 <= x[0] < 12 and 4 <= y[0] < 12
        assert x[1] < 3 and y[1] < 3
        assert teacher[2, y[2], x[2]] > 0
    with pytest.raises(ValueError, match="differ"):
        hard_prompt_points(student[:, :8], teacher)


def test_config_yaml_round_trip_and_errors(tmp_path):
    cfg = tiny_config(tmp_path)
    save_config(cfg, tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml", ["steps=7", "loss.dice=2.5"])
    assert back.steps == 7 and back.loss.dice == 2.5 and back.model == cfg.model and back.data == cfg.data
    with pytest.raises(ValueError, match="teacher_checkpoint"):
        TrainConfig(mode="distill")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="magic")


def test_committed_configs_parse():
    from samfpga.resources import package_path

    paths = sorted(package_path("samfpga.models.training", "configs").glob("*.yaml"))
    # the four stages of `make train-default`; an empty glob must not pass
    assert {p.stem for p in paths} >= {"default_teacher", "default_teacher_ft", "default_student_pretrain",
                                      "default_student"}, paths
    for path in paths:
        if "video" in path.stem:  # the video tracker's configs (samfpga.models.video.train): their own schema
            from samfpga.models.video.train import load_train_config

            assert load_train_config(path).steps > 0, path
            continue
        if path.stem == "proposals":  # the everything proposal head (samfpga.models.proposals.train)
            from samfpga.models.proposals.train import load_train_config as load_proposals_config

            assert load_proposals_config(path).steps > 0, path
            continue
        cfg = load_config(path)
        m = model_config(cfg.model)
        assert m.encoder_config.img_size == cfg.data.image_size, path


def test_supervised_run_is_seeded_and_resumable(tmp_path):
    full = train(tiny_config(tmp_path / "a"))
    # same run, interrupted after 2 steps, then resumed to 4 -> same weights
    assert train(tiny_config(tmp_path / "b"), stop_at=2) is None
    last = torch.load(tmp_path / "b" / "run" / "last.pt", weights_only=False)
    assert last["step"] == 2
    half = train(tiny_config(tmp_path / "b"))
    sa, _ = read_checkpoint(full)
    sb, cfg_saved = read_checkpoint(half)
    assert cfg_saved == model_config(TINY_MODEL).to_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    log = [json.loads(line) for line in (tmp_path / "a" / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(r["total"] > 0 for r in log)
    model = build_sam(checkpoint=full)  # rebuilds from the embedded config
    assert model.image_encoder.img_size == 64


def _fixed_batch(cfg):
    pool = build_pool(cfg.data.train_seed, cfg.data.train_images, cfg.data)
    return pool.images[:2], [pool.masks(0), pool.masks(1)]


def test_supervised_training_learns(tmp_path):
    """40 steps on one batch: the loss must fall well below its start (the pipeline learns)."""
    torch.manual_seed(0)
    cfg = tiny_config(tmp_path, click_rounds=1)
    images, masks = _fixed_batch(cfg)
    model = build_from_config(model_config(cfg.model)).train()
    step = TrainStep(model, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for i in range(40):
        terms = step(images, masks, torch.Generator().manual_seed(i % 4))
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(float(terms["total"].detach()))
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5, losses


def test_distillation_with_cache_learns(tmp_path):
    """Full-stage distillation from a (random) teacher: cached embeddings, all loss terms, loss falls."""
    torch.manual_seed(1)
    teacher = build_from_config(model_config(TINY_MODEL)).eval()
    tpath = tmp_path / "teacher.pt"
    save_checkpoint(teacher, tpath, config=model_config(TINY_MODEL).to_dict())
    student_model = dict(TINY_MODEL, encoder_config=dict(TINY_MODEL["encoder_config"], embed_dims=[8, 8, 16, 16]))
    cfg = tiny_config(tmp_path, mode="distill", teacher_checkpoint=str(tpath), model=student_model, steps=3)
    final = train(cfg)
    assert list((tmp_path / "data").glob("temb_*.pt"))  # teacher embeddings precomputed to disk
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {"embedding", "token", "output", "iou", "total"} <= set(log[0])
    student = build_sam(checkpoint=final)
    # the decoder started as the teacher's (same architecture), then moved with training
    assert student.mask_decoder.iou_token.weight.shape == teacher.mask_decoder.iou_token.weight.shape

    images, masks = _fixed_batch(cfg)
    s = build_from_config(model_config(student_model)).train()
    step = TrainStep(s, cfg, teacher)
    opt = torch.optim.AdamW(s.parameters(), lr=3e-3)
    losses = []
    for i in range(30):
        terms = step(images, masks, torch.Generator().manual_seed(i % 4))
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(float(terms["total"].detach()))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses


def test_cli(tmp_path, capsys):
    cfg = tiny_config(tmp_path, steps=1)
    save_config(cfg, tmp_path / "c.yaml")
    assert train_main([str(tmp_path / "c.yaml")]) == 0
    assert "final checkpoint" in capsys.readouterr().out
    assert train_main([str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2 copy keyword
def test_training_on_coco_format_data(tmp_path):
    """Real-data path: a COCO-format file (polygons) drives the same trainer."""
    import numpy as np
    from PIL import Image

    images, anns = [], []
    for i in range(3):
        img = np.full((48, 64, 3), 30, np.uint8)
        img[8:30, 10 + i:40 + i] = (200, 50, 50)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        images.append({"id": i, "file_name": f"{i}.png", "height": 48, "width": 64})
        x0, x1 = 10 + i, 39 + i
        anns.append({"id": i, "image_id": i, "iscrowd": 0, "segmentation": [[x0, 8, x1, 8, x1, 29, x0, 29]]})
    (tmp_path / "ann.json").write_text(json.dumps({"images": images, "annotations": anns}))
    data = dict(source="coco", annotations=str(tmp_path / "ann.json"), image_dir=str(tmp_path), image_size=64,
                cache_dir=str(tmp_path / "data"))
    from samfpga.models.training.config import DataConfig

    cfg = tiny_config(tmp_path, steps=2, data=DataConfig(**data))
    assert train(cfg).is_file()
    with pytest.raises(ValueError, match="needs annotations"):
        DataConfig(source="coco")


def test_stop_after_ends_early_on_the_same_schedule(tmp_path):
    final = train(tiny_config(tmp_path, steps=6, stop_after=2))
    assert final is not None and final.is_file()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]
    assert log[-1]["lr"] > 0.5 * 3e-3  # still high: the schedule is the 6-step one
