"""Folder = import path, and the package as a wheel: built, installed without editable mode, used from elsewhere.

The wheel is installed into fresh virtual environments whose only other packages are those of the project's
board-like (``.venv-board``) or development (``.venv``) environment, reached through one path entry: that entry
does not process the ``.pth`` of the checkout's editable install, so every ``samfpga`` module the fresh
environment imports must come from the wheel.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import samfpga

ROOT = Path(__file__).resolve().parents[1]
ROOTS = {"sw": "samfpga", "models": "samfpga.models", "hw": "samfpga.hw"}
BOARD_SITE = ROOT / ".venv-board" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def _modules() -> list[tuple[Path, str]]:
    """(file, import name) for every module under the three package roots, named from its folder path."""
    out = []
    for folder in ROOTS:
        base = ROOT / folder
        for f in sorted(base.rglob("*.py")):
            rel = f.relative_to(base).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((f, ".".join(parts)))
    return out


def test_every_module_path_ends_in_its_import_path():
    mods = _modules()
    assert {"samfpga", "samfpga.models", "samfpga.hw", "samfpga.predictor", "samfpga.hw.build.steps"} <= \
        {name for _, name in mods}, "package roots not found"
    for f, name in mods:
        assert name.startswith("samfpga"), f"{f}: outside the samfpga package ({name})"
        for folder, top in ROOTS.items():
            if f.is_relative_to(ROOT / folder):
                # sw/ holds only samfpga (not .models/.hw); models/ only samfpga.models; hw/ only samfpga.hw
                assert name == top or name.startswith(top + "."), f"{f}: imports as {name}, not under {top}"
                if folder == "sw":
                    assert not name.startswith(("samfpga.models", "samfpga.hw")), f
        assert f.as_posix().endswith(name.replace(".", "/") + (".py" if f.name != "__init__.py" else "/__init__.py"))
        # and the installed package agrees: the file that name resolves to under samfpga.__path__ (the editable
        # install's links) is this one; resolved without importing it (some modules need pynq, absent here)
        parts = name.split(".")[1:]
        cands = [Path(root, *parts).with_suffix(".py") for root in samfpga.__path__] + \
                [Path(root, *parts, "__init__.py") for root in samfpga.__path__]
        found = next((c for c in cands if c.is_file()), None)
        assert found is not None and found.resolve() == f.resolve(), \
            f"{name} resolves to {found}, not {f} (a new module? env/setup.sh re-links the install)"


def test_relative_imports_resolve_by_folder():
    """A relative import names a module in the same folder tree as the importing file (how static analysis reads
    it): ``from .models.build`` in sw/samfpga/cli.py would point at sw/samfpga/models/, which does not exist, so
    code in sw/ reaches ``samfpga.models`` / ``samfpga.hw`` by absolute import."""
    for f, _ in _modules():
        for node in ast.walk(ast.parse(f.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = f.parent
            for _ in range(node.level - 1):
                base = base.parent
            target = base.joinpath(*(node.module.split(".") if node.module else []))
            found = target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()
            if not found and node.module is None:
                found = all((target / f"{a.name}.py").is_file() or (target / a.name).is_dir() for a in node.names)
            assert found, f"{f.relative_to(ROOT)}:{node.lineno}: relative import resolves to {target.relative_to(ROOT)}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    # setuptools copies into build/lib and never deletes there: a module removed from the sources would still ship
    for stale in [ROOT / "build" / "lib", *(ROOT / "build").glob("bdist.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(ROOT)], check=True, cwd=dist)
    (whl,) = dist.glob("samfpga-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    py = {n for n in names if n.endswith(".py")}
    expected = {f"{name.replace('.', '/')}{'/__init__' if f.name == '__init__.py' else ''}.py" for f, name in _modules()}
    assert py == expected, (sorted(py - expected)[:5], sorted(expected - py)[:5])
    for data in ("samfpga/assets/default/bundle.json", "samfpga/assets/default/encoder.onnx",
                 "samfpga/assets/default/decoder.onnx", "samfpga/assets/default/checkpoint.pt",
                 "samfpga/assets/samples/sample_0.png", "samfpga/models/training/configs/default_student.yaml",
                 "samfpga/assets/video_default/video.json", "samfpga/assets/video_default/memory_attention.onnx",
                 "samfpga/assets/samples/video/frames/00000.jpg", "samfpga/assets/samples/video/mask_00000.png",
                 "samfpga/assets/samples/video/masks/00015.png",
                 "samfpga/models/training/configs/default_video.yaml",
                 "samfpga/hw/rtl/add_streams.sv"):
        assert data in names, data
    # generated reports are not package data
    assert not [n for n in names if n.endswith("report.json") or "/reports/" in n], names


def _fresh_env(where: Path, wheel: Path, site_of: Path) -> Path:
    """A new venv holding the wheel (no editable install), with ``site_of``'s packages on one path entry."""
    venv.create(where, with_pip=True)
    py = where / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "_requirements_from_env.pth").write_text(f"{site_of}\n")
    # --force-reinstall: the board venv on the path may hold an editable samfpga of the same version, which pip
    # would otherwise take as already installed (and the wheel would never be tried)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
                   check=True)
    return py


def _run(args: list, cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env, **kw)


@pytest.mark.slow
def test_installed_wheel_runs_from_anywhere_in_board_env(wheel, tmp_path):
    if not BOARD_SITE.is_dir():
        pytest.fail(f"board environment missing: {BOARD_SITE} (run env/setup.sh board)")
    py = _fresh_env(tmp_path / "venv", wheel, BOARD_SITE)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = (
        "import json, samfpga, samfpga.predictor as P, samfpga.assets as A\n"
        "from pathlib import Path\n"
        "p = P.Predictor.from_bundle(A.default_bundle_dir())\n"
        "img = A.sample_images()[0]\n"
        "print(json.dumps({'pkg': samfpga.__file__, 'path': list(samfpga.__path__), 'bundle': str(A.default_bundle_dir()),"
        " 'sample': str(img), 'prompt': A.sample_prompt(img)}))\n"
    )
    r = _run([py, "-c", code], cwd=work, check=True)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    venv_dir = str(tmp_path / "venv")
    assert info["pkg"].startswith(venv_dir) and all(p.startswith(venv_dir) for p in info["path"]), info
    assert info["bundle"].startswith(venv_dir) and info["sample"].startswith(venv_dir), info
    # the CLI entry point on the bundled sample with its bundled prompt
    samfpga_exe = tmp_path / "venv" / "bin" / "samfpga"
    out = work / "out"
    x, y = info["prompt"]["points"][0]
    r = _run([samfpga_exe, "segment", info["sample"], "--point", f"{x},{y}", "--out", out], cwd=work)
    assert r.returncode == 0, r.stderr
    assert (out / "overlay.png").is_file() and list(out.glob("mask_*.png")), sorted(out.iterdir())
    # development-side commands resolve their data files in the installed wheel; without torch/finn they say so
    r = _run([samfpga_exe, "build-hw", "--help"], cwd=work)
    assert r.returncode == 0 and "--board" in r.stdout, r.stderr
    r = _run([py, "-c", "from samfpga.hw.build_cli import DEFAULT_CHECKPOINT as c; print(c, c.is_file())"], cwd=work)
    assert r.stdout.startswith(venv_dir) and r.stdout.strip().endswith("True"), r.stdout + r.stderr
    r = _run([samfpga_exe, "export", "--help"], cwd=work)
    assert r.returncode == 2 and "development environment" in r.stderr, r.stderr


@pytest.mark.slow
def test_installed_wheel_dev_commands_find_their_data(wheel, tmp_path):
    dev_site = Path(sysconfig.get_paths()["purelib"])
    py = _fresh_env(tmp_path / "venv", wheel, dev_site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    venv_dir = str(tmp_path / "venv")
    exe = tmp_path / "venv" / "bin" / "samfpga"
    for cmd in (["export", "--help"], ["build-hw", "--help"]):
        r = _run([exe, *cmd], cwd=work)
        assert r.returncode == 0 and "usage" in r.stdout.lower(), (cmd, r.stderr[-2000:])
    code = ("from samfpga.models.quant.source import STUDENT_CONFIG, student_config\n"
            "from samfpga.hw.custom_ops.rtl_base import rtl_source\n"
            "print(STUDENT_CONFIG); print(rtl_source('add_streams.sv')); print(student_config().encoder_config.img_size)")
    r = _run([py, "-c", code], cwd=work)
    assert r.returncode == 0, r.stderr[-2000:]
    cfg, rtl, size = r.stdout.strip().splitlines()[-3:]
    assert cfg.startswith(venv_dir) and rtl.startswith(venv_dir) and int(size) > 0, r.stdout
