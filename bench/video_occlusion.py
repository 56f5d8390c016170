"""Where video tracking loses: frames where the object is present vs absent (issue 13).

    PYTHONPATH=sw:models:hw .venv/bin/python bench/video_occlusion.py [--bundle sw/samfpga/assets/video_default] \
        [--videos 10] [--frames 16] [--out bench/results/video_occlusion]

The evaluator of `samfpga eval --video` (held-out synthetic videos, seed 1, first-frame ground-truth mask prompts,
``samfpga.models.video.evaluate.track_video``), per object and frame after the first: J (``j_measure``; 1 when the
object is absent and the prediction empty) on frames where the object is present and where it is absent, the share
of absent frames predicted empty, and the sequence J&F as evaluated and with the absent frames' predictions replaced
by empty masks (perfect occlusion: what a perfect object-score head would add). Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=ROOT / "sw/samfpga/assets/video_default")
    ap.add_argument("--videos", type=int, default=10)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-area", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/video_occlusion")
    args = ap.parse_args(argv)

    from samfpga.models.video.evaluate import held_out_videos, track_video
    from samfpga.video.metrics import j_measure, sequence_j_and_f
    from samfpga.video.predictor import VideoPredictor

    pred = VideoPredictor.from_bundle(args.bundle, threads=1)
    j = {"present": [], "absent": []}
    absent_empty = []
    seq, seq_oracle = [], []
    for _, frames, gts in held_out_videos(args.videos, args.frames, args.seed, 256, args.min_area):
        out = track_video(pred, frames, list(gts[0]))
        for t in range(1, len(gts)):
            for k in range(gts.shape[1]):
                present = bool(gts[t, k].any())
                j["present" if present else "absent"].append(j_measure(out[t, k], gts[t, k]))
                if not present:
                    absent_empty.append(not out[t, k].any())
        seq.append(sequence_j_and_f(out, gts)["J&F"])
        perfect = out.copy()
        perfect[~gts.any(axis=(2, 3))] = False
        seq_oracle.append(sequence_j_and_f(perfect, gts)["J&F"])
    res = {"command": "python bench/video_occlusion.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "bundle": str(args.bundle), "videos": len(seq), "frames": args.frames, "seed": args.seed,
           "present_frames": len(j["present"]), "absent_frames": len(j["absent"]),
           "mean_j_present": float(np.mean(j["present"])), "mean_j_absent": float(np.mean(j["absent"])),
           "absent_predicted_empty": float(np.mean(absent_empty)) if absent_empty else None,
           "j_and_f": float(np.mean(seq)), "j_and_f_perfect_occlusion": float(np.mean(seq_oracle))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    md = ["# Video tracking: present vs absent frames (issue 13)", "", f"`{res['command']}`  ",
          f"bundle {res['bundle']}; {res['videos']} held-out videos (seed {res['seed']}) x {res['frames']} frames", "",
          "| figure | value |", "|---|---|",
          f"| object-frames present / absent (after frame 0) | {res['present_frames']} / {res['absent_frames']} |",
          f"| mean J, present frames | {res['mean_j_present']:.3f} |",
          f"| mean J, absent frames (= share predicted empty) | {res['mean_j_absent']:.3f} |",
          f"| J&F as evaluated | {res['j_and_f']:.3f} |",
          f"| J&F with perfect occlusion (absent frames emptied) | {res['j_and_f_perfect_occlusion']:.3f} |"]
    Path(f"{args.out}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
