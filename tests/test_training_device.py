"""What a bounded run on a lent GPU needs from the trainer, checked on the CPU: the device setting, bf16 autocast,
the time budget that still writes model.pt, and synthetic pools drawn by worker processes (the same pool)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from samfpga.models import read_checkpoint
from samfpga.models.training.config import DataConfig, TrainConfig
from samfpga.models.training.trainer import build_pool, resolve_device, train
from tests.support.training import tiny_config


def test_device_setting():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no GPU"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="workers"):
        DataConfig(workers=0)


def test_bf16_autocast_trains_and_changes_the_arithmetic(tmp_path):
    """amp=bf16 (CPU autocast here, the GPU's tensor cores there): the run completes with finite losses, and its
    weights differ from the float32 run's (autocast is really on); device=auto picks this machine's device."""
    fp32 = train(tiny_config(tmp_path / "fp32", device="auto"))
    bf16 = train(tiny_config(tmp_path / "bf16", device="auto", amp="bf16"))
    log = [json.loads(line) for line in (tmp_path / "bf16" / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(0 < r["total"] < 1e3 for r in log)
    a, _ = read_checkpoint(fp32)
    b, _ = read_checkpoint(bf16)
    assert all(v.dtype == torch.float32 and bool(torch.isfinite(v).all()) for v in b.values() if v.is_floating_point())
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_time_budget_stops_and_still_writes_the_model(tmp_path):
    final = train(tiny_config(tmp_path, steps=50, time_budget_s=1e-6))
    assert final is not None and final.is_file()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1] and log[-1]["stopped"].startswith("time budget")
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 1
    # without a budget the same config runs its schedule to the end
    full = train(tiny_config(tmp_path / "b", steps=3))
    assert full is not None
    assert [json.loads(x)["step"] for x in (tmp_path / "b" / "run" / "log.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_pool_drawn_by_workers_is_the_same_pool(tmp_path):
    data = DataConfig(image_size=64, train_images=70, min_objects=1, max_objects=3, cache_dir=None)
    one = build_pool(0, 70, data)
    two = build_pool(0, 70, dataclasses.replace(data, workers=2))  # two chunks of 64 and 6, two processes
    assert torch.equal(one.images, two.images) and torch.equal(one.labels, two.labels)
    assert int(one.labels.max()) >= 1


@pytest.mark.parametrize("mode", ["supervised", "distill"])
def test_step_runs_with_the_models_off_the_cpu(tmp_path, meta_nonzero, mode):
    """The GPU path checked without a GPU: the models on torch's meta device, where arithmetic with a CPU tensor
    raises ('Tensor on device cpu is not on the expected device meta') as it would with a CUDA one. One step forward
    and backward, point and box prompts (click rounds need values: the clicks are drawn on the CPU from the
    predictions, which a meta tensor does not have)."""
    from samfpga.models.build import build_from_config
    from samfpga.models.training.trainer import TrainStep, model_config

    with pytest.raises(RuntimeError, match="device"):
        torch.ones(2, device="meta") + torch.ones(2)  # the check this test relies on
    cfg = tiny_config(tmp_path, click_rounds=0)
    pool = build_pool(0, 4, cfg.data)
    student = build_from_config(model_config(cfg.model)).train().to("meta")
    teacher = build_from_config(model_config(cfg.model)).eval().to("meta") if mode == "distill" else None
    for box_prob in (0.0, 1.0):
        step = TrainStep(student, dataclasses.replace(cfg, box_prob=box_prob, mode=mode, teacher_checkpoint="t.pt"
                                                      if mode == "distill" else None), teacher)
        terms = step(pool.images[:2], [pool.masks(0), pool.masks(1)], torch.Generator().manual_seed(0))
        assert terms["total"].device.type == "meta"
        terms["total"].backward()
    assert any(p.grad is not None for p in student.parameters())
