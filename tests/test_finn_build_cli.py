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
    ],
)
def test_bad_input_is_one_line(args, words, tmp_path, capsys) -> None:
    out = tmp_path / "build"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err, err
    assert not out.exists()


def test_not_onnx_is_refused(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    assert main(["--board", "kv260", "--model", str(bad), "--out", str(tmp_path / "b")]) == 2
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
