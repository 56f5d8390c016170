"""The engine's build (samfpga.hw.engine.build, ``samfpga build-hw --engine``) on the committed tiny build's integer
graph (tests/runtime/data/tiny_deploy): the plan at fixed widths, the program at them (every step on the GEMM path,
its multiply-accumulates the plan's), the Vivado design (the wrapper of engine_gemm_path_axil.sv at the program's
parameters, linted with every source by Verilator; project.tcl connecting the register block at the address the
host's driver uses and each master to its HP port), the host's files (every step's registers, what the host writes
into DDR once), the bitstream step stopping without Vivado; and what it refuses. The path at these side lanes runs every step bit-exactly: tests/test_sim_engine_gemm_path.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from samfpga.hw.engine import design as ed
from samfpga.hw.engine.build import EngineBuildConfig, EngineBuildError, run_engine_build

DEPLOY = Path(__file__).parent / "runtime" / "data" / "tiny_deploy"
#: the tiny program's widths (tests/test_engine_program.py) with side lanes narrower than the unit's
SPACE = {"pe": (8,), "simd": (16,), "batch": (16,), "dw_pe": (8,), "ln_lanes": (4,), "sm_lanes": (4,)}


def _tiny_encoder():
    from samfpga.models.build import variant_config
    from samfpga.models.quant.source import TINY_STUDENT

    return variant_config("vit_t", **TINY_STUDENT).encoder_config


def _cfg(out: Path, **kw) -> EngineBuildConfig:
    return EngineBuildConfig(**{"board": "kv260", "graph": str(DEPLOY), "output_dir": str(out),
                                "encoder_config": _tiny_encoder(), "space": SPACE, **kw})


def test_engine_build_writes_a_linted_design_and_stops_before_vivado(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", ":".join(p for p in __import__("os").environ["PATH"].split(":")
                                        if not (Path(p) / "vivado").exists()))
    said = []
    b = run_engine_build(_cfg(tmp_path / "b"), say=said.append)
    assert b.stopped.startswith("bitstream: the bitstream needs Vivado: vivado -mode batch -source ")
    r = json.loads((tmp_path / "b" / "report.json").read_text())
    assert r["steps_run"] == ["plan", "program", "design", "host"] and r["bitstream"] is None
    c = r["plan"]["config"]
    assert (c["pe"], c["simd"], c["batch"], c["dw_pe"], c["ln_lanes"], c["sm_lanes"]) == (8, 16, 16, 8, 4, 4)
    assert r["program"]["steps"] == 41 and r["program"]["lanes"] == {"dw_pe": 8, "ln_pe": 4, "sm_pe": 4}
    p = r["design"]["params"]
    assert (p["PE"], p["SIMD"], p["B"], p["DW_PE"], p["LN_PE"], p["SM_PE"]) == (8, 16, 16, 8, 4, 4)
    # the program reads whole 16-byte beats only, so its readers are built ALIGNED, as the plan prices them
    # and the depthwise unit's banks hold the widest map, as the plan prices them: nothing differs from the plan
    assert p["DMA_ALIGNED"] == 1 and r["design"]["against_plan"] == []
    assert p["CFG_READ"] == 0 and p["LN_RSQRT_FILE"].startswith(f'"{(tmp_path / "b" / "vivado" / "hdl").resolve()}/')
    viv = tmp_path / "b" / "vivado"
    assert "Error" not in (viv / "lint.log").read_text()
    wrapper = (viv / "hdl" / "samfpga_engine.v").read_text()
    assert "engine_gemm_path_axil #(" in wrapper and ".SM_PE(4)," in wrapper and ".DMA_ALIGNED(1)," in wrapper and "input wire [127:0] m_axi_rd_rdata" in wrapper
    tcl = (viv / "project.tcl").read_text()
    assert "create_bd_cell -type module -reference samfpga_engine samfpga_engine" in tcl
    # the register block where the host's driver finds it (the board family's PL base)
    from samfpga.hw.build.package import PL_BASE

    assert re.findall(r"-offset (0x[0-9a-f]+) -range (\d+)K .*samfpga_engine/(\w+)\]", tcl) == \
        [(f"{PL_BASE['zynq_us+']:#010x}", "4", "s_axil")]
    mem = re.findall(r"\[get_bd_intf_pins samfpga_engine/(\w+)\] \[get_bd_intf_pins axi_mem(\d)/S(\d\d)_AXI\]", tcl)
    assert mem == [("m_axi_rd", "0", "00"), ("m_axi_wt", "1", "00"), ("m_axi_rs", "2", "00"), ("m_axi_pm", "2", "01"),
                   ("m_axi_wr", "3", "00")]
    assert all(f"axi_mem{g}/M00_AXI] [get_bd_intf_pins zynq_ps/S_AXI_HP{g}_FPD]" in tcl for g in range(4))
    assert sum(name in s for s in said for name in ("plan", "program", "design", "host", "bitstream")) >= 5
    # the host's files: the design's register block, every step's registers as the path's test computes them
    from samfpga.backends.engine_host import read_engine_host, relocated
    from samfpga.hw.sim import engine_gemm_path as gp

    host = read_engine_host(tmp_path / "b" / "host")
    assert (host.spec["regs"], host.spec["cell"], host.spec["master_addr_bits"]) == (PL_BASE["zynq_us+"],
                                                                                   "samfpga_engine", p["AXI_AW"])
    assert relocated(host, 0) == gp.step_configs(b.program).regs and len(host.steps) == 41
    assert r["host"]["ddr_bytes"] == host.ddr_bytes and "## Host files" in (tmp_path / "b" / "report.md").read_text()
    md = (tmp_path / "b" / "report.md").read_text()
    assert "**Stopped** at bitstream" in md and "Not built (priced" in md
    with pytest.raises(EngineBuildError, match="output directory exists"):
        run_engine_build(_cfg(tmp_path / "b"))


def test_engine_build_refuses_a_plan_of_another_encoder_and_steps_off_the_path(tmp_path):
    from samfpga.hw.plan.layers import hardware_variant

    with pytest.raises(EngineBuildError, match=r"the plan's encoder is not the graph's: MACs \{'gemm': 203243520"):
        run_engine_build(_cfg(tmp_path / "a", encoder_config=hardware_variant("vit_t", 64, (8, 8, 8, 8), "relu"),
                              space={**SPACE, "simd": (32,)}))
    assert (tmp_path / "a" / "report.json").is_file() and not (tmp_path / "a" / "vivado").exists()
    # softmax lanes above the unit's PE (raw_rows.sv takes PE sums a cycle) or not dividing the keys: the plan's
    # search keeps only engines the path runs (plan.engine.path_runs), and the path refuses them too
    for sm in (16, 3):
        with pytest.raises(EngineBuildError, match="engine plan: engine search: no engine in the space whose steps "
                           "the GEMM path runs"):
            run_engine_build(_cfg(tmp_path / f"c{sm}", space={**SPACE, "sm_lanes": (sm,)}))
    from samfpga.hw.sim import engine_gemm_path as gp
    from tests.test_engine_program import program_run

    prog = program_run(3)[1]
    with pytest.raises(ValueError, match="softmax lanes sm_pe = 16: must divide the attention's 16 keys and be at "
                       "most the unit's PE 8"):
        gp.with_lanes(prog, {"sm_pe": 16})
    with pytest.raises(ValueError, match="step DepthwiseVVAU_rtl_0: the path runs it at its default lanes but not"):
        gp.with_lanes(prog, {"dw_pe": 3})
    with pytest.raises(EngineBuildError, match="expected a prefix of"):
        run_engine_build(_cfg(tmp_path / "d", steps=("program",)))
    with pytest.raises(EngineBuildError, match="not an integer graph package"):
        run_engine_build(_cfg(tmp_path / "e", graph=str(tmp_path)))


def test_wrapper_lint_fails_on_a_parameter_the_core_lacks(tmp_path):
    from samfpga.hw.sim.stitch import port_declarations
    from samfpga.hw.synth.own_rtl import own_modules
    from samfpga.resources import package_path

    hdl = tmp_path / "hdl"  # the lint's top goes beside it
    hdl.mkdir()
    srcs = []
    for m in own_modules(ed.CORE):
        (hdl / f"{m}.sv").write_text(Path(package_path("samfpga.hw", "rtl", f"{m}.sv")).read_text())
        srcs.append(f"{m}.sv")
    ports = port_declarations((hdl / f"{ed.CORE}.sv").read_text(), ed.CORE)
    (hdl / f"{ed.CELL}.v").write_text(ed.wrapper_text(ports, {"AXI_DW": 64, "AXI_AW": 32, "AXIL_AW": 9,
                                                                "NO_SUCH_PARAM": 1}))
    with pytest.raises(RuntimeError, match="Verilator lint of the engine failed"):
        ed.lint(hdl, [*srcs, f"{ed.CELL}.v"], tmp_path / "lint.log")
    assert "NO_SUCH_PARAM" in (tmp_path / "lint.log").read_text()
    assert ed.verilog_value(1 << 40) == "41'h10000000000" and ed.verilog_value('"x.dat"') == '"x.dat"'
    with pytest.raises(ValueError, match="no Vivado shell for board vck190"):
        ed.write_design(None, tmp_path / "v", "vck190", 200.0)


def test_cli_engine_needs_matching_options(tmp_path, capsys):
    from samfpga.hw.build_cli import main

    assert main(["--board", "kv260", "--graph", str(DEPLOY), "--out", str(tmp_path / "x")]) == 2
    assert "--graph needs --engine" in capsys.readouterr().err
    assert main(["--engine", "--board", "kv260", "--graph", str(DEPLOY), "--engine-space", "pe=x",
                 "--out", str(tmp_path / "y")]) == 2
    assert "values must be integers" in capsys.readouterr().err
    # the graph is the 64² test encoder, not vit_t at 64²: refused by its multiply-accumulates, report kept
    assert main(["--engine", "--board", "kv260", "--graph", str(DEPLOY), "--image-size", "64", "--engine-space",
                 "pe=8;simd=32;batch=16", "--out", str(tmp_path / "z")]) == 2
    assert "the plan's encoder is not the graph's" in capsys.readouterr().err
    assert json.loads((tmp_path / "z" / "report.json").read_text())["steps_run"] == ["plan"]


def test_engine_build_to_a_relative_folder_lints(tmp_path, monkeypatch):
    """An output folder given relative to the working directory (as bench/engine_build.py gives it): the lint, which
    runs Verilator inside the HDL folder, still finds every source, and the build stops only at the bitstream."""
    monkeypatch.setenv("PATH", ":".join(p for p in __import__("os").environ["PATH"].split(":")
                                        if not (Path(p) / "vivado").exists()))
    monkeypatch.chdir(tmp_path)
    b = run_engine_build(_cfg(Path("rel") / "b"), say=lambda _m: None)
    assert b.stopped.startswith("bitstream: ") and "Error" not in (tmp_path / "rel" / "b" / "vivado" / "lint.log").read_text()
