"""ONNX export of a model with HQ-SAM's head: encoder_hq.onnx and decoder_hq.onnx against torch (max abs diff
<= 1e-4, float32, onnxruntime CPU), with a prompt batch and point count other than the export's."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from samfpga.models.build import build_from_config
from samfpga.models.export.hq import export_hq
from samfpga.models.training.trainer import model_config
from tests.support.official import seeded_state_dict
from tests.support.training import TINY_MODEL


def test_hq_graphs_match_torch(tmp_path):
    torch.manual_seed(0)
    sam = build_from_config(model_config({**TINY_MODEL, "hq_token": True}))
    sam.load_state_dict(seeded_state_dict(sam, seed=4, std=0.2))
    sam.eval()
    enc_path, dec_path = export_hq(sam, tmp_path)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        emb, early = sam.image_encoder.forward_with_early(x)
    enc = ort.InferenceSession(str(enc_path), providers=["CPUExecutionProvider"])
    e_emb, e_early = enc.run(None, {"image": x.numpy()})
    assert np.abs(e_emb - emb.numpy()).max() <= 1e-4 and np.abs(e_early - early.numpy()).max() <= 1e-4

    coords = torch.rand(3, 4, 2, generator=g) * 64
    labels = torch.tensor([[1, 0, -1, -1], [2, 3, -1, -1], [1, 1, 0, -1]], dtype=torch.float32)
    mask_in, has_mask = torch.zeros(1, 1, 16, 16), torch.zeros(1)
    dec = ort.InferenceSession(str(dec_path), providers=["CPUExecutionProvider"])
    masks, iou, hq = dec.run(None, {"image_embeddings": emb.numpy(), "point_coords": coords.numpy(),
                                    "point_labels": labels.numpy(), "mask_input": mask_in.numpy(),
                                    "has_mask_input": has_mask.numpy(), "early_features": early.numpy()})
    from samfpga.models.export.hq import HQDecoderOnnxModel

    with torch.no_grad():
        t_masks, t_iou, t_hq = HQDecoderOnnxModel(sam).eval()(emb, coords, labels, mask_in, has_mask, early)
    assert hq.shape == (3, 1, 16, 16) and masks.shape == (3, 4, 16, 16)
    assert float(t_hq.std()) > 0.1
    for a, b in ((masks, t_masks), (iou, t_iou), (hq, t_hq)):
        assert np.abs(a - b.numpy()).max() <= 1e-4


def test_hq_export_needs_the_head(tmp_path):
    with pytest.raises(ValueError, match="HQ export needs a model with HQ-SAM's head"):
        export_hq(build_from_config(model_config(TINY_MODEL)), tmp_path)
