"""bench.decoder_lowrank (the factored prompt side, measured and not shipped) computes the split decoder's prompt
side: IoU predictions, hypernetwork outputs and the final image tokens (the factors multiplied out) against
``PromptSideModel`` at the vit_t decoder's sizes (256 channels, 8 heads, depth 2) on a 16x16 embedding.

Tolerance: max abs diff <= 1e-5 x max(1, max |reference|), as tests/test_decoder_split.py (float32 rounding of
the same function with the products in another order and the layer-norm statistics expanded).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.decoder_lowrank import LowRankPromptSideModel, per_image_tensor
from samfpga.models import build_sam
from samfpga.models.export.decoder_split import ImageSideModel, PromptSideModel
from tests.test_decoder_split import CASES, TOL, _err, _prompts, _strong


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    return _strong(build_sam("vit_t", image_size=256), seed=1, scale=20)


@pytest.mark.parametrize("case", ["one_point", "batched_points_boxes"])
def test_factored_prompt_side_equals_split(sam, case):
    rng = np.random.default_rng(7)
    pc, pl = (torch.from_numpy(a) for a in _prompts(rng, *CASES[case], 256))
    emb = torch.from_numpy(rng.normal(size=(1, 256, 16, 16)).astype(np.float32))
    with torch.no_grad():
        ims = ImageSideModel(sam).eval()
        src, k, v, q = ims(emb)
        iou, hyper, tokens = PromptSideModel(sam).eval()(src, k, v, q, pc, pl)
        lr = LowRankPromptSideModel(sam).eval()
        specs = lr.record(src, ims.pos, (k, v, q), pc, pl)
        per_image = [per_image_tensor(s, src, ims.pos) for s in specs]
        iou2, hyper2, d, e, r = lr(k, v, q, pc, pl, *per_image)
        tokens2 = d * (src * lr.final_scale) + e @ r
    assert float(hyper.abs().max()) > 5  # the bound is not met by small values alone
    assert e.shape[-1] < tokens.shape[-1]  # factored: fewer coefficients per token than channels
    for ref, got in ((iou, iou2), (hyper, hyper2), (tokens, tokens2)):
        assert _err(got, ref) <= TOL
    with pytest.raises(ValueError, match="per-image tensors"):
        lr(k, v, q, pc, pl, *per_image[:-1])
