"""Evaluation: metric semantics with oracle / empty predictors, the CLI on a torch checkpoint and on an
exported ONNX bundle (host runtime Predictor), which must agree with the torch model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from samfpga.models.build import build_from_config
from samfpga.models.checkpoint import save_checkpoint
from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
from samfpga.models.evaluate import average_recall, evaluate, main
from samfpga.models.training.trainer import model_config
from tests.training_utils import TINY_MODEL


class OraclePredictor:
    """Returns the ground-truth instance under the clicked point (or inside the box): perfect answers."""

    def __init__(self, seed: int, size: int, empty: bool = False) -> None:
        self.seed, self.size, self.empty, self.i = seed, size, empty, -1

    def set_image(self, image):
        # identify which sample this is (evaluate walks the split in order; everything mode restarts at 0)
        for i in range(50):
            s = generate_sample(self.seed, i, SyntheticConfig(image_size=self.size))
            if np.array_equal(s.image, image):
                self.masks = s.masks
                return
        raise AssertionError("unknown image")

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True,
                return_logits=False):
        if self.empty:
            m = np.zeros((1, self.size, self.size), bool)
        elif point_coords is not None:
            x, y = np.asarray(point_coords)[0].astype(int)
            hit = [k for k in range(len(self.masks)) if self.masks[k][y, x]]
            m = self.masks[hit[0]][None] if hit else np.zeros((1, self.size, self.size), bool)
        else:
            x0, y0, x1, y1 = np.asarray(box).astype(int)
            inside = [k for k in range(len(self.masks)) if self.masks[k][y0:y1 + 1, x0:x1 + 1].sum() == self.masks[k].sum()]
            m = self.masks[inside[0]][None]
        k = 3 if multimask_output else 1
        m = np.repeat(m, k, 0)
        out = np.where(m, 10.0, -10.0).astype(np.float32) if return_logits else m
        return out, np.ones(k, np.float32), np.zeros((k, 16, 16), np.float32)


def test_oracle_scores_one_and_empty_scores_zero():
    rep = evaluate(OraclePredictor(1, 64), seed=1, images=3, image_size=64, everything_images=2, points_per_side=8,
                   progress=False)
    assert all(v == pytest.approx(1.0) for v in rep["miou"].values()), rep["miou"]
    assert set(rep["miou"]) == {"center_point", "random_point", "box", "clicks_1", "clicks_2", "clicks_3"}
    assert rep["everything"]["average_recall"] > 0.5
    empty = evaluate(OraclePredictor(1, 64, empty=True), seed=1, images=2, image_size=64, everything_images=1,
                     points_per_side=4, progress=False)
    assert all(v == 0.0 for v in empty["miou"].values())
    assert empty["everything"]["average_recall"] == 0.0


def test_average_recall():
    g = np.zeros((2, 10, 10), bool)
    g[0, :5], g[1, 5:] = True, True
    p = g[0].copy()
    p[4] = False  # IoU 0.8 with g[0]
    best, ar = average_recall(g, [p])
    assert best == [pytest.approx(0.8), 0.0]
    assert ar == pytest.approx(0.5 * np.mean(np.arange(0.5, 0.951, 0.05) <= 0.8 + 1e-9))


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    mc = model_config(TINY_MODEL)
    path = tmp_path_factory.mktemp("ev") / "tiny.pt"
    save_checkpoint(build_from_config(mc).eval(), path, config=mc.to_dict())
    return path


def test_cli_torch_and_bundle_agree(tiny_ckpt, tmp_path):
    from samfpga.models import build_sam
    from samfpga.models.export.bundle import export_bundle

    args = ["--images", "2", "--image-size", "64", "--everything-images", "1", "--points-per-side", "4"]
    assert main(["--checkpoint", str(tiny_ckpt), "--json", str(tmp_path / "t.json"), *args]) == 0
    torch_rep = json.loads((tmp_path / "t.json").read_text())
    export_bundle(build_sam(checkpoint=tiny_ckpt), tmp_path / "bundle", source="tiny")
    assert main(["--bundle", str(tmp_path / "bundle"), "--json", str(tmp_path / "b.json"), *args]) == 0
    onnx_rep = json.loads((tmp_path / "b.json").read_text())
    assert torch_rep["split"] == onnx_rep["split"]
    for k, v in torch_rep["miou"].items():
        assert abs(v - onnx_rep["miou"][k]) <= 0.02, (k, v, onnx_rep["miou"][k])


def test_cli_errors(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "no such file" in capsys.readouterr().err
