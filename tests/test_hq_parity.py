"""Parity of the HQ-SAM head (``MaskDecoderHQ``, ``TinyViT.forward_with_early``) with the official HQ-SAM code
(PyPI ``segment-anything-hq``) under shared seeded weights.

Tolerance (float32, CPU): max abs diff <= 1e-4 on the early feature, the embedding, mask logits and IoU.
"""

from __future__ import annotations

import pytest
import torch

from samfpga.models import build_sam
from samfpga.models.mask_decoder_hq import MaskDecoderHQ
from samfpga.models.official import segment_anything_hq
from samfpga.models.two_way_transformer import TwoWayTransformer
from tests.support.official import seeded_state_dict

TOL = 1e-4
HQ_KEYS = ("hf_token", "hf_mlp", "compress_vit_feat", "embedding_encoder", "embedding_maskfeature")


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max())


def _decoders(dim: int = 64, vit_dim: int = 48) -> tuple[torch.nn.Module, MaskDecoderHQ]:
    m = segment_anything_hq().modeling
    torch.manual_seed(0)
    ref = m.MaskDecoderHQ(transformer_dim=dim, transformer=m.TwoWayTransformer(depth=2, embedding_dim=dim,
                          mlp_dim=128, num_heads=4), iou_head_hidden_dim=64, vit_dim=vit_dim)
    ours = MaskDecoderHQ(transformer_dim=dim, transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=128,
                         num_heads=4), iou_head_hidden_dim=64, vit_dim=vit_dim)
    state = seeded_state_dict(ref, seed=3, std=0.2)
    ref.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)
    return ref.eval(), ours.eval()


def test_decoder_layout_and_parity():
    ref, ours = _decoders()
    assert list(ref.state_dict()) == list(ours.state_dict())
    assert any(k.startswith(HQ_KEYS) for k in ours.state_dict())
    g = torch.Generator().manual_seed(5)
    emb, pe = torch.randn(1, 64, 16, 16, generator=g), torch.randn(1, 64, 16, 16, generator=g)
    sparse, dense = torch.randn(3, 4, 64, generator=g), torch.randn(3, 64, 16, 16, generator=g)
    interm = [torch.randn(1, 16, 16, 48, generator=g)]
    with torch.no_grad():
        for multimask in (True, False):
            for hq_only in (True, False):
                a = ref(emb, pe, sparse, dense, multimask, hq_only, interm)
                b = ours(emb, pe, sparse, dense, multimask, hq_only, interm)
                assert a[0].shape == b[0].shape == (3, 1, 64, 64) and a[1].shape == b[1].shape == (3, 1)
                assert float(a[0].std()) > 0.1  # logits of order one: the tolerance means something
                assert maxdiff(a[0], b[0]) <= TOL and maxdiff(a[1], b[1]) <= TOL
        # the HQ mask is a separate output: not SAM's mask, and not computable without the early feature
        out = ours.predict_all(emb, pe, sparse, dense, interm[0].permute(0, 3, 1, 2))
        assert out.masks.shape == (3, 4, 64, 64) and out.hq_masks.shape == (3, 1, 64, 64)
        assert maxdiff(out.hq_masks, out.masks[:, :1]) > 0.1
        assert ours.predict_all(emb, pe, sparse, dense).hq_masks is None
    with pytest.raises(ValueError, match=r"early features must be \(B, 48, \(16, 16\)\)"):
        ours.predict_all(emb, pe, sparse, dense, torch.zeros(1, 32, 16, 16))


def test_light_hq_sam_state_dict_layout():
    """Our ``vit_t_hq`` holds exactly the official Light HQ-SAM (``sam_hq_vit_tiny.pth``) keys and shapes."""
    ref = segment_anything_hq().sam_model_registry["vit_tiny"]()
    ours = build_sam("vit_t_hq")
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert {k: tuple(v.shape) for k, v in ref_sd.items()} == {k: tuple(v.shape) for k, v in our_sd.items()}
    extra = sum(v.numel() for k, v in our_sd.items() if k.startswith(tuple(f"mask_decoder.{p}" for p in HQ_KEYS)))
    assert extra == 448_512  # 4.2% of vit_t_hq's 10.59M (HQ-SAM's < 0.5% is of ViT-H SAM)
    ours.load_state_dict(ref_sd, strict=True)


# the official TinyViT keeps resolution in its last merge only for 320/448/576 channels
SMALL = dict(embed_dims=[16, 32, 48, 320], depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 4])


@pytest.mark.slow  # two TinyViTs at 1024x1024 (Light HQ-SAM's hard-coded 64x64 grid)
def test_light_hq_sam_end_to_end():
    """Image -> early feature + embedding -> point prompt -> HQ masks, against the official modules."""
    m = segment_anything_hq().modeling
    torch.manual_seed(0)
    ref = m.Sam(
        image_encoder=m.TinyViT(img_size=1024, in_chans=3, num_classes=1000, window_sizes=[7, 7, 14, 7],
                                mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.0, mbconv_expand_ratio=4.0,
                                local_conv_size=3, layer_lr_decay=0.8, **SMALL),
        prompt_encoder=m.PromptEncoder(embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024),
                                       mask_in_chans=16),
        mask_decoder=m.MaskDecoderHQ(num_multimask_outputs=3, transformer=m.TwoWayTransformer(
            depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8), transformer_dim=256, iou_head_depth=3,
            iou_head_hidden_dim=256, vit_dim=SMALL["embed_dims"][2]),
    )
    state = seeded_state_dict(ref, seed=1)
    ref.load_state_dict(state, strict=True)
    ref.eval()  # after loading: the official TinyViT caches its attention biases in eval()
    ours = build_sam("vit_t_hq", **SMALL)
    ours.load_state_dict(state, strict=True)
    ours.eval()
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        emb_a, interm = ref.image_encoder(x)
        emb_b, early = ours.image_encoder.forward_with_early(x)
        assert early.shape == (1, 48, 64, 64) and float(early.std()) > 0.05
        assert maxdiff(interm[0].permute(0, 3, 1, 2), early) <= TOL
        assert maxdiff(emb_a, emb_b) <= TOL
        pts = (torch.tensor([[[300.0, 500.0], [700.0, 200.0]]]), torch.tensor([[1, 0]]))
        sp_a, de_a = ref.prompt_encoder(points=pts, boxes=None, masks=None)
        sp_b, de_b = ours.prompt_encoder(points=pts, boxes=None, masks=None)
        for multimask in (True, False):
            a = ref.mask_decoder(emb_a, ref.prompt_encoder.get_dense_pe(), sp_a, de_a, multimask, False, interm)
            b = ours.mask_decoder(emb_b, ours.prompt_encoder.get_dense_pe(), sp_b, de_b, multimask, False,
                                  [early.permute(0, 2, 3, 1)])
            assert float(a[0].std()) > 0.1
            assert maxdiff(a[0], b[0]) <= TOL and maxdiff(a[1], b[1]) <= TOL


def test_hq_needs_an_early_feature():
    with pytest.raises(ValueError, match="early features .* need four stages"):
        build_sam("vit_t_hq", image_size=256, embed_dims=[16, 32, 64], depths=[1, 1, 1], num_heads=[1, 1, 2],
                  window_sizes=[7, 7, 7])
