"""Training with HQ-SAM's head: the HQ mask's loss term, learning, and HQ-SAM's recipe (only the head learns,
starting from a model trained without it)."""

from __future__ import annotations

import json

import pytest
import torch

from samfpga.models import read_checkpoint, save_checkpoint
from samfpga.models.build import build_from_config
from samfpga.models.mask_decoder_hq import MaskDecoderHQ, is_hq_key
from samfpga.models.training.config import TrainConfig
from samfpga.models.training.trainer import TrainStep, build_pool, model_config, train
from tests.support.training import TINY_MODEL, tiny_config

TINY_HQ = {**TINY_MODEL, "hq_token": True}


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on the shared 2-core machine two threads of a tiny model mostly wait for each other
    (the 40 steps below: 6 min with the default 2 threads under load, seconds with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_hq_term_learns(tmp_path):
    """40 steps on one batch: the HQ mask's loss falls well below its start."""
    torch.manual_seed(0)
    cfg = tiny_config(tmp_path, model=TINY_HQ, click_rounds=1)
    pool = build_pool(cfg.data.train_seed, cfg.data.train_images, cfg.data)
    images, masks = pool.images[:2], [pool.masks(0), pool.masks(1)]
    model = build_from_config(model_config(cfg.model)).train()
    assert isinstance(model.mask_decoder, MaskDecoderHQ)
    step = TrainStep(model, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    hq = []
    for i in range(40):
        terms = step(images, masks, torch.Generator().manual_seed(i % 4))
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        hq.append(float(terms["hq"].detach()))
    assert sum(hq[-5:]) / 5 < 0.6 * sum(hq[:5]) / 5, hq


def test_only_the_hq_head_trains_from_a_model_without_it(tmp_path):
    torch.manual_seed(1)
    plain = build_from_config(model_config(TINY_MODEL)).eval()
    init = tmp_path / "plain.pt"
    save_checkpoint(plain, init, config=model_config(TINY_MODEL).to_dict())
    cfg = tiny_config(tmp_path, model=TINY_HQ, init_checkpoint=str(init), trainable="hq", steps=3)
    final = train(cfg)
    state, saved = read_checkpoint(final)
    assert saved["hq_token"] is True
    before = plain.state_dict()
    hq_keys = [k for k in state if is_hq_key(k)]
    assert hq_keys and set(state) - set(hq_keys) == set(before)
    for k, v in before.items():  # SAM's weights: frozen
        assert torch.equal(state[k].to(v.dtype), v), k
    fresh = build_from_config(model_config(TINY_HQ)).state_dict()
    assert any(not torch.equal(state[k], fresh[k]) for k in hq_keys if state[k].is_floating_point())
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert "hq" in log[0]


def test_trainable_hq_needs_the_head(tmp_path):
    with pytest.raises(ValueError, match="trainable 'hq' needs a model with HQ-SAM's head"):
        train(tiny_config(tmp_path, trainable="hq", steps=1))
    with pytest.raises(ValueError, match="trainable must be 'all' or 'hq'"):
        TrainConfig(trainable="decoder")
