"""The engine's build: a list of named steps over a config dataclass (as FINN's builder), from an integer graph
(``samfpga.intexec``'s package: graph.json + weights.npz, what ``samfpga deploy`` and ``build.package.export_build``
write) to a report, the engine's Vivado design and, where Vivado is installed, its bitstream.

Steps (``STEPS``):

- ``plan``: the engine's widths (GEMM PE x SIMD, batch, the depthwise unit's, LayerNorm's and softmax's lanes) by
  ``plan.engine.search`` for the board and the encoder (or as given), priced layer by layer (``plan/``: the plan's
  report.json / report.md / report.png, every layer's step and every component's resources);
- ``program``: the graph compiled for the engine at those widths (``sim.engine_program``); its multiply-accumulates
  per engine must be the plan's (so the plan prices this graph), and every step must be one the GEMM path runs
  (``sim.engine_gemm_path.path_steps``), else the build stops naming those it does not;
- ``design``: ``engine.design.write_design`` under ``vivado/`` (HDL at the program's parameters, Verilator lint,
  project.tcl);
- ``host``: the host's files under ``host/`` (``engine.host``: host.json with every step's registers, ddr.bin with
  what the host writes once), what ``samfpga deploy BUILD --engine ENGINE_BUILD`` puts in a deployment package;
- ``bitstream``: Vivado on ``vivado/project.tcl`` (``vivado/proj/engine.bit`` and ``.hwh``, copied to the build
  folder); without Vivado the build stops here with a message naming the script.

``report.json`` / ``report.md`` are written after every run, whatever step it stopped at.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


class EngineBuildError(ValueError):
    """The engine cannot be built from this input (message: what and where)."""


class EngineBuildStopped(RuntimeError):
    """A step cannot run here (Vivado missing); the build stops with its message, the report written."""


@dataclass(frozen=True)
class EngineBuildConfig:
    """One engine build. ``graph``: the integer graph's folder; ``variant`` / ``image_size`` / ``window_sizes`` /
    ``activation`` (or ``encoder_config``, a ``TinyViTConfig``): the encoder the plan prices, which must be the
    graph's; ``space``: the widths the plan searches (``plan.engine.SEARCH``'s keys; one value each fixes them);
    ``steps``: a prefix of ``STEP_NAMES`` (default all)."""

    board: str
    graph: str
    output_dir: str
    variant: str = "vit_t"
    image_size: int = 1024
    window_sizes: tuple[int, ...] | None = (8, 8, 8, 8)
    activation: str | None = "relu"
    encoder_config: object | None = None
    space: dict[str, tuple[int, ...]] = field(default_factory=dict)
    limit: float = 0.85
    clock_mhz: float | None = None
    steps: tuple[str, ...] | None = None

    def engine_config(self):
        from samfpga.hw.plan.engine import EngineConfig

        return EngineConfig(board=self.board, variant=self.variant, image_size=self.image_size,
                            window_sizes=self.window_sizes, activation=self.activation, limit=self.limit,
                            clock_mhz=self.clock_mhz, encoder_config=self.encoder_config)


@dataclass
class EngineBuild:
    """What the steps produce (``report.json`` records all but the objects)."""

    cfg: EngineBuildConfig
    out: Path
    plan: object = None
    plan_units: list = field(default_factory=list)
    program: object = None
    graph: object = None
    configs: object = None  # the program's DDR layout and every step's registers (engine_gemm_path.step_configs)
    design: object = None
    host: str = ""
    bitstream: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    stopped: str = ""


def step_plan(b: EngineBuild) -> None:
    """The engine's widths by the plan's search, priced layer by layer (``plan/report.*``)."""
    from samfpga.hw.plan.engine import SEARCH, encoder_units, search, write

    try:
        cfg = b.cfg.engine_config()
        b.plan = search(cfg, {**SEARCH, **b.cfg.space})
        b.plan_units = encoder_units(cfg)
    except ValueError as e:
        raise EngineBuildError(f"engine plan: {e}") from None
    write(b.plan, b.out / "plan")


def step_program(b: EngineBuild) -> None:
    """The integer graph compiled for the engine at the plan's widths; every step one the GEMM path runs."""
    from samfpga.hw.sim import engine_gemm_path as gp
    from samfpga.hw.sim.engine_program import EngineProgramError, compile_program, engine_unit
    from samfpga.intexec.executor import load_intgraph

    try:
        g = load_intgraph(Path(b.cfg.graph))
    except (OSError, ValueError, KeyError) as e:
        raise EngineBuildError(f"{b.cfg.graph}: not an integer graph package ({e})") from None
    size = b.plan.config["image_size"] if b.cfg.encoder_config is None else b.cfg.encoder_config.img_size
    shape = tuple(g.shape(g.input))
    if shape.count(size) < 2:
        raise EngineBuildError(f"{b.cfg.graph}: input {shape} is not a {size} x {size} image (the plan's encoder)")
    c = b.plan.config
    try:
        prog = compile_program(g, engine_unit(g, c["pe"], c["simd"], c["batch"]))
    except (EngineProgramError, ValueError) as e:
        raise EngineBuildError(f"{b.cfg.graph}: {e}") from None
    macs, want = program_macs(prog), {k: v["macs"] for k, v in b.plan.by_engine.items() if v["macs"]}
    if macs != want:
        raise EngineBuildError(f"{b.cfg.graph}: the plan's encoder is not the graph's: MACs {want} in the plan, "
                               f"{macs} in the graph's program (give the graph's variant and image size)")
    try:
        prog = gp.with_lanes(prog, {"dw_pe": c["dw_pe"], "ln_pe": c["ln_lanes"], "sm_pe": c["sm_lanes"]})
    except ValueError as e:
        raise EngineBuildError(f"{b.cfg.graph}: {e}") from None
    on = {s.name for s in gp.path_steps(prog)}
    off = [f"{s.name} ({s.kind})" for s in prog.steps if s.name not in on]
    if off:
        raise EngineBuildError(f"{b.cfg.graph}: {len(off)} of {len(prog.steps)} steps are not ones the GEMM path "
                               f"runs: {', '.join(off[:8])}{' ...' if len(off) > 8 else ''}")
    b.program, b.graph = prog, g
    b.configs = gp.step_configs(prog)


def program_macs(prog) -> dict[str, int]:
    """Multiply-accumulates a frame of ``prog``'s steps by the plan's engines (``gemm``, ``dw``, ``attention``: QK^T
    and AV; ``requant``: a requantisation on the unit's identity), each at the layer's own sizes (no padding)."""
    import numpy as np

    out: Counter = Counter()
    for s in prog.steps:
        if s.kind in ("gemm", "qk", "av"):  # a requantisation alone: the unit's identity (plan.engine.requant_step)
            k = "requant" if s.identity else "gemm" if s.kind == "gemm" else "attention"
            out[k] += s.iters * s.tokens * s.mw * s.mh
        elif s.kind == "dw":
            out["dw"] += int(np.prod(s.out_shape)) * int(np.prod(s.window["kernel"]))
    return dict(out)


def step_design(b: EngineBuild) -> None:
    """The engine's Vivado design under ``vivado/`` (HDL, lint, project.tcl)."""
    from samfpga.hw.engine.design import write_design

    c = b.plan.config
    d = write_design(b.program, b.out / "vivado", b.cfg.board, b.plan.clock_mhz, dw_ram_style=_dw_style(b),
                     configs=b.configs)
    want = {"PE": c["pe"], "SIMD": c["simd"], "B": c["batch"], "DW_PE": c["dw_pe"], "LN_PE": c["ln_lanes"],
            "SM_PE": c["sm_lanes"]}
    off = [f"{k} {d.params[k]} (plan {v})" for k, v in want.items() if k in d.params and d.params[k] != v]
    if off:
        raise EngineBuildError(f"the design's RTL parameters are not the plan's widths: {', '.join(off)}")
    b.design = d


def step_host(b: EngineBuild) -> None:
    """The host's files under ``host/`` (``engine.host.write_host``)."""
    from samfpga.hw.engine.host import write_host

    try:
        b.host = str(write_host(b.program, b.graph, b.out / "host", b.design, b.configs).relative_to(b.out))
    except ValueError as e:
        raise EngineBuildError(f"engine host files: {e}") from None


def _plan_config(b: EngineBuild):
    """The plan's ``EngineConfig`` at its searched widths."""
    from dataclasses import replace

    c = b.plan.config
    return replace(b.cfg.engine_config(), **{k: c[k] for k in ("pe", "simd", "batch", "dw_pe", "dw_strip",
                                                                  "ln_lanes", "sm_lanes")})


def _dw_style(b: EngineBuild) -> str:
    """The depthwise window's banks' RAM style as the plan prices them (``engine.dw_bank_style``)."""
    from samfpga.hw.plan.engine import dw_bank_style, dw_size

    cfg = _plan_config(b)
    return dw_bank_style(cfg, *dw_size(cfg, b.plan_units))


def step_bitstream(b: EngineBuild) -> None:
    """Vivado on ``vivado/project.tcl``: ``engine.bit`` and ``engine.hwh`` in the build folder."""
    import shutil

    from samfpga.hw.vivado.module_design import run_vivado

    script = b.out / "vivado" / b.design.script
    if shutil.which("vivado") is None:
        raise EngineBuildStopped(f"the bitstream needs Vivado: vivado -mode batch -source {script} (or rerun this "
                                 "build with Vivado's settings64.sh sourced)")
    try:
        b.bitstream = str(run_vivado(script, b.out, "engine"))
    except RuntimeError as e:
        raise EngineBuildStopped(str(e)) from None


STEPS: tuple[tuple[str, Callable[[EngineBuild], None]], ...] = (
    ("plan", step_plan), ("program", step_program), ("design", step_design), ("host", step_host),
    ("bitstream", step_bitstream))
STEP_NAMES = tuple(n for n, _ in STEPS)


def run_engine_build(cfg: EngineBuildConfig, say: Callable[[str], None] = print, exist_ok: bool = False
                     ) -> EngineBuild:
    """Run ``cfg``'s steps in order into ``cfg.output_dir`` (must not exist unless ``exist_ok``: then it must hold no
    report yet), then write the report. Raises ``EngineBuildError`` (the report written up to the failing step); a
    step that cannot run here stops the build (``EngineBuild.stopped``), which is not an error."""
    steps = cfg.steps or STEP_NAMES
    if tuple(steps) != STEP_NAMES[:len(steps)]:
        raise EngineBuildError(f"steps {list(steps)}: expected a prefix of {list(STEP_NAMES)}")
    out = Path(cfg.output_dir)
    if out.exists() and not (exist_ok and not (out / "report.json").exists()):
        raise EngineBuildError(f"output directory exists: {out} (choose a new one)")
    out.mkdir(parents=True, exist_ok=True)
    b = EngineBuild(cfg, out)
    fns = dict(STEPS)
    try:
        for k, name in enumerate(steps, 1):
            t0 = time.monotonic()
            try:
                fns[name](b)
            except EngineBuildStopped as e:
                b.stopped = f"{name}: {e}"
                say(f"[{k}/{len(steps)}] {name}: stopped: {e}")
                break
            b.seconds[name] = round(time.monotonic() - t0, 1)
            say(f"[{k}/{len(steps)}] {name:10s} {b.seconds[name]:7.1f} s  {_summary(b, name)}")
    finally:
        files = write_report(b)
    say(f"report: {files['md']}")
    return b


def _summary(b: EngineBuild, name: str) -> str:
    if name == "plan":
        c = b.plan.config
        return (f"PE {c['pe']} x SIMD {c['simd']}, batch {c['batch']}, dw {c['dw_pe']}, LN {c['ln_lanes']}, softmax "
                f"{c['sm_lanes']}: {b.plan.fps:.3f} fps, {'fits' if b.plan.fits else 'does not fit'}")
    if name == "program":
        return f"{len(b.program.steps)} steps, weight image {len(b.program.image):,} bytes"
    if name == "design":
        return f"{len(b.design.sources)} sources, lint clean: {b.out / 'vivado' / b.design.script}"
    if name == "host":
        return f"{len(b.program.steps)} steps' registers, {b.configs.layout.size:,}-byte DDR buffer: {b.out / b.host}"
    return b.bitstream


def report(b: EngineBuild) -> dict:
    """The build's report (``report.json``)."""
    from samfpga.hw.plan.engine import NOT_BUILT

    r: dict = {"board": b.cfg.board, "graph": str(b.cfg.graph), "steps_run": list(b.seconds),
               "seconds": b.seconds, "stopped": b.stopped}
    if b.plan is not None:
        p = b.plan
        r["plan"] = {"config": p.config, "fits": p.fits, "fps": p.fps, "cycles": p.cycles, "clock_mhz": p.clock_mhz,
                     "totals": p.totals, "budget": p.budget, "pressure": p.pressure, "binding": p.binding,
                     "roofline": p.roofline, "ddr": p.ddr, "report": "plan/report.md",
                     "label": "own model (samfpga.hw.plan.engine): resources of every component (Yosys fits and the "
                              "project's models), cycles of every layer's step; not a synthesis of this design"}
    if b.program is not None:
        from samfpga.hw.sim import engine_gemm_path as gp

        prog = b.program
        r["program"] = {"steps": len(prog.steps), "kinds": dict(Counter(s.kind for s in prog.steps)),
                        "weight_image_bytes": len(prog.image),
                        "lanes": {"dw_pe": gp.dw_pe(prog), "ln_pe": gp.ln_pe(prog),
                                  "sm_pe": (gp.rows_config(prog) or {}).get("pe")},
                        "unit": {"pe": prog.unit.pe, "simd": prog.unit.simd, "batch": prog.unit.batch,
                                 "mw": prog.unit.mw, "mh": prog.unit.mh}}
    if b.design is not None:
        r["design"] = {**asdict(b.design), "folder": "vivado", "against_plan": against_plan(b)}
    if b.host:
        r["host"] = {"file": b.host, "ddr_bytes": b.configs.layout.size,
                     "regions_bytes": (b.out / "host" / "ddr.bin").stat().st_size}
    r["bitstream"] = b.bitstream or None
    r["not_built"] = list(NOT_BUILT)
    return r


def against_plan(b: EngineBuild) -> list[str]:
    """Where the design's RTL differs from what the plan prices (each a reason its figures may not hold)."""
    from samfpga.hw.plan.engine import dma_on_whole_beats, writes_on_whole_beats
    from samfpga.hw.plan.pricing import DMA

    c, p = b.plan.config, b.design.params
    out = []
    if dma_on_whole_beats(b.plan_units, c["pe"]) and not p.get("DMA_ALIGNED"):
        more = DMA["access_reader"]["LUT"] - DMA["access_reader_aligned"]["LUT"]
        out.append("the plan prices the input and residual readers built for whole 16-byte beats (access_reader "
                   "ALIGNED = 1); this program reads off whole beats somewhere (engine_gemm_path.dma_aligned), so the "
                   f"design builds them for any alignment (DMA_ALIGNED = 0), by Yosys {more:,.0f} LUT more each "
                   "(bench/results/dma_synth.md)")
    if writes_on_whole_beats(b.plan_units, c["pe"]) and not p.get("WR_ALIGNED"):
        more = DMA["access_writer"]["LUT"] - DMA["access_writer_aligned"]["LUT"]
        out.append("the plan prices the writer built for whole 16-byte beats (access_writer ALIGNED = 1); this "
                   "program writes off whole beats somewhere (engine_gemm_path.wr_aligned), so the design builds it "
                   f"for any alignment (WR_ALIGNED = 0), by Yosys {more:,.0f} LUT more (bench/results/dma_synth.md)")
    if "DW_W_MAX" in p:
        from samfpga.hw.plan.engine import dw_size

        cols, ch = dw_size(_plan_config(b), b.plan_units)
        if (p["DW_W_MAX"], p["DW_CB_MAX"]) != (cols, -(-ch // c["dw_pe"])):
            out.append(f"the depthwise unit's banks hold rows of {p['DW_W_MAX']} columns x {p['DW_CB_MAX']} beats of "
                       f"{c['dw_pe']} channels (the program launches each depthwise layer whole), the plan prices "
                       f"{cols} x {-(-ch // c['dw_pe'])}")
    return out


def markdown(r: dict) -> str:
    lines = [f"# Engine build for {r['board']}", "", f"Graph: `{r['graph']}`. Steps run: "
             f"{', '.join(f'{k} ({v:g} s)' for k, v in r['seconds'].items()) or 'none'}."]
    if r["stopped"]:
        lines += ["", f"**Stopped** at {r['stopped']}"]
    if "plan" in r:
        p, c = r["plan"], r["plan"]["config"]
        lines += ["", f"## Plan ({p['label']})", "",
                  f"GEMM PE {c['pe']} x SIMD {c['simd']}, batch {c['batch']}; depthwise {c['dw_pe']} channels a beat; "
                  f"LayerNorm {c['ln_lanes']} lanes; softmax {c['sm_lanes']} lanes; {p['clock_mhz']:g} MHz.", "",
                  f"**{p['fps']:.3f} fps** ({p['cycles']:,} cycles a frame), "
                  f"{'fits' if p['fits'] else 'does not fit'} within {c['limit']:.0%} of every resource (binding "
                  f"{p['binding']} {p['pressure'][p['binding']]:.3f}x); DSP roofline {p['roofline']['fps']:.2f} fps, "
                  f"{p['roofline']['fraction']:.1%} of it reached.", "",
                  "| resource | used | budget | of the limit |", "|---|---|---|---|"]
        lines += [f"| {k} | {v:,.0f} | {p['budget'][k]:,} | {p['pressure'][k]:.3f}x |" for k, v in p["totals"].items()
                  if p["budget"].get(k)]
        lines += ["", "Every component and every layer's step: [plan/report.md](plan/report.md)."]
    if "program" in r:
        g = r["program"]
        lines += ["", "## Program", "", f"{g['steps']} steps ({', '.join(f'{v} {k}' for k, v in g['kinds'].items())}), "
                  f"all on the GEMM path; weight image {g['weight_image_bytes']:,} bytes; unit {g['unit']}."]
    if "design" in r:
        d = r["design"]
        params = {k: v for k, v in d["params"].items() if isinstance(v, int)}
        lines += ["", "## Vivado design", "", f"`vivado/{d['script']}`: the Zynq PS and `{d['cell']}` (the core at "
                  f"the program's parameters, `vivado/hdl/{d['cell']}.v`; Verilator lint clean, `vivado/{d['lint']}`), "
                  f"its registers at {d['regs_base']:#x} ({d['regs_range'] // 1024} KiB), its masters on HP ports "
                  f"{' | '.join(', '.join(g) for g in d['masters'])}.", "",
                  "RTL parameters: " + ", ".join(f"{k} {v}" for k, v in params.items()) + "."]
        if d["against_plan"]:
            lines += ["", "Where the design differs from what the plan prices:", ""] + [f"- {x}" for x in
                                                                                      d["against_plan"]]
    if "host" in r:
        h = r["host"]
        lines += ["", "## Host files", "", f"`{h['file']}`: every step's registers, a DDR buffer of {h['ddr_bytes']:,} "
                  f"bytes ({h['regions_bytes']:,} written once from `host/ddr.bin`); "
                  "`samfpga deploy BUILD --engine .` puts them in a deployment package."]
    lines += ["", "## Bitstream", "", f"`{r['bitstream']}`" if r["bitstream"] else "Not built (Vivado not run)."]
    lines += ["", "Not built (priced from the parts that are): " + "; ".join(r["not_built"]) + "."]
    return "\n".join(lines) + "\n"


def write_report(b: EngineBuild) -> dict[str, str]:
    r = report(b)
    js, md = b.out / "report.json", b.out / "report.md"
    js.write_text(json.dumps(r, indent=1, default=float) + "\n")
    md.write_text(markdown(r))
    return {"json": str(js), "md": str(md)}
