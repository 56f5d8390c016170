"""FINN estimates of the TinySAM-size encoder on every board: resources, fps, fit, DSP roofline.

    .venv/bin/python bench/hw_estimates.py [--image-size 1024] [--boards kv260,zcu104,...] [--out bench/results]
        [--resume-after STEP]   # continue an interrupted run from WORK/<size>/STEP.onnx (board-independent steps)

Encoder: TinyViT with vit_t dims (64/128/160/320, depths 2/2/6/2, heads 2/4/5/10), hardware-friendly variant:
activation relu and windows 8/8/8 that divide the stage grids (no Pad/Slice in the graph), seeded random weights
(estimates do not depend on weight values), W8A8 PTQ on 2 random images with integer LayerNorm / softmax and
integer biases (``QuantConfig(int_norm=True, bias_on_grid=True)``, what ``samfpga build-hw`` exports since the
all-integer flow), QONNX export by samfpga.models.quant. With ``--token-batch B`` each board is also built with the
build's ``token_batch`` step (every constant-weight MVAU + Requant pair on the token-batched unit, weights in DDR;
the fit search prices them as that unit), and with ``--roll`` with rolled stages (``samfpga.hw.build.rolling``: one
body per repeated stage, its weight layers token-batched), each reported beside the on-chip one.
Flow: the steps of samfpga.hw.build up to ``estimates``; the board-independent steps run once, then per board the
fit search (``fold``: fastest folding within 85% of every resource, as one pipeline) and the estimates. Resource
figures come from samfpga.hw.resources.layer_costs (each labelled: FINN estimate or own model), cycles from FINN;
not synthesis. Writes hw_estimates[_<size>].json and .md.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def step_split() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The build's software steps up to ``estimates``, split into the board-independent ones (through
    ``partition``, run once) and the per-board ones."""
    from samfpga.hw.build.steps import SOFTWARE_STEPS

    steps = SOFTWARE_STEPS[: SOFTWARE_STEPS.index("estimates") + 1]
    cut = steps.index("partition") + 1
    return steps[:cut], steps[cut:]


WINDOWS = [8, 8, 8, 8]  # divide the stage grids S/8, S/16 (no Pad/Slice); vit_t uses 7/7/14/7


def _config(size: int):
    from samfpga.models.build import variant_config

    return variant_config("vit_t", image_size=size, activation="relu", window_sizes=WINDOWS)


def encoder_info(size: int) -> dict:
    """Size, windows, MACs and parameters of the benchmarked encoder (samfpga.models.stats)."""
    from samfpga.models.quant.source import random_student
    from samfpga.models.stats import model_stats

    stats = model_stats(random_student(seed=0, config=_config(size)), "vit_t-relu")
    return {"image_size": size, "window_sizes": WINDOWS, "encoder_macs": stats.encoder_macs,
            "encoder_params": stats.encoder_params}


def export_encoder(size: int, path: Path) -> None:
    import torch

    from samfpga.models.quant import QuantConfig, calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import random_student

    torch.set_num_threads(1)
    q = quantize_encoder(random_student(seed=0, config=_config(size)).image_encoder,
                         QuantConfig(int_norm=True, bias_on_grid=True))
    calibrate(q, torch.randn(2, 3, size, size))
    export_qonnx(q, path, (1, 3, size, size))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--boards", default="kv260,zcu104,zcu102,pynq-z2,vck190")
    ap.add_argument("--target-fps", type=float, help="throughput cap of the fit search (default: none)")
    ap.add_argument("--token-batch", type=int, default=0, metavar="B",
                    help="also report each board with its MVAU + Requant pairs token-batched (B tokens per pass)")
    ap.add_argument("--roll", action="store_true",
                    help="also report each board built with rolled stages (``BuildOptions.roll``), their weight "
                         "layers token-batched (B = --token-batch, or 16)")
    ap.add_argument("--only-rolled", action="store_true", help="report the rolled builds only")
    ap.add_argument("--unit-everywhere", action="store_true",
                    help="impose the token-batched unit on every constant-weight MVAU (BuildOptions."
                         "token_batch_layers = all of them, named after specialisation): no weights on chip")
    ap.add_argument("--mvau-wwidth-max", type=int, default=36, metavar="BITS",
                    help="FINN's SetFolding limit on an MVAU's weight bits per PE (BuildOptions.mvau_wwidth_max; "
                         "default 36, FINN's)")
    ap.add_argument("--roll-strips", default="1", metavar="N[,N...]",
                    help="with --roll: column strips per rolled body (BuildOptions.roll_strips), each count its own "
                         "rolled build (default 1: whole maps); an item N/N/... gives each rolled stage its own "
                         "count, in graph order")
    ap.add_argument("--roll-verify", action=argparse.BooleanOptionalAction, default=True,
                    help="with --roll: run the rolled graph against the unrolled one (FINN python execution)")
    ap.add_argument("--work", default="out/hw_estimates")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the .md from the .json in --out (no build)")
    ap.add_argument("--resume-after", metavar="STEP",
                    help="load WORK/<size>/STEP.onnx (a board-independent step of an earlier run) and go on from there")
    args = ap.parse_args(argv)
    suffix = "" if args.image_size == 1024 else f"_{args.image_size}"
    dst = Path(args.out)
    if args.render_only:
        out = json.loads((dst / f"hw_estimates{suffix}.json").read_text())
        (dst / f"hw_estimates{suffix}.md").write_text(markdown(out))
        return 0

    from samfpga.hw.boards import get_board
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.context import BuildContext
    from samfpga.hw.build.steps import STEPS
    from samfpga.hw.finn_env import boot

    work = Path(args.work) / str(args.image_size)
    work.mkdir(parents=True, exist_ok=True)
    boot(work / "finn_build")
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build.speedups import installed

    # as flow.run_build (samfpga build-hw): qonnx's quadratic housekeeping swapped for its linear-time equals,
    # same graphs (tests/test_build_speed.py); without it the board-independent steps took ~20 min at 1024²
    with installed():
        common, per_board = step_split()
        timings_file = work / "step_seconds.json"
        if args.resume_after:
            if args.resume_after not in common:
                raise SystemExit(f"--resume-after: {args.resume_after!r} is not a board-independent step ({common})")
            start = work / f"{args.resume_after}.onnx"
            if not start.is_file():
                raise SystemExit(f"--resume-after: {start} not found (run without --resume-after first)")
            timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
            common = common[common.index(args.resume_after) + 1:]
            timings["resumed_after"] = args.resume_after
        else:
            t0 = time.time()
            start = work / "encoder_w8a8.onnx"
            export_encoder(args.image_size, start)
            timings = {"export": round(time.time() - t0, 1)}
        enc = encoder_info(args.image_size)
        boards = [get_board(b) for b in args.boards.split(",")]
        ctx = BuildContext(cfg=BuildConfig(board=boards[0].name, output_dir=str(work), target_fps=args.target_fps),
                           out=work)
        model = ModelWrapper(str(start))
        for name in common:
            t = time.time()
            model = STEPS[name](model, ctx)
            timings[name] = round(time.time() - t, 1)
            model.save(str(work / f"{name}.onnx"))
            timings_file.write_text(json.dumps(timings))
            print(f"{name}: {timings[name]}s, {len(model.graph.node)} nodes", flush=True)
        results = {}
        from samfpga.hw.build.config import BuildOptions
        from samfpga.hw.build_cli import parse_strip_counts

        ww = args.mvau_wwidth_max
        variants = [("", BuildOptions(mvau_wwidth_max=ww))] if not args.only_rolled else []
        if args.token_batch and not args.only_rolled:
            variants.append((f"token-batched (B = {args.token_batch})",
                             BuildOptions(token_batch=args.token_batch, mvau_wwidth_max=ww)))
        if args.roll or args.only_rolled:
            for item in args.roll_strips.split(","):
                tiles = parse_strip_counts(item, sep="/")
                label = f"rolled, token-batched (B = {args.token_batch or 16})"
                if isinstance(tiles, tuple):
                    label += f", column strips {'/'.join(map(str, tiles))} per stage"
                elif tiles > 1:
                    label += f", {tiles} column strips"
                variants.append((label, BuildOptions(token_batch=args.token_batch or 16, roll=True,
                                                     roll_verify=args.roll_verify, roll_strips=tiles,
                                                     mvau_wwidth_max=ww)))
        for b in boards:
            for label, opts in variants:
                out_dir = work / b.name / ((label.split(",")[0].split(" ")[0] or "on_chip")
                                           + (f"_strips{_strips_tag(opts.roll_strips)}" if opts.strips else ""))
                out_dir.mkdir(parents=True, exist_ok=True)
                vctx = BuildContext(cfg=BuildConfig(board=b.name, output_dir=str(out_dir), target_fps=args.target_fps,
                                                    options=opts),
                                    out=out_dir, results=copy.deepcopy(ctx.results))
                m = copy.deepcopy(model)  # the fit search folds in place
                if args.unit_everywhere and opts.token_batch:
                    spec = STEPS["specialize"](copy.deepcopy(model), vctx)
                    names = tuple(n.name for n in spec.graph.node
                                  if n.op_type.startswith("MVAU") and spec.get_initializer(n.input[1]) is not None)
                    vctx = BuildContext(cfg=replace(vctx.cfg, options=replace(opts, token_batch_layers=names)),
                                        out=out_dir, results=copy.deepcopy(ctx.results))
                    label = f"{label}, unit on all {len(names)} constant-weight MVAUs"
                t = time.time()
                for name in per_board + (("roll",) if opts.roll else ()):
                    if name == "token_batch" and not opts.token_batch:
                        continue
                    m = STEPS[name](m, vctx)
                key = f"{b.name} {label}" if label else b.name
                results[key] = _board_report(m, vctx, b, enc, round(time.time() - t, 1), out_dir / "layers.json")
    _finish(args, dst, suffix, enc, timings, results)
    return 0


def _strips_tag(roll_strips: int | tuple[int, ...]) -> str:
    """``roll_strips`` in a directory name: ``4`` or ``4-2-1-1``."""
    return "-".join(map(str, roll_strips)) if isinstance(roll_strips, tuple) else str(roll_strips)


def _board_report(m, bctx, b, enc: dict, seconds: float, layers_file: Path | None = None) -> dict:
    """The build report of the finished graph ``m`` on board ``b``, with the DSP roofline; printed in one line.
    The per-layer rows go to ``layers_file`` (the work dir), not into the results."""
    from samfpga.hw.build.report import build_report

    rep = build_report(m, bctx.results, b, b.clock_mhz, bctx.cfg.fit_limit)
    macs = enc["encoder_macs"]
    roof = b.dsp * b.clock_mhz * 1e6 * b.macs_per_dsp(8)
    rep["roofline"] = {"encoder_macs": macs, "macs_per_dsp": b.macs_per_dsp(8),
                       "peak_macs_per_s": roof, "fps_dsp_roofline": roof / macs}
    rep["seconds"] = seconds
    if layers_file is not None:
        layers_file.write_text(json.dumps(rep["layers"], indent=1, default=str) + "\n")
    for k in ("layers", "largest_layers"):  # per-layer detail: in the work dir's layers.json
        del rep[k]
    t_ = rep["total"]
    kind = " (rolled)" if rep.get("rolled") else " (token-batched)" if rep.get("token_batch") else ""
    print(f"{b.name}{kind}: {rep['verdict']['text']}; "
          f"LUT={t_['resources']['LUT']:.0f} DSP={t_['resources']['DSP']:.0f} BRAM36={t_['resources']['BRAM36']:.0f}"
          f" URAM={t_['resources']['URAM']:.0f} fps={t_['fps']} roofline={roof / macs:.2f}", flush=True)
    return rep


def _finish(args, dst: Path, suffix: str, enc: dict, timings: dict, results: dict) -> None:
    out = {"label": "layer costs from samfpga.hw.resources (sources per figure in each board's `total.sources`), "
                    "FINN cycle estimates (finn-plus 1.6.1); not synthesis", "encoder": enc,
           "target_fps": args.target_fps, "token_batch": args.token_batch, "roll": args.roll or args.only_rolled,
           "mvau_wwidth_max": args.mvau_wwidth_max,
           "step_seconds": timings,
           "boards": results}
    dst.mkdir(parents=True, exist_ok=True)
    (dst / f"hw_estimates{suffix}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    (dst / f"hw_estimates{suffix}.md").write_text(markdown(out))


def markdown(out: dict) -> str:
    e = out["encoder"]
    cap = f"fit search capped at {out['target_fps']} fps" if out.get("target_fps") else "fit search, no fps cap"
    lines = [f"# Hardware estimates: TinySAM-size encoder (vit_t dims, ReLU, windows {e['window_sizes']}) at "
             f"{e['image_size']}x{e['image_size']}", "", out["label"] + f"; {cap}.",
             f"Encoder MACs (samfpga.models.stats): {e['encoder_macs'] / 1e9:.2f} G; params {e['encoder_params']:,}.",
             *([f"Command: `{out['command']}`."] if out.get("command") else []),
             "", "| board | HW nodes | LUT | BRAM36 | URAM | DSP | fits (85%) | binding | fps (one pipeline) |"
             " DSP roofline fps | sources |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in out["boards"].items():
        t, n, v = r["total"], r["nodes"], r["verdict"]
        res = t["resources"]
        lines.append(
            f"| {name} | {n['on_hw']}/{n['total']} | {res['LUT']:,.0f} ({100 * t['utilization']['LUT']:.0f}%) | "
            f"{res['BRAM36']:,.0f} | {res['URAM']:,.0f} | {res['DSP']:,.0f} | {'yes' if v['fits'] else 'no'} | "
            f"{v['binding']} {_x(v['pressure'][v['binding']])} | {_f(t['fps']) if v['fits'] else '- (no fit)'} | "
            f"{r['roofline']['fps_dsp_roofline']:.2f} | {', '.join(t['sources'])} |")
    lines += ["", "Verdicts and what would make each fit (binding resource = highest total / (85% x budget)):", ""]
    for name, r in out["boards"].items():
        lines.append(f"- {name}: {r['verdict']['text']}.")
        lines += [f"  - {a}" for a in r["verdict"]["advice"]]
    blocks = {n: r["memory"]["block"] for n, r in out["boards"].items() if (r.get("memory") or {}).get("block")}
    if blocks:
        lines += ["", "Block memory by bits (BRAM36 + 8 x URAM, in BRAM36 equivalents; LUTRAM is in the LUT figure): "
                      "no choice of memory styles fits a design whose sum is over the limit.", ""]
        for name, b in blocks.items():
            lines.append(f"- {name}: {b['bram36_equivalents']:,.1f} of {b['board']:,.0f} ({b['of_limit']:.2f}x the "
                         f"85% limit): " + ", ".join(f"{op} {v:,.1f}" for op, v in b["by_op_type"].items()) + ".")
    tb = {n: r["token_batch"] for n, r in out["boards"].items() if r.get("token_batch")}
    for name, t in tb.items():
        lines += ["", f"{name}: {len(t['layers'])} layers on the token-batched unit, DDR image {t['image_bytes']:,} "
                      f"bytes, {t['ddr_bytes_per_frame'] / 1e6:,.1f} MB read per frame"
                  + (f" ({t['ddr_gbps_at_fps']:.3g} GB/s at its fps)" if t.get("ddr_gbps_at_fps") else "")
                  + f"; {len(t['kept'])} pairs kept on chip."]
    for name, r in out["boards"].items():
        ro = r.get("rolled") or {}
        if not ro.get("stages"):
            continue
        d, v = r["total"].get("ddr") or {}, ro.get("verify")
        lines += ["", f"{name}: rolled stages "
                      + ", ".join(f"{s['iterations']} blocks ({s['body_nodes']} body nodes, stage interval "
                                  f"{s['interval']:,} cycles{_strips(s)})" for s in ro["stages"])
                      + f"; {len(ro.get('refused', []))} repeated stages not rolled"
                      + (f"; DDR {d['bytes_per_frame'] / 1e6:,.1f} MB per frame (limit {_f(d['fps_limit'])} fps)"
                         if d else "")
                      + (f"; rolled vs unrolled python execution: {v['differing']} of {v['values']:,} values differ"
                         if v else "; rolled vs unrolled not executed (--no-roll-verify)") + "."]
    lines += ["", f"Step times (s): {out['step_seconds']}; per board (fold onwards): "
                  + ", ".join(f"{n} {r['seconds']}" for n, r in out["boards"].items()), ""]
    return "\n".join(lines) + "\n"


def _strips(stage: dict) -> str:
    st = stage.get("strips") or {}
    if st.get("widths"):
        return f", {st['strips']} column strips of {st['widths']} columns of {st['map_width']}"
    return f", a map wide: {st['refused']}" if st.get("refused") else ""


def _x(p: float) -> str:
    return "(no such resource)" if p == float("inf") else f"{p:.2f}x"


def _f(x) -> str:
    return "-" if x is None else f"{x:.3g}"


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
