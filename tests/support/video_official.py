"""The official SAM2 code (PyPI ``sam2`` 1.1.0, byte-identical to facebookresearch/sam2 at 2b90b9f) as a CPU test
oracle, with the workarounds listed in ../shared/VIDEO.md."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
# What apply_postprocessing=True sets, except fill_hole_area (its connected components need the CUDA extension)
POSTPROCESSING = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
    "++model.binarize_mask_from_pts_for_mem_enc=true",
)


def sam2_available() -> bool:
    try:
        import sam2  # noqa: F401
    except Exception:
        return False
    return True


requires_sam2 = pytest.mark.skipif(not sam2_available(), reason="official sam2 not installed (env/setup.sh dev)")


def _float_memory_attention(model: torch.nn.Module) -> None:
    """The bf16 memory bank meets fp32 pointer tokens in a cat (sam2 issues #308, #577): run attention in fp32."""
    ma = model.memory_attention
    orig = ma.forward

    @functools.wraps(orig)
    def forward(curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0):
        return orig(curr=curr, memory=memory.float(), curr_pos=curr_pos, memory_pos=memory_pos.float(),
                    num_obj_ptr_tokens=num_obj_ptr_tokens)

    ma.forward = forward


def official_video_predictor(image_size: int = 256, extra: tuple[str, ...] = ()) -> torch.nn.Module:
    """``SAM2VideoPredictor`` for SAM2.1 tiny with random weights on CPU, no post-processing (needs CUDA ext)."""
    from sam2.build_sam import build_sam2_video_predictor

    p = build_sam2_video_predictor(CONFIG, None, device="cpu", apply_postprocessing=False,
                                   hydra_overrides_extra=[f"++model.image_size={image_size}", *POSTPROCESSING, *extra])
    _float_memory_attention(p)
    return p.eval()


def feed_frames(frames: list[np.ndarray], image_size: int):
    """Context manager: make the official ``init_state`` read ``frames`` ((H, W, 3) uint8 RGB) instead of JPEGs,
    resized to image_size² (bilinear, as the host does) and normalised as official."""
    import contextlib

    import sam2.sam2_video_predictor as svp

    from samfpga.video.frames import resize_frame

    def load(video_path, image_size, offload_video_to_cpu, img_mean=(0.485, 0.456, 0.406),
             img_std=(0.229, 0.224, 0.225), async_loading_frames=False, compute_device=None):
        imgs = np.stack([resize_frame(f, image_size) for f in frames]).astype(np.float32) / 255.0
        t = torch.from_numpy(imgs).permute(0, 3, 1, 2)
        t = (t - torch.tensor(img_mean).view(1, 3, 1, 1)) / torch.tensor(img_std).view(1, 3, 1, 1)
        return t, frames[0].shape[0], frames[0].shape[1]

    @contextlib.contextmanager
    def ctx():
        orig = svp.load_video_frames
        svp.load_video_frames = load
        try:
            yield
        finally:
            svp.load_video_frames = orig

    return ctx()


def seeded_sam2_state(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    """Random weights of order one for every parameter and buffer in ``model``'s state dict (norm scales ≈ 1)."""
    g = torch.Generator().manual_seed(seed)
    norms = {f"{n}.weight" for n, m in model.named_modules()
             if isinstance(m, torch.nn.LayerNorm) or type(m).__name__ == "LayerNorm2d"}
    out = {}
    for k, v in model.state_dict().items():
        if not v.is_floating_point():
            out[k] = v.clone()
        elif k in norms:
            out[k] = 1.0 + std * torch.randn(v.shape, generator=g)
        elif k.endswith("gamma"):  # ConvNeXt layer scale: official init 1e-6 would hide the block
            out[k] = 0.5 + 0.1 * torch.randn(v.shape, generator=g)
        else:
            out[k] = std * torch.randn(v.shape, generator=g)
    return out
