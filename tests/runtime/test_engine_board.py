"""The layer-sequential engine on the board side (board environment: no torch / finn): a deployment package of the
tiny build with the engine's host files (tests/runtime/data/tiny_engine: its program's 41 steps, written by
tests/support/tiny_engine.py), its driver (samfpga.backends.engine_driver) on the simulated board of the engine's
register protocol (samfpga.pynq_sim.engine_device, whose frames the package's integer graph computes). The
embedding through ``--backend pynq-sim`` equals the ``quant`` backend's (the same integer graph on the CPU), tolerance
0; a register, a region or an input the engine would compute garbage from is refused, naming it. That the RTL leaves
the same output when this host code drives it: tests/test_sim_engine_gemm_path.py."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from samfpga.backends import BackendError, create_backend
from samfpga.deploy import DeployError, check_package, load_package

DATA = Path(__file__).resolve().parent / "data"
ENGINE = DATA / "tiny_engine"


def _manifest(root: Path) -> None:
    """manifest.json's checksums of every file again (after a test edits the package)."""
    man = json.loads((root / "manifest.json").read_text())
    man["files"] = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    (root / "manifest.json").write_text(json.dumps(man, indent=1))


def _engine_package(tmp_path: Path) -> Path:
    """The tiny deployment package made one of the engine (``deploy.write.add_engine``, what ``samfpga deploy BUILD
    --engine ENGINE_BUILD`` does) from an engine build folder holding the committed host files."""
    from samfpga.deploy.write import add_engine

    root = tmp_path / "pkg"
    shutil.copytree(DATA / "tiny_deploy", root)
    shutil.copytree(ENGINE, tmp_path / "engine_build" / "host", ignore=shutil.ignore_patterns("expected.npz"))
    drv = add_engine(tmp_path / "engine_build", root, json.loads((root / "graph.json").read_text()))
    assert drv["platform"] == "engine" and "dma" not in drv
    _manifest(root)
    return root


def _image(seed: int = 0) -> np.ndarray:
    """A resized image (long side the bundle's 64)."""
    return np.random.default_rng(seed).integers(0, 256, (40, 64, 3), dtype=np.uint8)


def test_pynq_sim_engine_equals_quant(tmp_path):
    root = _engine_package(tmp_path)
    assert check_package(root, log=lambda *_: None)
    pkg = load_package(root)
    quant = create_backend("quant", pkg.bundle, package=pkg)
    sim = create_backend("pynq-sim", pkg.bundle, package=pkg)
    try:
        records = []
        for seed in (0, 1):
            img = _image(seed)
            norm = (pkg.bundle.pixel_mean, pkg.bundle.pixel_std)
            a, b = quant.encode_image(img, *norm), sim.encode_image(img, *norm)
            assert a.shape == b.shape == (1, *pkg.bundle.embedding_shape)
            np.testing.assert_array_equal(a, b)
            records.append(sim.accel.records)
        acc, dev = sim.accel, sim.accel.device
        assert dev.frames == 2 and dev.base == acc.base
        assert set(sim.timings) >= {"host_pre_s", "run_s", "steps_s", "host_post_s"}
        # the sequencer writes every register (119 and ap_start) for its first step, then only those that change,
        # the next frame's first step included
        first, second = records
        assert len(first) == len(second) == 41 and first[0].writes == 120 and second[0].writes < 61
        assert all(r.polls >= 1 for r in first) and max(r.writes for r in first[1:]) < 61
    finally:
        sim.close()


def _accelerator(root: Path = ENGINE, body=None):
    from samfpga.backends.engine_driver import EngineAccelerator
    from samfpga.pynq_sim.engine_device import EngineSimDevice

    exp = np.load(ENGINE / "expected.npz")
    if body is None:
        from samfpga.intexec import load_intgraph

        body = load_intgraph(DATA / "tiny_deploy").run_accelerator
    dev = EngineSimDevice(ENGINE, body)
    return EngineAccelerator(root, dev.bitfile, device=dev), dev, exp


def test_driver_runs_the_program_and_the_sim_checks_what_it_wrote():
    acc, dev, exp = _accelerator()
    try:
        np.testing.assert_array_equal(acc.execute(exp["x"]), exp["y"])
        np.testing.assert_array_equal(acc.execute(exp["x"]), exp["y"])
        assert dev.frames == 2 and dev.base == acc.base == acc.ddr.device_address
        # every address register on the buffer, every other as host.json gives it
        host = json.loads((ENGINE / "host.json").read_text())
        assert acc.steps[0]["wt_base"] == acc.base + host["steps"][0]["regs"]["wt_base"]
        # a region of the program's memory overwritten: the next frame is refused naming it
        r = next(r for r in host["regions"] if r["name"].endswith(".lanes"))
        acc.ddr[r["at"] + 3] ^= 0xFF
        with pytest.raises(BackendError, match=rf"step 0 \(MVAU_rtl_0\) started with region {r['name']} of the "
                           "buffer not as host.json gives it"):
            acc.execute(exp["x"])
    finally:
        acc.close()


def test_a_step_whose_registers_differ_is_refused(tmp_path):
    """The driver given host files whose step 5 reads elsewhere: the simulated engine (holding the build's) refuses
    the step, naming it and the register."""
    root = tmp_path / "host"
    shutil.copytree(ENGINE, root)
    host = json.loads((root / "host.json").read_text())
    host["steps"][5]["regs"]["rd_base"] += 64
    (root / "host.json").write_text(json.dumps(host))
    acc, _, exp = _accelerator(root)
    try:
        with pytest.raises(BackendError, match=rf"step 5 \({host['steps'][5]['name']}\) started with registers unlike "
                           r"host.json's \(buffer at 0x[0-9a-f]+\): rd_base \d+ \(want \d+\)"):
            acc.execute(exp["x"])
    finally:
        acc.close()


def test_engine_package_checks(tmp_path):
    root = _engine_package(tmp_path)
    host = json.loads((root / "engine" / "host.json").read_text())
    host["output"]["shape"] = [1, 16, 4, 8]
    (root / "engine" / "host.json").write_text(json.dumps(host))
    _manifest(root)
    with pytest.raises(DeployError, match=r"engine/host.json: the engine's output Transpose_41_out0 \[1, 16, 4, 8\] "
                       r"INT8 is not the graph's accelerator output Transpose_41_out0 \[1, 32, 4, 4\] INT8"):
        load_package(root)
    from samfpga.deploy.write import add_engine

    with pytest.raises(DeployError, match="no engine host files"):
        add_engine(tmp_path / "nowhere", tmp_path / "pkg2", {})


def test_a_buffer_the_board_cannot_allocate_is_named():
    """pynq.allocate failing (the board's contiguous memory too small for the program's buffer: 291 MB for vit_t
    at 1024²): a BackendError naming the size and the remedy, the overlay's lock released."""
    from samfpga.backends.engine_driver import EngineAccelerator
    from samfpga.pynq_sim.engine_device import EngineSimDevice

    class SmallCma(EngineSimDevice):
        def allocate(self, shape, dtype, **kwargs):
            raise RuntimeError("Failed to allocate Memory!")

    dev = SmallCma(ENGINE, lambda x: x)
    size = json.loads((ENGINE / "host.json").read_text())["ddr_bytes"]
    with pytest.raises(BackendError, match=rf"cannot allocate the engine's DDR buffer of {size:,} bytes .*"
                       r"Failed to allocate Memory!; give the kernel a larger CMA"):
        EngineAccelerator(ENGINE, dev.bitfile, device=dev)
    acc = EngineAccelerator(ENGINE, dev.bitfile, device=EngineSimDevice(ENGINE, lambda x: x))  # the lock is free
    acc.close()
