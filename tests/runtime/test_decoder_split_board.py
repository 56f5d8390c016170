"""Board environment (no torch): the split decoder of the committed tiny bundle against its ``decoder.onnx``.

The tiny bundle (tests/runtime/data/tiny_bundle) carries both; ``OnnxDecoder`` runs the split (image side once,
prompt side per batch, mask side for the wanted prompts) and must give the same low-res logits and IoU as the
single graph: max abs diff <= 1e-5 x max(1, max |reference|). ``decode_above`` keeps what filtering after the
decoder keeps. (tests/test_decoder_split.py checks the same on larger models in .venv; tests/runtime/test_runtime.py
checks the predictor on this bundle against torch outputs.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from samfpga.bundle import load_bundle
from samfpga.decoder import OnnxDecoder
from samfpga.decoder_prompts import decoder_prompts

pytestmark = pytest.mark.board
BUNDLE = Path(__file__).parent / "data" / "tiny_bundle"
TOL = 1e-5


def _err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(got - ref).max(initial=0.0) / max(1.0, float(np.abs(ref).max(initial=0.0))))


def test_split_matches_single_graph():
    b = load_bundle(BUNDLE)
    assert b.decoder_split is not None
    dec = OnnxDecoder(b)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(1, *b.embedding_shape)).astype(np.float32)
    image = dec.prepare(emb)
    s = b.image_size
    for batch, n, box in [(1, 1, False), (3, 2, True), (6, 0, True)]:
        coords = rng.uniform(0, s, (batch, n, 2)) if n else None
        labels = rng.integers(0, 2, (batch, n)) if n else None
        boxes = np.sort(rng.uniform(0, s, (batch, 2, 2)), axis=1).reshape(batch, 4) if box else None
        pc, pl = decoder_prompts(coords, labels, boxes)
        ref_low, ref_iou = dec.session.run(None, {
            "image_embeddings": emb, "point_coords": pc, "point_labels": pl,
            "mask_input": np.zeros((1, 1, *b.mask_input_size), np.float32), "has_mask_input": np.zeros(1, np.float32)})
        low, iou = dec(image, pc, pl)
        assert _err(low, ref_low) <= TOL and _err(iou, ref_iou) <= TOL
        multi = np.sort(iou[:, 1:].reshape(-1))
        thresh = float(multi[len(multi) // 2 - 1: len(multi) // 2 + 1].mean())  # between two IoUs
        kept, low_k, iou_k = dec.decode_above(image, pc, pl, slice(1, None), thresh)
        want = np.flatnonzero(iou[:, 1:].reshape(-1) > thresh)
        assert np.array_equal(kept, want) and 0 < len(want) < len(multi)
        assert np.array_equal(iou_k, iou[:, 1:].reshape(-1)[want])
        assert _err(low_k, low[:, 1:].reshape(-1, *low.shape[2:])[want]) <= TOL
    assert "torch" not in sys.modules


def test_runs_of_a_few_prompts_give_the_batch_result():
    """A batch decoded in runs of ``prompts_per_run`` prompts (the decoder's memory bound) gives what one run
    gives: split graphs, ``decode_above`` (kept indices offset per run) and the single graph with a per-prompt
    mask input."""
    from samfpga.decoder import prompts_per_run

    b = load_bundle(BUNDLE)
    one, runs = OnnxDecoder(b), OnnxDecoder(b)
    assert one.prompts_per_run >= 7
    runs.prompts_per_run = 3
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(1, *b.embedding_shape)).astype(np.float32)
    pc, pl = decoder_prompts(rng.uniform(0, b.image_size, (7, 2, 2)), rng.integers(0, 2, (7, 2)), None)
    image = one.prepare(emb)
    ref_low, ref_iou = one(image, pc, pl)
    calls = runs.calls
    low, iou = runs(image, pc, pl)
    assert runs.calls - calls == 3  # runs of 3, 3 and 1 prompts
    assert low.shape == ref_low.shape and _err(low, ref_low) <= TOL and _err(iou, ref_iou) <= TOL
    thresh = float(np.median(ref_iou[:, 1:]))
    k1, l1, i1 = one.decode_above(image, pc, pl, slice(1, None), thresh)
    k3, l3, i3 = runs.decode_above(image, pc, pl, slice(1, None), thresh)
    assert np.array_equal(k1, k3) and len(k1) > 3 and _err(l3, l1) <= TOL and _err(i3, i1) <= TOL
    masks = rng.normal(size=(7, 1, *b.mask_input_size)).astype(np.float32) * 4  # 7 masks into runs of 3 prompts
    ref_low, ref_iou = one(emb, pc, pl, masks)
    low, iou = runs(emb, pc, pl, masks)
    assert _err(low, ref_low) <= TOL and _err(iou, ref_iou) <= TOL
    # the default budget (1024 MB): vit_t 1024's 256 x 64 x 64 embedding -> 21 prompts per run; the bundled default's
    # (128 x 16 x 16) 682
    assert OnnxDecoder(b).prompts_per_run == prompts_per_run(tuple(b.embedding_shape), 1024)
    assert prompts_per_run((256, 64, 64), 1024) == 21 and prompts_per_run((128, 16, 16), 1024) == 682
    with pytest.raises(ValueError, match="run_budget_mb"):
        prompts_per_run((256, 64, 64), 0)
