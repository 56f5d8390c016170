"""Benchmark segment-everything: dense (SamAutomaticMaskGenerator's grid) vs TinySAM hierarchical, and the host
ONNX decoder vs the official torch prompt encoder + mask decoder, on one machine in one run.

    .venv/bin/python -m bench.everything [--checkpoint CKPT] [--images 4] [--threads 1] [--out bench/results/everything]

Images: the synthetic benchmark generator (``samfpga.models.data.synthetic``, held-out seed 1, images 0..N-1).
Per image: decoder prompts and batches, wall time of ``generate`` (encoder included, once per generator),
mask count, and the fraction of dense masks recovered by hierarchical (a hierarchical mask with IoU >= 0.8).
Decoder latency: the same (B, 1 point) batch through the exported ``decoder.onnx`` (onnxruntime) and through
segment-anything's ``PromptEncoder`` + ``MaskDecoder`` loaded with the same weights (torch), low-res outputs
only; host and torch alternate in 5 rounds of 10 timed calls, and the best round median counts (the machine is
shared); per prompt. The outputs are compared as a sanity check.
Writes ``<out>.json`` and ``<out>.md`` (default out: bench/results/everything).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from samfpga.decoder_prompts import decoder_prompts

ROOT = Path(__file__).resolve().parents[1]


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, H, W), (M, H, W) bool -> (N, M) IoU."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return inter / np.maximum(union, 1)


def official_decoder(sam):
    """segment-anything's PromptEncoder + MaskDecoder with ``sam``'s prompt-encoder / mask-decoder weights."""
    from samfpga.models.official import segment_anything

    m = segment_anything().modeling
    pe, md = sam.prompt_encoder, sam.mask_decoder
    dim = pe.embed_dim
    layer = md.transformer.layers[0]
    prompt_encoder = m.PromptEncoder(embed_dim=dim, image_embedding_size=tuple(pe.image_embedding_size),
                                     input_image_size=tuple(pe.input_image_size),
                                     mask_in_chans=pe.mask_downscaling[0].out_channels * 4)
    mask_decoder = m.MaskDecoder(
        num_multimask_outputs=md.num_multimask_outputs,
        transformer=m.TwoWayTransformer(depth=len(md.transformer.layers), embedding_dim=dim,
                                        mlp_dim=layer.mlp.lin1.out_features, num_heads=layer.self_attn.num_heads),
        transformer_dim=dim, iou_head_depth=len(md.iou_prediction_head.layers),
        iou_head_hidden_dim=md.iou_prediction_head.layers[0].out_features)
    prompt_encoder.load_state_dict({k[len("prompt_encoder."):]: v for k, v in sam.state_dict().items()
                                    if k.startswith("prompt_encoder.")})
    mask_decoder.load_state_dict({k[len("mask_decoder."):]: v for k, v in sam.state_dict().items()
                                  if k.startswith("mask_decoder.")})
    return prompt_encoder.eval(), mask_decoder.eval()


def decoder_latency(sam, predictor, batch: int, repeats: int, rounds: int = 5) -> dict:
    import torch

    prompt_encoder, mask_decoder = official_decoder(sam)
    emb = predictor.get_image_embedding()
    rng = np.random.default_rng(0)
    s = predictor.image_size
    coords = rng.uniform(0, s, (batch, 1, 2)).astype(np.float32)
    pts, labels = decoder_prompts(coords, np.ones((batch, 1)), None)

    def host():
        return predictor.decoder(emb, pts, labels, None)

    temb = torch.from_numpy(emb)

    def ref():
        with torch.no_grad():
            sparse, dense = prompt_encoder(points=(torch.from_numpy(coords), torch.ones(batch, 1, dtype=torch.int)),
                                           boxes=None, masks=None)
            return mask_decoder(image_embeddings=temb, image_pe=prompt_encoder.get_dense_pe(),
                                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                multimask_output=True)

    def timed(fn):
        fn()
        fn()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    # interleave host and torch runs so machine-load drift hits both alike
    th, tt = [], []
    for _ in range(rounds):
        th.append(timed(host))
        tt.append(timed(ref))
    h_low, h_iou = host()
    r_low, r_iou = ref()
    return {
        "batch": batch, "repeats": repeats, "rounds": rounds, "host_onnx_ms_per_prompt": 1e3 * min(th) / batch,
        "torch_ms_per_prompt": 1e3 * min(tt) / batch, "host_over_torch": min(th) / min(tt),
        "max_abs_diff_low_res": float(np.abs(h_low[:, 1:] - r_low.numpy()).max()),
        "max_abs_diff_iou": float(np.abs(h_iou[:, 1:] - r_iou.numpy()).max()),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from samfpga.assets import default_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=default_checkpoint())
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--seed", type=int, default=1, help="synthetic split seed (1 = held-out)")
    p.add_argument("--points-per-side", type=int, default=32)
    p.add_argument("--points-per-batch", type=int, default=64)
    p.add_argument("--pred-iou-thresh", type=float, default=0.88)
    p.add_argument("--stability-score-thresh", type=float, default=0.95)
    p.add_argument("--high-score-thresh", type=float, default=8.5)
    p.add_argument("--box-nms-thresh", type=float, default=0.7)
    p.add_argument("--recover-iou", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime and torch threads")
    p.add_argument("--latency-batch", type=int, default=64)
    p.add_argument("--latency-repeats", type=int, default=10)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "everything")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import torch

    from samfpga.models import build_sam
    from samfpga.models.data.synthetic import SyntheticConfig, generate_sample
    from samfpga.models.export import export_bundle
    from samfpga.predictor import Predictor

    torch.set_num_threads(args.threads)
    sam = build_sam("vit_t", checkpoint=args.checkpoint).eval()
    common = dict(points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
                  pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
                  box_nms_thresh=args.box_nms_thresh)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = export_bundle(sam, Path(tmp) / "bundle", source=f"checkpoint {args.checkpoint}")
        predictor = Predictor.from_bundle(bundle, threads=args.threads)
        size = predictor.image_size
        for i in range(args.images):
            image = generate_sample(args.seed, i, SyntheticConfig(image_size=size)).image
            rows.append(compare_generators(predictor, image, common, args.high_score_thresh, args.recover_iou))
            rows[-1] = {"image": i, **rows[-1]}
            print(json.dumps(rows[-1]), flush=True)
        predictor.set_image(generate_sample(args.seed, 0, SyntheticConfig(image_size=size)).image)
        latency = decoder_latency(sam, predictor, args.latency_batch, args.latency_repeats)
        print(json.dumps(latency), flush=True)

    tot = {k: sum(r[k] for r in rows) for k in rows[0] if k != "image" and k != "hier_covered"}
    summary = {
        "prompt_ratio_dense_over_hier": tot["dense_prompts"] / max(tot["hier_prompts"], 1),
        "speedup_hier_over_dense": tot["dense_s"] / max(tot["hier_s"], 1e-9),
        "dense_masks": tot["dense_masks"], "hier_masks": tot["hier_masks"],
        "dense_recovered_fraction": (tot["dense_recovered"] / tot["dense_masks"]) if tot["dense_masks"] else None,
        "host_decoder_over_torch": latency["host_over_torch"],
    }
    result = {
        "command": "python -m bench.everything " + " ".join(argv if argv is not None else os.sys.argv[1:]),
        "checkpoint": str(args.checkpoint), "image_size": size, "images": args.images, "seed": args.seed,
        "params": dict(common, high_score_thresh=args.high_score_thresh, recover_iou=args.recover_iou),
        "threads": args.threads, "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus",
        "per_image": rows, "totals": tot, "summary": summary, "decoder_latency": latency,
    }
    md = markdown(result, args.recover_iou)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(Path(f"{args.out}.json"), json.dumps(result, indent=2))
    _write_atomically(Path(f"{args.out}.md"), "\n".join(md))
    print("\n".join(md[-6:]))
    return 0


def compare_generators(predictor, image: np.ndarray, common: dict, high_score_thresh: float,
                       recover_iou: float) -> dict:
    """Dense and hierarchical generation on one image: prompts, batches, seconds, masks, dense masks recovered."""
    from samfpga.everything import AutomaticMaskGenerator, HierarchicalMaskGenerator

    dense = AutomaticMaskGenerator(predictor, **common)
    t0 = time.perf_counter()
    d = dense.generate(image)
    t1 = time.perf_counter()
    hier = HierarchicalMaskGenerator(predictor, high_score_thresh=high_score_thresh, **common)
    h = hier.generate(image)
    t2 = time.perf_counter()
    dm = np.stack([r["segmentation"] for r in d]) if d else np.zeros((0, *image.shape[:2]), bool)
    hm = np.stack([r["segmentation"] for r in h]) if h else np.zeros((0, *image.shape[:2]), bool)
    iou = mask_iou(dm, hm)
    recovered = int((iou.max(1) >= recover_iou).sum()) if len(dm) and len(hm) else 0
    return {
        "dense_prompts": dense.stats["decoder_prompts"],
        "dense_batches": dense.stats["decoder_batches"], "dense_s": t1 - t0, "dense_masks": len(d),
        "hier_prompts": hier.stats["decoder_prompts"], "hier_batches": hier.stats["decoder_batches"],
        "hier_round2_prompts": hier.stats["round2_prompts"], "hier_covered": hier.stats["covered_fraction"],
        "hier_s": t2 - t1, "hier_masks": len(h), "dense_recovered": recovered,
    }


def markdown(result: dict, recover_iou: float) -> list[str]:
    """The lines of ``<out>.md``: per-image table and the summary against the issue's targets."""
    rows, summary, latency = result["per_image"], result["summary"], result["decoder_latency"]
    md = [
        f"# Segment-everything benchmark\n\n`{result['command']}`  \nmodel: `{result['checkpoint']}` "
        f"(image size {result['image_size']}), {result['images']} synthetic images (seed {result['seed']}), "
        f"threads {result['threads']}, {result['machine']}\n",
        f"params: {json.dumps(result['params'])}\n",
        "| image | dense prompts | dense s | dense masks | hier prompts (round 2) | covered | hier s | hier masks "
        "| dense recovered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(f"| {r['image']} | {r['dense_prompts']} | {r['dense_s']:.2f} | {r['dense_masks']} | "
                  f"{r['hier_prompts']} ({r['hier_round2_prompts']}) | {r['hier_covered']:.2f} | {r['hier_s']:.2f} | "
                  f"{r['hier_masks']} | {r['dense_recovered']}/{r['dense_masks']} |")
    rec = summary["dense_recovered_fraction"]
    md += [
        "",
        f"- decoder prompts dense / hierarchical: **{summary['prompt_ratio_dense_over_hier']:.2f}x** (target >= 2x)",
        f"- wall time dense / hierarchical: **{summary['speedup_hier_over_dense']:.2f}x** (target >= 1.8x)",
        f"- dense masks recovered by hierarchical at IoU >= {recover_iou}: "
        + (f"**{100 * rec:.1f}%**" if rec is not None else "n/a (dense found no masks)") + " (target >= 95%)",
        f"- decoder latency per prompt (batch {latency['batch']}): host ONNX "
        f"{latency['host_onnx_ms_per_prompt']:.3f} ms, official torch {latency['torch_ms_per_prompt']:.3f} ms, "
        f"host / torch **{latency['host_over_torch']:.2f}** (target <= 1); outputs max abs diff "
        f"{latency['max_abs_diff_low_res']:.1e} (logits), {latency['max_abs_diff_iou']:.1e} (IoU)",
        "",
    ]
    return md


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
