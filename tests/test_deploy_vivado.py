"""Vivado project TCL (hw/samfpga/hw/vivado): part, PL clock, DMA cell names and address map agree with the driver
description for KV260, ZCU104 and PYNQ-Z2; ``make bitstream`` and the module stop with a clear message without
Vivado (no Vivado here: the TCL itself is not run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from samfpga.hw.boards import BOARDS  # noqa: E402
from samfpga.hw.build.package import DMA_RANGE, PL_BASE  # noqa: E402
from samfpga.hw.vivado import project_tcl  # noqa: E402
from tests.support.synthetic_package import driver_spec

ROOT = Path(__file__).resolve().parents[1]


def _driver(board: str) -> dict:
    b = BOARDS[board]
    d = driver_spec()
    base = PL_BASE[b.family]
    d.update(board=b.name, part=b.part, family=b.family, fclk_mhz=b.clock_mhz)
    d["dma"] = {"idma0": {"base": base, "range": DMA_RANGE, "direction": "mm2s"},
                "odma0": {"base": base + DMA_RANGE, "range": DMA_RANGE, "direction": "s2mm"}}
    return d


@pytest.mark.parametrize("board, ps, clock_key", [
    ("kv260", "zynq_ultra_ps_e", "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {200}"),
    ("zcu104", "zynq_ultra_ps_e", "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {200}"),
    ("pynq-z2", "processing_system7", "PCW_FPGA0_PERIPHERAL_FREQMHZ {100}"),
])
def test_tcl_agrees_with_driver(board, ps, clock_key) -> None:
    drv = _driver(board)
    tcl = project_tcl(drv, "/ip")
    assert f"-part {BOARDS[board].part} " in tcl and f"xilinx.com:ip:{ps}:*" in tcl and clock_key in tcl
    cells = re.findall(r"create_bd_cell -type ip -vlnv \S+ (\S+)", tcl)
    assert {"idma0", "odma0", drv["accelerator"]["name"]} <= set(cells)
    addr = {name: (int(off, 16), int(kib) * 1024) for off, kib, name in
            re.findall(r"-offset (0x[0-9a-f]+) -range (\d+)K \[get_bd_addr_segs (\w+)/", tcl)}
    assert addr == {n: (d["base"], d["range"]) for n, d in drv["dma"].items()}
    # the input DMA feeds the accelerator, the accelerator feeds the output DMA
    acc = drv["accelerator"]["name"]
    assert f"idma0/out0_V] [get_bd_intf_pins {acc}/s_axis_0]" in tcl
    assert f"{acc}/m_axis_0] [get_bd_intf_pins odma0/in0_V]" in tcl
    assert "write_bitstream" in tcl and "accel.hwh" in tcl and "accel.bit" in tcl


def test_tcl_refuses_board_without_shell() -> None:
    d = _driver("kv260")
    d["board"] = "vck190"
    with pytest.raises(ValueError, match="no Vivado shell for board vck190"):
        project_tcl(d, "/ip")


def _no_vivado_env() -> dict:
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if not (Path(p) / "vivado").exists())
    return dict(os.environ, PATH=path)


def test_make_bitstream_without_vivado() -> None:
    r = subprocess.run(["make", "-s", "bitstream", "BOARD=kv260"], cwd=ROOT, capture_output=True, text=True,
                       env=_no_vivado_env(), timeout=60)
    assert r.returncode != 0
    assert "make bitstream: vivado is not on PATH" in r.stderr


def test_module_without_vivado(tmp_path) -> None:
    from samfpga.hw.vivado.__main__ import main

    r = subprocess.run([sys.executable, "-m", "samfpga.hw.vivado", "--build", str(tmp_path), "--out",
                        str(tmp_path / "v")], capture_output=True, text=True, env=_no_vivado_env(), timeout=120)
    assert r.returncode == 2 and "vivado is not on PATH" in r.stderr, r.stderr
    assert main(["--build", str(tmp_path / "none"), "--out", str(tmp_path / "v"), "--tcl-only"]) == 2


def test_tcl_connects_token_batched_units() -> None:
    """A driver description with token-batched units (tests/runtime/data/tiny_token_batch): each unit's register
    block on the control interconnect at its driver.json address, its weight reads on the memory interconnect,
    through the stitched IP's ports as FINN names them; the interconnects grow by one port per unit."""
    import json

    drv = json.loads((ROOT / "tests" / "runtime" / "data" / "tiny_token_batch" / "driver.json").read_text())
    tcl = project_tcl(drv, "/ip")
    acc = drv["accelerator"]["name"]
    units = drv["token_batch"]["units"]
    assert "CONFIG.NUM_MI {4}] [get_bd_cells axi_ctrl]" in tcl and "CONFIG.NUM_SI {4} CONFIG.NUM_MI {1}]" in tcl
    for k, u in enumerate(units):
        assert f"axi_ctrl/M{2 + k:02d}_AXI] [get_bd_intf_pins {acc}/{u['axilite_port']}]" in tcl
        assert f"{acc}/{u['aximm_port']}] [get_bd_intf_pins axi_mem/S{2 + k:02d}_AXI]" in tcl
        assert f"-offset {u['regs']:#010x} -range {u['range'] // 1024}K [get_bd_addr_segs {acc}/{u['axilite_port']}/Reg]" in tcl
    assert [u["axilite_port"] for u in units] == ["s_axi_control_0", "s_axi_control_1"]
