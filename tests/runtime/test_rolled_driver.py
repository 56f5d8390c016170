"""The driver of a rolled accelerator (samfpga.backends.rolled_driver.RolledAccelerator) in the board environment,
on the simulated board of a rolled build (samfpga.pynq_sim.rolled_device.RolledSimDevice): a three-part chain
(stem, a loop of 3 blocks, neck) whose loop has a token-batched unit and a runtime-writeable layer, described by a
host.json with the address map the build writes (samfpga.hw.rolled.board: reader, writer, unit, layer per part from
the PL base). The bodies are numpy; the loop's block i adds i + 1 and the unit's / layer's data decide nothing, but
the simulated board refuses a run whose unit BASE bytes or layer words are not the described files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samfpga.backends.base import BackendError
from samfpga.backends.rolled_driver import RolledAccelerator
from samfpga.backends.rolled_host import BufferSide, PartSpec, parts_to_json
from samfpga.pynq_sim.rolled_device import RolledSimDevice

U8 = BufferSide(2, 3, 4, 8, False, 1)
I9 = BufferSide(2, 3, 4, 9, True, 2)
SHAPE = (1, 2, 3, 4)
CHAIN = [PartSpec("0_once", 1, U8, I9, SHAPE, SHAPE), PartSpec("1_body", 3, I9, I9, SHAPE, SHAPE),
         PartSpec("2_once", 1, I9, U8, SHAPE, SHAPE)]
BODIES = [lambda i, x: x - 100, lambda i, x: x + i + 1, lambda i, x: x + 94]  # x - 100 + 1 + 2 + 3 + 94 = x
BASE, RANGE = 0xA000_0000, 0x1_0000
WEIGHTS = bytes(range(256)) * 5  # the unit's two blocks' weights, STRIDE 1024 apart (+ 256)
WORDS = [0x1234_5678 + 3 * k for k in range(300)]


def _write_build(root: Path) -> dict:
    """A rolled build's host.json and files under ``root``, addresses as samfpga.hw.rolled.board assigns them."""
    host = parts_to_json(CHAIN)
    addr = BASE
    for p in host["parts"]:
        p["cell"] = f"part_{p['name']}"
        p["reader"] = {"port": "rd_s_axil", "aximm_port": "m_axi_rd", "regs": addr, "range": RANGE}
        p["writer"] = {"port": "wr_s_axil", "aximm_port": "m_axi_wr", "regs": addr + RANGE, "range": RANGE}
        addr += 2 * RANGE
        p["token_batch"], p["runtime_weights"] = [], []
    body = host["parts"][1]
    body["token_batch"] = [{"name": "TokenBatchMVU_rtl_0", "file": "token_batch/1_body/TokenBatchMVU_rtl_0.bin",
                            "bytes": len(WEIGHTS), "stride": 1024, "iters": 3, "tokens": 6, "regs": addr,
                            "range": RANGE}]
    body["runtime_weights"] = [{"name": "MVAU_rtl_3", "words": len(WORDS), "file": "runtime_weights/1_body/MVAU_rtl_3.dat",
                                "regs": addr + 0x1_0000, "range": 0x1000 * 2}]
    (root / "token_batch" / "1_body").mkdir(parents=True)
    (root / body["token_batch"][0]["file"]).write_bytes(WEIGHTS)
    (root / "runtime_weights" / "1_body").mkdir(parents=True)
    (root / body["runtime_weights"][0]["file"]).write_text("".join(f"{w:08x}\n" for w in WORDS))
    (root / "host.json").write_text(json.dumps(host))
    return host


@pytest.fixture
def build(tmp_path) -> Path:
    _write_build(tmp_path)
    return tmp_path


def _open(root: Path, bodies=BODIES, device=None) -> tuple[RolledAccelerator, RolledSimDevice]:
    dev = device or RolledSimDevice(root, bodies)
    return RolledAccelerator(root, dev.bitfile, device=dev, poll_s=0), dev


def test_rolled_driver_runs_frames_through_every_part(build):
    acc, dev = _open(build)
    try:
        # start-up: the flush frame after the runtime words; the unit configured on its weights in the region
        assert dev.stale_runs == 1 and [p.jobs_read for p in dev.parts] == [1, 3, 1]
        x = np.arange(24, dtype=np.float32).reshape(SHAPE) * 10
        y = acc.execute(x)
        np.testing.assert_array_equal(y, x)
        assert y.shape == SHAPE and y.dtype == np.float32 and acc.timings["run_s"] > 0
        assert dev.stale_runs == 1 and [p.jobs_read for p in dev.parts] == [2, 6, 2]
        # the loop read its blocks from the pair the plan gives it (region start + 4096, + 8192)
        reads = [b - acc.ddr.device_address for u, b in dev.parts[1].starts if u == "strip_reader"]
        assert reads == [4096, 8192, 4096] * 2
        mem = dev.memories["MVAU_rtl_3"]
        assert mem.words[:len(WORDS)].tolist() == WORDS and mem.written[:len(WORDS)].all()
    finally:
        acc.close()


def test_rolled_sim_device_refuses_weights_that_are_not_the_files(build):
    acc, dev = _open(build)
    try:
        off = next(b for b, _, m in dev.slaves if b == acc.host["parts"][1]["token_batch"][0]["regs"])
        base = int.from_bytes(dev.read_registers(off + 0x10, 4), "little")
        dev._memory(base + 700, 1)[:] += 1  # one weight byte in DDR changed after start-up
        with pytest.raises(BackendError, match="TokenBatchMVU_rtl_0: the 1280 bytes at BASE .* are not "
                                               "token_batch/1_body"):
            acc.execute(np.zeros(SHAPE, dtype=np.float32))
    finally:
        acc.close()


def test_rolled_sim_device_refuses_unwritten_runtime_words(build, monkeypatch):
    """A driver that skipped the layer's words would run on empty URAM: the simulated board says so."""
    from samfpga.backends import rolled_driver

    real = rolled_driver.load_files
    monkeypatch.setattr(rolled_driver, "load_files",
                        lambda root, host: (real(root, host)[0], {k: np.zeros(len(WORDS), np.uint32)
                                                                  for k in real(root, host)[1]}))
    dev = RolledSimDevice(build, BODIES)
    with pytest.raises(BackendError, match="MVAU_rtl_3: 300 of its 300 words .* not written as"):
        RolledAccelerator(build, dev.bitfile, device=dev, poll_s=0)


def test_rolled_driver_refuses_bad_descriptions_before_touching_the_board(build):
    host = json.loads((build / "host.json").read_text())
    f = build / host["parts"][1]["runtime_weights"][0]["file"]
    f.write_text(f.read_text() + "00000001\n")
    dev = RolledSimDevice(build, BODIES)
    with pytest.raises(BackendError, match="MVAU_rtl_3.dat: 301 words, driver.json says 300"):
        RolledAccelerator(build, dev.bitfile, device=dev)
    assert dev.downloads == 0
    f.write_text("".join(f"{w:08x}\n" for w in WORDS))
    (build / host["parts"][1]["token_batch"][0]["file"]).write_bytes(WEIGHTS[:-1])
    with pytest.raises(BackendError, match="TokenBatchMVU_rtl_0.bin: 1279 bytes, host.json says 1280"):
        RolledAccelerator(build, dev.bitfile, device=dev)
    old = {**host, "parts": [{k: v for k, v in p.items() if k not in ("cell", "reader", "writer")}
                             for p in host["parts"]]}
    (build / "host.json").write_text(json.dumps(old))
    with pytest.raises(BackendError, match="part 0_once: lacks \\['cell', 'reader', 'writer'\\] .* rebuild"):
        RolledAccelerator(build, dev.bitfile, device=dev)
    assert dev.downloads == 0


def test_rolled_driver_refuses_memory_its_masters_cannot_reach(build, monkeypatch):
    """A DDR region past 2**master_addr_bits (the design's 32-bit masters) would have its addresses' high bits dropped
    by the hardware: refused before any register is written; a host.json whose masters reach further runs there."""
    from samfpga.pynq_sim.device import SimBoard

    monkeypatch.setattr(SimBoard, "_next_addr", 0xFFFF_F000)
    dev = RolledSimDevice(build, BODIES)
    with pytest.raises(BackendError, match="\\(0xfffff000 \\+ [0-9,]+ bytes\\) reaches past the 32-bit addresses"):
        RolledAccelerator(build, dev.bitfile, device=dev)
    assert all(p.jobs_read == 0 for p in dev.parts) and not dev.memories["MVAU_rtl_3"].written.any()
    host = json.loads((build / "host.json").read_text())
    (build / "host.json").write_text(json.dumps({**host, "master_addr_bits": 40}))
    acc, dev = _open(build)
    try:
        assert acc.ddr.device_address >= 1 << 32
        x = np.arange(24, dtype=np.float32).reshape(SHAPE)
        np.testing.assert_array_equal(acc.execute(x), x)
    finally:
        acc.close()


def test_rolled_driver_needs_every_part_in_the_overlay(build):
    class Missing(RolledSimDevice):
        def get_bitfile_metadata(self, bitfile_name):
            parser = super().get_bitfile_metadata(bitfile_name)
            del parser.ip_dict["part_1_body"]
            return parser

    dev = Missing(build, BODIES)
    with pytest.raises(BackendError, match="overlay has no cell \\['part_1_body'\\]"):
        RolledAccelerator(build, dev.bitfile, device=dev)
    # the lock was released: the next driver opens
    acc, _ = _open(build)
    acc.close()


# ---- a rolled build's deployment package (tests/support/synthetic_package.make_rolled_package) -----------------


def test_rolled_package_pynq_sim_equals_quant(tmp_path):
    """``pynq-sim`` of a rolled package (the driver on the simulated board, each block the integer graph between the
    block's tensors) against ``quant`` (the integer graph in one piece): the same embeddings."""
    from samfpga.backends import create_backend
    from samfpga.deploy import check_package, load_package
    from tests.support.synthetic_package import make_rolled_package

    pkg = load_package(make_rolled_package(tmp_path / "pkg"))
    assert check_package(pkg.root, log=lambda *_: None)
    quant = create_backend("quant", pkg.bundle, package=pkg)
    sim = create_backend("pynq-sim", pkg.bundle, package=pkg)
    try:
        for seed in range(3):
            x = np.random.default_rng(seed).normal(size=(1, 3, 64, 64)).astype(np.float32)
            q, s = quant.encode(x), sim.encode(x)
            assert np.unique(q).size > 20  # not saturated
            np.testing.assert_array_equal(s, q)
        dev = sim.accel.device
        assert [p.jobs_read for p in dev.parts] == [3, 6] and dev.downloads == 1
        assert set(sim.timings) == {"host_pre_s", "run_s", "host_post_s"}
    finally:
        sim.close()


def test_rolled_package_checks(tmp_path):
    """The package loader checks a rolled package's host.json against driver.json and, with a hwh, every slave's
    segment; a package whose parts do not give the accelerator's tensors is refused."""
    from samfpga.deploy import DeployError, load_package
    from tests.support.synthetic_package import make_rolled_package, write_manifest

    root = make_rolled_package(tmp_path / "pkg", hwh=True)
    load_package(root)
    hwh = (root / "accel.hwh").read_text()
    (root / "accel.hwh").write_text(hwh.replace('INSTANCE="part_1_body" BASEVALUE="0xa0030000"',
                                                'INSTANCE="part_1_body" BASEVALUE="0xa0040000"'))
    write_manifest(root, "accel.bit", "accel.hwh")
    with pytest.raises(DeployError, match="accel.hwh: no segment of part_1_body at 0xa0030000 \\(writer"):
        load_package(root)
    (root / "accel.hwh").write_text(hwh)
    host = json.loads((root / "rolled" / "host.json").read_text())
    host["parts"][1]["out_shape"] = [1, 4, 4, 8]
    (root / "rolled" / "host.json").write_text(json.dumps(host))
    write_manifest(root, "accel.bit", "accel.hwh")
    with pytest.raises(DeployError, match="the last part's output \\[1, 4, 4, 8\\] is not the accelerator's"):
        load_package(root)
