"""SAM ViT-B/L/H teacher encoder: official ``sam_vit_*`` layout (strict loads of self-made state dicts) and
parity with ``segment_anything``'s ImageEncoderViT under shared seeded random weights."""

from __future__ import annotations

import functools

import pytest
import torch

from samfpga.models import CheckpointError, build_sam
from samfpga.models.image_encoder.vit import VIT_VARIANTS, ImageEncoderViT, ViTConfig
from tests.support.official import seeded_state_dict, segment_anything

# Reduced ViT for numerical checks: 2 blocks, one windowed (with padding: 8x8 grid, window 3) and one global.
SMALL = dict(img_size=128, embed_dim=64, depth=2, num_heads=4, window_size=3, global_attn_indexes=[1])


def official_small_sam() -> torch.nn.Module:
    sa = segment_anything()
    from segment_anything.modeling import ImageEncoderViT as OfficialViT
    from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    enc = OfficialViT(
        img_size=128, patch_size=16, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0, out_chans=256,
        qkv_bias=True, norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        rel_pos_zero_init=True, window_size=3, global_attn_indexes=(1,),
    )
    assert sa is not None
    return Sam(
        image_encoder=enc,
        prompt_encoder=PromptEncoder(embed_dim=256, image_embedding_size=(8, 8), input_image_size=(128, 128),
                                     mask_in_chans=16),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=2, embedding_dim=256,
                                 mlp_dim=2048, num_heads=8), transformer_dim=256, iou_head_depth=3,
                                 iou_head_hidden_dim=256),
    ).eval()


def test_full_vit_b_layout_matches_official():
    """Keys, order and shapes of the whole sam_vit_b model (built on the meta device: no memory, no time)."""
    sa = segment_anything()
    with torch.device("meta"):
        ref = sa.sam_model_registry["vit_b"]()
        ours = build_sam("vit_b")
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    assert {k: tuple(v.shape) for k, v in our_sd.items()} == {k: tuple(v.shape) for k, v in ref_sd.items()}
    assert sum(p.numel() for p in ours.image_encoder.parameters()) == 89_670_912


@pytest.mark.parametrize("variant", ["vit_l", "vit_h"])
def test_large_variants_layout(variant):
    sa = segment_anything()
    with torch.device("meta"):
        ref = sa.sam_model_registry[variant]().image_encoder
        ours = ImageEncoderViT(ViTConfig(**VIT_VARIANTS[variant]))
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in ref.state_dict().items()
    }


def test_small_vit_strict_load_and_parity(tmp_path):
    ref = official_small_sam()
    state = seeded_state_dict(ref, seed=3)
    ref.load_state_dict(state)
    path = tmp_path / "sam_vit_b_small.pth"
    torch.save(state, path)
    ours = build_sam("vit_b", checkpoint=path, image_size=128, embed_dim=64, depth=2, num_heads=4, window_size=3,
                     global_attn_indexes=[1])
    got = ours.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        e_ref, e_our = ref.image_encoder(x), ours.image_encoder(x)
        assert e_our.shape == (2, 256, 8, 8)
        assert (e_ref - e_our).abs().max().item() <= 1e-6  # measured: 0.0 (same ops in the same order)
        pts = (torch.tensor([[[40.0, 60.0]]]), torch.tensor([[1.0]]))
        s_r, d_r = ref.prompt_encoder(points=pts, boxes=None, masks=None)
        m_r, i_r = ref.mask_decoder(e_ref[:1], ref.prompt_encoder.get_dense_pe(), s_r, d_r, True)
        s_o, d_o = ours.prompt_encoder(points=pts, boxes=None, masks=None)
        m_o, i_o = ours.mask_decoder(e_our[:1], ours.prompt_encoder.get_dense_pe(), s_o, d_o, True)
    assert (m_r - m_o).abs().max().item() <= 1e-4 and (i_r - i_o).abs().max().item() <= 1e-5


def test_wrong_layout_is_refused(tmp_path):
    ref = official_small_sam()
    state = seeded_state_dict(ref, seed=1)
    del state["image_encoder.blocks.1.attn.rel_pos_h"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="rel_pos_h"):
        build_sam("vit_b", checkpoint=path, image_size=128, embed_dim=64, depth=2, num_heads=4, window_size=3,
                  global_attn_indexes=[1])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="patch_size"):
        ViTConfig(img_size=100)
