"""``bench.everything_proposals_sim`` (issue 16): the per-grid-point cache reproduces ``ProposalMaskGenerator``
exactly (the same prompts in the same order, the same recovered count; one second-pass round, the default, and
``RefineConfig(rounds=10)``; the "cells" first pass, with and without the second pass) and dense everything
(the same masks), on one held-out image with the bundled default; later rounds only add prompts, within the
bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.everything_proposals_oracle import mask_iou
from bench.everything_proposals_sim import (
    CachedImage,
    SimConfig,
    build_cache,
    grid_index,
    one_to_one,
    parse_config,
    simulate,
)

FILTERS = {"pred_iou_thresh": 0.5, "stability_score_thresh": 0.8}


class _Recording:
    """The predictor, every point prompt recorded (input frame)."""

    def __init__(self, pred) -> None:
        self._pred, self.prompts = pred, []

    def __getattr__(self, name):
        return getattr(self._pred, name)

    def predict_low_res_above(self, point_coords, point_labels, iou_thresh, multimask_output=True):
        self.prompts += point_coords[:, 0].tolist()
        return self._pred.predict_low_res_above(point_coords, point_labels, iou_thresh, multimask_output)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from samfpga.everything.proposals import ProposalHead
    from samfpga.models.data import get_split
    from samfpga.predictor import Predictor
    from samfpga.resources import package_path

    bundle = Path(package_path("samfpga.assets", "default"))
    pred = Predictor.from_bundle(bundle, threads=1)
    head = ProposalHead(bundle / "proposals.onnx", threads=1)
    split = get_split("heldout")
    sample = split.sample_function(pred.image_size)
    path = tmp_path_factory.mktemp("sim") / "00002.npz"
    build_cache(pred, sample, split.seed, 2, path, FILTERS)
    image = sample(split.seed, 2).image
    return pred, head, image, CachedImage(path, image.shape[:2])


def _masks(records, shape):
    return np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *shape), bool)


@pytest.fixture(scope="module")
def dense(setup):
    from samfpga.everything import AutomaticMaskGenerator

    pred, _, image, _ = setup
    return _masks(AutomaticMaskGenerator(pred, points_per_side=32, **FILTERS).generate(image), image.shape[:2])


def _generator_prompts(setup, cfg: SimConfig):
    """Run ``ProposalMaskGenerator`` with ``cfg``: (its prompts as grid indices, its masks, its stats)."""
    from samfpga.everything import ProposalMaskGenerator
    from samfpga.everything.refine import PARENT_KINDS, RefineConfig

    pred, head, image, _ = setup
    rec = _Recording(pred)
    refine = RefineConfig(max_prompts=cfg.max_prompts, rounds=cfg.rounds, first_pass=cfg.first_pass,
                          max_cells=cfg.max_cells, parents=PARENT_KINDS if cfg.refine else ())
    gen = ProposalMaskGenerator(rec, head, score_thresh=cfg.score_thresh, refine=refine, **FILTERS)
    got = _masks(gen.generate(image), image.shape[:2])
    scale = max(image.shape[:2]) / pred.image_size  # input frame (longest side resized) -> image pixels
    prompted = [int(p) for p in grid_index(np.asarray(rec.prompts, np.float64) * scale, image.shape[:2])]
    return prompted, got, gen.stats


def test_cache_reproduces_the_generators(setup):
    from samfpga.everything import AutomaticMaskGenerator, ProposalMaskGenerator
    from samfpga.everything.refine import RefineConfig

    pred, head, image, im = setup
    dense = _masks(AutomaticMaskGenerator(pred, points_per_side=32, **FILTERS).generate(image), image.shape[:2])
    assert len(dense) == len(im.dense) > 0
    cached = im.masks[im.dense].reshape(-1, *image.shape[:2])
    assert np.all(mask_iou(dense, cached).max(1) == 1.0)  # the same masks

    out = head(im.embedding[None])
    one_round = simulate(im, out, pred.image_size, SimConfig(max_prompts=300), FILTERS["pred_iou_thresh"])
    for cfg in (SimConfig(), SimConfig(max_prompts=300, rounds=10)):
        rec = _Recording(pred)
        refine = RefineConfig(max_prompts=cfg.max_prompts, rounds=cfg.rounds)
        gen = ProposalMaskGenerator(rec, head, score_thresh=cfg.score_thresh, refine=refine, **FILTERS)
        got = _masks(gen.generate(image), image.shape[:2])
        scale = max(image.shape[:2]) / pred.image_size  # input frame (longest side resized) -> image pixels
        prompted = [int(p) for p in grid_index(np.asarray(rec.prompts, np.float64) * scale, image.shape[:2])]
        sim = simulate(im, out, pred.image_size, cfg, FILTERS["pred_iou_thresh"])
        assert sim == prompted and gen.stats["refine_prompts"] > 0
        assert gen.stats["first_pass_prompts"] + gen.stats["refine_prompts"] == len(sim)
        recovered = int((mask_iou(dense, got).max(1) >= 0.8).sum()) if len(got) else 0
        assert im.recovered(sim, 0.8) == recovered
        assert im.recovered_one_to_one(sim, 0.8) == one_to_one(mask_iou(dense, got).T >= 0.8) <= recovered
    assert len(sim) > len(one_round)  # the later rounds did prompt (and the generator followed them)


def test_rounds_add_prompts_within_the_bound(setup):
    pred, head, _, im = setup
    out = head(im.embedding[None])
    one = simulate(im, out, pred.image_size, SimConfig(max_prompts=400), 0.5)
    more = simulate(im, out, pred.image_size, SimConfig(max_prompts=400, rounds=3), 0.5)
    assert more[:len(one)] == one and len(set(more)) == len(more) <= 400
    capped = simulate(im, out, pred.image_size, SimConfig(max_prompts=len(one) + 2, rounds=3), 0.5)
    assert len(capped) <= len(one) + 2
    snapped = simulate(im, out, pred.image_size, SimConfig(refine=False), 0.5)
    assert snapped == one[:len(snapped)]


def test_parse_config():
    assert parse_config("default") == ("default", SimConfig())
    name, cfg = parse_config("r2:score_thresh=0.25,rounds=2,refine=0")
    assert name == "r2" and cfg == SimConfig(score_thresh=0.25, rounds=2, refine=False)
    with pytest.raises(SystemExit, match="unknown key"):
        parse_config("x:round=2")


@pytest.mark.parametrize("cfg", [
    SimConfig(first_pass="cells", score_thresh=0.0, max_cells=20, max_prompts=100),  # + the second pass
    SimConfig(first_pass="cells", score_thresh=0.3, max_cells=25, max_prompts=100, refine=False),
], ids=["cells+refine", "cells-only"])
def test_cells_first_pass_matches_the_generator(setup, dense, cfg):
    """The "cells" first pass: every grid point of the chosen cells, the simulation's prompts (order included)
    and recovered count are the generator's."""
    pred, head, _, im = setup
    out = head(im.embedding[None])
    sim = simulate(im, out, pred.image_size, cfg, FILTERS["pred_iou_thresh"])
    prompted, got, stats = _generator_prompts(setup, cfg)
    assert sim == prompted and len(set(sim)) == len(sim) <= cfg.max_prompts
    cells = stats["first_pass_cells"]
    assert 0 < cells <= cfg.max_cells and stats["first_pass_prompts"] == 4 * cells  # 2 x 2 points per cell
    first = sim[:4 * cells]
    for k in range(cells):  # a cell's four points: one 2 x 2 block of the 32 x 32 grid
        block = first[4 * k:4 * k + 4]
        rows, cols = [p // 32 for p in block], [p % 32 for p in block]
        assert rows[0] % 2 == 0 and cols[0] % 2 == 0 and block == [block[0], block[0] + 1, block[0] + 32,
                                                                    block[0] + 33], block
    assert (stats["refine_prompts"] > 0) == cfg.refine
    recovered = int((mask_iou(dense, got).max(1) >= 0.8).sum()) if len(got) else 0
    assert im.recovered(sim, 0.8) == recovered > 0


def test_one_to_one_counts_a_mask_once():
    """A maximum matching (rows: output masks, columns: dense masks): an output mask that matches two near-duplicate
    dense masks counts once where 'some mask at IoU >= t' counts both; a second output mask that matches only the
    first dense mask frees the other for the first output (2)."""
    edges = np.array([[True, True, False]])
    assert one_to_one(edges) == 1 and int(edges.any(0).sum()) == 2
    edges = np.array([[True, True, False], [True, False, False], [False, False, False]])
    assert one_to_one(edges) == 2
    assert one_to_one(np.zeros((0, 3), bool)) == 0 and one_to_one(np.zeros((2, 3), bool)) == 0
