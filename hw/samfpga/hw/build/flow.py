"""Run a build: the configured steps in order, each result saved, then the report.

Layout of the output directory (see docs/hardware.md):
    DIR/intermediate/<NN>_<step>.onnx   the model after each step (NN = 01, 02, ...)
    DIR/hdl/<node name>/                generated HDL (RTL layers) or HLS C++/TCL per HW node
    DIR/finn/                           FINN's own reports (auto folding config, ...)
    DIR/build_config.json               the BuildConfig
    DIR/report.json, DIR/report.md      the build report; DIR/resources.png its bar chart
    DIR/build.log                       library warnings and output (FINN, qonnx), with the progress lines
The build writes into DIR directly (the saved graphs hold absolute paths to DIR/hdl, so DIR cannot be renamed
afterwards) and removes DIR when any step fails, so a failed build leaves nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import TextIO

from samfpga.hw import HW_DOMAIN
from samfpga.hw.build.config import BuildConfig
from samfpga.hw.build.context import BuildContext
from samfpga.hw.build.progress import BuildLog, step_line
from samfpga.hw.build.report import build_report, report_markdown
from samfpga.hw.build.speedups import installed
from samfpga.hw.build.steps import STEPS, BuildStopped, VivadoRequired
from samfpga.hw.finn_env import boot, vivado_available


class BuildError(RuntimeError):
    """A build step failed; the message names the step and the cause (one line)."""


def _load(model_path: str | Path):
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    p = Path(model_path)
    if not p.is_file():
        raise ValueError(f"model file not found: {p}")
    try:
        proto = onnx.load(str(p))
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad input file
        raise ValueError(f"{p}: not a readable ONNX model ({type(e).__name__})") from None
    if len(proto.graph.input) != 1 or len(proto.graph.output) != 1:
        raise ValueError(f"{p}: expected one graph input and one output, got "
                         f"{len(proto.graph.input)} and {len(proto.graph.output)}")
    if not any(n.op_type in ("Quant", "MultiThreshold") for n in proto.graph.node):
        raise ValueError(f"{p}: no Quant/MultiThreshold nodes; give a quantized (QONNX) model")
    return ModelWrapper(proto)


def run_build(model_path: str | Path, cfg: BuildConfig, screen: TextIO | None = None, preamble: str = "") -> dict:
    """Run ``cfg.steps`` on the QONNX model at ``model_path``; returns the report dict (also written to DIR).

    ``screen`` gets one line per step and the verdict (default: stdout); library output goes to DIR/build.log,
    which starts with ``preamble`` (e.g. what quantizing the model printed)."""
    out = Path(cfg.output_dir)
    if out.exists():
        raise ValueError(f"output directory exists: {out} (choose a new one)")
    model = _load(model_path)
    out.mkdir(parents=True)
    (out / "build.log").write_text(preamble)
    try:
        # qonnx's quadratic housekeeping (SortGraph, tensor renaming) swapped for linear-time equals (speedups.py)
        with BuildLog(out / "build.log", screen or sys.stdout) as blog, installed():
            return _run(model, cfg, out.resolve(), blog)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _run(model, cfg: BuildConfig, out: Path, blog: BuildLog) -> dict:
    boot(out / "finn_build")
    import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops registered before any FINN step)

    ctx = BuildContext(cfg=cfg, out=out)
    (out / "intermediate").mkdir()
    (out / "build_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    blog.say(f"samfpga build-hw: {cfg.board}, {len(cfg.steps)} steps, output {out} (library messages: build.log)")
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU seconds of this process per step: comparable across machine loads
    stopped, estimated = None, None
    for i, name in enumerate(cfg.steps, 1):
        t0, c0, warned = time.time(), time.process_time(), blog.warnings
        try:
            model = STEPS[name](model, ctx)
        except VivadoRequired as e:
            stopped = _stopped(name, str(e), cfg.steps, i)
            blog.say(f"[{i:2d}/{len(cfg.steps)}] {name}: stopped, needs Vivado (not installed): {e}; "
                     f"the remaining {len(cfg.steps) - i + 1} steps need it too")
            break
        except BuildStopped as e:
            stopped = {"step": name, "message": f"{str(e).rstrip('.')}. Produced: steps {', '.join(cfg.steps[: i - 1])}."}
            blog.say(f"[{i:2d}/{len(cfg.steps)}] {name}: stopped: {e}")
            break
        except Exception as e:  # noqa: BLE001 - reported as one line naming the step
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise BuildError(f"build step {name} failed: {type(e).__name__}: {msg[:300]}") from e
        timings[name] = round(time.time() - t0, 2)
        cpu[name] = round(time.process_time() - c0, 2)
        model.save(str(out / "intermediate" / f"{i:02d}_{name}.onnx"))
        hw = sum(n.domain.startswith(HW_DOMAIN) for n in model.graph.node)
        blog.say(step_line(i, len(cfg.steps), name, timings[name], time.time() - blog.t0, hw,
                           len(model.graph.node), blog.warnings - warned))
        if name == "estimates":
            estimated = model
    report = _write_report(estimated or model, ctx, out, {"wall": timings, "cpu": cpu}, stopped)
    shutil.rmtree(out / "finn_build", ignore_errors=True)
    blog.say(f"{blog.warnings} library warnings and {blog.lines} lines of library output in {out / 'build.log'}")
    blog.say(f"verdict: {report['verdict']['text']}")
    for a in report["verdict"]["advice"]:
        blog.say(f"  - {a}")
    blog.say(f"report: {out / 'report.md'}")
    return report


def _stopped(name: str, what: str, steps: tuple[str, ...], i: int) -> dict:
    done = list(steps[: i - 1])
    return {"step": name, "message": f"{what} needs Vivado (not found: no `vivado` on PATH, XILINX_VIVADO "
                                     f"unset). Produced: steps {', '.join(done)}; still needing Vivado: "
                                     f"{', '.join(steps[i - 1:])}."}


def _write_report(model, ctx: BuildContext, out: Path, timings: dict[str, dict], stopped: dict | None) -> dict:
    """report.json, report.md and the chart resources.png (when any layer was estimated)."""
    from samfpga.hw.build.chart import resource_chart

    cfg = ctx.cfg
    report = build_report(model, ctx.results, cfg.board_spec, cfg.clock, cfg.fit_limit)
    report["config"] = cfg.to_dict()
    report["step_seconds"] = timings["wall"]
    report["step_cpu_seconds"] = timings["cpu"]
    report["vivado_available"] = vivado_available()
    if stopped:
        report["stopped"] = stopped
    if not ctx.results.costs:  # nothing estimated (a build whose steps end before ``estimates``): no fit to state
        report["verdict"] = {"fits": None, "binding": None, "pressure": {}, "advice": [],
                             "text": "none: no layer was estimated (the estimates step did not run)"}
    chart = None
    if ctx.results.costs:
        chart = resource_chart({k: {r: v[r] for r in v if r in report["total"]["budget"]}
                                for k, v in report["op_types"].items()}, report["total"]["budget"],
                               cfg.fit_limit, f"{cfg.board}: resource use per layer type ({', '.join(report['total']['sources'])})",
                               out / "resources.png").name
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "report.md").write_text(report_markdown(report, chart))
    return report
