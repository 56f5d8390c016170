"""The Vivado design of a rolled build, piece by piece on synthetic inputs (no FINN build; Verilator for the lint):
the address map (samfpga.hw.rolled.board), the project script (samfpga.hw.vivado.rolled) for a design the size of
the bundled default's (30 AXI-Lite slaves, 19 masters) and for PYNQ-Z2's PS, the part wrapper and the lint
(samfpga.hw.rolled.part_hdl), and the memory init files pinned to the design's folder. The whole chain on the
reduced encoder's rolled build: tests/test_rolled.py::test_rolled_build_generates_each_parts_hdl."""

from __future__ import annotations

import re

import pytest

from samfpga.hw.build.package import DMA_RANGE, PL_BASE
from samfpga.hw.rolled.board import assign_addresses, masters, slaves
from samfpga.hw.rolled.part_hdl import lint, pin_memory_files, wrapper_text
from samfpga.hw.vivado.rolled import project_tcl


def _host(board: str = "kv260", family: str = "zynq_us+", units=(0, 0, 0, 1, 0, 4, 0),
          uram=(0, 1, 0, 0, 2, 0, 8)) -> dict:
    """A host.json the shape of the bundled default's rolled build: 7 parts, 5 token-batched units, 11 URAM layers."""
    parts = []
    for j, (nu, nr) in enumerate(zip(units, uram)):
        name = f"{j}_{'body' if nu or j == 1 else 'once'}"
        parts.append({"name": name,
                      "token_batch": [{"name": f"TB_{j}_{k}", "axilite_port": f"part_{name}_TB{k}_s_axi_control",
                                       "aximm_port": f"part_{name}_TB{k}_m_axi_gmem"} for k in range(nu)],
                      "runtime_weights": [{"name": f"MVAU_{j}_{k}", "words": 4096 * (k + 1)} for k in range(nr)]})
    return assign_addresses({"board": board, "fclk_mhz": 200.0, "parts": parts}, family)


def test_address_map_aligns_every_slave_without_overlap():
    host = _host()
    sl = slaves(host)
    assert len(sl) == 7 * 2 + 5 + 11 == 30 and len(masters(host)) == 7 * 2 + 5 == 19
    assert sl[0][2] == PL_BASE["zynq_us+"] and all(a % r == 0 for _, _, a, r in sl)
    assert all(a + r <= b for (_, _, a, r), (_, _, b, _) in zip(sl, sl[1:]))
    rw = host["parts"][6]["runtime_weights"]
    assert [e["range"] for e in rw[:3]] == [0x4000, 0x8000, 0x10000]  # 4 bytes per word, a power of two
    assert host["parts"][0]["reader"]["range"] == DMA_RANGE and host["parts"][0]["cell"] == "part_0_once"
    with pytest.raises(ValueError, match="no PL address base for the board family 'versal'"):
        assign_addresses({"parts": []}, "versal")


@pytest.mark.parametrize("board, family, ps, hp", [("kv260", "zynq_us+", "zynq_ultra_ps_e", "S_AXI_HP{}_FPD"),
                                                   ("pynq-z2", "zynq7", "processing_system7", "S_AXI_HP{}")])
def test_project_script_agrees_with_the_address_map(board, family, ps, hp):
    host = _host(board, family)
    tcl = project_tcl(host, "/hdl", ["a.sv", "part_0_once.v"])
    assert f"xilinx.com:ip:{ps}:*" in tcl and '"/hdl/a.sv" "/hdl/part_0_once.v"' in tcl
    # 30 slaves: more than a SmartConnect's 16 master ports, so an AXI Interconnect
    assert "axi_interconnect:2.1 axi_ctrl" in tcl and "CONFIG.NUM_MI {30}] [get_bd_cells axi_ctrl]" in tcl
    segs = re.findall(r"-offset (0x[0-9a-f]+) -range (\d+)K \[get_bd_addr_segs -of_objects \[get_bd_intf_pins "
                      r"(\w+)/(\w+)\]\]", tcl)
    cells = {p["name"]: p["cell"] for p in host["parts"]}
    assert sorted((int(a, 16), int(k) * 1024, c, q) for a, k, c, q in segs) == \
        sorted((a, r, cells[p], q) for p, q, a, r in slaves(host))
    # 19 masters over two SmartConnects on two HP ports, a part's reader and writer on different ones
    mem = re.findall(r"\[get_bd_intf_pins (\w+)/(\w+)\] \[get_bd_intf_pins axi_mem(\d)/S(\d\d)_AXI\]", tcl)
    assert sorted((c, q) for c, q, _, _ in mem) == sorted((cells[p], q) for p, q in masters(host))
    port = {(c, q): g for c, q, g, _ in mem}
    assert all(port[(c, "m_axi_rd")] != port[(c, "m_axi_wr")] for c in cells.values())
    assert sorted(int(g) for g in set(port.values())) == [0, 1]
    for g in (0, 1):
        assert f"[get_bd_intf_pins axi_mem{g}/M00_AXI] [get_bd_intf_pins zynq_ps/{hp.format(g)}]" in tcl
    from samfpga.hw.vivado.module_design import HP_PORTS

    enable = [opt for _, opt, _ in HP_PORTS[f"xilinx.com:ip:{ps}:*"][:2]]
    assert all(tcl.count(f"CONFIG.{opt} {{1}}") == 1 for opt in enable), enable  # both HP ports on, once each
    assert all(f"[get_bd_pins rst_ps/peripheral_reset] [get_bd_pins {c}/rst]" in tcl for c in cells.values())


def test_project_script_refuses_what_the_shell_cannot_take():
    host = _host(units=(0, 0, 0, 26, 0, 25, 0))  # 65 masters: more than 4 SmartConnects of 16
    with pytest.raises(ValueError, match="65 AXI4 masters: more than 4 SmartConnects of 16"):
        project_tcl(host, "/hdl", [])
    host = _host(uram=(0, 0, 0, 0, 0, 0, 60))
    with pytest.raises(ValueError, match="79 AXI-Lite slaves: more than one control interconnect takes \\(64\\)"):
        project_tcl(host, "/hdl", [])
    with pytest.raises(ValueError, match="no Vivado shell for board vck190"):
        project_tcl({**_host(), "board": "vck190"}, "/hdl", [])


TOP = """module part_x_top (
  input logic clk,
  input logic rst,
  input logic [5:0] rd_s_axil_awaddr,
  output logic [31:0] rd_s_axil_rdata,
  output logic m_axi_rd_arvalid
);
  assign rd_s_axil_rdata = {26'd0, rd_s_axil_awaddr};
  assign m_axi_rd_arvalid = rst;
endmodule
"""


def test_wrapper_elaborates_and_lint_refuses_a_module_declared_twice(tmp_path):
    from samfpga.hw.sim.stitch import port_declarations

    hdl = tmp_path / "hdl"
    hdl.mkdir()
    (hdl / "part_x_top.sv").write_text(TOP)
    text = wrapper_text("part_x", port_declarations(TOP, "part_x_top"), ["rd_s_axil", "m_axi_rd"])
    assert 'ASSOCIATED_BUSIF rd_s_axil:m_axi_rd, ASSOCIATED_RESET rst' in text and "input wire [5:0] rd_s_axil_awaddr" in text
    (hdl / "part_x.v").write_text(text)
    lint(hdl, ["part_x_top.sv", "part_x.v"], ["part_x"], tmp_path / "lint.log")
    (hdl / "again.v").write_text(text)
    with pytest.raises(RuntimeError, match="Duplicate declaration of module: 'part_x'"):
        lint(hdl, ["part_x_top.sv", "part_x.v", "again.v"], ["part_x"], tmp_path / "lint.log")
    (hdl / "part_x.v").write_text(text.replace(".rd_s_axil_awaddr(", ".rd_s_axil_waddr("))
    with pytest.raises(RuntimeError, match="rd_s_axil_waddr"):
        lint(hdl, ["part_x_top.sv", "part_x.v"], ["part_x"], tmp_path / "lint.log")


def test_memory_files_pinned_to_the_design_folder(tmp_path):
    run, code, dest = tmp_path / "run", tmp_path / "code_MVAU_0", tmp_path / "dest"
    for d in (run, code, dest):
        d.mkdir()
    (code / "memblock.dat").write_text("01\n")
    (run / "p_Thr_0_threshs_0_0.dat").write_text("02\n")
    (run / "p_Thr_0_threshs_0_1.dat").write_text("03\n")
    (run / "other.dat").write_text("04\n")
    src = tmp_path / "a.v"
    src.write_text(f'parameter INIT_FILE = "{code}/memblock.dat";\nparameter THRESHOLDS_PATH = "./p_Thr_0_";\n'
                   '$readmemh($sformatf("%sthreshs_%0d_%0d.dat", THRESHOLDS_PATH, pe, stage), T);\n'
                   'initial $readmemh("other.dat", M);\n')
    names = pin_memory_files([src], run, dest)
    assert names == ["code_MVAU_0_memblock.dat", "other.dat", "p_Thr_0_threshs_0_0.dat", "p_Thr_0_threshs_0_1.dat"]
    text = src.read_text()
    assert f'INIT_FILE = "{dest}/code_MVAU_0_memblock.dat"' in text and f'THRESHOLDS_PATH = "{dest}/p_Thr_0_"' in text
    assert f'$readmemh("{dest}/other.dat", M)' in text and '"%sthreshs_%0d_%0d.dat"' in text
    assert (dest / "p_Thr_0_threshs_0_1.dat").read_text() == "03\n"
    src.write_text('initial $readmemh("gone.dat", M);\n')
    with pytest.raises(FileNotFoundError, match="memory init file gone.dat"):
        pin_memory_files([src], run, dest)


def test_design_relocates_its_memory_files_where_it_is_moved(tmp_path):
    """A design built here and run through Vivado elsewhere: relocate.tcl (project.tcl sources it first) re-pins the
    HDL's init files and init-file prefixes to the folder's new place, again after a second move and after a run
    interrupted half-way; a file naming no init file is left as it was."""
    import shutil
    import tkinter
    from pathlib import Path

    from samfpga.hw.vivado.module_design import PINNED_FILE, RELOCATE_TCL

    built, run = tmp_path / "build" / "rolled", tmp_path / "run"
    hdl = built / "hdl"
    for d in (hdl, run):
        d.mkdir(parents=True)
    (run / "m.dat").write_text("05\n")
    (run / "p_threshs_0_0.dat").write_text("06\n")
    (hdl / "a.v").write_text('initial $readmemh("m.dat", M);\nparameter THRESHOLDS_PATH = "./p_";\n')
    (hdl / "b.sv").write_text("module b; endmodule\n")
    pin_memory_files([hdl / "a.v"], run, hdl)
    (built / PINNED_FILE).write_text(f"{hdl.resolve()}\n")
    (built / "relocate.tcl").write_text(RELOCATE_TCL)

    def inits(folder):
        text = (folder / "hdl" / "a.v").read_text()
        return re.findall(r'"(/[^"\n]*\.dat)"', text) + re.findall(r'PATH = "(/[^"\n]*)"', text)

    def relocate(folder):
        tkinter.Tcl().eval(f"source {{{folder / 'relocate.tcl'}}}")

    assert [Path(m).parent for m in inits(built)] == [hdl.resolve()] * 2
    dest = tmp_path / "elsewhere" / "rolled"
    shutil.move(built, dest)
    assert not Path(inits(dest)[0]).exists()  # stale until relocated
    relocate(dest)
    assert [Path(m).parent for m in inits(dest)] == [(dest / "hdl").resolve()] * 2 and Path(inits(dest)[0]).is_file()
    assert (dest / PINNED_FILE).read_text().strip() == str((dest / "hdl").resolve())
    assert (dest / "hdl" / "b.sv").read_text() == "module b; endmodule\n"
    relocate(dest)  # nothing to do
    assert [Path(m).parent for m in inits(dest)] == [(dest / "hdl").resolve()] * 2
    again = tmp_path / "third"
    shutil.move(dest, again)
    (again / "hdl" / "c.v").write_text(f'initial $readmemh("{(dest / "hdl").resolve()}/m.dat", N);\n')
    text = (again / "hdl" / "a.v").read_text()  # interrupted: a.v already re-pinned, c.v and pinned.txt not
    (again / "hdl" / "a.v").write_text(text.replace(str((dest / "hdl").resolve()), str((again / "hdl").resolve())))
    relocate(again)
    assert [Path(m).parent for m in inits(again)] == [(again / "hdl").resolve()] * 2
    assert f'"{(again / "hdl").resolve()}/m.dat"' in (again / "hdl" / "c.v").read_text()
    assert not list(again.rglob("*.relocating"))
