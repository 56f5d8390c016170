"""TCL for the Vivado project of a board: Zynq PS, FINN's stitched accelerator IP, the two IODMAs, clock,
address map, bitstream and hwh export. Generated from the package's driver description, so the bitfile and
hwh carry the DMA names and addresses the driver uses (``tests/test_deploy_vivado.py`` checks that they agree).

Follows the structure of FINN's ``MakeZYNQProject`` (finn.transformation.fpgadataflow.make_zynq_proj): the PS
with one general-purpose AXI master (control) and one high-performance slave port (DMA data), an AXI
SmartConnect for each, the PL clock from the PS at the build's clock, a processor-system reset.
"""

from __future__ import annotations

from dataclasses import dataclass

from samfpga.hw.boards import BOARDS


@dataclass(frozen=True)
class VivadoShell:
    """Board-specific parts of the block design."""

    board_part: str
    ps_vlnv: str
    ps_rule: str
    ps_config: str  # format field {mhz}: PL clock
    ctrl_master: str  # PS AXI master for the DMAs' AXI-Lite control ports
    data_slave: str  # PS AXI slave the DMAs' memory ports write/read DDR through
    clk_pin: str
    rst_pin: str
    addr_space: str


_US = dict(ps_vlnv="xilinx.com:ip:zynq_ultra_ps_e:*", ps_rule="xilinx.com:bd_rule:zynq_ultra_ps_e",
           ps_config="CONFIG.PSU__USE__M_AXI_GP0 {{1}} CONFIG.PSU__USE__M_AXI_GP1 {{0}} CONFIG.PSU__USE__S_AXI_GP2 {{1}} "
                     "CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {{{mhz}}}",
           ctrl_master="M_AXI_HPM0_FPD", data_slave="S_AXI_HP0_FPD", clk_pin="pl_clk0", rst_pin="pl_resetn0",
           addr_space="Data")
SHELLS: dict[str, VivadoShell] = {
    "kv260": VivadoShell(board_part="xilinx.com:kv260_som:part0:1.4", **_US),
    "zcu104": VivadoShell(board_part="xilinx.com:zcu104:part0:1.1", **_US),
    "zcu102": VivadoShell(board_part="xilinx.com:zcu102:part0:3.4", **_US),
    "pynq-z2": VivadoShell(board_part="tul.com.tw:pynq-z2:part0:1.0", ps_vlnv="xilinx.com:ip:processing_system7:*",
                           ps_rule="xilinx.com:bd_rule:processing_system7",
                           ps_config="CONFIG.PCW_USE_M_AXI_GP0 {{1}} CONFIG.PCW_USE_S_AXI_HP0 {{1}} "
                                     "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {{{mhz}}}",
                           ctrl_master="M_AXI_GP0", data_slave="S_AXI_HP0", clk_pin="FCLK_CLK0",
                           rst_pin="FCLK_RESET0_N", addr_space="Data"),
}

ACCEL_VLNV = "xilinx_finn:finn:finn_design:1.0"  # FINN's stitched-IP packaging
CTRL_MAX = 64  # master ports of one AXI Interconnect (the control interconnect when a SmartConnect's 16 are too few)
IODMA_VLNV = {"mm2s": "xilinx.com:hls:IODMA_hls_0:1.0", "s2mm": "xilinx.com:hls:IODMA_hls_1:1.0"}


def ps_lines(sh: VivadoShell, ps_config: str) -> list[str]:
    """A new block design with the PS (its board preset, then ``ps_config``) and the processor-system reset on the
    PS's PL clock and reset."""
    return [
        'create_bd_design "top"',
        f"create_bd_cell -type ip -vlnv {sh.ps_vlnv} zynq_ps",
        f'apply_bd_automation -rule {sh.ps_rule} -config {{apply_board_preset "1"}} [get_bd_cells zynq_ps]',
        f"set_property -dict [list {ps_config}] [get_bd_cells zynq_ps]",
        "create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset:5.0 rst_ps",
        f"connect_bd_net [get_bd_pins zynq_ps/{sh.clk_pin}] [get_bd_pins rst_ps/slowest_sync_clk]",
        f"connect_bd_net [get_bd_pins zynq_ps/{sh.rst_pin}] [get_bd_pins rst_ps/ext_reset_in]",
    ]


def implement_lines(out_dir: str, project: str, name: str) -> list[str]:
    """The rest of the address map (``assign_bd_address``), validation, the HDL wrapper, implementation to a
    bitstream, and ``<out_dir>/<name>.bit`` / ``.hwh`` copied from project ``project``'s runs."""
    return [
        "assign_bd_address",
        "validate_bd_design",
        "save_bd_design",
        f"make_wrapper -files [get_files {out_dir}/{project}.srcs/sources_1/bd/top/top.bd] -top",
        f"add_files -norecurse {out_dir}/{project}.gen/sources_1/bd/top/hdl/top_wrapper.v",
        "set_property top top_wrapper [current_fileset]",
        "launch_runs impl_1 -to_step write_bitstream -jobs 2",
        "wait_on_run impl_1",
        'if {[get_property PROGRESS [get_runs impl_1]] != "100%"} { error "samfpga: implementation failed" }',
        f"file copy -force [glob {out_dir}/{project}.runs/impl_1/*.bit] {out_dir}/{name}.bit",
        f"file copy -force [glob {out_dir}/{project}.gen/sources_1/bd/top/hw_handoff/*.hwh] {out_dir}/{name}.hwh",
        "",
    ]


def project_tcl(driver: dict, ip_repo: str, out_dir: str = "vivado_proj", name: str = "accel") -> str:
    """The whole Vivado batch script for ``driver`` (a ``samfpga-driver`` dict): project, block design, address
    map, synthesis, implementation, ``<out_dir>/<name>.bit`` and ``<out_dir>/<name>.hwh``."""
    board = BOARDS[driver["board"]]
    # token-batched layers: each unit's register block on the control interconnect after the DMAs, its weight
    # reads on the memory interconnect (ports as FINN's stitched IP names them, driver.json)
    units = (driver.get("token_batch") or {}).get("units", [])
    # runtime-writeable layers (memories in URAM): their AXI-Lite on the control interconnect too
    rtw = driver.get("runtime_weights") or []
    n_ctrl = len(driver["dma"]) + len(units) + len(rtw)
    if n_ctrl > CTRL_MAX:
        raise ValueError(f"{n_ctrl} AXI-Lite slaves (DMAs, token-batched units, runtime-writeable layers): more "
                         f"than one control interconnect takes ({CTRL_MAX})")
    # a SmartConnect has at most 16 master ports; the AXI Interconnect up to 64
    ctrl_ip = "xilinx.com:ip:smartconnect:1.0" if n_ctrl <= 16 else "xilinx.com:ip:axi_interconnect:2.1"
    if board.name not in SHELLS:
        raise ValueError(f"no Vivado shell for board {board.name} (have: {', '.join(SHELLS)})")
    sh = SHELLS[board.name]
    mhz = driver["fclk_mhz"]
    lines = [
        f"# samfpga: Vivado project for {board.name} ({board.part}), PL clock {mhz:g} MHz",
        "# generated by samfpga.hw.vivado from the package's driver.json; run: vivado -mode batch -source THIS",
        f"create_project samfpga_{board.name} {out_dir} -part {board.part} -force",
        f"set_property board_part {sh.board_part} [current_project]",
        f"set_property ip_repo_paths [list {{{ip_repo}}}] [current_project]",
        "update_ip_catalog",
        *ps_lines(sh, sh.ps_config.format(mhz=f"{mhz:g}")),
        f"create_bd_cell -type ip -vlnv {ctrl_ip} axi_ctrl",
        "create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 axi_mem",
        f"set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{{n_ctrl}}}] "
        "[get_bd_cells axi_ctrl]",
        f"set_property -dict [list CONFIG.NUM_SI {{{len(driver['dma']) + len(units)}}} CONFIG.NUM_MI {{1}}] "
        "[get_bd_cells axi_mem]",
        f"create_bd_cell -type ip -vlnv {ACCEL_VLNV} {driver['accelerator']['name']}",
        f"connect_bd_intf_net [get_bd_intf_pins zynq_ps/{sh.ctrl_master}] [get_bd_intf_pins axi_ctrl/S00_AXI]",
        f"connect_bd_intf_net [get_bd_intf_pins axi_mem/M00_AXI] [get_bd_intf_pins zynq_ps/{sh.data_slave}]",
    ]
    acc = driver["accelerator"]["name"]
    for i, (name_, d) in enumerate(sorted(driver["dma"].items())):
        lines += [
            f"create_bd_cell -type ip -vlnv {IODMA_VLNV[d['direction']]} {name_}",
            f"connect_bd_intf_net [get_bd_intf_pins axi_ctrl/M{i:02d}_AXI] [get_bd_intf_pins {name_}/s_axi_control]",
            f"connect_bd_intf_net [get_bd_intf_pins {name_}/m_axi_gmem] [get_bd_intf_pins axi_mem/S{i:02d}_AXI]",
        ]
        if d["direction"] == "mm2s":
            lines.append(f"connect_bd_intf_net [get_bd_intf_pins {name_}/out0_V] [get_bd_intf_pins {acc}/s_axis_0]")
        else:
            lines.append(f"connect_bd_intf_net [get_bd_intf_pins {acc}/m_axis_0] [get_bd_intf_pins {name_}/in0_V]")
    for k, u in enumerate(units):
        i = len(driver["dma"]) + k
        lines += [
            f"connect_bd_intf_net [get_bd_intf_pins axi_ctrl/M{i:02d}_AXI] [get_bd_intf_pins {acc}/{u['axilite_port']}]",
            f"connect_bd_intf_net [get_bd_intf_pins {acc}/{u['aximm_port']}] [get_bd_intf_pins axi_mem/S{i:02d}_AXI]",
        ]
    for k, r in enumerate(rtw):  # runtime-writeable layers: the driver writes their memories at start-up
        i = len(driver["dma"]) + len(units) + k
        lines.append(f"connect_bd_intf_net [get_bd_intf_pins axi_ctrl/M{i:02d}_AXI] "
                     f"[get_bd_intf_pins {acc}/{r['axilite_port']}]")
    lines += [
        "foreach p [get_bd_pins -of_objects [get_bd_cells -filter {VLNV !~ *zynq* && VLNV !~ *proc_sys_reset*}]"
        " -filter {TYPE == clk}] { connect_bd_net [get_bd_pins zynq_ps/" + sh.clk_pin + "] $p }",
        "foreach p [get_bd_pins -of_objects [get_bd_cells -filter {VLNV !~ *zynq* && VLNV !~ *proc_sys_reset*}]"
        " -filter {TYPE == rst}] { connect_bd_net [get_bd_pins rst_ps/peripheral_aresetn] $p }",
    ]
    if board.family == "zynq_us+":
        lines.append(f"connect_bd_net [get_bd_pins zynq_ps/{sh.clk_pin}] [get_bd_pins zynq_ps/maxihpm0_fpd_aclk] "
                     "[get_bd_pins zynq_ps/saxihp0_fpd_aclk]")
    else:
        lines.append(f"connect_bd_net [get_bd_pins zynq_ps/{sh.clk_pin}] [get_bd_pins zynq_ps/M_AXI_GP0_ACLK] "
                     "[get_bd_pins zynq_ps/S_AXI_HP0_ACLK]")
    for name_, d in sorted(driver["dma"].items()):
        lines.append(f"assign_bd_address -target_address_space /zynq_ps/{sh.addr_space} -offset {d['base']:#010x} "
                     f"-range {d['range'] // 1024}K [get_bd_addr_segs {name_}/s_axi_control/Reg]")
    for u in (*units, *rtw):
        lines.append(f"assign_bd_address -target_address_space /zynq_ps/{sh.addr_space} -offset {u['regs']:#010x} "
                     f"-range {u['range'] // 1024}K [get_bd_addr_segs {acc}/{u['axilite_port']}/Reg]")
    lines += implement_lines(out_dir, f"samfpga_{board.name}", name)
    return "\n".join(lines)
