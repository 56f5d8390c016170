"""``samfpga build-hw`` (samfpga.hw.build_cli.main): input errors are one line, nothing is left behind."""

from __future__ import annotations

import pytest

from samfpga.hw.build_cli import main


@pytest.mark.parametrize(
    "args, words",
    [
        (["--board", "zcu999"], "unknown board 'zcu999'"),
        (["--board", "kv260", "--model", "nope.onnx"], "model file not found: nope.onnx"),
        (["--board", "kv260", "--model", "nope.onnx", "--target-fps", "0"], "target_fps must be > 0, got 0.0"),
        (["--board", "kv260", "--bits", "3", "--model", "x.onnx"], "--bits must be in 4..8, got 3"),
        (["--board", "kv260", "--checkpoint", "missing.pt"], "checkpoint not found: missing.pt"),
        (["--board", "kv260", "--token-batch", "-2", "--model", "x.onnx"],
         "token_batch must be >= 0 (0: weights on chip), got -2"),
        (["--board", "kv260", "--mvau-wwidth-max", "0", "--model", "x.onnx"],
         "mvau_wwidth_max must be >= 1 (weight bits per PE), got 0"),
        (["--board", "kv260", "--roll", "--roll-strips", "2,0", "--model", "x.onnx"],
         "roll_strips must be >= 1 (1: whole maps), or a non-empty tuple of such counts, one per rolled stage; "
         "got (2, 0)"),
        (["--board", "kv260", "--roll-strips", "4,2", "--model", "x.onnx"], "roll_strips (4, 2) needs roll"),
    ],
)
def test_bad_input_is_one_line(args, words, tmp_path, capsys) -> None:
    out = tmp_path / "build"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err
    assert not out.exists()


def test_roll_strips_per_stage_parses() -> None:
    from samfpga.hw.build_cli import parse_args

    base = ["--board", "kv260", "--roll", "--out", "x"]
    assert parse_args([*base, "--roll-strips", "4"]).roll_strips == 4
    assert parse_args([*base, "--roll-strips", "4,2,1,1"]).roll_strips == (4, 2, 1, 1)
    with pytest.raises(SystemExit):
        parse_args([*base, "--roll-strips", "4,x"])


def test_not_onnx_is_refused(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    assert main(["--board", "kv260", "--model", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_build_log_routes_library_output(tmp_path) -> None:
    """Library warnings (logging, warnings.warn) and prints go to build.log and are counted; only ``say`` lines
    reach the screen; handlers and streams are restored afterwards."""
    import io
    import logging
    import sys
    import warnings

    from samfpga.hw.build.progress import BuildLog, step_line

    screen = io.StringIO()
    handlers, stdout = list(logging.getLogger().handlers), sys.stdout
    with BuildLog(tmp_path / "build.log", screen) as blog:
        for i in range(3):
            logging.getLogger("finn_logger").warning(f"MoveMulPastFork (Mul_{i}): Skipping near match")
        warnings.warn("XILINX_VIVADO is not set", UserWarning, stacklevel=1)
        print("Converting threshold layers (standalone)...")
        logging.getLogger("finn_logger").info("below WARNING: not counted")
        blog.say(step_line(1, 12, "qonnx_to_finn", 8.84, 10.2, 0, 33, blog.warnings))
    assert blog.warnings == 4 and blog.lines == 1
    assert screen.getvalue() == ("[ 1/12] qonnx_to_finn                  8.8 s (total 0m 10s)  HW 0/33 nodes  "
                                 "4 library warnings -> build.log\n")
    text = (tmp_path / "build.log").read_text()
    assert text.count("Skipping near match") == 3 and "XILINX_VIVADO is not set" in text
    assert "Converting threshold layers" in text and "--- [ 1/12] qonnx_to_finn" in text
    assert logging.getLogger().handlers == handlers and sys.stdout is stdout


def _hw_graph():
    """A 4-node graph: a host Transpose, then three HW layers (no FINN needed: the report reads names/domains)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper

    rtl = "finn.custom_op.fpgadataflow.rtl"
    nodes = [helper.make_node("Transpose", ["x"], ["t0"], name="Transpose_0", perm=[0, 1]),
             helper.make_node("Thresholding_rtl", ["t0"], ["t1"], name="Thresholding_rtl_0", domain=rtl),
             helper.make_node("Thresholding_rtl", ["t1"], ["t2"], name="Thresholding_rtl_1", domain=rtl),
             helper.make_node("MVAU_rtl", ["t2"], ["y"], name="MVAU_rtl_0", domain=rtl)]
    io_ = [helper.make_tensor_value_info(t, TensorProto.FLOAT, [1, 8]) for t in ("x", "y")]
    return ModelWrapper(helper.make_model(helper.make_graph(nodes, "g", io_[:1], io_[1:])))


def _results(lut: float):
    from samfpga.hw.build.context import BuildResults
    from samfpga.hw.resources import LayerCost

    costs = [LayerCost("Thresholding_rtl_0", "Thresholding_rtl", LUT=lut, unmodelled=("FF",)),
             LayerCost("Thresholding_rtl_1", "Thresholding_rtl", LUT=lut, URAM=2.0, unmodelled=("FF",)),
             LayerCost("MVAU_rtl_0", "MVAU_rtl", DSP=16.0, source="own model")]
    return BuildResults(costs={c.name: c for c in costs},
                        cycles={"Thresholding_rtl_0": 100, "Thresholding_rtl_1": 200, "MVAU_rtl_0": 400},
                        runtime_writeable=["Thresholding_rtl_1"])


def test_report_fields_and_chart(tmp_path) -> None:
    """report.json fields: per layer and per op type with sources, unmodelled zeros flagged, runtime-writeable
    URAM layers, the verdict of one pipeline (no partitions); report.md shows the chart next to the table."""
    from samfpga.hw.boards import get_board
    from samfpga.hw.build.chart import resource_chart
    from samfpga.hw.build.report import build_report, report_markdown

    kv = get_board("kv260")
    rep = build_report(_hw_graph(), _results(1000.0), kv, 200.0, 0.85)
    assert rep["nodes"]["on_hw"] == 3 and rep["nodes"]["host_op_types"] == {"Transpose": 1}
    assert [x["source"] for x in rep["layers"]] == ["FINN estimate", "FINN estimate", "own model"]
    thr = rep["op_types"]["Thresholding_rtl"]
    assert thr["layers"] == 2 and thr["LUT"] == 2000 and thr["URAM"] == 2 and thr["unmodelled"] == ["FF"]
    assert rep["total"]["unmodelled"] == {"Thresholding_rtl": ["FF"]}
    assert rep["total"]["sources"] == ["FINN estimate", "own model"]
    assert rep["total"]["bottleneck_node"] == "MVAU_rtl_0" and rep["total"]["fps"] == pytest.approx(200e6 / 400)
    assert rep["verdict"]["fits"] and rep["total"]["fits"] and "partitions" not in rep["total"]
    assert rep["memory"]["runtime_writeable"] == ["Thresholding_rtl_1"]
    block = rep["memory"]["block"]  # block memory by bits: 1 URAM = 8 BRAM36
    t = rep["total"]["resources"]
    assert block["bram36_equivalents"] == t["BRAM36"] + 8 * t["URAM"] and block["board"] == 144 + 8 * 64
    assert block["of_limit"] == pytest.approx(block["bram36_equivalents"] / (0.85 * 656))
    assert block["by_op_type"]["Thresholding_rtl"] == thr["BRAM36"] + 8 * thr["URAM"]
    chart = resource_chart({k: v for k, v in rep["op_types"].items()}, rep["total"]["budget"], 0.85, "t",
                           tmp_path / "resources.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report_markdown(rep, chart.name)
    assert "![resource use per layer type against the kv260 budget](resources.png)" in md
    assert "| Thresholding_rtl | 2 | 2,000.0 | 0* |" in md and "Runtime-writeable" in md
    assert "**Verdict: fits kv260 as one pipeline" in md
    assert "Block memory by bits (BRAM36 + 8 x URAM)" in md


def test_report_names_what_binds(tmp_path) -> None:
    """Over budget: the verdict names the binding resource and its excess, and the advice a board that holds it."""
    from samfpga.hw.boards import get_board
    from samfpga.hw.build.report import build_report, report_markdown

    kv = get_board("kv260")
    rep = build_report(_hw_graph(), _results(80_000.0), kv, 200.0, 0.85)
    v = rep["verdict"]
    assert not v["fits"] and v["binding"] == "LUT"
    assert v["pressure"]["LUT"] == pytest.approx(160_000 / (0.85 * kv.lut))
    assert f"over the 85% budget on LUT {160_000 / (0.85 * kv.lut):.2f}x (LUT binds)" in v["text"]
    assert any("zcu104" in a for a in v["advice"] if a.startswith("A bigger board"))
    assert [x["name"] for x in rep["largest_layers"][:2]] == ["Thresholding_rtl_0", "Thresholding_rtl_1"]
    assert "does not fit kv260 as one pipeline" in report_markdown(rep)
