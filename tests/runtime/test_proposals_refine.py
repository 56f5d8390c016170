"""Proposals mode's grid snapping and second pass (``samfpga.everything.refine``, issue 16), board environment.

The pieces on constructed inputs (snapping, neighbours, NMS suppressors), then ``ProposalMaskGenerator`` on the
committed tiny bundle with a fixed head output and a predictor whose predicted IoUs are set per prompt point,
so which prompts are near misses is known: the second pass prompts exactly the grid neighbours of near misses,
nothing when there is none, and never more than ``max_prompts`` prompts in all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samfpga.everything import ProposalMaskGenerator
from samfpga.everything.amg import build_point_grid
from samfpga.everything.proposals import HEAD_CHANNELS, ProposalHead
from samfpga.everything.refine import RefineConfig, neighbour_points, snap_to_grid, suppressor_prompts
from samfpga.predictor import Predictor

pytestmark = pytest.mark.board
BUNDLE = Path(__file__).parent / "data" / "tiny_bundle"
H, W, N = 48, 72, 8  # image, refine grid (strides 9 x 6 pixels)


def test_snap_to_grid_nearest_grid_point_without_duplicates():
    grid = build_point_grid(N) * np.array([W, H])
    pts = np.array([[27.0, 26.8], [30.0, 25.0], [0.0, 0.0], [71.9, 47.9], [100.0, -5.0]])
    got = snap_to_grid(pts, (H, W), N)
    # (27, 26.8) and (30, 25) share the grid cell (3, 4); the last point is clipped to the corner cell (7, 0)
    want = np.array([[31.5, 27.0], [4.5, 3.0], [67.5, 45.0], [67.5, 3.0]])
    np.testing.assert_array_equal(got, want)
    assert all(any(np.array_equal(p, g) for g in grid) for p in got)  # bit-identical to the dense grid's points


def test_neighbour_points_one_step_inside_and_new():
    parents = np.array([[31.5, 27.0], [4.5, 3.0]])
    got4 = neighbour_points(parents, (H, W), N, 4, exclude=parents)
    # around (31.5, 27): 4 neighbours; around the corner point (4.5, 3): only right and down stay inside
    np.testing.assert_array_equal(got4, [[40.5, 27.0], [22.5, 27.0], [31.5, 33.0], [31.5, 21.0],
                                         [13.5, 3.0], [4.5, 9.0]])
    got8 = neighbour_points(parents[:1], (H, W), N, 8, exclude=np.array([[40.5, 27.0]]))
    assert len(got8) == 7 and not any(np.array_equal(p, [40.5, 27.0]) for p in got8)
    assert np.all(np.abs(got8 - parents[0]).max(axis=1) <= 9.0)


def test_suppressor_prompts():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [0, 0, 10, 9], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
    # mask 0 (prompt 5) removes mask 1 (prompt 6) and mask 2 (its own prompt 5: not counted)
    np.testing.assert_array_equal(suppressor_prompts(boxes, scores, np.array([5, 6, 5, 7]), 0.7), [5])
    assert len(suppressor_prompts(boxes, scores, np.array([5, 5, 5, 7]), 0.7)) == 0
    assert len(suppressor_prompts(boxes[3:], scores[3:], np.array([1]), 0.7)) == 0


def test_refine_config_rejects_bad_values():
    for bad in (dict(neighbours=6), dict(parents=("coverage",)), dict(max_prompts=0), dict(margin=-0.1),
                dict(rounds=0), dict(rounds=2, parents=("near_miss",))):
        with pytest.raises(ValueError, match="refine"):
            RefineConfig(**bad)
    with pytest.raises(ValueError, match="RefineConfig"):
        ProposalMaskGenerator(_SetIou(Predictor.from_bundle(BUNDLE), lambda c: 0.9), _head([(1, 1)]),
                              refine={"max_prompts": 5})


class _FixedHead(ProposalHead):
    """A proposal head that returns a fixed (7, h, w) output."""

    def __init__(self, out: np.ndarray) -> None:
        self.out = out

    def __call__(self, embedding: np.ndarray) -> np.ndarray:
        return self.out


def _head(cells: list[tuple[int, int]]) -> _FixedHead:
    """Centre logit 5 at the (x, y) cells of the tiny bundle's 4 x 4 grid, -10 elsewhere; offsets 0."""
    out = np.zeros((HEAD_CHANNELS, 4, 4), np.float32)
    out[0] = -10.0
    for x, y in cells:
        out[0, y, x] = 5.0
    out[3:] = 0.1
    return _FixedHead(out)


class _SetIou:
    """The tiny bundle's predictor, its predicted IoUs replaced by ``iou_of(point)`` (input-frame (x, y)) and
    every prompt recorded (input frame)."""

    def __init__(self, pred: Predictor, iou_of) -> None:
        self._pred, self._iou_of, self.prompts = pred, iou_of, []

    def __getattr__(self, name):
        return getattr(self._pred, name)

    def predict_low_res_above(self, point_coords, point_labels, iou_thresh, multimask_output=True):
        kept, low, _ = self._pred.predict_low_res_above(point_coords, point_labels, None, multimask_output)
        self.prompts += [tuple(p) for p in point_coords[:, 0].tolist()]
        iou = np.repeat([self._iou_of(p) for p in point_coords[:, 0]], 3).astype(np.float32)
        sel = iou > iou_thresh if iou_thresh is not None else np.ones(len(iou), bool)
        return kept[sel], low[sel], iou[sel]


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([xx * 3, yy * 5, (xx * yy) % 256], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_bundle(BUNDLE)


def _run(predictor, iou_of, cells=((1, 1),), **refine):
    pred = _SetIou(predictor, iou_of)
    ref = None if refine.pop("off", False) else RefineConfig(points_per_side=N, **refine)
    gen = ProposalMaskGenerator(pred, _head(list(cells)), score_thresh=0.5, refine=ref, pred_iou_thresh=0.5,
                                stability_score_thresh=0.0)
    records = gen.generate(_image())
    return gen, pred, records


def _input(points: np.ndarray, predictor: Predictor) -> set[tuple[float, float]]:
    coords = predictor.transform.apply_coords(np.asarray(points, np.float64), (H, W)).astype(np.float32)
    return {tuple(p) for p in coords.tolist()}


def test_second_pass_prompts_the_neighbours_of_a_near_miss(predictor):
    """The head's cell (1, 1) -> input point (24, 24) -> image (27, 26.8) -> grid point (31.5, 27). Its masks
    have predicted IoU 0.49 (just under 0.5): its four grid neighbours are prompted, and nothing else."""
    first = _input([[31.5, 27.0]], predictor)

    def near_first(p):
        return 0.49 if tuple(np.float32(p).tolist()) in first else 0.9

    gen, pred, records = _run(predictor, near_first)
    assert gen.stats["first_pass_prompts"] == 1 and gen.stats["refine_prompts"] == 4
    assert gen.stats["decoder_prompts"] == 5 and len(pred.prompts) == 5
    assert set(pred.prompts[:1]) == first
    assert set(pred.prompts[1:]) == _input([[40.5, 27.0], [22.5, 27.0], [31.5, 33.0], [31.5, 21.0]], predictor)
    grid = {tuple(p) for p in (build_point_grid(N) * np.array([W, H])).tolist()}
    assert records and all(tuple(r["point_coords"][0]) in grid for r in records)
    assert all(tuple(r["point_coords"][0]) != (31.5, 27.0) for r in records)  # the near miss gave no mask

    gen, pred, _ = _run(predictor, near_first, max_prompts=3)  # bounded: 1 + 2
    assert gen.stats["refine_prompts"] == 2 and len(pred.prompts) == 3
    gen, _, _ = _run(predictor, near_first, margin=0.005)  # 0.49 is not within 0.005 of 0.5
    assert gen.stats["refine_prompts"] == 0 and gen.stats["decoder_prompts"] == 1
    gen, _, _ = _run(predictor, near_first, parents=("suppressor",))
    assert gen.stats["refine_prompts"] == 0


def test_no_second_pass_without_a_miss_and_refine_off(predictor):
    gen, _, records = _run(predictor, lambda p: 0.9)  # one prompt, its masks pass: nothing to refine
    assert gen.stats["decoder_prompts"] == 1 and gen.stats["refine_prompts"] == 0 and records
    gen, pred, _ = _run(predictor, lambda p: 0.9, off=True)  # the head's point as it is, not snapped
    assert gen.stats["decoder_prompts"] == gen.stats["proposals"] == 1
    assert pred.prompts == [(24.0, 24.0)]


def test_prompt_count_bounded(predictor):
    """Every cell a proposal, every prompt a near miss: the second pass fills the budget exactly."""
    cells = [(x, y) for x in range(4) for y in range(4)]
    gen, pred, _ = _run(predictor, lambda p: 0.49, cells=cells, max_prompts=20)
    assert gen.stats["first_pass_prompts"] <= 16 and gen.stats["decoder_prompts"] == len(pred.prompts) == 20
    assert len(set(pred.prompts)) == 20  # no point prompted twice
    # rounds > 1 expand suppressors only: with none, one round
    gen, pred, _ = _run(predictor, lambda p: 0.49, cells=cells, max_prompts=20, rounds=5)
    assert gen.stats["decoder_prompts"] == len(pred.prompts) == len(set(pred.prompts)) == 20
    gen, pred, _ = _run(predictor, lambda p: 0.49, cells=cells, max_prompts=5)  # fewer than the head's points
    assert gen.stats["first_pass_prompts"] == gen.stats["decoder_prompts"] == len(pred.prompts) == 5


def test_cli_proposals_max_prompts(tmp_path, capsys):
    """`samfpga everything --mode proposals --proposal-max-prompts N` on the bundled default: at most N decoder
    prompts, the settings written to masks.json; the refine options are refused where they do not apply."""
    from samfpga import cli
    from samfpga.resources import package_path

    image = str(package_path("samfpga.assets", "samples", "sample_2.png"))
    out = tmp_path / "ev"
    rc = cli.main(["everything", image, "--mode", "proposals", "--proposal-max-prompts", "40", "--pred-iou-thresh",
                   "0.5", "--stability-score-thresh", "0.8", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "masks.json").read_text())
    st = data["generator_stats"]
    assert data["decoder_prompts"] == st["decoder_prompts"] == st["first_pass_prompts"] + st["refine_prompts"] <= 40
    assert data["params"]["refine"]["max_prompts"] == 40 and data["params"]["refine"]["snap"] is True
    assert data["params"]["refine"]["rounds"] == 1
    out = tmp_path / "ev_rounds"
    rc = cli.main(["everything", image, "--mode", "proposals", "--proposal-max-prompts", "60", "--proposal-rounds",
                   "3", "--pred-iou-thresh", "0.5", "--stability-score-thresh", "0.8", "--out", str(out),
                   "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "masks.json").read_text())
    assert data["params"]["refine"]["rounds"] == 3 and data["decoder_prompts"] <= 60
    out = tmp_path / "ev_cells"
    rc = cli.main(["everything", image, "--mode", "proposals", "--proposal-first-pass", "cells", "--proposal-max-cells",
                   "5", "--proposal-score-thresh", "0", "--proposal-max-prompts", "30", "--pred-iou-thresh", "0.5",
                   "--stability-score-thresh", "0.8", "--out", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / "masks.json").read_text())
    st = data["generator_stats"]
    assert data["params"]["refine"]["first_pass"] == "cells" and data["params"]["refine"]["max_cells"] == 5
    # score 0: five cells, 2 x 2 grid points each (256² sample, 32² grid, 16² embedding), then the second pass
    assert st["first_pass_cells"] == 5 and st["first_pass_prompts"] == 20 and data["decoder_prompts"] <= 30
    for bad, msg in ((["--mode", "proposals", "--proposal-max-cells", "5"], "applies to --proposal-first-pass cells"),
                     (["--mode", "proposals", "--no-proposal-refine", "--proposal-first-pass", "cells"],
                      "do not go with --no-proposal-refine"),
                     (["--mode", "dense", "--proposal-first-pass", "cells"], "applies to --mode proposals only"),(["--mode", "dense", "--proposal-max-prompts", "40"], "applies to --mode proposals only"),
                     (["--mode", "proposals", "--no-proposal-refine", "--proposal-max-prompts", "40"],
                      "does not go with --no-proposal-refine"),
                     (["--mode", "dense", "--proposal-rounds", "2"], "applies to --mode proposals only"),
                     (["--mode", "proposals", "--no-proposal-refine", "--proposal-rounds", "2"],
                      "does not go with --no-proposal-refine")):
        rc = cli.main(["everything", image, *bad, "--out", str(tmp_path / "bad"), "--no-progress"])
        assert rc != 0 and msg in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
