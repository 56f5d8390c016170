"""``samfpga`` command line: segment, everything, and the development subcommands (dispatched lazily).

    samfpga segment IMAGE [--point X,Y[,LABEL]]... [--box X0,Y0,X1,Y1] [--multimask] --out DIR
    samfpga everything IMAGE --mode dense|hierarchical|proposals --out DIR
    samfpga deploy BUILD_DIR --out PKG | samfpga deploy --check PKG
    samfpga track VIDEO --point F,X,Y[,OBJ] | --box F,X0,Y0,X1,Y1[,OBJ] | --mask F,PNG[,OBJ] --out DIR
    samfpga eval|train|build-hw|stats|export ...   (need the development environment)

Model: the bundled default, unless ``--model DIR`` (an exported bundle) or ``--checkpoint FILE`` (official
layout or samfpga checkpoint; needs torch, exported to a temporary bundle) or ``--deploy PKG`` (a deployment
package: its bundle, with ``--backend quant|pynq|pynq-sim|onnx``, default quant). Every error is one line on
stderr with exit status 2, and no output file is left behind: results are written into a temporary
directory next to ``--out`` and moved into place only when everything succeeded.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__
from .assets import default_bundle_dir
from .backends import PACKAGE_BACKENDS, BackendError, available_backends
from .bundle import BundleError, load_bundle
from .image_io import ImageError, read_image, write_png
from .predictor import Predictor
from .video.track import add_parser as _add_track_parser
from .viz import overlay

# subcommand -> module whose main(argv) implements it (owned by the development side)
DISPATCH = {
    "eval": "samfpga.models.evaluate",
    "train": "samfpga.models.training.cli",
    "build-hw": "samfpga.hw.build_cli",
    "plan-hw": "samfpga.hw.plan.__main__",
    "stats": "samfpga.models.stats",
    "export": "samfpga.models.export.cli",
}


class CliError(Exception):
    """A user error; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------ parsing
def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    parts = text.split(",")
    if len(parts) not in count:
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: expected {' or '.join(map(str, count))} "
                                         f"comma-separated numbers")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: not numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"malformed {what} {text!r}: not finite")
    return values


def parse_point(text: str) -> tuple[float, float, int]:
    """'X,Y' or 'X,Y,LABEL' (LABEL 1 foreground, default; 0 background)."""
    v = _numbers(text, (2, 3), "point")
    label = 1 if len(v) == 2 else v[2]
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"malformed point {text!r}: label must be 1 (foreground) or 0 (background)")
    return v[0], v[1], int(label)


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'X0,Y0,X1,Y1' with X0 < X1 and Y0 < Y1."""
    x0, y0, x1, y1 = _numbers(text, (4,), "box")
    if not (x0 < x1 and y0 < y1):
        raise argparse.ArgumentTypeError(f"malformed box {text!r}: need X0 < X1 and Y0 < Y1")
    return x0, y0, x1, y1


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed integer {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be positive")
    return v


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"malformed number {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be in [0, 1]")
    return v


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", type=Path, help="exported bundle directory (default: the bundled default model)")
    g.add_argument("--checkpoint", type=Path, help="official-layout or samfpga checkpoint (needs torch)")
    g.add_argument("--deploy", type=Path, metavar="PKG",
                   help="deployment package (samfpga deploy); --backend quant (default), pynq, pynq-sim or onnx")
    p.add_argument("--variant", default="vit_t", help="architecture of an official-layout --checkpoint (default vit_t)")
    p.add_argument("--backend", default=None, help=f"encoder backend (available: {', '.join(available_backends())})")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its default)")
    p.add_argument("--convert", action="store_true",
                   help="convert grayscale/palette/alpha/16-bit images to 8-bit RGB instead of refusing them")
    p.add_argument("--out", type=Path, required=True, help="output directory")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="samfpga", description="Segment Anything on the samfpga host runtime.")
    p.add_argument("--version", action="version", version=f"samfpga {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    seg = sub.add_parser("segment", help="masks for point/box prompts")
    seg.add_argument("image", type=Path)
    seg.add_argument("--point", type=parse_point, action="append", default=[], metavar="X,Y[,LABEL]",
                     help="prompt point in image pixels; LABEL 1 foreground (default) or 0 background; repeatable "
                          "(write --point=X,Y when X is negative)")
    seg.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="prompt box in image pixels")
    seg.add_argument("--multimask", action="store_true", help="write the three multimask outputs instead of one")
    _add_model_options(seg)
    ev = sub.add_parser("everything", help="segment everything (COCO-RLE JSON + overlay)")
    ev.add_argument("image", type=Path)
    ev.add_argument("--mode", choices=["dense", "hierarchical", "proposals"], default="hierarchical")
    ev.add_argument("--points-per-side", type=_positive_int, default=32)
    ev.add_argument("--points-per-batch", type=_positive_int, default=64)
    ev.add_argument("--pred-iou-thresh", type=_fraction, default=0.88)
    ev.add_argument("--stability-score-thresh", type=_fraction, default=0.95)
    ev.add_argument("--crop-n-layers", type=int, default=0, help="dense mode only")
    ev.add_argument("--proposal-head", type=Path,
                    help="proposals mode: the head's ONNX file (default: proposals.onnx in the model bundle)")
    ev.add_argument("--proposal-score-thresh", type=_fraction, default=0.2,
                    help="proposals mode: centre probability a proposal needs")
    ev.add_argument("--proposal-max-prompts", type=_positive_int,
                    help="proposals mode: decoder prompts per image at most, the head's (snapped to the dense grid) "
                         "and the second pass's together (default 120; samfpga.everything.refine)")
    ev.add_argument("--proposal-rounds", type=_positive_int,
                    help="proposals mode: second-pass rounds; later rounds prompt the neighbours of new "
                         "NMS suppressors (default 1; 10 with --proposal-max-prompts 400: more recovered, more "
                         "prompts, docs/everything_speed.md)")
    ev.add_argument("--proposal-first-pass", choices=["points", "cells"],
                    help="proposals mode: the head's points snapped to the dense grid (default), or every dense grid "
                         "point of the head's best cells (--proposal-score-thresh, --proposal-max-cells)")
    ev.add_argument("--proposal-max-cells", type=_positive_int,
                    help="proposals mode, --proposal-first-pass cells: cells at most (default 25: 100 prompts)")
    ev.add_argument("--no-proposal-refine", action="store_true",
                    help="proposals mode: the head's points only, as they are: no grid snapping, no second pass")
    ev.add_argument("--min-mask-region-area", type=int, default=0)
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--timings", action="store_true",
                    help="print seconds per stage (encoder, decoder, upscale, filters, rle, nms, ...)")
    _add_model_options(ev)
    sub.add_parser("deploy", help="make (BUILD_DIR --out PKG) or check (--check PKG) a deployment package",
                   add_help=False)
    _add_track_parser(sub)
    for name, module in DISPATCH.items():
        sub.add_parser(name, help=f"(development environment) runs {module}", add_help=False)
    return p


# ------------------------------------------------------------------- model
@contextmanager
def _model(args: argparse.Namespace) -> Iterator[Predictor]:
    if args.checkpoint is not None:
        with tempfile.TemporaryDirectory(prefix="samfpga-export-") as tmp:
            bundle = _export_checkpoint(args.checkpoint, args.variant, Path(tmp) / "bundle")
            yield _predictor(bundle, args)
        return
    if args.deploy is not None:
        from .deploy import DeployError

        try:
            yield Predictor.from_deploy(args.deploy, backend=args.backend or "quant", threads=args.threads)
        except DeployError as err:
            raise CliError(str(err)) from None
        return
    if args.backend in PACKAGE_BACKENDS:
        raise CliError(f"--backend {args.backend} runs a deployment package: add --deploy PKG (samfpga deploy)")
    path = args.model if args.model is not None else default_bundle_dir()
    if path is None:
        raise CliError("no bundled default model (samfpga/assets/default/bundle.json is missing); "
                       "pass --model DIR or --checkpoint FILE")
    yield _predictor(path, args)


def _predictor(path: Path, args: argparse.Namespace) -> Predictor:
    bundle = load_bundle(path)
    return Predictor.from_bundle(bundle, backend=args.backend or "onnx", threads=args.threads)


def _export_checkpoint(checkpoint: Path, variant: str, out: Path) -> Path:
    if not checkpoint.is_file():
        raise CliError(f"{checkpoint}: no such checkpoint file")
    try:
        from samfpga.models.build import build_sam
        from samfpga.models.export import export_bundle  # needs torch
    except ImportError as err:
        raise CliError(f"--checkpoint needs the development environment with torch ({err}); "
                       f"export a bundle there with 'samfpga export' and pass --model") from None
    try:
        sam = build_sam(variant, checkpoint=checkpoint)
    except Exception as err:  # CheckpointError, unknown variant, wrong architecture: one line for the user
        raise CliError(" ".join(str(err).split())) from None
    return export_bundle(sam, out, source=f"checkpoint {checkpoint.name}")


# ------------------------------------------------------------------ output
@contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """A temporary directory next to ``out``; its files move into ``out`` only if the block succeeds."""
    parent = out.resolve().parent
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: exists and is not a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as err:
        raise CliError(f"--out {out}: cannot create output directory ({err.strerror})") from None
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, bytes):
        return o.decode("ascii")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")


def _note(msg: str | None) -> None:
    if msg:
        print(f"samfpga: note: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- commands
def check_prompt(points: Sequence[tuple[float, float, int]], box: Sequence[float] | None,
                 size: tuple[int, int], image: Path) -> None:
    """Refuse an empty prompt and points/boxes outside the (H, W) image."""
    h, w = size
    if not points and box is None:
        raise CliError("empty prompt: give at least one --point X,Y[,LABEL] or a --box X0,Y0,X1,Y1")
    for x, y, _ in points:
        if not (0 <= x < w and 0 <= y < h):
            raise CliError(f"point ({x:g}, {y:g}) is outside the image {image} ({w}x{h} pixels: 0 <= x < {w}, "
                           f"0 <= y < {h})")
    if box is not None:
        x0, y0, x1, y1 = box
        if not (0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h):
            raise CliError(f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is outside the image {image} ({w}x{h} pixels)")


def cmd_segment(args: argparse.Namespace) -> int:
    image, note = read_image(args.image, convert=args.convert)
    check_prompt(args.point, args.box, image.shape[:2], args.image)
    _note(note)
    points = np.array([p[:2] for p in args.point], dtype=np.float64).reshape(-1, 2) if args.point else None
    labels = np.array([p[2] for p in args.point], dtype=np.int64) if args.point else None
    box = np.array(args.box, dtype=np.float64) if args.box is not None else None
    with staged_output(args.out) as tmp, _model(args) as predictor:
        t0 = time.perf_counter()
        predictor.set_image(image)
        t1 = time.perf_counter()
        masks, scores, _ = predictor.predict(point_coords=points, point_labels=labels, box=box,
                                             multimask_output=args.multimask)
        t2 = time.perf_counter()
        best = int(np.argmax(scores))
        records = []
        for i, m in enumerate(masks):
            name = f"mask_{i}.png"
            write_png(tmp / name, m)
            records.append({"file": name, "iou_prediction": float(scores[i]), "area": int(m.sum())})
        write_png(tmp / "overlay.png", overlay(image, masks[best:best + 1], points, labels, box))
        _write_json(tmp / "scores.json", {
            "image": str(args.image), "image_size": list(image.shape[:2]), "model": predictor.bundle.source,
            "prompt": {"points": [] if points is None else points.tolist(),
                       "labels": [] if labels is None else labels.tolist(), "box": args.box},
            "multimask": bool(args.multimask), "best": best, "masks": records,
            "timings_s": {"set_image": t1 - t0, "predict": t2 - t1}, "note": note,
        })
    print(f"{args.out}: {len(records)} mask(s), best #{best} iou_prediction {float(scores[best]):.3f} "
          f"(set_image {t1 - t0:.3f} s, predict {t2 - t1:.3f} s)")
    return 0


def cmd_everything(args: argparse.Namespace) -> int:
    image, note = read_image(args.image, convert=args.convert)
    _note(note)
    try:
        everything = importlib.import_module("samfpga.everything")
    except ImportError as err:
        raise CliError(f"segment-everything is not available: samfpga.everything cannot be imported ({err})") from None
    try:
        from pycocotools import mask as mask_utils
    except ImportError:
        raise CliError("everything needs pycocotools for COCO RLE output (pip install pycocotools)") from None
    params: dict[str, Any] = dict(
        points_per_side=args.points_per_side, points_per_batch=args.points_per_batch,
        pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
        min_mask_region_area=args.min_mask_region_area, output_mode="coco_rle",
    )
    if args.mode == "dense":
        cls = everything.AutomaticMaskGenerator
        params["crop_n_layers"] = args.crop_n_layers
    else:
        if args.crop_n_layers:
            raise CliError("--crop-n-layers applies to --mode dense only")
        cls = everything.HierarchicalMaskGenerator
    if args.mode == "proposals":
        cls = everything.ProposalMaskGenerator
        del params["points_per_side"]
        refine = {k: v for k, v in (("max_prompts", args.proposal_max_prompts),
                                    ("rounds", args.proposal_rounds),
                                    ("first_pass", args.proposal_first_pass),
                                    ("max_cells", args.proposal_max_cells)) if v is not None}
        params.update(head=None if args.proposal_head is None else str(args.proposal_head),
                      score_thresh=args.proposal_score_thresh,
                      refine=None if args.no_proposal_refine else everything.RefineConfig(**refine))
        if args.no_proposal_refine and args.proposal_max_prompts is not None:
            raise CliError("--proposal-max-prompts bounds the second pass: it does not go with --no-proposal-refine")
        if args.no_proposal_refine and args.proposal_rounds is not None:
            raise CliError("--proposal-rounds sets the second pass: it does not go with --no-proposal-refine")
        if args.no_proposal_refine and (args.proposal_first_pass or args.proposal_max_cells) is not None:
            raise CliError("--proposal-first-pass / --proposal-max-cells set the grid-snapped passes: they do not go "
                           "with --no-proposal-refine")
        if args.proposal_max_cells is not None and args.proposal_first_pass != "cells":
            raise CliError("--proposal-max-cells applies to --proposal-first-pass cells only")
    else:
        given = [name for name, value in (("--proposal-head", args.proposal_head),
                                          ("--proposal-max-prompts", args.proposal_max_prompts),
                                          ("--proposal-rounds", args.proposal_rounds),
                                          ("--proposal-first-pass", args.proposal_first_pass),
                                          ("--proposal-max-cells", args.proposal_max_cells),
                                          ("--no-proposal-refine", args.no_proposal_refine or None)) if value is not None]
        if given:
            raise CliError(f"{', '.join(given)} applies to --mode proposals only")
    with staged_output(args.out) as tmp, _model(args) as predictor:
        batches = []
        predictor.batch_callbacks.append(batches.append)
        try:
            # the generators draw the tqdm bar over prompt batches themselves (they know the total)
            if args.mode == "proposals":  # a few prompt batches: no progress bar
                generator = cls(predictor, **params)
            else:
                generator = cls(predictor, progress=not args.no_progress, **params)
        except (ValueError, FileNotFoundError) as err:
            raise CliError(f"everything: {err}") from None
        t0 = time.perf_counter()
        records = generator.generate(image)
        t1 = time.perf_counter()
        records = sorted(records, key=lambda r: -int(r["area"]))
        with warnings.catch_warnings():  # pycocotools' __array__ under numpy 2 (dev env) warns, harmlessly
            warnings.simplefilter("ignore", DeprecationWarning)
            masks = [mask_utils.decode(r["segmentation"]).astype(bool) for r in records]
        write_png(tmp / "overlay.png", overlay(image, masks) if masks else image)
        _write_json(tmp / "masks.json", {
            "image": str(args.image), "image_size": list(image.shape[:2]), "model": predictor.bundle.source,
            "mode": args.mode, "params": params, "decoder_batches": len(batches), "decoder_prompts": sum(batches),
            "generator_stats": getattr(generator, "stats", {}), "time_s": t1 - t0,
            "timings_s": getattr(generator, "timings", {}), "annotations": records,
            "note": note,
        })
    if args.timings:
        from .everything.timing import format_table

        print(format_table(generator.timings))
    print(f"{args.out}: {len(records)} masks ({args.mode}, {len(batches)} decoder batches, {t1 - t0:.2f} s)")
    return 0


def cmd_track(args: argparse.Namespace) -> int:
    """Video tracking (samfpga.video.track): masks, COCO-RLE per frame, overlay GIF, summary.json."""
    from .video.track import TrackError, run_track

    try:
        with staged_output(args.out) as tmp:
            summary = run_track(args, tmp)
            _write_json(tmp / "summary.json", summary)
    except TrackError as err:
        raise CliError(str(err)) from None
    print(f"{args.out}: {len(summary['objects'])} object(s) over {summary['tracked_frames']} frame(s), "
          f"{summary['mean_frame_s']:.3f} s/frame")
    return 0


def _dispatch(name: str, argv: list[str]) -> int:
    module = DISPATCH[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise CliError(f"'samfpga {name}' is not available here: {module} cannot be imported ({err}); it needs "
                       f"the development environment (.venv)") from None
    if not hasattr(mod, "main"):
        raise CliError(f"'samfpga {name}': {module} has no main(argv)")
    rc = mod.main(argv)
    return int(rc or 0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in DISPATCH:
            return _dispatch(argv[0], argv[1:])
        if argv and argv[0] == "deploy":
            from .deploy.cli import main as deploy_main

            return deploy_main(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # argparse: --help, --version, usage errors
            return int(e.code or 0) if not isinstance(e.code, str) else 2
        return {"segment": cmd_segment, "everything": cmd_everything, "track": cmd_track}[args.command](args)
    except (CliError, ImageError, BundleError, BackendError) as err:
        print(f"samfpga: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samfpga: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
