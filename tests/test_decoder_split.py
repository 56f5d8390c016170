"""The split decoder (``samfpga.models.export.decoder_split``, run by ``samfpga.decoder.OnnxDecoder``) against the
single graph it replaces (``DecoderOnnxModel`` / ``decoder.onnx``).

Tolerance: max abs diff <= 1e-5 x max(1, max |reference|) on low-res mask logits and IoU predictions (1e-5
relative to the largest logit), on weights whose logits reach order 10 (asserted, so the bound is not met by
small values alone). The split computes the same products in another order (image-token projections folded
into the prompt tokens), so only float32 rounding differs (measured: 1.3e-5 on logits up to ~50).
Also: ``decode_above`` keeps exactly the masks a filter after the full decoder keeps; a bundle without the
split files (as written before issue 16) loads and gives the same outputs; a partial split is refused.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from samfpga.bundle import BundleError, load_bundle
from samfpga.decoder import OnnxDecoder
from samfpga.decoder_prompts import decoder_prompts
from samfpga.models import build_sam
from samfpga.models.export import export_bundle
from samfpga.models.export.decoder_split import ImageSideModel, MaskSideModel, PromptSideModel
from samfpga.models.export.onnx_models import DecoderOnnxModel
from samfpga.predictor import Predictor
from tests.support.official import seeded_state_dict

TOL = 1e-5


def _err(got, ref) -> float:
    """max |got - ref| relative to max(1, max |ref|)."""
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    return float(np.abs(got - ref).max(initial=0.0) / max(1.0, float(np.abs(ref).max(initial=0.0))))
SMALL = dict(image_size=128, embed_dims=[16, 32, 48, 64], depths=[1, 1, 1, 1], num_heads=[1, 2, 3, 4],
             window_sizes=[4, 4, 4, 4], out_chans=64, prompt_embed_dim=64, decoder_mlp_dim=128, decoder_heads=4,
             iou_head_hidden_dim=64)


def _strong(sam: torch.nn.Module, seed: int, scale: float) -> torch.nn.Module:
    """Seeded weights of order one, the hypernetwork output layer x ``scale`` so mask logits reach order 10."""
    st = seeded_state_dict(sam, seed=seed)
    for k in st:
        if "output_hypernetworks_mlps" in k and "layers.2" in k:
            st[k] = st[k] * scale
    sam.load_state_dict(st)
    return sam.eval()


def _prompts(rng: np.random.Generator, batch: int, points: int, box: bool, size: int):
    coords = rng.uniform(0, size, (batch, points, 2)).astype(np.float32) if points else None
    labels = rng.integers(0, 2, (batch, points)).astype(np.float32) if points else None
    boxes = None
    if box:
        xy = rng.uniform(0, size / 2, (batch, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, size / 2, (batch, 2))], 1).astype(np.float32)
    return decoder_prompts(coords, labels, boxes)


CASES = {"one_point": (1, 1, False), "points": (1, 4, False), "box": (1, 0, True), "points_box": (1, 2, True),
         "batched_points": (7, 1, False), "batched_points_boxes": (5, 3, True)}


@pytest.fixture(scope="module")
def vit_t_decoder():
    torch.manual_seed(0)
    return _strong(build_sam("vit_t", image_size=256), seed=1, scale=20)


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_modules_match_single_graph_vit_t_decoder(vit_t_decoder, case):
    """Torch, the vit_t decoder's own sizes (256 channels, 8 heads, depth 2) on a 16x16 embedding."""
    sam = vit_t_decoder
    rng = np.random.default_rng(len(case))
    pc, pl = _prompts(rng, *CASES[case], 256)
    emb = torch.from_numpy(rng.normal(size=(1, 256, 16, 16)).astype(np.float32))
    with torch.no_grad():
        ref_low, ref_iou = DecoderOnnxModel(sam)(emb, torch.from_numpy(pc), torch.from_numpy(pl),
                                                 torch.zeros(1, 1, 64, 64), torch.tensor([0.0]))
        side = ImageSideModel(sam)(emb)
        iou, hyper, tokens = PromptSideModel(sam)(*side, torch.from_numpy(pc), torch.from_numpy(pl))
        low = MaskSideModel(sam)(tokens, hyper)
        low_13 = MaskSideModel(sam)(tokens, hyper[:, 1:])
    assert ref_low.abs().max() > 5.0
    assert _err(low, ref_low) <= TOL and _err(iou, ref_iou) <= TOL
    assert _err(low_13, low[:, 1:]) <= TOL


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """The same model as a bundle with the split decoder and as a bundle without it (pre-issue-16 layout)."""
    torch.manual_seed(0)
    sam = _strong(build_sam("vit_t", **SMALL), seed=2, scale=300)
    root = export_bundle(sam, tmp_path_factory.mktemp("split") / "bundle", source="split test")
    old = root.parent / "old"
    shutil.copytree(root, old)
    meta = json.loads((old / "bundle.json").read_text())
    for key in ("decoder_image", "decoder_prompt", "decoder_masks"):
        (old / meta["files"].pop(key)).unlink()
        meta["sha256"].pop(key)
    (old / "bundle.json").write_text(json.dumps(meta))
    return root, old


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_graphs_match_decoder_onnx(bundles, case):
    root, _ = bundles
    b = load_bundle(root)
    assert b.decoder_split is not None and set(b.decoder_split) == {"decoder_image", "decoder_prompt",
                                                                    "decoder_masks"}
    dec = OnnxDecoder(b)
    rng = np.random.default_rng(len(case))
    pc, pl = _prompts(rng, *CASES[case], b.image_size)
    emb = rng.normal(size=(1, *b.embedding_shape)).astype(np.float32)
    ref_low, ref_iou = dec.session.run(None, {"image_embeddings": emb, "point_coords": pc, "point_labels": pl,
                                              "mask_input": np.zeros((1, 1, *b.mask_input_size), np.float32),
                                              "has_mask_input": np.zeros(1, np.float32)})
    low, iou = dec(dec.prepare(emb), pc, pl)
    assert np.abs(ref_low).max() > 5.0
    assert low.shape == ref_low.shape and iou.shape == ref_iou.shape
    assert _err(low, ref_low) <= TOL and _err(iou, ref_iou) <= TOL
    low2, _ = dec(emb, pc, pl)  # an embedding instead of a prepared image: the same
    assert np.array_equal(low2, low)


def test_decode_above_keeps_what_a_filter_after_the_decoder_keeps(bundles):
    root, _ = bundles
    dec = OnnxDecoder(load_bundle(root))
    rng = np.random.default_rng(3)
    pc, pl = _prompts(rng, 12, 1, False, 128)
    image = dec.prepare(rng.normal(size=(1, 64, 8, 8)).astype(np.float32))
    ref_low, ref_iou = dec(image, pc, pl)
    ref_low, ref_iou = ref_low[:, 1:].reshape(-1, 32, 32), ref_iou[:, 1:].reshape(-1)
    thresh = float(np.quantile(ref_iou, 0.7))
    for t in (thresh, None, float(ref_iou.max()) + 1.0):
        kept, low, iou = dec.decode_above(image, pc, pl, slice(1, None), t)
        want = np.arange(len(ref_iou)) if t is None else np.flatnonzero(ref_iou > t)
        assert np.array_equal(kept, want)
        assert low.shape == (len(want), 32, 32) and np.array_equal(iou, ref_iou[want])
        assert _err(low, ref_low[want]) <= TOL
    assert 0 < len(np.flatnonzero(ref_iou > thresh)) < len(ref_iou)


def test_bundle_without_split_loads_and_agrees(bundles):
    root, old = bundles
    b_old = load_bundle(old)
    assert b_old.decoder_split is None
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    new_p, old_p = Predictor.from_bundle(root), Predictor.from_bundle(old)
    for p in (new_p, old_p):
        p.set_image(image)
    assert new_p._decoder_image.side is not None and old_p._decoder_image.side is None
    pts, labels, box = np.array([[30.0, 40.0], [80.0, 20.0]]), np.array([1, 0]), np.array([10, 10, 100, 70.0])
    for kw in (dict(point_coords=pts, point_labels=labels), dict(box=box), dict(point_coords=pts[:1],
                                                                                point_labels=labels[:1], box=box)):
        m1, i1, l1 = new_p.predict(**kw, return_logits=True)
        m2, i2, l2 = old_p.predict(**kw, return_logits=True)
        assert _err(l1, l2) <= TOL and _err(i1, i2) <= TOL and _err(m1, m2) <= TOL
    # a mask prompt runs decoder.onnx in both
    _, _, low = new_p.predict(point_coords=pts, point_labels=labels)
    a = new_p.predict(point_coords=pts, point_labels=labels, mask_input=low[:1], return_logits=True)[0]
    b = old_p.predict(point_coords=pts, point_labels=labels, mask_input=low[:1], return_logits=True)[0]
    assert _err(a, b) <= TOL


def test_partial_split_is_refused(bundles, tmp_path):
    root, _ = bundles
    bad = tmp_path / "bad"
    shutil.copytree(root, bad)
    meta = json.loads((bad / "bundle.json").read_text())
    del meta["files"]["decoder_masks"]
    (bad / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="decoder_masks"):
        load_bundle(bad)
    meta["files"]["decoder_masks"] = "decoder_masks.onnx"
    (bad / "bundle.json").write_text(json.dumps(meta))
    with open(bad / "decoder_prompt.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"decoder_prompt.onnx: sha256"):
        load_bundle(bad)
