"""Parity of samfpga.models with the official MobileSAM / segment-anything modules under shared random weights.

Tolerances (float32, CPU): encoder embedding, prompt embeddings, decoder logits and IoU: max abs diff <= 1e-4;
full predictor path (preprocessing + postprocessing to the original non-square size): max abs diff <= 1e-4 on
logits; binary masks may differ only where official logits are within 1e-4 of the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samfpga.models import build_sam
from samfpga.transforms import ResizeLongestSide, normalize_and_pad, postprocess_masks
from tests.support.official import official_vit_t, seeded_state_dict

TOL = 1e-4


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    """(official MobileSAM vit_t, samfpga vit_t) holding the same seeded random weights."""
    torch.manual_seed(0)
    ref = official_vit_t()
    state = seeded_state_dict(ref, seed=1)
    ref.load_state_dict(state, strict=True)
    ref.eval()  # after loading: the official TinyViT caches its attention biases in eval()
    ours = build_sam("vit_t")
    ours.load_state_dict(state, strict=True)
    ours.eval()
    return ref, ours


def maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max())


def test_state_dict_layout_matches_official(pair):
    ref, ours = pair
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(ref_sd) == list(our_sd)  # same keys, same order
    assert {k: tuple(v.shape) for k, v in ref_sd.items()} == {k: tuple(v.shape) for k, v in our_sd.items()}
    assert len(our_sd) == 439
    # strict load in both directions
    ref.load_state_dict(our_sd, strict=True)
    ours.load_state_dict(ref_sd, strict=True)


@pytest.mark.slow  # pytest --durations, 2-core machine under load average ~15: 42 s
def test_encoder_embedding(pair):
    ref, ours = pair
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = ref.image_encoder(x), ours.image_encoder(x)
    assert a.shape == b.shape == (1, 256, 64, 64)
    assert float(a.std()) > 0.5  # an embedding of order one, so the tolerance is meaningful
    assert maxdiff(a, b) <= TOL


@pytest.mark.parametrize("case", ["points", "points_bg", "box", "points_box", "mask", "points_mask", "empty"])
def test_prompt_encoder(pair, case):
    ref, ours = pair
    g = torch.Generator().manual_seed(3)
    pts = (torch.rand(2, 3, 2, generator=g) * 1024, torch.tensor([[1, 0, 1], [1, 1, 0]]))
    box = torch.tensor([[100.0, 200.0, 600.0, 900.0], [10.0, 20.0, 500.0, 400.0]])
    mask = torch.randn(2, 1, 256, 256, generator=g)
    args = {
        "points": (pts, None, None),
        "points_bg": ((pts[0], torch.zeros_like(pts[1])), None, None),
        "box": (None, box, None),
        "points_box": (pts, box, None),
        "mask": (None, None, mask),
        "points_mask": (pts, None, mask),
        "empty": (None, None, None),
    }[case]
    with torch.no_grad():
        sa, da = ref.prompt_encoder(*args)
        sb, db = ours.prompt_encoder(*args)
        assert maxdiff(ref.prompt_encoder.get_dense_pe(), ours.prompt_encoder.get_dense_pe()) <= TOL
    assert sa.shape == sb.shape and da.shape == db.shape
    assert maxdiff(sa, sb) <= TOL if sa.numel() else sb.numel() == 0
    assert maxdiff(da, db) <= TOL


@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("prompt", ["points", "box", "mask"])
def test_mask_decoder(pair, multimask, prompt):
    ref, ours = pair
    g = torch.Generator().manual_seed(4)
    emb = torch.randn(1, 256, 64, 64, generator=g)
    points = (torch.rand(3, 2, 2, generator=g) * 1024, torch.tensor([[1, 0], [1, 1], [0, 1]]))
    box = torch.tensor([[50.0, 60.0, 700.0, 800.0]] * 3)
    mask = torch.randn(3, 1, 256, 256, generator=g)
    prompts = {"points": (points, None, None), "box": (None, box, None), "mask": (points, None, mask)}[prompt]
    with torch.no_grad():
        sparse, dense = ref.prompt_encoder(*prompts)
        pe = ref.prompt_encoder.get_dense_pe()
        ma, ia = ref.mask_decoder(emb, pe, sparse, dense, multimask)
        mb, ib = ours.mask_decoder(emb, pe, sparse, dense, multimask)
    assert ma.shape == mb.shape == (3, 3 if multimask else 1, 256, 256)
    assert ia.shape == ib.shape
    assert maxdiff(ma, mb) <= TOL and maxdiff(ia, ib) <= TOL


@pytest.mark.slow  # pytest --durations, 2-core machine under load average ~15: 48 s
def test_full_predictor_path_non_square(pair):
    """Official SamPredictor vs samfpga's numpy transforms + our modules, on a 480x640 image."""
    from tests.support.official import mobile_sam

    ref, ours = pair
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    predictor = mobile_sam().SamPredictor(ref)
    predictor.set_image(image)
    coords = np.array([[320.0, 200.0], [100.0, 400.0]])
    labels = np.array([1, 0])
    box = np.array([50, 40, 600, 450])
    masks_ref, iou_ref, low_ref = predictor.predict(coords, labels, box, multimask_output=True, return_logits=True)

    tf = ResizeLongestSide(1024)
    resized = tf.apply_image(image)
    assert resized.shape[:2] == tuple(predictor.input_size)
    x = normalize_and_pad(resized, 1024)
    ref_input = predictor.model.preprocess(
        torch.as_tensor(resized.copy()).permute(2, 0, 1).contiguous()[None].float()
    )
    assert maxdiff(torch.from_numpy(x), ref_input) <= 1e-5
    with torch.no_grad():
        emb = ours.image_encoder(torch.from_numpy(x))
        assert maxdiff(emb, predictor.features) <= TOL
        pts = torch.from_numpy(tf.apply_coords(coords, image.shape[:2])).float()[None]
        bx = torch.from_numpy(tf.apply_boxes(box[None], image.shape[:2])).float()
        sparse, dense = ours.prompt_encoder((pts, torch.from_numpy(labels)[None]), bx, None)
        low, iou = ours.mask_decoder(emb, ours.prompt_encoder.get_dense_pe(), sparse, dense, True)
    assert maxdiff(low[0], torch.from_numpy(low_ref)) <= TOL
    assert maxdiff(iou[0], torch.from_numpy(iou_ref)) <= TOL
    masks = postprocess_masks(low.numpy(), 1024, resized.shape[:2], image.shape[:2])[0]
    assert masks.shape == masks_ref.shape == (3, 480, 640)
    assert np.abs(masks - masks_ref).max() <= TOL
    # the torch-side postprocessing too
    with torch.no_grad():
        torch_masks = ours.postprocess_masks(low, resized.shape[:2], image.shape[:2])[0]
    assert maxdiff(torch_masks, torch.from_numpy(masks_ref)) <= TOL
    binary_ref = masks_ref > 0
    disagree = (masks > 0) != binary_ref
    assert np.all(np.abs(masks_ref[disagree]) <= TOL)
