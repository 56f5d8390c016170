"""``samfpga deploy`` bad inputs (compiler environment): one line, exit status 2, nothing written."""

from __future__ import annotations

from samfpga.cli import main


def test_not_a_build_dir(tmp_path, capsys) -> None:
    (tmp_path / "b").mkdir()
    assert main(["deploy", str(tmp_path / "b"), "--out", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err
    assert "not a samfpga build directory (no build_config.json" in err and err.count("\n") == 1
    assert not (tmp_path / "pkg").exists() and list(tmp_path.iterdir()) == [tmp_path / "b"]


def test_missing_out_and_existing_out(tmp_path, capsys) -> None:
    assert main(["deploy", str(tmp_path)]) == 2
    assert "give --out PKG" in capsys.readouterr().err
    (tmp_path / "pkg").mkdir()
    (tmp_path / "build_config.json").write_text("{}")
    assert main(["deploy", str(tmp_path), "--out", str(tmp_path / "pkg")]) == 2
    assert "exists (choose a new package directory)" in capsys.readouterr().err


def test_check_missing_package(tmp_path, capsys) -> None:
    assert main(["deploy", "--check", str(tmp_path / "none")]) == 2
    assert "no such deployment package" in capsys.readouterr().err


def test_an_engine_build_is_named_with_the_command_that_packages_it(tmp_path, capsys) -> None:
    e = tmp_path / "e"
    (e / "host").mkdir(parents=True)
    (e / "finn").mkdir()
    (e / "host" / "host.json").write_text("{}")
    (e / "finn" / "build_config.json").write_text("{}")
    assert main(["deploy", str(e), "--out", str(tmp_path / "pkg")]) == 2
    err = capsys.readouterr().err
    assert f"{e}: an engine build; give its FINN build and the engine: samfpga deploy {e / 'finn'} --engine {e} " \
           "--out PKG" in err and err.count("\n") == 1
    assert not (tmp_path / "pkg").exists()
