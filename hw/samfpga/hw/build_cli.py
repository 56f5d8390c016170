"""``samfpga build-hw``: quantized encoder -> FINN dataflow build for a board -> DIR/report.json + DIR/report.md.

    samfpga build-hw --board kv260 --out out/hw/kv260                     # bundled default model, W8A8
    samfpga build-hw --board zcu104 --checkpoint ckpt.pt --bits 6 --out DIR
    samfpga build-hw --board vck190 --model enc_w8a8.onnx --target-fps 30 --out DIR
    samfpga build-hw --engine --board kv260 --graph GRAPH_DIR --variant vit_t --image-size 1024 --out DIR
The folding (parallelism per layer) and memory styles are searched for the highest throughput that fits the board
as one pipeline within --fit-limit of every resource (--target-fps caps it). One line per step on screen; library
messages go to DIR/build.log; the last lines give the fit verdict and the path of report.md. Without Vivado the
build runs every step that does not need it and stops with a message saying what it produced.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from samfpga.assets import DEFAULT_DIR
from samfpga.hw.boards import BOARDS

DEFAULT_CHECKPOINT = DEFAULT_DIR / "checkpoint.pt"


def quantize_checkpoint(checkpoint: str | Path, bits: int, out_onnx: Path, calib_images: int = 8,
                        int_norm: bool = True, bias_on_grid: bool = True) -> Path:
    """PTQ-quantize a checkpoint's encoder with samfpga.models.quant (W``bits``A``bits``; ``int_norm``: integer
    LayerNorm / softmax, ``QuantConfig.int_norm``; ``bias_on_grid``: integer biases, ``QuantConfig.bias_on_grid``,
    so the requantizers after Linear/Conv layers become arithmetic Requant) and export QONNX."""
    import torch

    from samfpga.models.quant import QuantConfig, calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import load_model, synthetic_images

    torch.set_num_threads(1)
    sam = load_model(checkpoint)
    q = quantize_encoder(sam.image_encoder, QuantConfig(weight_bits=bits, act_bits=bits, int_norm=int_norm,
                                                             bias_on_grid=bias_on_grid))
    calibrate(q, synthetic_images(sam, calib_images))
    return export_qonnx(q, out_onnx, (1, 3, sam.img_size, sam.img_size))


def _quantize(ckpt: Path, bits: int, td: Path, int_norm: bool, bias_on_grid: bool = True) -> tuple[Path, str]:
    """``quantize_checkpoint`` with its library output (torch.onnx export chatter) kept for build.log; one line
    on screen. Returns the QONNX path and the captured output."""
    import time

    from samfpga.hw.build.progress import BuildLog

    t0 = time.time()
    with BuildLog(td / "quantize.log") as blog:
        blog.say(f"quantizing {ckpt} (W{bits}A{bits}, PTQ{', integer LayerNorm/softmax' if int_norm else ''}) ...")
        model = quantize_checkpoint(ckpt, bits, td / "encoder_qonnx.onnx", int_norm=int_norm,
                                    bias_on_grid=bias_on_grid)
        blog.say(f"quantized in {time.time() - t0:.1f} s")
    return model, (td / "quantize.log").read_text()


def _model_source(args: argparse.Namespace, td: Path, int_ops: bool, int_bias: bool) -> tuple[Path, str]:
    """The QONNX encoder to build: ``--model``, or ``--checkpoint`` (default: the bundled model) quantized into
    ``td`` (``_quantize``); with the quantizer's captured output. ValueError for a missing checkpoint."""
    if args.model:
        return Path(args.model), ""
    ckpt = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    if not ckpt.is_file():
        raise ValueError(f"checkpoint not found: {ckpt}")
    return _quantize(ckpt, args.bits, td, int_ops, int_bias)


def parse_strip_counts(text: str, sep: str = ",") -> int | tuple[int, ...]:
    """``--roll-strips``: ``N`` (every rolled stage) or ``N,N,...`` (one per rolled stage, in graph order; ``sep``
    between the counts) as ``BuildOptions.roll_strips`` takes it."""
    try:
        counts = tuple(int(x) for x in text.split(sep))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,... (column strips per rolled stage), got {text!r}") from None
    return counts[0] if len(counts) == 1 else counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="samfpga build-hw", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--board", required=True, help=f"one of: {', '.join(BOARDS)}")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="samfpga checkpoint; its encoder is quantized (PTQ) first "
                                          "(default: the bundled default model)")
    src.add_argument("--model", help="already quantized QONNX encoder (.onnx)")
    ap.add_argument("--bits", type=int, default=8, help="weight and activation bits when quantizing (4..8)")
    ap.add_argument("--target-fps", type=float, help="throughput cap of the fit search (default: as fast as fits); "
                                                     "with --no-fit FINN's folding target (default 10)")
    ap.add_argument("--fit-limit", type=float, default=0.85, help="fraction of each board resource the design may "
                                                                  "use (default 0.85)")
    ap.add_argument("--no-fit", action="store_true", help="FINN's target-fps folding instead of the fit search")
    ap.add_argument("--folding", help="FINN folding config JSON (instead of the fit search)")
    ap.add_argument("--clock-mhz", type=float, help="override the board's default clock")
    ap.add_argument("--steps", help="comma-separated subset of the build steps (default: all)")
    ap.add_argument("--int-ops", action=argparse.BooleanOptionalAction, default=True,
                    help="integer LayerNorm/softmax RTL layers (default), a checkpoint quantized with "
                         "QuantConfig.int_norm so they are bit-exact with the quantized model; --no-int-ops keeps "
                         "FINN+'s float LayerNorm/softmax HLS layers (docs/hardware.md)")
    ap.add_argument("--int-bias", action=argparse.BooleanOptionalAction, default=True,
                    help="biases rounded to each layer's accumulator grid (QuantConfig.bias_on_grid, default): the "
                         "requantizers after Linear/Conv layers become arithmetic Requant instead of threshold "
                         "tables; --no-int-bias keeps float biases")
    ap.add_argument("--pixel-input", action=argparse.BooleanOptionalAction, default=True,
                    help="the accelerator takes the resized uint8 image, SAM's normalisation folded into its first "
                         "threshold table (default); --no-pixel-input: the host sends the normalised float image")
    ap.add_argument("--token-batch", type=int, default=0, metavar="B",
                    help="let MVAU + Requant pairs with constant weights run on the token-batched unit, weights in "
                         "DDR read once per B tokens (written to OUT/ddr_weights.bin): the fit search chooses which "
                         "(every pair with --no-fit or --folding); default 0: weights on chip")
    ap.add_argument("--token-batch-layers", default="",
                    help="comma-separated MVAU node names to put on the token-batched unit (only these; default: "
                         "the fit search chooses)")
    ap.add_argument("--token-batch-dot", default="chain", choices=("chain", "pack", "tree"),
                    help="the token-batched unit's dot products (default chain; pack: two per DSP48E2, even PE)")
    ap.add_argument("--mvau-wwidth-max", type=int, default=36, metavar="BITS",
                    help="FINN's SetFolding limit on an MVAU's weight bits per PE (SIMD x weight bits; default 36, "
                         "FINN's): at 36 an INT8 layer gets SIMD <= 4 and all its parallelism from PE. Token-batched "
                         "layers read their weights from DDR, where the limit means nothing: 128 lets them take "
                         "SIMD 16 (the full-size rolled benches use it)")
    ap.add_argument("--roll", action="store_true",
                    help="build each repeated stage as one body run once per block (same folding for every block, "
                         "the body counted once with N x its cycles, per-iteration parameters on chip, loop and "
                         "frame buffers in DDR); the build stops before HDL generation")
    ap.add_argument("--roll-verify", action=argparse.BooleanOptionalAction, default=True,
                    help="with --roll: check the rolled graph against the unrolled one in FINN python execution "
                         "(default; slow at full size)")
    ap.add_argument("--roll-strips", type=parse_strip_counts, default=1, metavar="N[,N...]",
                    help="with --roll: price each rolled body built for N column strips (halo included; bodies "
                         "strips cannot cut stay a map wide); several counts: one per rolled stage, in graph order. "
                         "Priced only: HDL generation refuses it for now")
    eng = ap.add_argument_group("layer-sequential engine (--engine; docs/engine.md)")
    eng.add_argument("--engine", action="store_true",
                     help="build the layer-sequential engine (one shared GEMM unit, weights and feature maps in DDR: "
                          "samfpga.hw.engine.build) instead of the per-layer dataflow design: plan, program, Vivado "
                          "design, bitstream where Vivado is installed")
    eng.add_argument("--graph", help="with --engine: the integer graph package to build (graph.json + weights.npz, "
                                     "as samfpga deploy writes it); without it the quantized model is taken through "
                                     "FINN's software steps first (OUT/finn, the graph exported to OUT/graph)")
    eng.add_argument("--variant", default="vit_t", help="with --engine and --model / --graph: the encoder the plan "
                                                        "prices (ReLU, 8 x 8 windows; default vit_t)")
    eng.add_argument("--image-size", type=int, default=1024, help="with --engine and --model / --graph: its input size")
    eng.add_argument("--engine-space", default="", metavar="KEY=N,N;...",
                     help="with --engine: the widths the plan searches, e.g. 'pe=40;simd=32' (the rest from "
                          "samfpga.hw.plan.engine.SEARCH)")
    ap.add_argument("--out", required=True, help="output directory (must not exist)")
    return ap.parse_args(argv)


#: the FINN steps whose graph the engine compiles (no folding search: the engine's widths are its own)
ENGINE_FINN_STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "pixel_input", "convert_to_hw",
                     "minimize_bit_width_initial", "partition", "specialize", "fold", "minimize_bit_width",
                     "transpose_decomposition")


def engine_main(args: argparse.Namespace) -> int:
    """``samfpga build-hw --engine``: the integer graph (``--graph``, or the quantized model through
    ``ENGINE_FINN_STEPS`` and exported to OUT/graph), then ``samfpga.hw.engine.build``'s steps."""
    from samfpga.hw.engine.build import EngineBuildConfig, EngineBuildError, run_engine_build
    from samfpga.hw.plan.__main__ import parse_space

    out = Path(args.out)
    try:
        space = parse_space(args.engine_space)
        if out.exists():
            raise ValueError(f"output directory exists: {args.out} (choose a new one)")
        enc = None
        graph = args.graph
        if graph is None:
            graph, enc = _engine_graph(args, out)
        cfg = EngineBuildConfig(board=args.board, graph=str(graph), output_dir=str(out), variant=args.variant,
                                image_size=args.image_size, encoder_config=enc, space=space, limit=args.fit_limit,
                                clock_mhz=args.clock_mhz)
        b = run_engine_build(cfg, exist_ok=args.graph is None)  # OUT holds finn/ and graph/ then
    except (ValueError, EngineBuildError) as e:
        print(f"build-hw: error: {e}", file=sys.stderr)
        return 2
    if b.stopped:
        print(f"build-hw: stopped before the bitstream: {b.stopped}")
    return 0


def _engine_graph(args: argparse.Namespace, out: Path) -> tuple[Path, object]:
    """The integer graph of ``args``' model through ``ENGINE_FINN_STEPS`` under OUT/finn, exported to OUT/graph;
    with the checkpoint's encoder config when it came from one (None for --model)."""
    from samfpga.hw.build import BuildConfig, BuildError, run_build
    from samfpga.hw.build.config import BuildOptions
    from samfpga.hw.build.package import PackageError, export_build

    enc = None
    with tempfile.TemporaryDirectory(prefix="samfpga_q_") as td:
        model, preamble = _model_source(args, Path(td), True, True)
        if not args.model:
            from samfpga.models.quant.source import load_model

            enc = load_model(args.checkpoint or DEFAULT_CHECKPOINT).image_encoder.config
        cfg = BuildConfig(board=args.board, output_dir=str(out / "finn"), fit=False, clock_mhz=args.clock_mhz,
                          steps=ENGINE_FINN_STEPS, options=BuildOptions(int_ops=True, pixel_input=True))
        try:
            run_build(model, cfg, preamble=preamble)
            export_build(out / "finn", out / "graph")
        except (BuildError, PackageError) as e:
            raise ValueError(str(e)) from None
    return out / "graph", enc


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.engine:
        return engine_main(args)
    if args.graph:
        print("build-hw: error: --graph needs --engine", file=sys.stderr)
        return 2
    from samfpga.hw.build import BuildConfig, BuildError, run_build
    from samfpga.hw.build.config import BuildOptions

    try:
        steps = tuple(s.strip() for s in args.steps.split(",")) if args.steps else None
        cfg = BuildConfig(board=args.board, output_dir=args.out, target_fps=args.target_fps,
                          folding_file=args.folding, fit=not args.no_fit, fit_limit=args.fit_limit,
                          clock_mhz=args.clock_mhz, steps=steps,
                          options=BuildOptions(int_ops=args.int_ops, pixel_input=args.pixel_input,
                                               token_batch=args.token_batch, token_batch_dot=args.token_batch_dot,
                                               token_batch_layers=tuple(s.strip() for s in
                                                                        args.token_batch_layers.split(",") if s.strip()),
                                               roll=args.roll, roll_verify=args.roll_verify,
                                               roll_strips=args.roll_strips, mvau_wwidth_max=args.mvau_wwidth_max))
        if not 4 <= args.bits <= 8:
            raise ValueError(f"--bits must be in 4..8, got {args.bits}")
        if Path(args.out).exists():
            raise ValueError(f"output directory exists: {args.out} (choose a new one)")
        with tempfile.TemporaryDirectory(prefix="samfpga_q_") as td:
            model, preamble = _model_source(args, Path(td), args.int_ops, args.int_bias)
            run_build(model, cfg, preamble=preamble)  # prints the progress, the verdict and the report's path
    except (ValueError, BuildError) as e:
        print(f"build-hw: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
