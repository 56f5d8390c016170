"""Peak memory and wall time of dense segment-everything with the decoder run in bounded runs of prompts against one
run per prompt batch (issue 16; ``samfpga.decoder.OnnxDecoder.prompts_per_run``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.decoder_memory [--threads 2] [--budgets 1024,0] \
        [--out bench/results/decoder_memory]

Model: MobileSAM-size vit_t at 1024² with seeded weights (``bench.everything_breakdown.build_model``), exported to
a temporary bundle; image: the breakdown bench's 480 x 640 held-out synthetic image. Two cases, each run once per
budget in a fresh process (peak resident memory is per process): ``no_masks`` (32 x 32 grid, the default
thresholds: with these weights no mask passes the IoU filter, so the decoder's prompt side is all the work) and
``all_masks`` (8 x 8 grid, IoU and stability thresholds 0: every prompt's three masks go through the mask side
and the upscaling). Budget 0 means unbounded: one run per prompt batch of 64, the decoder before this change.
Reported per run: peak RSS of the process (``ru_maxrss``), its growth during ``generate``, wall seconds of
``generate``, and whether the records equal those of the first budget (same masks, same order). Writes
``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {"no_masks": {"points_per_side": 32, "pred_iou_thresh": 0.88, "stability_score_thresh": 0.95},
         "all_masks": {"points_per_side": 8, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}}


def child(bundle: Path, case: str, budget: float, threads: int, records_out: Path) -> dict:
    """One generate() in this process: peak RSS, wall time; the records' RLE and scores saved for comparison."""
    from bench.everything_breakdown import bench_image
    from samfpga.bundle import load_bundle
    from samfpga.decoder import prompts_per_run
    from samfpga.everything.dense import AutomaticMaskGenerator
    from samfpga.predictor import Predictor

    b = load_bundle(bundle)
    pred = Predictor.from_bundle(b, threads=threads)
    if budget > 0:
        pred.decoder.prompts_per_run = prompts_per_run(tuple(b.embedding_shape), budget)
    else:
        pred.decoder.prompts_per_run = 1 << 30
    gen = AutomaticMaskGenerator(pred, points_per_batch=64, output_mode="coco_rle", **CASES[case])
    image = bench_image()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    records = gen.generate(image)
    wall = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records_out.write_text(json.dumps([{"rle": r["segmentation"], "iou": round(float(r["predicted_iou"]), 6),
                                        "stability": round(float(r["stability_score"]), 6)} for r in records]))
    return {"case": case, "budget_mb": budget, "prompts_per_run": min(pred.decoder.prompts_per_run, 64),
            "wall_s": wall, "peak_rss_mb": rss1 / 1024, "rss_growth_mb": (rss1 - rss0) / 1024,
            "masks": len(records), "decoder_runs": pred.decoder.calls}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budgets", default="1024,0", help="MB per decoder run; 0 = unbounded (one run per batch)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decoder_memory")
    p.add_argument("--child", nargs=4, metavar=("BUNDLE", "CASE", "BUDGET", "RECORDS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        bundle, case, budget, rec = args.child
        print(json.dumps(child(Path(bundle), case, float(budget), args.threads, Path(rec))))
        return 0

    import torch

    from bench.everything_breakdown import build_model
    from samfpga.models.export import export_bundle

    budgets = [float(x) for x in args.budgets.split(",")]
    result = {"command": "python -m bench.decoder_memory " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average at start {os.getloadavg()[0]:.1f}",
              "threads": args.threads, "cases": CASES, "runs": []}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(ROOT / d) for d in ("sw", "models", "hw", ".")))
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        bundle = export_bundle(build_model("vit_t"), Path(tmp) / "bundle", source="bench model vit_t")
        for case in CASES:
            first = None
            for budget in budgets:
                rec = Path(tmp) / f"{case}_{budget}.json"
                out = subprocess.run([sys.executable, "-m", "bench.decoder_memory", "--threads", str(args.threads),
                                      "--child", str(bundle), case, str(budget), str(rec)],
                                     cwd=ROOT, env=env, capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                records = json.loads(rec.read_text())
                first = records if first is None else first
                row["records_equal_first_budget"] = records == first
                result["runs"].append(row)
                print(json.dumps(row), flush=True)
    result["load_average_at_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    lines = ["# Dense everything: decoder runs bounded by a memory budget vs one run per batch (issue 16)\n",
             f"`{result['command']}`  \n{result['machine']}, threads {result['threads']}; vit_t 1024² seeded, "
             "480x640 image, points_per_batch 64; cases: " + json.dumps(result["cases"]) + "\n",
             "| case | budget MB (0 = unbounded) | prompts per run | decoder runs | masks | generate s | peak RSS MB | "
             "RSS growth in generate MB | records equal |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['case']} | {r['budget_mb']:g} | {r['prompts_per_run']} | {r['decoder_runs']} | "
                     f"{r['masks']} | {r['wall_s']:.1f} | {r['peak_rss_mb']:,.0f} | {r['rss_growth_mb']:,.0f} | "
                     f"{r['records_equal_first_budget']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
