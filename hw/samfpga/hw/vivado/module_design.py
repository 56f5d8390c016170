"""TCL for a Vivado project whose accelerator is the project's own HDL, added to the block design as module
references (no packaged IP): the Zynq PS, one cell per wrapper module, a control interconnect carrying the cells'
AXI-Lite slaves at given addresses, the cells' AXI4 masters in groups, one SmartConnect and one high-performance PS
port per group, clock, reset, bitstream and hwh. The rolled build's parts (``samfpga.hw.vivado.rolled``) and the
layer-sequential engine (``samfpga.hw.vivado.engine``) are such designs.

Also here: the re-pinning of the HDL's memory init files when the design folder moves (``RELOCATE_TCL``).
Not run here (no Vivado): what the script assumes of Vivado is stated where it is used.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samfpga.hw.boards import BOARDS
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


def wrapper_text(cell: str, inner: str, ports: list[tuple[str, str, str]], interfaces: list[str],
                 params: dict[str, str] | None = None, note: str = "") -> str:
    """Verilog-2001 module ``cell`` around module ``inner`` (a block design's module reference: Vivado takes no
    SystemVerilog module there) with ``ports`` ((direction, name, range) of ``inner``, numeric ranges), ``inner``'s
    parameters ``params`` (Verilog literals), the clock ``clk`` associated with ``interfaces`` and the reset
    ``rst``, active high. ``note``: the first line's comment."""
    decl = []
    for d, n, r in ports:
        attrs = ""
        if n == "clk":
            attrs = ('  (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 clk CLK" *)\n'
                     f'  (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF {":".join(interfaces)}, '
                     'ASSOCIATED_RESET rst" *)\n')
        elif n == "rst":
            attrs = ('  (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 rst RST" *)\n'
                     '  (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_HIGH" *)\n')
        decl.append(f"{attrs}  {d} wire {r + ' ' if r else ''}{n}")
    conn = ",\n".join(f"    .{n}({n})" for _, n, _ in ports)
    plist = " #(\n" + ",\n".join(f"    .{k}({v})" for k, v in params.items()) + "\n  )" if params else ""
    return (f"// {note or 'generated by samfpga.hw.vivado.module_design'}: {cell} for a block design's module "
            f"reference\nmodule {cell} (\n" + ",\n".join(decl) + "\n);\n"
            f"  {inner}{plist} {'core' if params else 'top'} (\n{conn}\n  );\nendmodule\n")


def lint(hdl: Path, sources: list[str], cells: list[str], log: Path, what: str) -> None:
    """Verilator lint of ``cells`` with every source in ``hdl`` at once (a top instantiating each cell), so a module
    declared twice (MODDUP made an error), a missing port, module or parameter, or a width that does not elaborate
    fails; ``RuntimeError`` naming ``what`` with the log's tail (also written to ``log``)."""
    from samfpga.hw.sim.toolchain import setup_verilator_env

    setup_verilator_env()
    hdl = Path(hdl).resolve()  # Verilator runs in hdl: relative sources would not be found from there
    top = hdl.parent / "lint_top.sv"
    top.write_text("module samfpga_lint_top;\n" + "".join(f"  {c} u_{c} ();\n" for c in cells) + "endmodule\n")
    cmd = ["verilator", "--lint-only", "-Wall", "-Wno-fatal", "-Werror-MODDUP", "-Wno-lint", "-Wno-style",
           "-Wno-WIDTH", "-Wno-PINMISSING", "-Wno-MULTIDRIVEN", "-Wno-SELRANGE", "-Wno-INITIALDLY", "--top-module",
           "samfpga_lint_top", *(str(hdl / s) for s in sources), str(top)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=hdl)
    log.write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise RuntimeError(f"Verilator lint of {what} failed ({log}):\n{(run.stdout + run.stderr)[-3000:]}")


@dataclass(frozen=True)
class ModuleDesign:
    """A block design of module references: ``cells`` (each a Verilog wrapper module, instantiated once as a cell
    of its own name, with ports ``clk`` and ``rst`` (active high) and AXI interfaces Vivado infers from
    ``<prefix>_<signal>`` port names), ``slaves`` (cell, AXI-Lite port, address, range in bytes) and ``masters``:
    groups of (cell, AXI4 master port), each group on its own SmartConnect and high-performance PS port."""

    board: str
    fclk_mhz: float
    project: str
    cells: tuple[str, ...]
    slaves: tuple[tuple[str, str, int, int], ...]
    masters: tuple[tuple[tuple[str, str], ...], ...]


def spread(masters: Sequence[tuple[str, str]], ports: int = 4) -> tuple[tuple[tuple[str, str], ...], ...]:
    """``masters`` in the fewest groups of at most ``SMARTCONNECT_PORTS``, dealt round robin (so that consecutive
    masters, a part's reader and writer, use different HP ports and DDR paths); ``ValueError`` when more than
    ``ports`` groups would be needed."""
    groups = -(-len(masters) // SMARTCONNECT_PORTS)
    if groups > ports:
        raise ValueError(f"{len(masters)} AXI4 masters: more than {ports} SmartConnects of {SMARTCONNECT_PORTS} take")
    return tuple(tuple(masters[g::groups]) for g in range(groups))


def project_tcl(design: ModuleDesign, hdl_dir: str, sources: list[str], out_dir: str = "vivado_proj",
                name: str = "design", prelude: Sequence[str] = ()) -> str:
    """The Vivado batch script for ``design``; ``sources`` (file names in ``hdl_dir``, compile order) hold every
    cell's module. Writes ``<out_dir>/<name>.bit`` and ``<out_dir>/<name>.hwh``. ``hdl_dir`` and ``out_dir`` are
    substituted by TCL (``$hdl`` works after a ``prelude`` that sets it). Raises ``ValueError`` for a board without a
    shell, more AXI-Lite slaves than one interconnect takes, more master groups than the PS has HP ports or a group
    larger than a SmartConnect takes."""
    board = BOARDS[design.board]
    if board.name not in SHELLS:
        raise ValueError(f"no Vivado shell for board {board.name} (have: {', '.join(SHELLS)})")
    sh = SHELLS[board.name]
    hp = HP_PORTS[sh.ps_vlnv]
    sl, groups = sorted(design.slaves, key=lambda s: s[2]), design.masters
    if len(groups) > len(hp):
        raise ValueError(f"{len(groups)} groups of AXI4 masters: more than the PS's {len(hp)} HP ports")
    big = [len(g) for g in groups if len(g) > SMARTCONNECT_PORTS]
    if big:
        raise ValueError(f"a group of {big[0]} AXI4 masters: more than a SmartConnect's {SMARTCONNECT_PORTS} ports")
    if len(sl) > CTRL_MAX:
        raise ValueError(f"{len(sl)} AXI-Lite slaves: more than one control interconnect takes ({CTRL_MAX})")
    ctrl_ip = "xilinx.com:ip:smartconnect:1.0" if len(sl) <= SMARTCONNECT_PORTS else "xilinx.com:ip:axi_interconnect:2.1"
    mhz = design.fclk_mhz
    ps_cfg = sh.ps_config.format(mhz=f"{mhz:g}")
    ps_cfg += "".join(f" CONFIG.{opt} {{1}}" for _, opt, _ in hp[:len(groups)] if f"CONFIG.{opt} " not in ps_cfg)
    files = " ".join(f'"{hdl_dir}/{s}"' for s in sources)
    lines = [
        f"# samfpga: Vivado project {design.project} for {board.name} ({board.part}), PL clock {mhz:g} MHz",
        "# generated by samfpga.hw.vivado.module_design; run: vivado -mode batch -source THIS",
        *prelude,
        f'create_project {design.project} "{out_dir}" -part {board.part} -force',
        f"set_property board_part {sh.board_part} [current_project]",
        f"add_files -norecurse [list {files}]",
        "update_compile_order -fileset sources_1",
        *ps_lines(sh, ps_cfg),
        f"create_bd_cell -type ip -vlnv {ctrl_ip} axi_ctrl",
        f"set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{{len(sl)}}}] [get_bd_cells axi_ctrl]",
        f"connect_bd_intf_net [get_bd_intf_pins zynq_ps/{sh.ctrl_master}] [get_bd_intf_pins axi_ctrl/S00_AXI]",
    ]
    for g, group in enumerate(groups):
        lines += [f"create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 axi_mem{g}",
                  f"set_property -dict [list CONFIG.NUM_SI {{{len(group)}}} CONFIG.NUM_MI {{1}}] "
                  f"[get_bd_cells axi_mem{g}]",
                  f"connect_bd_intf_net [get_bd_intf_pins axi_mem{g}/M00_AXI] [get_bd_intf_pins zynq_ps/{hp[g][0]}]"]
    # module references of the Verilog wrappers: Vivado infers each AXI interface from the <prefix>_<signal> port
    # names, and the wrapper's attributes tie the clock to them and make the reset active high
    lines += [f"create_bd_cell -type module -reference {c} {c}" for c in design.cells]
    for i, (cell, port, _, _) in enumerate(sl):
        lines.append(f"connect_bd_intf_net [get_bd_intf_pins axi_ctrl/M{i:02d}_AXI] [get_bd_intf_pins {cell}/{port}]")
    for g, group in enumerate(groups):
        for i, (cell, port) in enumerate(group):
            lines.append(f"connect_bd_intf_net [get_bd_intf_pins {cell}/{port}] "
                         f"[get_bd_intf_pins axi_mem{g}/S{i:02d}_AXI]")
    # a module reference's VLNV is xilinx.com:module_ref:<module>:1.0: its reset is the active-high one
    lines += [
        "foreach p [get_bd_pins -of_objects [get_bd_cells -filter {VLNV !~ *zynq* && VLNV !~ *proc_sys_reset*}]"
        " -filter {TYPE == clk}] { connect_bd_net [get_bd_pins zynq_ps/" + sh.clk_pin + "] $p }",
        *(f"connect_bd_net [get_bd_pins rst_ps/peripheral_reset] [get_bd_pins {c}/rst]" for c in design.cells),
        "foreach p [get_bd_pins -of_objects [get_bd_cells -filter {VLNV !~ *zynq* && VLNV !~ *proc_sys_reset* && "
        "VLNV !~ *module_ref*}] -filter {TYPE == rst}] { connect_bd_net [get_bd_pins rst_ps/peripheral_aresetn] $p }",
    ]
    ps_clocks = ["maxihpm0_fpd_aclk"] if board.family == "zynq_us+" else ["M_AXI_GP0_ACLK"]
    lines.append(f"connect_bd_net [get_bd_pins zynq_ps/{sh.clk_pin}] "
                 + " ".join(f"[get_bd_pins zynq_ps/{p}]" for p in ps_clocks + [c for _, _, c in hp[:len(groups)]]))
    for cell, port, addr, rng in sl:
        lines.append(f"assign_bd_address -target_address_space /zynq_ps/{sh.addr_space} -offset {addr:#010x} "
                     f"-range {rng // 1024}K [get_bd_addr_segs -of_objects [get_bd_intf_pins {cell}/{port}]]")
    # implement_lines' assign_bd_address gives the masters their views of DDR through their HP port
    lines += implement_lines(out_dir, design.project, name)
    return "\n".join(lines)


def run_vivado(script: Path, dest: Path, name: str = "design") -> Path:
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
