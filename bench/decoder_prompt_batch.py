"""Per-prompt time of the split decoder's prompt side against the prompt batch size (issue 16).

    PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.decoder_prompt_batch [--model vit_t] [--batches 1,4,16,64] \
        [--rounds 3] [--threads 2] [--profile-batch 16] [--out bench/results/decoder_prompt_batch]

The prompt side (``decoder_prompt.onnx``: per prompt, the two-way transformer with the image side given) holds
per-prompt image tokens (B, h*w, C): at vit_t 1024² 4 MB per prompt per tensor. If its time were bound by memory
traffic that misses the caches, small batches (one prompt's tensors fit the 4 MB L2) would be faster per prompt.
This bench times batches 1..64 interleaved (rounds x batches, the fastest round per batch; every batch runs 64
prompts per round) and profiles one batch by op type and by the tensor shapes the ops write, so the per-prompt cost
can be attributed to the (B, h*w, C) passes. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_t", help="vit_t (1024², seeded weights) or default (the bundled model)")
    p.add_argument("--batches", default="1,4,16,64")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile-batch", type=int, default=16)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "decoder_prompt_batch")
    args = p.parse_args(argv)

    from samfpga.bundle import load_bundle
    from samfpga.decoder_prompts import decoder_prompts
    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
    from samfpga.models.export import export_bundle
    from samfpga.predictor import Predictor

    from .decoder_int8 import session
    from .everything_breakdown import build_model

    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = export_bundle(build_model(args.model), Path(tmp) / "bundle", source=f"bench {args.model}")
        pred = Predictor.from_bundle(load_bundle(root), threads=args.threads)
        size = pred.image_size
        pred.set_image(generate_sample(1, 0, SyntheticConfig(image_size=size)).image)
        side = pred._decoder_image.side
        rng = np.random.default_rng(0)

        def feeds(b: int) -> dict:
            coords = rng.uniform(0, size, (b, 1, 2)).astype(np.float32)
            pc, pl = decoder_prompts(coords, np.ones((b, 1)), None)
            return dict(side, point_coords=pc, point_labels=pl)

        sess = session(root / "decoder_prompt.onnx", args.threads)
        ms: dict[int, list[float]] = {b: [] for b in batches}
        for _ in range(args.rounds):
            for b in batches:
                fp = feeds(b)
                sess.run(None, fp)
                n = max(1, 64 // b)
                t0 = time.perf_counter()
                for _ in range(n):
                    sess.run(None, fp)
                ms[b].append((time.perf_counter() - t0) / (n * b) * 1e3)
        prof = session(root / "decoder_prompt.onnx", args.threads, profile=str(Path(tmp) / "prof"))
        fp = feeds(args.profile_batch)
        runs = 3
        for _ in range(runs + 1):
            prof.run(None, fp)
        events = json.loads(Path(prof.end_profiling()).read_text())
    by_op: collections.Counter = collections.Counter()
    by_shape: collections.Counter = collections.Counter()
    tokens = pred.image_size // 16
    big = [args.profile_batch, tokens * tokens]
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            by_op[e["args"]["op_name"]] += e["dur"]
            shape = next(iter(e["args"]["output_type_shape"][0].values())) if e["args"].get("output_type_shape") \
                else []
            # ops that write per-prompt image tokens (B, h*w, C) vs everything else
            by_shape["(B, h*w, C) image tokens" if shape[:2] == big and len(shape) == 3 and shape[2] > 64
                     else "other"] += e["dur"]
    total = sum(by_op.values())
    result = {
        "command": "python -m bench.decoder_prompt_batch " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
        "model": args.model, "threads": args.threads,
        "ms_per_prompt": {str(b): min(v) for b, v in ms.items()}, "ms_per_prompt_rounds": {str(b): v for b, v in
                                                                                         ms.items()},
        "profile_batch": args.profile_batch,
        "profile_share_by_op": {k: v / total for k, v in by_op.most_common()},
        "profile_share_by_output": {k: v / total for k, v in by_shape.most_common()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# Split decoder, prompt side: ms per prompt against the batch size (issue 16)", "",
          f"`{result['command']}`  ", f"{result['machine']}; model {args.model}; {args.threads} threads; fastest of "
          f"{args.rounds} interleaved rounds", "", "| batch | " + " | ".join(str(b) for b in batches) + " |",
          "|---|" + "---|" * len(batches),
          "| ms per prompt | " + " | ".join(f"{min(ms[b]):.2f}" for b in batches) + " |", "",
          f"Profile at batch {args.profile_batch} (onnxruntime kernel time):", "",
          "| op type | share |", "|---|---|"]
    md += [f"| {k} | {100 * v:.1f}% |" for k, v in result["profile_share_by_op"].items() if v >= 0.005]
    md += ["", "| ops writing | share |", "|---|---|"]
    md += [f"| {k} | {100 * v:.1f}% |" for k, v in result["profile_share_by_output"].items()]
    Path(f"{args.out}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
