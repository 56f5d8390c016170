"""TCL for the Vivado project of a rolled build (docs/rolled_stage.md): the Zynq PS, each part as a module reference
of its generated wrapper (``samfpga.hw.rolled.part_hdl``), the control interconnect carrying every part's AXI-Lite
slaves at the addresses of ``rolled/host.json`` (``samfpga.hw.rolled.board``), the parts' AXI4 masters spread over
the PS's high-performance ports, clock, reset, bitstream and hwh.

Generated from host.json, so the bitfile's address map is the one the driver (``samfpga.backends.rolled_driver``)
uses; ``tests/test_rolled.py`` checks that they agree. Not run here (no Vivado): what the script assumes of Vivado
is stated where it is used.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from samfpga.hw.boards import BOARDS
from samfpga.hw.rolled.board import masters, slaves
from samfpga.hw.vivado.tcl import CTRL_MAX, SHELLS, implement_lines, ps_lines

#: a SmartConnect's slave (and master) ports
SMARTCONNECT_PORTS = 16

#: per PS: its high-performance slave ports for PL masters (port, the PS option enabling it, its clock pin)
HP_PORTS = {
    "xilinx.com:ip:zynq_ultra_ps_e:*": [(f"S_AXI_HP{i}_FPD", f"PSU__USE__S_AXI_GP{i + 2}", f"saxihp{i}_fpd_aclk")
                                        for i in range(4)],
    "xilinx.com:ip:processing_system7:*": [(f"S_AXI_HP{i}", f"PCW_USE_S_AXI_HP{i}", f"S_AXI_HP{i}_ACLK")
                                           for i in range(4)],
}


#: where the design's HDL names its memory init files (one line: a folder); ``RELOCATE_TCL`` keeps it current
PINNED_FILE = "pinned.txt"
#: the design folder's script holding ``RELOCATE_TCL``
RELOCATE_FILE = "relocate.tcl"

#: re-pins the HDL's memory init files to where the design folder is now (a build made here and run through Vivado
#: on another machine, or a build folder moved); project.tcl sources it first. Each file is replaced whole (written
#: beside it, then renamed), and the folder the HDL names is recorded after every file is done, so an interrupted
#: run is finished by the next one.
RELOCATE_TCL = f"""# samfpga: re-pin the memory init files that the HDL in hdl/ names by absolute path (Vivado's synthesis resolves a
# relative $readmemh path against its run directory) to where this folder is now; {PINNED_FILE} holds the folder they
# name. Sourced by project.tcl; tclsh {RELOCATE_FILE} runs it alone.
set here [file dirname [file normalize [info script]]]
set hdl [file join $here hdl]
set fh [open [file join $here {PINNED_FILE}] r]
set pinned [string trim [read $fh]]
close $fh
if {{$pinned ne $hdl}} {{
    foreach f [lsort [glob -nocomplain -directory $hdl *.v *.sv *.vh *.svh]] {{
        set fh [open $f r]
        fconfigure $fh -translation binary
        set text [read $fh]
        close $fh
        set new [string map [list "\\"$pinned/" "\\"$hdl/"] $text]
        if {{$new ne $text}} {{
            set fh [open $f.relocating w]
            fconfigure $fh -translation binary
            puts -nonewline $fh $new
            close $fh
            file rename -force $f.relocating $f
        }}
    }}
    set fh [open [file join $here {PINNED_FILE}.relocating] w]
    puts $fh $hdl
    close $fh
    file rename -force [file join $here {PINNED_FILE}.relocating] [file join $here {PINNED_FILE}]
}}
"""

#: the first lines of a design's project.tcl: the design folder from the script's own path, the HDL re-pinned there
RELOCATABLE_PRELUDE = ("set here [file dirname [file normalize [info script]]]",
                       f"source [file join $here {RELOCATE_FILE}]")


def project_tcl(host: dict, hdl_dir: str, sources: list[str], out_dir: str = "vivado_proj",
                name: str = "rolled", prelude: Sequence[str] = ()) -> str:
    """The Vivado batch script for the rolled build described by ``host`` (host.json with its address map):
    ``sources`` (file names in ``hdl_dir``, compile order) hold every part's wrapper module ``host``'s ``cell``.
    Writes ``<out_dir>/<name>.bit`` and ``<out_dir>/<name>.hwh``. ``hdl_dir`` and ``out_dir`` are substituted by
    TCL (``$hdl`` works after a ``prelude`` that sets it). Raises ``ValueError`` for a board without a shell, more
    AXI-Lite slaves than one interconnect takes or more masters than four SmartConnects on the four HP ports take."""
    board = BOARDS[host["board"]]
    if board.name not in SHELLS:
        raise ValueError(f"no Vivado shell for board {board.name} (have: {', '.join(SHELLS)})")
    sh = SHELLS[board.name]
    hp = HP_PORTS[sh.ps_vlnv]
    sl, ms = slaves(host), masters(host)
    groups = -(-len(ms) // SMARTCONNECT_PORTS)
    if groups > len(hp):
        raise ValueError(f"{len(ms)} AXI4 masters: more than {len(hp)} SmartConnects of {SMARTCONNECT_PORTS} take")
    if len(sl) > CTRL_MAX:
        raise ValueError(f"{len(sl)} AXI-Lite slaves: more than one control interconnect takes ({CTRL_MAX})")
    # round robin, so that a part's reader and writer use different HP ports (and DDR paths)
    per_group = [ms[g::groups] for g in range(groups)]
    ctrl_ip = "xilinx.com:ip:smartconnect:1.0" if len(sl) <= SMARTCONNECT_PORTS else "xilinx.com:ip:axi_interconnect:2.1"
    mhz = host["fclk_mhz"]
    ps_cfg = sh.ps_config.format(mhz=f"{mhz:g}")
    ps_cfg += "".join(f" CONFIG.{opt} {{1}}" for _, opt, _ in hp[:groups] if f"CONFIG.{opt} " not in ps_cfg)
    files = " ".join(f'"{hdl_dir}/{s}"' for s in sources)
    lines = [
        f"# samfpga: Vivado project of a rolled build for {board.name} ({board.part}), PL clock {mhz:g} MHz",
        "# generated by samfpga.hw.vivado.rolled from rolled/host.json; run: vivado -mode batch -source THIS",
        *prelude,
        f'create_project samfpga_rolled_{board.name} "{out_dir}" -part {board.part} -force',
        f"set_property board_part {sh.board_part} [current_project]",
        f"add_files -norecurse [list {files}]",
        "update_compile_order -fileset sources_1",
        *ps_lines(sh, ps_cfg),
        f"create_bd_cell -type ip -vlnv {ctrl_ip} axi_ctrl",
        f"set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{{len(sl)}}}] [get_bd_cells axi_ctrl]",
        f"connect_bd_intf_net [get_bd_intf_pins zynq_ps/{sh.ctrl_master}] [get_bd_intf_pins axi_ctrl/S00_AXI]",
    ]
    for g, group in enumerate(per_group):
        lines += [f"create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 axi_mem{g}",
                  f"set_property -dict [list CONFIG.NUM_SI {{{len(group)}}} CONFIG.NUM_MI {{1}}] "
                  f"[get_bd_cells axi_mem{g}]",
                  f"connect_bd_intf_net [get_bd_intf_pins axi_mem{g}/M00_AXI] [get_bd_intf_pins zynq_ps/{hp[g][0]}]"]
    cell = {p["name"]: p["cell"] for p in host["parts"]}
    # module references of the parts' Verilog wrappers: Vivado infers each AXI interface from the <prefix>_<signal>
    # port names, and the wrapper's attributes tie the clock to them and make the reset active high
    lines += [f"create_bd_cell -type module -reference {c} {c}" for c in cell.values()]
    for i, (part, port, _, _) in enumerate(sl):
        lines.append(f"connect_bd_intf_net [get_bd_intf_pins axi_ctrl/M{i:02d}_AXI] "
                     f"[get_bd_intf_pins {cell[part]}/{port}]")
    for g, group in enumerate(per_group):
        for i, (part, port) in enumerate(group):
            lines.append(f"connect_bd_intf_net [get_bd_intf_pins {cell[part]}/{port}] "
                         f"[get_bd_intf_pins axi_mem{g}/S{i:02d}_AXI]")
    lines += [
        "foreach p [get_bd_pins -of_objects [get_bd_cells -filter {VLNV !~ *zynq* && VLNV !~ *proc_sys_reset*}]"
        " -filter {TYPE == clk}] { connect_bd_net [get_bd_pins zynq_ps/" + sh.clk_pin + "] $p }",
        *(f"connect_bd_net [get_bd_pins rst_ps/peripheral_reset] [get_bd_pins {c}/rst]" for c in cell.values()),
        "foreach p [get_bd_pins -of_objects [get_bd_cells -filter {VLNV !~ *zynq* && VLNV !~ *proc_sys_reset* && "
        "NAME !~ part_*}] -filter {TYPE == rst}] { connect_bd_net [get_bd_pins rst_ps/peripheral_aresetn] $p }",
    ]
    ps_clocks = ["maxihpm0_fpd_aclk"] if board.family == "zynq_us+" else ["M_AXI_GP0_ACLK"]
    lines.append(f"connect_bd_net [get_bd_pins zynq_ps/{sh.clk_pin}] "
                 + " ".join(f"[get_bd_pins zynq_ps/{p}]" for p in ps_clocks + [c for _, _, c in hp[:groups]]))
    for part, port, addr, rng in sl:
        lines.append(f"assign_bd_address -target_address_space /zynq_ps/{sh.addr_space} -offset {addr:#010x} "
                     f"-range {rng // 1024}K [get_bd_addr_segs -of_objects [get_bd_intf_pins {cell[part]}/{port}]]")
    # implement_lines' assign_bd_address gives the masters their views of DDR through their HP port
    lines += implement_lines(out_dir, f"samfpga_rolled_{board.name}", name)
    return "\n".join(lines)


def run_vivado(script: Path, dest: Path, name: str = "rolled") -> Path:
    """Run Vivado in batch mode on ``script`` (``project_tcl``'s, with ``out_dir`` ``<script's folder>/proj``) and
    copy ``<name>.bit`` and ``<name>.hwh`` to ``dest``; returns the bitfile. Raises ``RuntimeError`` naming the log
    when Vivado fails or ``vivado`` is not on PATH."""
    vivado = shutil.which("vivado")
    if vivado is None:
        raise RuntimeError("vivado is not on PATH (source Vivado's settings64.sh first)")
    log = script.parent / "vivado.log"
    with open(log, "w") as f:
        rc = subprocess.call([vivado, "-mode", "batch", "-source", str(script)], cwd=script.parent, stdout=f,
                             stderr=subprocess.STDOUT)
    proj = script.parent / "proj"
    if rc != 0 or not (proj / f"{name}.bit").is_file():
        raise RuntimeError(f"Vivado failed on {script} (exit {rc}; log {log})")
    for ext in ("bit", "hwh"):
        shutil.copyfile(proj / f"{name}.{ext}", dest / f"{name}.{ext}")
    return dest / f"{name}.bit"
