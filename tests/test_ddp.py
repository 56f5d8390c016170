"""The training CLI runs unchanged under torchrun: 2 CPU processes (gloo), DistributedDataParallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from samfpga.models import build_sam, read_checkpoint
from samfpga.models.training.config import save_config
from tests.support.training import tiny_config


@pytest.mark.slow  # pytest --durations, 2-core machine under load average ~15: 51 s
def test_torchrun_two_processes(tmp_path):
    cfg = tiny_config(tmp_path, steps=3, threads=1)
    save_config(cfg, tmp_path / "tiny.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "samfpga.models.training.cli", str(tmp_path / "tiny.yaml")],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # both ranks finished (each prints), and the replicas were checked to agree inside train()
    assert proc.stdout.count("final checkpoint") == 2, proc.stdout[-2000:]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]  # only rank 0 logs
    state, _ = read_checkpoint(tmp_path / "run" / "model.pt")
    init = build_sam(checkpoint=tmp_path / "run" / "model.pt")
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert init.image_encoder.img_size == 64
