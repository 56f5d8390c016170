"""The committed deployment package of the tiny FINN build (tests/runtime/data/tiny_deploy, made by
tests/support/tiny_deploy.py) in the board environment: self-check against FINN's execution, and ``pynq-sim``
against ``quant`` on every bundled sample through the CLI (segment and everything): identical masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samfpga.assets import sample_images, sample_prompt
from samfpga.cli import main
from samfpga.deploy import check_package
from samfpga.predictor import Predictor

PKG = Path(__file__).parent / "data" / "tiny_deploy"


@pytest.fixture(autouse=True)
def _locks(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMFPGA_LOCK_DIR", str(tmp_path / "locks"))


def test_package_self_check() -> None:
    assert check_package(PKG)


def test_embeddings_pynq_sim_equal_quant() -> None:
    sim = Predictor.from_deploy(PKG, backend="pynq-sim")
    quant = Predictor.from_deploy(PKG, backend="quant")
    try:
        for path in sample_images():
            img = np.asarray(Image.open(path).convert("RGB"))
            sim.set_image(img)
            quant.set_image(img)
            e = quant.get_image_embedding()
            assert np.unique(e).size > 50
            np.testing.assert_array_equal(sim.get_image_embedding(), e)
    finally:
        sim.encoder.close()


@pytest.mark.parametrize("path", sample_images(), ids=lambda p: p.name)
def test_cli_segment_masks_identical(path: Path, tmp_path: Path) -> None:
    prompt = sample_prompt(path)
    out = {}
    for backend in ("pynq-sim", "quant"):
        d = tmp_path / backend
        args = ["segment", str(path), "--deploy", str(PKG), "--backend", backend, "--multimask", "--out", str(d)]
        for x, y in prompt["points"]:
            args += ["--point", f"{x},{y}"]
        if prompt.get("box"):
            args += ["--box", ",".join(str(v) for v in prompt["box"])]
        assert main(args) == 0
        out[backend] = d
    a, b = (json.loads((out[k] / "scores.json").read_text()) for k in ("pynq-sim", "quant"))
    assert a["masks"] == b["masks"]
    for m in a["masks"]:
        np.testing.assert_array_equal(np.asarray(Image.open(out["pynq-sim"] / m["file"])),
                                      np.asarray(Image.open(out["quant"] / m["file"])))


def test_cli_everything_identical(tmp_path: Path) -> None:
    img = str(sample_images()[0])
    res = []
    for backend in ("pynq-sim", "quant"):
        d = tmp_path / backend
        assert main(["everything", img, "--mode", "dense", "--points-per-side", "4", "--pred-iou-thresh", "0",
                     "--stability-score-thresh", "0", "--no-progress", "--deploy", str(PKG), "--backend", backend,
                     "--out", str(d)]) == 0
        res.append(json.loads((d / "masks.json").read_text())["annotations"])
    assert res[0] and [r["segmentation"] for r in res[0]] == [r["segmentation"] for r in res[1]]
