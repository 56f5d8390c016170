"""Run a build: the configured steps in order, each result saved, then the report.

Layout of the output directory (see docs/hardware.md):
    DIR/intermediate/<NN>_<step>.onnx   the model after each step (NN = 01, 02, ...)
    DIR/hdl/<node name>/                generated HDL (RTL layers) or HLS C++/TCL per HW node
    DIR/finn/                           FINN's own reports (auto folding config, ...)
    DIR/build_config.json               the BuildConfig
    DIR/report.json, DIR/report.md      the build report
The build writes into DIR directly (the saved graphs hold absolute paths to DIR/hdl, so DIR cannot be renamed
afterwards) and removes DIR when any step fails, so a failed build leaves nothing.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from samfpga.hw.build.config import BuildConfig
from samfpga.hw.build.report import build_report, report_markdown
from samfpga.hw.build.steps import STEPS, BuildContext, VivadoRequired
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


def run_build(model_path: str | Path, cfg: BuildConfig, log=print) -> dict:
    """Run ``cfg.steps`` on the QONNX model at ``model_path``; returns the report dict (also written to DIR)."""
    out = Path(cfg.output_dir)
    if out.exists():
        raise ValueError(f"output directory exists: {out} (choose a new one)")
    model = _load(model_path)
    out.mkdir(parents=True)
    try:
        return _run(model, cfg, out.resolve(), log)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _run(model, cfg: BuildConfig, tmp: Path, log) -> dict:
    boot(tmp / "finn_build")
    import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops registered before any FINN step)

    ctx = BuildContext(cfg=cfg, out=tmp)
    (tmp / "intermediate").mkdir()
    (tmp / "build_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    timings: dict[str, float] = {}
    stopped = None
    estimated = None
    for i, name in enumerate(cfg.steps, 1):
        t0 = time.time()
        try:
            model = STEPS[name](model, ctx)
        except VivadoRequired as e:
            done = list(cfg.steps[: i - 1])
            stopped = {"step": name, "message": f"{e} needs Vivado (not found: no `vivado` on PATH, XILINX_VIVADO "
                                                 f"unset). Produced: steps {', '.join(done)}; still needing Vivado: "
                                                 f"{', '.join(cfg.steps[i - 1:])}."}
            log(f"build stopped before {name}: {stopped['message']}")
            break
        except Exception as e:  # noqa: BLE001 - reported as one line naming the step
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise BuildError(f"build step {name} failed: {type(e).__name__}: {msg[:300]}") from e
        timings[name] = round(time.time() - t0, 2)
        model.save(str(tmp / "intermediate" / f"{i:02d}_{name}.onnx"))
        log(f"[{i:02d}] {name}: {timings[name]:.1f}s, {len(model.graph.node)} nodes")
        if name == "estimates":
            estimated = model
    if estimated is None:
        estimated = model
    report = build_report(estimated, ctx.notes, cfg.board_spec, cfg.clock, cfg.partition_limit)
    report["config"] = cfg.to_dict()
    report["step_seconds"] = timings
    report["vivado_available"] = vivado_available()
    if stopped:
        report["stopped"] = stopped
    shutil.rmtree(tmp / "finn_build", ignore_errors=True)
    (tmp / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (tmp / "report.md").write_text(report_markdown(report))
    return report
