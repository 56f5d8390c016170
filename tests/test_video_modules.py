"""Parity of the video parts with the official SAM2.1 code under seeded random weights (each ≤ 1e-4), and strict
loading of official-layout SAM2.1-tiny state dicts."""

from __future__ import annotations

import pytest
import torch

from samfpga.models.video import build_video_sam
from samfpga.models.video.position import sine_pe_1d
from tests.support.video_official import CONFIG, POSTPROCESSING, requires_sam2, seeded_sam2_state

pytestmark = requires_sam2
S = 256  # image size; feature grid 16²
TOL = 1e-4


@pytest.fixture(scope="module")
def pair():
    from sam2.build_sam import build_sam2

    torch.manual_seed(0)
    off = build_sam2(CONFIG, None, device="cpu", mode="eval", apply_postprocessing=False,
                     hydra_overrides_extra=[f"++model.image_size={S}", *POSTPROCESSING[:3]]).eval()
    sd = seeded_sam2_state(off, seed=1)
    off.load_state_dict(sd, strict=True)
    ours = build_video_sam("sam2.1_tiny", S)
    ours.load_state_dict(sd, strict=True)
    return off, ours


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    err = (a - b).abs().max().item()
    assert err <= tol, f"max abs diff {err:.3g} > {tol}"


def test_state_dict_layout_is_official(pair):
    off, ours = pair
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in off.state_dict().items()}
    assert sum(p.numel() for p in ours.parameters()) == 38_962_498


@torch.no_grad()
def test_image_encoder(pair):
    off, ours = pair
    img = torch.rand(1, 3, S, S, generator=torch.Generator().manual_seed(2)) * 255
    x = (img - ours.pixel_mean) / ours.pixel_std
    ref = off.forward_image(x)
    feat, (s0, s1) = ours.backbone(img)
    _close(feat, ref["backbone_fpn"][-1])
    _close(s0, ref["backbone_fpn"][0])
    _close(s1, ref["backbone_fpn"][1])
    _close(ours.vision_pos(), ref["vision_pos_enc"][-1])


@torch.no_grad()
@pytest.mark.parametrize("absent", [False, True])
def test_memory_encoder(pair, absent):
    off, ours = pair
    g = torch.Generator().manual_seed(3)
    pix = torch.randn(2, 256, 16, 16, generator=g)
    masks = 8 * torch.randn(2, 1, S, S, generator=g)
    score = torch.full((2, 1), -3.0 if absent else 3.0)
    feats_ref, pos_ref = off._encode_new_memory([pix.flatten(2).permute(2, 0, 1)], [(16, 16)], masks, score, False)
    _close(ours.encode_memory(pix, masks, score, binarize=False), feats_ref)
    _close(ours.memory_encoder.position(16, 16), pos_ref[0][:1])


@torch.no_grad()
@pytest.mark.parametrize("n_frames,n_ptr", [(1, 4), (3, 12)])
def test_memory_attention(pair, n_frames, n_ptr):
    off, ours = pair
    g = torch.Generator().manual_seed(4)
    b, hw = 2, 256
    curr, curr_pos = torch.randn(b, hw, 256, generator=g), torch.randn(b, hw, 256, generator=g)
    mem, mem_pos = torch.randn(b, n_frames * hw, 64, generator=g), torch.randn(b, n_frames * hw, 64, generator=g)
    ptr, ptr_pos = torch.randn(b, n_ptr, 64, generator=g), torch.randn(b, n_ptr, 64, generator=g)
    ref = off.memory_attention(curr=[curr.transpose(0, 1)], curr_pos=[curr_pos.transpose(0, 1)],
                               memory=torch.cat([mem, ptr], 1).transpose(0, 1),
                               memory_pos=torch.cat([mem_pos, ptr_pos], 1).transpose(0, 1),
                               num_obj_ptr_tokens=n_ptr).transpose(0, 1)
    _close(ours.memory_attention(curr, curr_pos, mem, mem_pos, ptr, ptr_pos), ref)


@torch.no_grad()
@pytest.mark.parametrize("multimask,with_mask,absent", [(True, False, False), (False, True, False),
                                                         (False, False, True)])
def test_sam_heads(pair, multimask, with_mask, absent):
    off, ours = pair
    g = torch.Generator().manual_seed(5)
    b = 2
    pix = torch.randn(b, 256, 16, 16, generator=g)
    hr = (torch.randn(b, 32, 64, 64, generator=g), torch.randn(b, 64, 32, 32, generator=g))
    coords = torch.rand(b, 3, 2, generator=g) * S
    labels = torch.tensor([[1, 0, 2], [1, 3, 1]], dtype=torch.int32)
    mask = 4 * torch.randn(b, 1, 64, 64, generator=g) if with_mask else None
    bias = ours.sam_mask_decoder.pred_obj_score_head.layers[2].bias
    saved = bias.clone()
    for m in (off, ours):  # force the occlusion branch both ways (VIDEO.md)
        m.sam_mask_decoder.pred_obj_score_head.layers[2].bias.fill_(-20.0 if absent else 20.0)
    try:
        ref = off._forward_sam_heads(pix, {"point_coords": coords, "point_labels": labels}, mask, list(hr), multimask)
        got = ours.heads(pix, coords, labels, mask, multimask, hr)
    finally:
        for m in (off, ours):
            m.sam_mask_decoder.pred_obj_score_head.layers[2].bias.copy_(saved)
    names = ["low_res_multimasks", "high_res_multimasks", "ious", "low_res_masks", "high_res_masks", "obj_ptr",
             "object_score_logits"]
    for name, r in zip(names, ref):
        if name in got:
            _close(got[name], r)


@torch.no_grad()
def test_mask_as_output(pair):
    off, ours = pair
    g = torch.Generator().manual_seed(6)
    pix = torch.randn(2, 256, 16, 16, generator=g)
    hr = (torch.randn(2, 32, 64, 64, generator=g), torch.randn(2, 64, 32, 32, generator=g))
    mask = torch.zeros(2, 1, S, S)
    mask[0, :, 40:120, 60:200] = 1  # the second object's mask is empty: the no-object pointer
    ref = off._use_mask_as_output(pix, list(hr), mask)
    got = ours.mask_as_output(pix, mask, hr)
    for name, r in zip(["low_res_masks", "high_res_masks", "ious"], ref[:3]):
        _close(got[name], r)
    _close(got["obj_ptr"], ref[5])
    _close(got["object_score_logits"], ref[6])


@torch.no_grad()
def test_pointer_positions(pair):
    from sam2.modeling.sam2_utils import get_1d_sine_pe

    off, ours = pair
    rel = torch.tensor([0, 3, -2, 1, 15])
    ref = off.obj_ptr_tpos_proj(get_1d_sine_pe(rel / 15, dim=256))
    _close(ours.pointer_positions(rel, 16), ref)
    _close(sine_pe_1d(rel / 15, 256), get_1d_sine_pe(rel / 15, dim=256), 1e-6)
