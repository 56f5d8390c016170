"""A tiny model and config for fast training / DDP / evaluation tests (64x64 images, ~30k parameters)."""

from __future__ import annotations

from pathlib import Path

from samfpga.models.training.config import DataConfig, TrainConfig

TINY_MODEL = {
    "encoder": "tiny_vit",
    "encoder_config": {
        "img_size": 64, "embed_dims": [8, 16, 16, 16], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
        "window_sizes": [4, 4, 4, 4], "out_chans": 32, "num_classes": 0, "activation": "relu",
    },
    "prompt_embed_dim": 32, "mask_in_chans": 4, "decoder_heads": 2, "decoder_mlp_dim": 64, "iou_head_hidden_dim": 32,
}


def tiny_config(out: Path, **kw) -> TrainConfig:
    base = dict(
        name="tiny", model=TINY_MODEL, steps=4, batch_size=2, instances_per_image=2, click_rounds=1,
        data=DataConfig(image_size=64, train_images=8, min_objects=1, max_objects=3, cache_dir=str(out / "data")),
        out_dir=str(out / "run"), save_every=2, log_every=1, warmup_steps=1, lr=3e-3,
    )
    base.update(kw)
    return TrainConfig(**base)
