"""Board environment (numpy + onnxruntime, no torch): the segment-everything generators on the committed tiny
seeded-random bundle (tests/runtime/data/tiny_bundle), directly and through ``samfpga everything``.

The tiny random model's masks are not meaningful, so the filters are opened (pred_iou_thresh 0, stability 0.0)
to get masks through; the checks are on the pipeline: every record's fields agree with its mask (area, XYWH
box, decodable COCO RLE), the decoder prompt counts are what the grids imply, and no torch is imported.
Parity with the official generator is tested in tests/test_everything.py (.venv).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from samfpga import cli
from samfpga.everything import AutomaticMaskGenerator, HierarchicalMaskGenerator
from samfpga.image_io import write_png
from samfpga.predictor import Predictor

pytestmark = pytest.mark.board
BUNDLE = Path(__file__).parent / "data" / "tiny_bundle"
OPEN = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_bundle(BUNDLE)


def _image() -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:72]
    img = np.stack([xx * 3, yy * 5, (xx * yy) % 256], axis=-1)
    img[10:30, 20:50] = [230, 40, 30]
    return img.astype(np.uint8)


def _check_records(records: list[dict], shape: tuple[int, int]) -> None:
    assert records
    for r in records:
        m = mask_utils.decode(r["segmentation"]).astype(bool)
        assert m.shape == shape and r["area"] == int(m.sum())
        if m.any():
            ys, xs = np.nonzero(m)
            x, y, w, h = r["bbox"]
            assert [x, y, x + w, y + h] == [xs.min(), ys.min(), xs.max(), ys.max()]
        assert set(r) == {"segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score",
                          "crop_box"}
        json.dumps(r)


def test_no_torch():
    assert "torch" not in sys.modules


def test_dense_on_bundle(predictor):
    gen = AutomaticMaskGenerator(predictor, points_per_side=6, points_per_batch=16, output_mode="coco_rle",
                                 crop_n_layers=1, crop_n_points_downscale_factor=2, **OPEN)
    _check_records(gen.generate(_image()), (48, 72))
    assert gen.stats["decoder_prompts"] == 36 + 4 * 9 and gen.stats["images_encoded"] == 5
    assert gen.stats["decoder_batches"] == 3 + 4
    t = gen.timings  # every stage that ran was timed, and the stages add up to the wall time
    assert all(t[k] > 0 for k in ("encoder", "decoder", "upscale", "filters", "rle", "nms", "records")), t
    assert abs(sum(v for k, v in t.items() if k != "total") - t["total"]) < 1e-6


def test_hierarchical_on_bundle(predictor):
    gen = HierarchicalMaskGenerator(predictor, points_per_side=8, points_per_batch=16, output_mode="coco_rle",
                                    high_score_thresh=1e9, **OPEN)  # nothing covered: all 15 points per coarse
    _check_records(gen.generate(_image()), (48, 72))
    # coarse points (18, 12), (54, 12), (18, 36), (54, 36), strides (9, 6): the +2-stride column / row exists
    # only where it stays inside the 72x48 image -> 15, 11, 11 and 8 candidates
    assert gen.stats["round1_prompts"] == 4 and gen.stats["round2_prompts"] == 15 + 11 + 11 + 8
    assert gen.stats["decoder_prompts"] == 4 + 45


@pytest.mark.parametrize("mode", ["dense", "hierarchical"])
def test_cli_everything(tmp_path, capsys, mode):
    img = tmp_path / "img.png"
    write_png(img, _image())
    out = tmp_path / "out"
    rc = cli.main(["everything", str(img), "--mode", mode, "--points-per-side", "8", "--pred-iou-thresh", "0",
                   "--stability-score-thresh", "0", "--model", str(BUNDLE), "--out", str(out), "--no-progress",
                   "--timings"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "decoder" in captured.out and "total" in captured.out, captured.out
    data = json.loads((out / "masks.json").read_text())
    assert (out / "overlay.png").is_file()
    _check_records(data["annotations"], (48, 72))
    assert data["decoder_prompts"] == (64 if mode == "dense" else data["generator_stats"]["decoder_prompts"])
    assert data["timings_s"]["decoder"] > 0 and data["timings_s"]["total"] <= data["time_s"] + 1e-6


def test_stage_timings_add_up_and_cat_does_not_alias():
    """generate() records seconds per stage that add up to its wall time; MaskData.cat shares no list with its
    argument (it no longer deep-copies, so appending to the source afterwards must not leak in)."""
    from samfpga.everything.amg import MaskData
    from samfpga.everything.timing import STAGES, StageTimes, format_table

    a, b = MaskData(rles=[{"x": 1}]), MaskData(rles=[{"x": 2}])
    acc = MaskData()
    acc.cat(a)
    acc.cat(b)
    a["rles"].append({"x": 3})
    assert [r["x"] for r in acc["rles"]] == [1, 2]
    assert [r["x"] for r in a["rles"]] == [1, 3]

    t = StageTimes()
    with t.stage("nms"):
        sum(range(10000))
    t.stop()
    d = t.as_dict()
    assert set(d) == {*STAGES, "other", "total"} and d["nms"] > 0
    assert abs(sum(v for k, v in d.items() if k != "total") - d["total"]) < 1e-9
    assert "nms" in format_table(d)
    with pytest.raises(ValueError, match="unknown stage"):
        with t.stage("bogus"):
            pass


def test_proposals_mode_on_the_bundled_default():
    """The bundled default carries the proposal head (bundle.json files.proposals); proposals mode runs it
    without torch: one point prompt per proposal (snapped to the dense grid: at most 100), then the second pass,
    at most 120 prompts in all (a dense 32x32 grid: 1024)."""
    from samfpga.everything import ProposalMaskGenerator
    from samfpga.image_io import read_image
    from samfpga.resources import package_path

    pred = Predictor.from_bundle(package_path("samfpga.assets", "default"))
    assert pred.bundle.proposals_path is not None
    image = read_image(package_path("samfpga.assets", "samples", "sample_2.png"))[0]
    gen = ProposalMaskGenerator(pred, pred_iou_thresh=0.5, stability_score_thresh=0.8, output_mode="coco_rle")
    _check_records(gen.generate(image), image.shape[:2])
    st = gen.stats
    assert 1 <= st["first_pass_prompts"] <= st["proposals"] <= 100
    assert st["decoder_prompts"] == st["first_pass_prompts"] + st["refine_prompts"] <= 120
    assert "torch" not in sys.modules


def test_proposals_mode_without_a_head_is_refused(predictor, tmp_path, capsys):
    from samfpga.everything import ProposalMaskGenerator

    with pytest.raises(ValueError, match="no proposal head"):
        ProposalMaskGenerator(predictor)
    img = tmp_path / "img.png"
    write_png(img, _image())
    rc = cli.main(["everything", str(img), "--mode", "proposals", "--model", str(BUNDLE), "--out",
                   str(tmp_path / "out"), "--no-progress"])
    assert rc != 0 and "no proposal head" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing half-written
