"""Loading video models: official SAM2.1 checkpoints (``torch.load(f)["model"]``, strict), samfpga video
checkpoints (state + config), and the FPGA family initialised from a trained samfpga image model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..checkpoint import CheckpointError, check_state_dict
from ..sam import Sam
from .model import VideoConfig, VideoSam


class VideoCheckpointError(CheckpointError):
    """A checkpoint that does not fit the video model; the message names the file and the keys."""


def _strict_load(model: VideoSam, state: dict[str, torch.Tensor], source: str) -> None:
    # the image model's strict check (missing, unexpected and mis-shaped keys named), one implementation
    check_state_dict(model, state, f"{source} ({model.cfg.family} video model)")
    model.load_state_dict(state, strict=True)


def load_official_sam2(path: str | Path, image_size: int = 1024) -> VideoSam:
    """An official ``sam2.1_hiera_tiny.pt`` (``{"model": state_dict}``) as a ``VideoSam`` (eval)."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise VideoCheckpointError(f"{path}: expected a dict with a 'model' state dict")
    model = VideoSam(VideoConfig(family="sam2.1_tiny", image_size=image_size))
    _strict_load(model, state, str(path))
    return model.eval()


def save_video_checkpoint(model: VideoSam, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    torch.save({"format": "samfpga-video-checkpoint", "config": model.cfg.to_dict(), "model": model.state_dict(),
                **(extra or {})}, path)


def load_video_checkpoint(path: str | Path) -> VideoSam:
    """A samfpga video checkpoint (config + state) or an official SAM2.1-tiny file."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and obj.get("format") == "samfpga-video-checkpoint":
        model = VideoSam(VideoConfig.from_dict(obj["config"]))
        _strict_load(model, obj["model"], str(path))
        return model.eval()
    return load_official_sam2(path)


def video_from_image_model(sam: Sam, **overrides: Any) -> VideoSam:
    """The FPGA family around a samfpga image model: its TinyViT encoder, prompt encoder and mask decoder
    weights (the decoder's MLP renamed lin1/lin2 -> layers.0/1), new object-score token/head and memory parts.
    Only TinyViT image models fit (the FINN-compiled encoder)."""
    cfg = getattr(sam, "config", None)
    if cfg is None or cfg.encoder != "tiny_vit":
        raise VideoCheckpointError("video_from_image_model needs a samfpga TinyViT image model (with .config)")
    enc = cfg.encoder_config
    import dataclasses

    tv = {k: v for k, v in dataclasses.asdict(enc).items() if k not in ("img_size", "out_chans")}
    video = VideoSam(VideoConfig(family="fpga", image_size=enc.img_size, hidden_dim=cfg.prompt_embed_dim,
                                 decoder_mlp_dim=cfg.decoder_mlp_dim, tiny_vit=tv, **overrides))
    state = video.state_dict()
    src = sam.state_dict()
    for k, v in src.items():
        if k.startswith("image_encoder."):
            dst = k
        elif k.startswith("prompt_encoder."):
            dst = "sam_" + k
        elif k.startswith("mask_decoder."):
            dst = "sam_" + k.replace(".mlp.lin1.", ".mlp.layers.0.").replace(".mlp.lin2.", ".mlp.layers.1.")
        else:
            continue
        if dst not in state or state[dst].shape != v.shape:
            raise VideoCheckpointError(f"image-model key {k} has no place in the video model ({dst})")
        state[dst] = v.clone()
    video.load_state_dict(state, strict=True)
    return video.eval()
