"""Where dense segment-everything spends its time, before and after the split decoder (issue 16), against the
official ``SamAutomaticMaskGenerator`` on the same weights and image, in one run on one machine.

    .venv/bin/python -m bench.everything_breakdown [--models vit_t,default] [--threads 2] \
        [--out bench/results/everything_breakdown]

Models: ``vit_t`` = MobileSAM-size vit_t at 1024 with seeded random weights (``torch.manual_seed(0)``, the
model's own init), ``default`` = the bundled default checkpoint (256). Image: held-out synthetic image 0
(seed 1) at 640 x 640, cropped to 480 x 640 rows x cols. Per model, three dense runs with the same parameters
(``--points-per-side``, thresholds): the official generator (torch, ``torch.set_num_threads(threads)``), samfpga
with the single-graph decoder (``decoder.onnx``, the runtime before the split) and samfpga with the split
decoder; wall time of ``generate`` each, samfpga's seconds per stage (``samfpga.everything.timing``), and the
mask sets compared: before vs after exactly (same records), samfpga vs official by a one-to-one matching at mask
IoU >= 0.99 with the count equal (ONNX vs torch float32 may move a boundary pixel).
Per-prompt decoder time at ``--threads`` threads, batches of ``--batch`` single-point prompts, three masks each
upscaled to the image: single graph + upscaling ("before"), split prompt side + mask side + upscaling
("after", every prompt's masks wanted: the worst case), the split prompt side alone (a prompt whose masks
all fail the IoU filter), and the mask side and the upscaling of three masks apart; the variants alternate in
``--rounds`` rounds and the best round's median counts (the machine is shared).
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bench_image(seed: int = 1) -> np.ndarray:
    """(480, 640, 3) uint8: held-out synthetic image 0 at 640 x 640, top 480 rows."""
    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample

    return np.ascontiguousarray(generate_sample(seed, 0, SyntheticConfig(image_size=640)).image[:480])


def build_model(name: str):
    import torch

    from samfpga.assets import default_checkpoint
    from samfpga.models import build_sam

    if name == "vit_t":
        torch.manual_seed(0)
        return build_sam("vit_t").eval()
    if name == "default":
        return build_sam(checkpoint=default_checkpoint()).eval()
    raise ValueError(f"unknown model {name!r}: vit_t or default")


def official_sam(sam):
    """segment-anything's Sam around ``sam``'s image encoder, loaded with ``sam``'s prompt encoder and decoder."""
    from samfpga.models.official import segment_anything

    m = segment_anything().modeling
    pe, md = sam.prompt_encoder, sam.mask_decoder
    layer = md.transformer.layers[0]
    ref = m.Sam(
        image_encoder=sam.image_encoder,
        prompt_encoder=m.PromptEncoder(embed_dim=pe.embed_dim, image_embedding_size=tuple(pe.image_embedding_size),
                                       input_image_size=tuple(pe.input_image_size),
                                       mask_in_chans=pe.mask_downscaling[0].out_channels * 4),
        mask_decoder=m.MaskDecoder(
            num_multimask_outputs=md.num_multimask_outputs, transformer_dim=pe.embed_dim,
            transformer=m.TwoWayTransformer(depth=len(md.transformer.layers), embedding_dim=pe.embed_dim,
                                            mlp_dim=layer.mlp.lin1.out_features, num_heads=layer.self_attn.num_heads),
            iou_head_depth=len(md.iou_prediction_head.layers),
            iou_head_hidden_dim=md.iou_prediction_head.layers[0].out_features),
        pixel_mean=[float(v) for v in sam.pixel_mean.flatten()], pixel_std=[float(v) for v in sam.pixel_std.flatten()],
    )
    ref.load_state_dict(sam.state_dict())
    return ref.eval()


def match_records(ref: list[dict], got: list[dict]) -> dict:
    """Count equality and a greedy one-to-one matching of masks (IoU >= 0.99): matched pairs, exact pairs."""
    if not ref or not got:
        return {"ref": len(ref), "got": len(got), "matched": 0, "exact": 0, "same": len(ref) == len(got)}
    rm = np.stack([r["segmentation"] for r in ref]).reshape(len(ref), -1)
    gm = np.stack([g["segmentation"] for g in got]).reshape(len(got), -1)
    inter = gm.astype(np.float32) @ rm.T.astype(np.float32)
    union = gm.sum(1)[:, None] + rm.sum(1)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    used, matched, exact = set(), 0, 0
    for i in range(len(got)):
        j = int(np.argmax(iou[i]))
        if iou[i, j] >= 0.99 and j not in used:
            used.add(j)
            matched += 1
            exact += int(np.array_equal(gm[i], rm[j]))
    return {"ref": len(ref), "got": len(got), "matched": matched, "exact": exact,
            "same": len(ref) == len(got) == matched}


def same_records(a: list[dict], b: list[dict]) -> bool:
    """Identical record lists (masks equal, scores within float32 rounding of the two decoders)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if not np.array_equal(x["segmentation"], y["segmentation"]) or x["bbox"] != y["bbox"]:
            return False
        if abs(x["predicted_iou"] - y["predicted_iou"]) > 1e-4 or x["point_coords"] != y["point_coords"]:
            return False
    return True


def dense_runs(sam, bundle_dir: Path, image: np.ndarray, params: dict, threads: int) -> dict:
    """Official, samfpga single-graph and samfpga split dense runs: wall seconds, stages, masks, comparisons."""
    import torch

    from samfpga.bundle import load_bundle
    from samfpga.everything import AutomaticMaskGenerator
    from samfpga.models.official import segment_anything
    from samfpga.predictor import Predictor

    bundle = load_bundle(bundle_dir)
    single = Predictor.from_bundle(dataclasses.replace(bundle, decoder_split=None), threads=threads)
    split = Predictor.from_bundle(bundle, threads=threads)
    out = {}
    runs = {}
    for name, pred in (("samfpga_single_graph", single), ("samfpga_split", split)):
        gen = AutomaticMaskGenerator(pred, **params)
        t0 = time.perf_counter()
        recs = gen.generate(image)
        out[name] = {"wall_s": time.perf_counter() - t0, "masks": len(recs), "stages_s": gen.timings,
                     **gen.stats}
        runs[name] = recs
        print(name, json.dumps(out[name]), flush=True)
    ref_gen = segment_anything().SamAutomaticMaskGenerator(official_sam(sam), **params)
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = ref_gen.generate(image)
    out["official"] = {"wall_s": time.perf_counter() - t0, "masks": len(ref)}
    print("official", json.dumps(out["official"]), flush=True)
    out["split_vs_single_identical"] = same_records(runs["samfpga_single_graph"], runs["samfpga_split"])
    out["split_vs_official"] = match_records(ref, runs["samfpga_split"])
    out["split_over_official"] = out["samfpga_split"]["wall_s"] / out["official"]["wall_s"]
    out["single_over_official"] = out["samfpga_single_graph"]["wall_s"] / out["official"]["wall_s"]
    return out


def per_prompt(bundle_dir: Path, image: np.ndarray, threads: int, batch: int, repeats: int, rounds: int) -> dict:
    """ms per single-point prompt, three masks upscaled to ``image``'s size (see the module docstring)."""
    from samfpga.bundle import load_bundle
    from samfpga.decoder import OnnxDecoder
    from samfpga.decoder_prompts import decoder_prompts
    from samfpga.predictor import Predictor
    from samfpga.transforms import postprocess_masks

    bundle = load_bundle(bundle_dir)
    pred = Predictor.from_bundle(bundle, threads=threads)
    pred.set_image(image)
    split = pred.decoder
    single = OnnxDecoder(dataclasses.replace(bundle, decoder_split=None), threads)
    prepared = pred._decoder_image
    emb = pred.features
    rng = np.random.default_rng(0)
    h, w = pred.input_size
    coords = np.stack([rng.uniform(0, w, batch), rng.uniform(0, h, batch)], 1)[:, None].astype(np.float32)
    pc, pl = decoder_prompts(coords, np.ones((batch, 1)), None)

    def upscale(low):
        return postprocess_masks(low[:, 1:], pred.image_size, pred.input_size, pred.original_size)

    _, hyper_in, tokens = split._tokens(prepared, pc, pl)
    low = split._masks(tokens, hyper_in[:, 1:])
    variants = {
        "before_single_graph_plus_upscale": lambda: upscale(single(emb, pc, pl)[0]),
        "after_split_all_masks_plus_upscale": lambda: upscale(split(prepared, pc, pl)[0]),
        "after_split_prompt_side_only": lambda: split._tokens(prepared, pc, pl),
        # the two parts of a prompt whose masks are wanted, apart: decoder_masks.onnx for its three masks, and
        # their upscaling to the image (samfpga.transforms.postprocess_masks)
        "split_mask_side_three_masks": lambda: split._masks(tokens, hyper_in[:, 1:]),
        "upscale_three_masks": lambda: postprocess_masks(low, pred.image_size, pred.input_size, pred.original_size),
    }

    def timed(fn):
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    best = {k: float("inf") for k in variants}
    for _ in range(rounds):
        for k, fn in variants.items():
            best[k] = min(best[k], timed(fn))
    t0 = time.perf_counter()
    split.prepare(emb)
    image_side_ms = 1e3 * (time.perf_counter() - t0)
    res = {k: 1e3 * v / batch for k, v in best.items()}
    a, b = single(emb, pc, pl), split(prepared, pc, pl)
    scale = max(1.0, float(np.abs(a[0]).max()))
    return {"batch": batch, "repeats": repeats, "rounds": rounds, "threads": threads, "ms_per_prompt": res,
            "image_side_ms_per_image": image_side_ms,
            "speedup_all_masks": res["before_single_graph_plus_upscale"] / res["after_split_all_masks_plus_upscale"],
            "split_vs_single_max_abs_diff_logits": float(np.abs(a[0] - b[0]).max()),
            "split_vs_single_rel_diff_logits": float(np.abs(a[0] - b[0]).max()) / scale,
            "split_vs_single_max_abs_diff_iou": float(np.abs(a[1] - b[1]).max())}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="vit_t,default")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--points-per-batch", type=int, default=64)
    p.add_argument("--pred-iou-thresh", type=float, default=0.88)
    p.add_argument("--stability-score-thresh", type=float, default=0.95)
    p.add_argument("--batch", type=int, default=64, help="prompts per batch of the per-prompt timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip-dense", action="store_true", help="per-prompt timing only")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything_breakdown")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from samfpga.models.export import export_bundle

    torch.set_num_threads(args.threads)
    image = bench_image()
    params = dict(points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
                  pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh)
    result = {
        "command": "python -m bench.everything_breakdown " + " ".join(argv if argv is not None else os.sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average at start {os.getloadavg()[0]:.1f}",
        "image": "held-out synthetic image 0 (seed 1), 640x640, rows 0:480 -> 480x640", "params": params,
        "threads": args.threads, "models": {},
    }
    for name in args.models.split(","):
        sam = build_model(name)
        with tempfile.TemporaryDirectory() as tmp:
            bundle_dir = export_bundle(sam, Path(tmp) / "bundle", source=f"bench model {name}")
            entry = {"image_size": int(sam.img_size)}
            entry["per_prompt"] = per_prompt(bundle_dir, image, args.threads, args.batch, args.repeats, args.rounds)
            print(name, json.dumps(entry["per_prompt"]), flush=True)
            if not args.skip_dense:
                entry["dense"] = dense_runs(sam, bundle_dir, image, params, args.threads)
        result["models"][name] = entry
    result["load_average_at_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    from samfpga.everything.timing import STAGES

    lines = [f"# Segment-everything stage breakdown (issue 16)\n\n`{result['command']}`  \n{result['machine']}, "
             f"threads {result['threads']}; image: {result['image']}; params: {json.dumps(result['params'])}\n"]
    for name, e in result["models"].items():
        pp = e["per_prompt"]
        ms = pp["ms_per_prompt"]
        lines += [f"## {name} ({e['image_size']}²)\n",
                  f"Per prompt (batch {pp['batch']}, {pp['threads']} threads, 3 masks upscaled to 480x640):\n",
                  "| decoder | ms / prompt |", "|---|---|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in ms.items()]
        lines += [f"\nimage side once per image: {pp['image_side_ms_per_image']:.1f} ms; split vs single graph: "
                  f"max abs diff {pp['split_vs_single_max_abs_diff_logits']:.1e} on logits "
                  f"({pp['split_vs_single_rel_diff_logits']:.1e} relative to the largest), "
                  f"{pp['split_vs_single_max_abs_diff_iou']:.1e} on IoU\n"]
        d = e.get("dense")
        if d:
            a, b = d["samfpga_single_graph"], d["samfpga_split"]
            lines += ["Dense everything, wall seconds per stage:\n", "| stage | single graph | split |", "|---|---|---|"]
            for k in (*STAGES, "other", "total"):
                lines.append(f"| {k} | {a['stages_s'].get(k, 0.0):.2f} | {b['stages_s'].get(k, 0.0):.2f} |")
            m = d["split_vs_official"]
            lines += ["", f"- official SamAutomaticMaskGenerator: {d['official']['wall_s']:.1f} s, "
                          f"{d['official']['masks']} masks",
                      f"- samfpga single graph: {a['wall_s']:.1f} s ({d['single_over_official']:.3f}x official), "
                      f"{a['masks']} masks",
                      f"- samfpga split: {b['wall_s']:.1f} s (**{d['split_over_official']:.3f}x official**, target "
                      f"<= 0.15x), {b['masks']} masks; split == single graph records: "
                      f"{d['split_vs_single_identical']}; vs official: {m['matched']}/{m['ref']} matched at IoU "
                      f">= 0.99 ({m['exact']} pixel-identical), same set: {m['same']}",
                      f"- decoder prompts {b['decoder_prompts']} in {b['decoder_batches']} batches\n"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
