"""The ``pynq`` backend's driver on the simulated PYNQ device (board environment, no torch/finn), on a small
numpy-made deployment package (tests/support/synthetic_package.py): results, faults, package checks, CLI.

Compared: pynq-sim vs quant vs the package's function written out directly (tolerance 0: all three compute
the same integers; the float host layers are the same float32 operations)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from samfpga.backends import BackendError, available_backends, create_backend  # noqa: E402
from samfpga.deploy import DeployError, check_package, load_package  # noqa: E402
from tests.support.synthetic_package import _weights, direct, hwh_text, make_package, write_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pkg_dir(tmp_path) -> Path:
    return make_package(tmp_path / "pkg")


def _inputs(n: int):
    rng = np.random.default_rng(11)
    return [rng.normal(size=(1, 3, 64, 64)).astype(np.float32) * s for s in np.linspace(0.5, 2.0, n)]


def test_registry() -> None:
    assert {"onnx", "quant", "pynq", "pynq-sim"} <= set(available_backends())


def test_pynq_sim_equals_quant_equals_direct(pkg_dir) -> None:
    pkg = load_package(pkg_dir)
    quant = create_backend("quant", pkg.bundle, package=pkg)
    sim = create_backend("pynq-sim", pkg.bundle, package=pkg)
    try:
        for x in _inputs(4):
            q, s = quant.encode(x), sim.encode(x)
            ref = direct(x, _weights()).transpose(0, 3, 1, 2)
            assert np.unique(ref).size > 20  # not saturated
            np.testing.assert_array_equal(q, ref)
            np.testing.assert_array_equal(s, q)
        dev = sim.accel.device
        assert dev.downloads == 1 and set(dev.timings) == {"dma_in_s", "accelerator_s", "dma_out_s"}
        assert set(sim.timings) == {"host_pre_s", "pack_s", "run_s", "unpack_s", "host_post_s"}
    finally:
        sim.close()


def test_check_package_passes_and_detects_wrong_reference(pkg_dir, capsys) -> None:
    assert check_package(pkg_dir)
    assert "self-check passed" in capsys.readouterr().out
    with np.load(pkg_dir / "selfcheck.npz") as z:
        x, e = z["input"], z["expected"].copy()
    e.flat[7] += 0.05
    np.savez(pkg_dir / "selfcheck.npz", input=x, expected=e)
    write_manifest(pkg_dir)
    assert not check_package(pkg_dir)
    assert "1 of 256 outputs differ" in capsys.readouterr().out


def test_dma_never_completes(pkg_dir) -> None:
    pkg = load_package(pkg_dir)
    sim = create_backend("pynq-sim", pkg.bundle, package=pkg, fault="dma_hang", timeout_s=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendError) as e:
            sim.encode(_inputs(1)[0])
        assert time.monotonic() - t0 < 3.0
    finally:
        sim.close()
    msg = str(e.value)
    assert "\n" not in msg
    for part in ("within 0.3 s", "odma0 @ 0xa0010000", "idma0 @ 0xa0000000", "ctrl(0x00)=0x1", "done=0",
                 "addr(0x10)=0x", "reps(0x1C)=1"):
        assert part in msg, (part, msg)


def _edit_json(p: Path, fn) -> None:
    d = json.loads(p.read_text())
    fn(d)
    p.write_text(json.dumps(d))


@pytest.mark.parametrize("case, expect", [
    ("checksum", "sha256"),
    ("driver_dtype", "dtype INT16 != graph.json INT8"),
    ("driver_shape", "shape [1, 4, 4, 32]"),
    ("driver_tensor", "is not the graph's accelerator output"),
    ("hwh_dma_name", "no DMA 'odma0'"),
    ("hwh_dma_addr", "DMA idma0 at 0xa0020000, driver.json says 0xa0000000"),
    ("bit_hwh_names", "differ in name"),
    ("missing_bitfile", "neither present nor listed under 'absent'"),
])
def test_disagreeing_package_refused(tmp_path, case, expect) -> None:
    root = make_package(tmp_path / "p", with_bitfile=case.startswith(("hwh", "bit")))
    bit, hwh = ("accel.bit", "accel.hwh") if case.startswith(("hwh", "bit")) else (None, None)
    if case == "checksum":
        raw = bytearray((root / "weights.npz").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (root / "weights.npz").write_bytes(bytes(raw))
    elif case == "driver_dtype":
        _edit_json(root / "driver.json", lambda d: d["outputs"][0].update(dtype="INT16"))
    elif case == "driver_shape":
        _edit_json(root / "driver.json", lambda d: d["outputs"][0].update(shape_normal=[1, 4, 4, 32]))
    elif case == "driver_tensor":
        _edit_json(root / "driver.json", lambda d: d["outputs"][0].update(tensor="acc"))
    elif case == "hwh_dma_name":
        (root / "accel.hwh").write_text(hwh_text({"idma0": 0xA000_0000, "odma_1": 0xA001_0000}))
    elif case == "hwh_dma_addr":
        (root / "accel.hwh").write_text(hwh_text({"idma0": 0xA002_0000, "odma0": 0xA001_0000}))
    elif case == "bit_hwh_names":
        (root / "accel.hwh").rename(root / "other.hwh")
        hwh = "other.hwh"
    if case == "missing_bitfile":
        _edit_json(root / "manifest.json", lambda d: d.update(absent={}))
    elif case != "checksum":
        write_manifest(root, bit, hwh)
    with pytest.raises(DeployError) as e:
        load_package(root)
    assert expect in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_pynq_backend_refuses_package_without_bitfile(pkg_dir) -> None:
    pkg = load_package(pkg_dir)
    with pytest.raises(BackendError, match="no bitfile in the package .synthetic test package.; use --backend pynq-sim"):
        create_backend("pynq", pkg.bundle, package=pkg)


def test_pynq_backend_checks_overlay_against_driver(tmp_path) -> None:
    """The pynq backend with a package that has a (stand-in) bitfile, on a simulated device whose overlay places
    odma0 elsewhere than driver.json: refused with the address."""
    from samfpga.backends.pynq_backend import PynqEncoderBackend
    from samfpga.pynq_sim import SimDevice

    pkg = load_package(make_package(tmp_path / "p", with_bitfile=True))
    dev = SimDevice(pkg)
    dev.driver = json.loads(json.dumps(pkg.driver))
    dev.driver["dma"]["odma0"]["base"] = 0xA004_0000
    with pytest.raises(BackendError, match="DMA odma0 at 0xa0040000, driver.json says 0xa0010000"):
        PynqEncoderBackend(pkg.bundle, pkg, device=dev)


HOLDER = """
import sys, time
sys.path.insert(0, {sw!r})
from samfpga.deploy import load_package
from samfpga.backends import create_backend
pkg = load_package({pkg!r})
b = create_backend("pynq-sim", pkg.bundle, package=pkg)
print("ready", flush=True)
time.sleep(30)
"""


def test_second_process_gets_clear_error(pkg_dir, tmp_path) -> None:
    env = dict(os.environ, SAMFPGA_LOCK_DIR=str(tmp_path / "locks"))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(sw=str(ROOT / "sw"), pkg=str(pkg_dir))],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "ready"
        pkg = load_package(pkg_dir)
        with pytest.raises(BackendError) as e:
            create_backend("pynq-sim", pkg.bundle, package=pkg)
        msg = str(e.value)
        assert f"in use by another process (pid {holder.pid}" in msg and "\n" not in msg, msg
    finally:
        holder.kill()
        holder.wait()
    # once the holder is gone, the overlay opens
    b = create_backend("pynq-sim", pkg.bundle, package=pkg)
    b.close()


def _segment(pkg: Path, backend: str, out: Path) -> dict:
    from samfpga.cli import main

    img = ROOT / "sw/samfpga/assets/samples/sample_0.png"
    assert main(["segment", str(img), "--point", "100,120", "--deploy", str(pkg), "--backend", backend,
                 "--multimask", "--out", str(out)]) == 0
    return json.loads((out / "scores.json").read_text())


def test_cli_pynq_sim_masks_equal_quant(pkg_dir, tmp_path) -> None:
    from PIL import Image

    a = _segment(pkg_dir, "pynq-sim", tmp_path / "sim")
    b = _segment(pkg_dir, "quant", tmp_path / "quant")
    assert a["masks"] == b["masks"]
    for m in a["masks"]:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "sim" / m["file"])),
                              np.asarray(Image.open(tmp_path / "quant" / m["file"])))


def test_cli_errors(pkg_dir, tmp_path, capsys) -> None:
    from samfpga.cli import main

    img = str(ROOT / "sw/samfpga/assets/samples/sample_0.png")
    assert main(["segment", img, "--point", "10,10", "--backend", "quant", "--out", str(tmp_path / "o")]) == 2
    assert "--backend quant runs a deployment package: add --deploy PKG" in capsys.readouterr().err
    assert main(["segment", img, "--point", "10,10", "--deploy", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "no such deployment package" in capsys.readouterr().err
    assert main(["deploy", "--check", str(pkg_dir)]) == 0
    assert not (tmp_path / "o").exists()


def test_other_accelerator_model_goes_through_the_dma_path(pkg_dir) -> None:
    """An accelerator model plugged into the simulated device (here: the executor's output plus one) reaches the
    backend's output through packing, DMA and unpacking: the driver does not bypass the device."""
    pkg = load_package(pkg_dir)
    g = pkg.intgraph()
    sim = create_backend("pynq-sim", pkg.bundle, package=pkg, accelerator=lambda x: g.run_accelerator(x) * 0 + 1)
    try:
        out = sim.encode(_inputs(1)[0])
    finally:
        sim.close()
    np.testing.assert_array_equal(out, np.full(out.shape, 0.05, np.float32))  # 1 * the output scale
