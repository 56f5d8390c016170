"""The committed deployment package of the tiny FINN build (tests/runtime/data/tiny_deploy, made by
tests/support/tiny_deploy.py with --int-ops: the graph holds the project's IntLayerNorm / IntSoftmax) in the
board environment: ``samfpga deploy --check`` against FINN's execution (and failing when an integer LayerNorm or
softmax is changed), and ``pynq-sim`` against ``quant`` on every bundled sample through the CLI (segment and
everything): identical masks."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samfpga.assets import sample_images, sample_prompt
from samfpga.cli import main
from samfpga.deploy import check_package
from samfpga.predictor import Predictor

PKG = Path(__file__).parent / "data" / "tiny_deploy"


def test_package_self_check() -> None:
    assert check_package(PKG)


def test_cli_deploy_check_with_int_ops(capsys) -> None:
    """``samfpga deploy --check PKG`` on a package whose accelerator has integer LayerNorm and softmax layers:
    the self-check runs them through samfpga.intexec and equals FINN's execution stored in selfcheck.npz."""
    ops = [n["op"] for n in json.loads((PKG / "graph.json").read_text())["nodes"]]
    assert ops.count("IntLayerNorm") == 8 and ops.count("IntSoftmax") == 3
    assert not {"LayerNorm", "HWSoftmax"} & set(ops)
    assert main(["deploy", "--check", str(PKG)]) == 0
    assert "self-check passed" in capsys.readouterr().out


@pytest.mark.parametrize("op, attr, change", [("IntLayerNorm", "frac_bits", lambda v: v - 1),
                                              ("IntSoftmax", "out_num", lambda v: v // 2)])
def test_cli_deploy_check_fails_on_changed_int_op(op, attr, change, tmp_path, capsys) -> None:
    """The same check on a copy whose integer layers compute something else (attribute changed, manifest
    checksum updated so that only the self-check can notice): exit 1, naming the differing outputs."""
    pkg = tmp_path / "pkg"
    shutil.copytree(PKG, pkg)
    g = json.loads((pkg / "graph.json").read_text())
    for n in g["nodes"]:
        if n["op"] == op:
            n["attrs"][attr] = change(n["attrs"][attr])
    (pkg / "graph.json").write_text(json.dumps(g))
    man = json.loads((pkg / "manifest.json").read_text())
    man["files"]["graph.json"] = hashlib.sha256((pkg / "graph.json").read_bytes()).hexdigest()
    (pkg / "manifest.json").write_text(json.dumps(man))
    assert main(["deploy", "--check", str(pkg)]) == 1
    assert "self-check FAILED" in capsys.readouterr().out


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
