"""Segment-everything on the host (``samfpga.everything``) against the official code.

1. Mask utilities (``samfpga.everything.amg``, numpy) against ``segment_anything.utils.amg`` (torch) and the
   torchvision NMS stand-in of samfpga.models.official: exact equality (integers, booleans, RLE counts); stability
   scores to float32 rounding (1e-6).
2. ``AutomaticMaskGenerator`` (host ``Predictor``, ONNX) against the official ``SamAutomaticMaskGenerator``
   (official ``SamPredictor``, torch) on the same weights and image, crop_n_layers 0 and 1: same number of
   masks, each host mask matched one-to-one to an official mask at IoU >= 0.99, and the matched records'
   predicted_iou / stability_score within 1e-3, point_coords / crop_box equal.

   The weights: a seeded random model makes nearly identical whole-image masks for every prompt, which box NMS
   collapses to one, so the comparison would test little. The test model is the seeded random model of
   tests/test_predictor_parity.py with four deliberate edits that make the masks depend on the prompt and be
   compact (``_everything_state``): positional-encoding frequencies x20 (std 1, like SAM's init), mask and IoU
   tokens zeroed (the point token dominates the tokens), hypernetwork output layer x30 with bias -12
   (confident, smaller masks) and the two upscaling transposed convolutions with one kernel tap replicated
   (nearest-neighbour upsampling, so masks are blocks instead of a checkerboard). With stability 0.5, no IoU
   filter beyond 0.02 and box / crop NMS 0.95 it produces >= 10 masks per run (asserted), and the filters do drop
   masks (asserted), so filtering, NMS, RLE and crops are all exercised.
3. ``HierarchicalMaskGenerator``: its round-2 point generation against a direct transcription of TinySAM's
   rule, covered-pixel skipping, and fewer decoder prompts than dense on an image a big object covers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samfpga.everything import AutomaticMaskGenerator, HierarchicalMaskGenerator, round2_points
from samfpga.everything import amg as ours
from tests.support.official import official_sam_with, segment_anything, synthetic_image, torch_batched_nms

# ----------------------------------------------------------------------------- utilities vs official


@pytest.fixture(scope="module")
def official_amg():
    return segment_anything().utils.amg


def _random_masks(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    """Blobby masks (rectangles, unions, holes, empty and full) as (n, h, w) bool."""
    out = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        for _ in range(rng.integers(0, 4)):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            out[i, y0:y0 + rng.integers(1, h), x0:x0 + rng.integers(1, w)] ^= True
    out[0] = False
    out[1] = True
    return out


def test_rle_round_trip_matches_official(official_amg):
    rng = np.random.default_rng(0)
    masks = _random_masks(rng, 12, 23, 31)
    ref = official_amg.mask_to_rle_pytorch(torch.from_numpy(masks))
    got = ours.mask_to_rle(masks)
    assert got == ref
    for rle, m in zip(got, masks):
        assert np.array_equal(ours.rle_to_mask(rle), m)
        assert np.array_equal(ours.rle_to_mask(rle), official_amg.rle_to_mask(rle))
        assert ours.area_from_rle(rle) == official_amg.area_from_rle(rle) == int(m.sum())
        coco = ours.coco_encode_rle(rle)
        assert coco == official_amg.coco_encode_rle(rle)
        from pycocotools import mask as mask_utils

        assert np.array_equal(mask_utils.decode(coco).astype(bool), m)


def test_stability_score_and_boxes_match_official(official_amg):
    rng = np.random.default_rng(1)
    logits = (rng.normal(0, 3, (9, 20, 27)) + np.linspace(-4, 4, 27)).astype(np.float32)
    ref = official_amg.calculate_stability_score(torch.from_numpy(logits), 0.0, 1.0).numpy()
    got = ours.calculate_stability_score(logits, 0.0, 1.0)
    assert np.abs(got - ref).max() <= 1e-6
    masks = _random_masks(rng, 10, 17, 21)
    assert np.array_equal(ours.batched_mask_to_box(masks),
                          official_amg.batched_mask_to_box(torch.from_numpy(masks)).numpy())
    masks4 = masks.reshape(2, 5, 17, 21)
    assert np.array_equal(ours.batched_mask_to_box(masks4),
                          official_amg.batched_mask_to_box(torch.from_numpy(masks4)).numpy())


def test_nms_matches_torchvision_semantics():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 50, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 30, (60, 2))], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 60).astype(np.float32)
    scores[5] = scores[7]  # a tie: torchvision keeps input order among equal scores (stable sort)
    cats = rng.integers(0, 3, 60)
    for thr in (0.3, 0.7):
        ref = torch_batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(cats), thr).numpy()
        assert np.array_equal(ours.batched_nms(boxes, scores, cats, thr), ref)
    assert 0 < len(ours.nms(boxes, scores, 0.3)) < 60


@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_point_grids_and_crop_boxes_match_official(official_amg, n_layers):
    for a, b in zip(ours.build_all_layer_point_grids(8, n_layers, 2),
                    official_amg.build_all_layer_point_grids(8, n_layers, 2)):
        assert np.array_equal(a, b)
    for size in [(150, 230), (97, 64)]:
        assert ours.generate_crop_boxes(size, n_layers, 512 / 1500) == \
            official_amg.generate_crop_boxes(size, n_layers, 512 / 1500)


def test_uncrop_and_crop_edge_match_official(official_amg):
    rng = np.random.default_rng(3)
    crop = [20, 10, 90, 70]
    boxes = np.sort(rng.integers(0, 70, (30, 2, 2)), axis=1).reshape(30, 4)
    tb = torch.from_numpy(boxes)
    assert np.array_equal(ours.uncrop_boxes_xyxy(boxes, crop), official_amg.uncrop_boxes_xyxy(tb, crop).numpy())
    pts = rng.uniform(0, 60, (7, 2))
    assert np.allclose(ours.uncrop_points(pts, crop), official_amg.uncrop_points(torch.from_numpy(pts), crop).numpy())
    masks = _random_masks(rng, 4, 60, 70)
    assert np.array_equal(ours.uncrop_masks(masks, crop, 100, 120),
                          official_amg.uncrop_masks(torch.from_numpy(masks), crop, 100, 120).numpy())
    near = ours.is_box_near_crop_edge(boxes, crop, [0, 0, 120, 100])
    assert np.array_equal(near, official_amg.is_box_near_crop_edge(tb, crop, [0, 0, 120, 100]).numpy())
    assert near.any() and not near.all()


def _components_bruteforce(mask: np.ndarray) -> list[set]:
    """8-connected components by flood fill (slow, obviously correct), in raster order of first pixel."""
    h, w = mask.shape
    seen = np.zeros_like(mask)
    comps = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                stack, comp = [(y, x)], set()
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    comp.add((cy, cx))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                                seen[ny, nx] = True
                                stack.append((ny, nx))
                comps.append(comp)
    return comps


def test_connected_components_against_flood_fill():
    rng = np.random.default_rng(4)
    for density in (0.2, 0.45, 0.6):
        mask = rng.random((33, 41)) < density
        n, labels, sizes = ours.connected_components(mask)
        comps = _components_bruteforce(mask)
        assert n == len(comps) + 1
        for i, comp in enumerate(comps, start=1):
            got = set(zip(*np.nonzero(labels == i)))
            assert got == comp and sizes[i] == len(comp)
        assert sizes[0] == (~mask).sum()


def test_remove_small_regions():
    m = np.zeros((40, 40), dtype=bool)
    m[5:30, 5:30] = True
    m[10:12, 10:12] = False  # a 4-pixel hole
    m[35:37, 35:37] = True  # a 4-pixel island
    filled, changed = ours.remove_small_regions(m, 10, "holes")
    assert changed and filled[10:12, 10:12].all() and filled[35:37, 35:37].all()
    cleaned, changed = ours.remove_small_regions(filled, 10, "islands")
    assert changed and not cleaned[35:37, 35:37].any() and cleaned[5:30, 5:30].all()
    same, changed = ours.remove_small_regions(cleaned, 10, "islands")
    assert not changed and np.array_equal(same, cleaned)
    tiny = np.zeros((10, 10), dtype=bool)
    tiny[1, 1] = tiny[5:7, 5:7] = True  # every island small: the largest is kept
    kept, changed = ours.remove_small_regions(tiny, 10, "islands")
    assert changed and kept.sum() == 4 and kept[5:7, 5:7].all()


# ----------------------------------------------------------------------------- dense generator parity

SMALL_ENCODER = dict(img_size=256, embed_dims=[32, 48, 64, 96], depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 3],
                     window_sizes=[7, 7, 7, 7])
PARITY = dict(points_per_side=12, pred_iou_thresh=0.02, stability_score_thresh=0.5, box_nms_thresh=0.95,
              crop_nms_thresh=0.95)
SMALL = dict(PARITY, points_per_side=4)  # quick runs for the output-format checks


def _everything_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    from tests.support.official import seeded_state_dict

    st = seeded_state_dict(model, seed=3)
    for key in st:
        if "output_hypernetworks_mlps" in key and "layers.2" in key:
            st[key] = st[key] * 30 - (12.0 if key.endswith("bias") else 0.0)
        if key.startswith(("mask_decoder.mask_tokens", "mask_decoder.iou_token")):
            st[key] = torch.zeros_like(st[key])
    for key in ("mask_decoder.output_upscaling.0.weight", "mask_decoder.output_upscaling.3.weight"):
        st[key] = st[key][:, :, :1, :1].expand_as(st[key]).clone()
    pe = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"
    st[pe] = st[pe] * 20
    return st






@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from samfpga.models import build_sam
    from samfpga.models.export import export_bundle
    from samfpga.predictor import Predictor

    torch.manual_seed(0)
    mine = build_sam("vit_t", **SMALL_ENCODER)
    state = _everything_state(mine)
    mine.load_state_dict(state)
    ref_model = official_sam_with(build_sam("vit_t", **SMALL_ENCODER).image_encoder)
    ref_model.load_state_dict(state)
    host = Predictor.from_bundle(export_bundle(mine, tmp_path_factory.mktemp("everything") / "bundle",
                                               source="everything test"))
    return ref_model, host


def _match(ref: list[dict], got: list[dict]) -> None:
    """Same count; a one-to-one matching of masks at IoU >= 0.99; matched records agree."""
    assert len(got) == len(ref)
    rm = np.stack([r["segmentation"] for r in ref]).reshape(len(ref), -1)
    gm = np.stack([g["segmentation"] for g in got]).reshape(len(got), -1)
    inter = gm.astype(np.float32) @ rm.T.astype(np.float32)
    union = gm.sum(1)[:, None] + rm.sum(1)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    used = set()
    for i, g in enumerate(got):
        j = int(np.argmax(iou[i]))
        assert iou[i, j] >= 0.99 and j not in used, f"host mask {i}: best official IoU {iou[i, j]:.4f}"
        used.add(j)
        r = ref[j]
        assert abs(g["predicted_iou"] - r["predicted_iou"]) <= 1e-3
        assert abs(g["stability_score"] - r["stability_score"]) <= 1e-3
        assert np.allclose(g["point_coords"], r["point_coords"]) and g["crop_box"] == r["crop_box"]
        assert g["area"] == int(g["segmentation"].sum())
        x, y, w, h = g["bbox"]
        ys, xs = np.nonzero(g["segmentation"])
        assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max(), ys.max()]


@pytest.mark.parametrize("crop_n_layers", [0, pytest.param(1, marks=pytest.mark.slow)])  # layer 1: 62 s measured
def test_dense_matches_official_generator(models, crop_n_layers):
    ref_model, host = models
    image = synthetic_image()
    # layer 1: 4 crops with 6x6 points each (crop_n_points_downscale_factor 2) to keep the test time down; overlap
    # 0.7 makes the crops big enough that a mask inside one survives the crop-edge filter and cross-crop NMS
    params = dict(PARITY, crop_n_layers=crop_n_layers, crop_n_points_downscale_factor=2, crop_overlap_ratio=0.7)
    with torch.no_grad():
        ref = segment_anything().SamAutomaticMaskGenerator(ref_model, **params).generate(image)
    gen = AutomaticMaskGenerator(host, **params)
    got = gen.generate(image)
    assert len(ref) >= 10, f"the test model should produce many masks, got {len(ref)}"
    _match(ref, got)
    # the filters did remove masks: fewer records than prompts x 3
    assert len(got) < gen.stats["decoder_prompts"] * 3
    assert gen.stats["images_encoded"] == (1 if crop_n_layers == 0 else 5)
    if crop_n_layers:
        assert len({tuple(g["crop_box"]) for g in got}) > 1


def test_dense_output_modes_agree(models):
    _, host = models
    image = synthetic_image()
    from pycocotools import mask as mask_utils

    binary = AutomaticMaskGenerator(host, **SMALL, output_mode="binary_mask").generate(image)
    rle = AutomaticMaskGenerator(host, **SMALL, output_mode="uncompressed_rle").generate(image)
    coco = AutomaticMaskGenerator(host, **SMALL, output_mode="coco_rle").generate(image)
    assert len(binary) == len(rle) == len(coco) > 0
    for b, r, c in zip(binary, rle, coco):
        assert np.array_equal(ours.rle_to_mask(r["segmentation"]), b["segmentation"])
        assert np.array_equal(mask_utils.decode(c["segmentation"]).astype(bool), b["segmentation"])
        assert isinstance(c["segmentation"]["counts"], str)
        assert set(b) == {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score",
                          "crop_box"}


def test_min_mask_region_area(models):
    _, host = models
    image = synthetic_image()
    plain = AutomaticMaskGenerator(host, **SMALL).generate(image)
    cleaned = AutomaticMaskGenerator(host, **SMALL, min_mask_region_area=200).generate(image)
    assert 0 < len(cleaned) <= len(plain)
    for rec in cleaned:
        m = rec["segmentation"]
        for mode in ("holes", "islands"):
            _, changed = ours.remove_small_regions(m, 200, mode)
            assert not changed, "a small region survived"


def test_bad_arguments(models):
    _, host = models
    with pytest.raises(ValueError, match="Exactly one of points_per_side"):
        AutomaticMaskGenerator(host, points_per_side=None)
    with pytest.raises(ValueError, match="Unknown output_mode"):
        AutomaticMaskGenerator(host, output_mode="png")
    with pytest.raises(ValueError, match="uint8"):
        AutomaticMaskGenerator(host).generate(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="points_per_side must be >= 4"):
        HierarchicalMaskGenerator(host, points_per_side=2)


# ----------------------------------------------------------------------------- hierarchical


def _tinysam_round2(coarse: np.ndarray, covered: np.ndarray, pps: int) -> list[tuple[float, float]]:
    """TinySAM's hierarchical_generate round-2 loop, transcribed literally (covered map indexed [x, y])."""
    ih, iw = covered.shape
    or_results = covered.T
    hstride, wstride = ih // pps, iw // pps
    new = []
    for px, py in coarse:
        for sy in [-1, 0, 1]:
            for sx in [-1, 0, 1]:
                if (sy == 0 and sx == 0) or or_results[int(px + wstride * sy), int(py + hstride * sx)]:
                    continue
                new.append((px + wstride * sy, py + hstride * sx))
        if px + wstride * 2 < iw:
            for sx in [-1, 0, 1]:
                if or_results[int(px + wstride * 2), int(py + hstride * sx)]:
                    continue
                new.append((px + wstride * 2, py + hstride * sx))
        if py + hstride * 2 < ih:
            for sy in [-1, 0, 1]:
                if or_results[int(px + wstride * sy), int(py + hstride * 2)]:
                    continue
                new.append((px + wstride * sy, py + hstride * 2))
        if px + wstride * 2 < iw and py + hstride * 2 < ih:
            if or_results[int(px + wstride * 2), int(py + hstride * 2)]:
                continue
            new.append((px + wstride * 2, py + hstride * 2))
    return new


def test_round2_points():
    h, w, pps = 150, 230, 32
    coarse = ours.build_point_grid(pps // 4) * np.array([w, h])
    empty = np.zeros((h, w), dtype=bool)
    pts = round2_points(coarse, empty, pps)
    assert len(pts) == len(_tinysam_round2(coarse, empty, pps)) == 64 * 15  # nothing covered: 15 per point
    assert np.allclose(pts, _tinysam_round2(coarse, empty, pps))
    # offsets around the first coarse point: {-1, 0, 1, 2} x stride, centre excluded
    sx, sy = w // pps, h // pps
    offs = np.round((pts[:15] - coarse[0]) / [sx, sy]).astype(int)
    assert {tuple(o) for o in offs} == {(i, j) for i in (-1, 0, 1, 2) for j in (-1, 0, 1, 2)} - {(0, 0)}
    rng = np.random.default_rng(5)
    covered = np.zeros((h, w), dtype=bool)
    covered[20:100, 30:160] = True
    covered |= rng.random((h, w)) < 0.1
    pts = round2_points(coarse, covered, pps)
    assert np.allclose(pts, _tinysam_round2(coarse, covered, pps))
    assert 0 < len(pts) < 64 * 15
    assert not covered[pts[:, 1].astype(int), pts[:, 0].astype(int)].any()


def test_hierarchical_skips_covered_and_saves_prompts(models):
    """A big object covers most of the image after round 1 (the test model's masks are large), so round 2
    sends fewer prompts than the 15 per coarse point of an uncovered image, and fewer than dense's 16x16 (small grid: test time)."""
    _, host = models
    image = synthetic_image()
    params = dict(points_per_side=16, pred_iou_thresh=0.02, stability_score_thresh=0.5, box_nms_thresh=0.95)
    gen = HierarchicalMaskGenerator(host, high_score_thresh=2.0, **params)
    recs = gen.generate(image)
    st = gen.stats
    assert st["round1_prompts"] == 16
    assert st["covered_fraction"] > 0.2
    assert st["round2_prompts"] < 16 * 15
    assert st["decoder_prompts"] == st["round1_prompts"] + st["round2_prompts"] < 16 * 16
    assert len(recs) > 0
    # with nothing covered (threshold above every logit) round 2 is the full 15 per coarse point
    gen_all = HierarchicalMaskGenerator(host, high_score_thresh=1e9, **params)
    gen_all.generate(image)
    assert gen_all.stats["round2_prompts"] == 16 * 15 and gen_all.stats["covered_fraction"] == 0.0


def test_decode_fast_path_equals_predict_batch(models):
    """The generators' decoder path (IoU filter on the low-res output, then upscaling of the survivors) gives
    the same kept masks as ``Predictor.predict_batch`` (which upscales every mask) followed by the IoU filter:
    same indices, same IoU, logits equal up to float32 rounding: the same upscaling function on the same low-res
    logits, but as one GEMM over 8 kept masks instead of 9, and BLAS may block the two shapes differently (on this
    machine's CPU 2 ulps apart: 1.9e-6 on logits of order 10, where 1e-6 had held on earlier machines)."""
    from samfpga.everything.decode import decode_points

    _, host = models
    host.set_image(synthetic_image())
    pts = host.transform.apply_coords(np.array([[10.0, 10.0], [80.0, 60.0], [150.0, 100.0]]),
                                      host.original_size).astype(np.float32)
    k1, m1, i1 = decode_points(host, pts, 0.02)
    masks, iou, _ = host.predict_batch(pts[:, None, :], np.ones((3, 1)), multimask_output=True, return_logits=True)
    iou = iou.reshape(-1)
    k2 = np.flatnonzero(iou > 0.02)
    assert 0 < len(k1) < 9 and np.array_equal(k1, k2)
    assert np.array_equal(i1, iou[k2])
    ref = masks.reshape(-1, *masks.shape[2:])[k2]
    assert np.abs(m1 - ref).max() <= 4 * np.spacing(np.abs(ref).max())  # 4 float32 ulps at the largest logit
    host.reset_image()
