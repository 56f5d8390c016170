"""The engine's host files (samfpga.hw.engine.host) and the host code that reads them (samfpga.backends.engine_host),
on the tiny build's program (tests/test_engine_program.py): the committed files (tests/runtime/data/tiny_engine, what
the board-environment tests load) are what the writer writes; the steps' registers are the path's with exactly the
DDR addresses relocated; the buffer the host prepares is the program's start image on every byte the program
reads before writing it, and the output it reads back from the program's end image is the integer graph's. That the
RTL, driven by this host code, leaves that output: tests/test_sim_engine_gemm_path.py (tolerance 0)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samfpga.backends.base import BackendError
from samfpga.backends.engine_host import load_regions, read_engine_host, read_output, relocated, write_input
from samfpga.hw.sim import engine_gemm_path as gp

DATA = Path(__file__).parent / "runtime" / "data" / "tiny_engine"


def test_committed_host_files_are_what_the_writer_writes(tmp_path):
    from tests.support.tiny_engine import write

    write(tmp_path)
    for f in ("host.json", "ddr.bin", "output_index.npy"):
        assert (tmp_path / f).read_bytes() == (DATA / f).read_bytes(), f
    a, b = np.load(tmp_path / "expected.npz"), np.load(DATA / "expected.npz")
    assert all(np.array_equal(a[k], b[k]) for k in ("x", "y"))


def test_steps_relocate_exactly_the_ddr_addresses():
    """Moving every region of the program's layout by D moves exactly the registers ``address_keys`` names, each by
    D: ``relocated(host, D)`` gives those registers (the others, and an address register a step leaves 0 because it
    does not use that reader, as they were)."""
    from tests.support.tiny_engine import files

    _, prog, spec, *_ = files()
    host = read_engine_host(DATA)
    cfg = gp.step_configs(prog)
    d = 0x4000_0000
    moved = gp.DdrLayout(cfg.layout.image_base + d, {k: v + d for k, v in cfg.layout.bases.items()}, cfg.layout.size)
    keys = set(spec["address_keys"])
    assert keys == {"rd_base", "wt_base", "wr_base", "rs_base", "pm_base"}
    used = set()
    for s, c, r in zip(gp.path_steps(prog), cfg.regs, relocated(host, d), strict=True):
        m = gp.step_config(prog, s, moved)
        diff = {k for k in c if m[k] != c[k]}
        assert diff <= keys and all(m[k] - c[k] == d for k in diff), s.name
        assert {k: v for k, v in r.items() if k not in keys or k in diff} == \
            {k: v for k, v in m.items() if k not in keys or k in diff}, s.name
        used |= diff
    assert used == keys
    assert relocated(host, 0) == cfg.regs


def test_the_host_buffer_is_the_programs_start_and_its_output_the_graphs():
    """The buffer the board's host prepares (zeros, host.json's regions, the input) equals the DDR image the path's
    tests start the program from (``ddr_images``) on every region and on the input; the rest is zero (the program
    reads some padding no step writes, e.g. a window step's padded channels). ``read_output`` of the image the
    program leaves is the integer graph's accelerator output."""
    from tests.support.tiny_engine import files
    from tests.test_engine_program import program_run

    g, prog, spec, *_ , x = files()
    _, _, mem = program_run(3)
    steps = gp.path_steps(prog)
    lay = gp.layout(prog, steps)
    img, want = gp.ddr_images(prog, mem, steps, lay)
    host = read_engine_host(DATA)
    buf = np.full(host.ddr_bytes, 0xA5, dtype=np.uint8)
    load_regions(buf, host)
    write_input(buf, host, x)
    start = np.frombuffer(bytes(img), dtype=np.uint8)
    covered = np.zeros(host.ddr_bytes, bool)
    for r in spec["regions"]:
        sl = slice(r["at"], r["at"] + r["bytes"])
        if r["name"].endswith(".vt"):  # AV's image: ddr_images' V^T rows are random (the V transpose writes them)
            continue
        assert np.array_equal(buf[sl], start[sl]), r["name"]
        covered[sl] = True
    (w,) = spec["input"]["writes"]
    n = int(np.prod(w["shape"][:2])) * w["pixel_bytes"]
    assert np.array_equal(buf[w["at"]:w["at"] + n], start[w["at"]:w["at"] + n])
    covered[w["at"]:w["at"] + n] = True
    assert not buf[~covered & ~_vt_mask(spec, host.ddr_bytes)].any()
    y = read_output(np.frombuffer(bytes(want), dtype=np.uint8), host)
    np.testing.assert_array_equal(y, g.run_accelerator(x))
    assert y.shape == tuple(g.shape(prog.output))


def _vt_mask(spec: dict, n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    for r in spec["regions"]:
        if r["name"].endswith(".vt"):
            m[r["at"]:r["at"] + r["bytes"]] = True
    return m


def test_bad_host_files_are_refused_naming_the_file(tmp_path):
    import shutil

    root = tmp_path / "h"
    shutil.copytree(DATA, root)
    (root / "ddr.bin").write_bytes((DATA / "ddr.bin").read_bytes()[:1000])
    with pytest.raises(BackendError, match=r"ddr.bin: 1,000 bytes, region weights needs 193,536 \(missing or truncated\)"):
        read_engine_host(root)
    shutil.copy(DATA / "ddr.bin", root / "ddr.bin")
    spec = json.loads((DATA / "host.json").read_text())
    spec["steps"][3]["regs"]["rd_count0"] = 1 << 16
    (root / "host.json").write_text(json.dumps(spec))
    with pytest.raises(BackendError, match=r"host.json: step 3 \(.*\): engine_gemm_path: rd_count0 = 65536 does "
                       "not fit 16 bits"):
        read_engine_host(root)
    spec = json.loads((DATA / "host.json").read_text())
    spec["version"] = 99
    (root / "host.json").write_text(json.dumps(spec))
    with pytest.raises(BackendError, match="version 99, this runtime reads 1"):
        read_engine_host(root)
    host = read_engine_host(DATA)
    buf = np.zeros(host.ddr_bytes, np.uint8)
    with pytest.raises(BackendError, match=r"engine input global_in: shape \(1, 64, 64\), the engine takes "
                       r"\(1, 64, 64, 3\)"):
        write_input(buf, host, np.zeros((1, 64, 64)))
    x = np.zeros((1, 64, 64, 3))
    x[0, 5, 7, 1] = 256
    with pytest.raises(BackendError, match=r"values \[0, 256\] outside UINT8 \[0, 255\]"):
        write_input(buf, host, x)
    assert not buf.any()  # nothing written by a refused input


def test_a_stored_input_is_written_as_the_program_stores_it():
    """A program whose first step reads its input as a stored tensor (not behind the image window) gets it in the
    program's stored format (``EngineProgram.stored``: little-endian bytes of the element width)."""
    from tests.support.tiny_engine import files

    _, prog, spec, *_, x = files()
    host = read_engine_host(DATA)
    host.spec = {**spec, "input": {**spec["input"], "writes": [{"at": 4096, "format": "stored", "elem_bytes": 1}]}}
    buf = np.zeros(host.ddr_bytes, np.uint8)
    write_input(buf, host, x)
    want = prog.stored(prog.input, np.asarray(x, np.int64).ravel())
    assert bytes(buf[4096:4096 + len(want)]) == want and not buf[4096 + len(want):].any() and not buf[:4096].any()


def test_a_count_wider_than_its_register_stops_the_host_files():
    """A step register whose value the hardware would cut (a token count past the engine's 20-bit counters, as vit_t's
    1024² stem had past 16 bits) stops the host files, naming the step and the register."""
    from samfpga.hw.engine.design import CELL, REGS_RANGE
    from samfpga.hw.engine.host import host_files
    from tests.support.tiny_engine import files

    g, prog, *_ = files()
    cfg = gp.step_configs(prog)
    cfg.regs[2] = {**cfg.regs[2], "wt_tokens": 1 << 20}
    with pytest.raises(ValueError, match=rf"step {prog.steps[2].name} \({prog.steps[2].kind}\): engine_gemm_path: "
                       r"wt_tokens = 1048576 does not fit 20 bits"):
        host_files(prog, g, CELL, 0xA000_0000, REGS_RANGE, 32, configs=cfg)
