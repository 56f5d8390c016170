"""The tiny test encoder's FINN build and deployment package (compiler environment).

    .venv/bin/python -m tests.support.tiny_deploy --int-ops --out tests/runtime/data/tiny_deploy
    .venv/bin/python -m tests.support.tiny_deploy --int-ops --no-pixel-input --graph-only \
        --out tests/runtime/data/tiny_float_input
    .venv/bin/python -m tests.support.tiny_deploy --int-ops --wide-heads --graph-only \
        --out tests/runtime/data/tiny_wide_heads

The second is the same build with the float input (normalised image, as before the pixel input): its integer
graph is the reference the pixel-input package must equal (tests/runtime/test_pixel_input_board.py). The third
is the bundled default's attention shape at the tiny size (``WIDE_HEADS``: heads of 32 dims over 4 x 4 windows, so
16 keys, fewer than the head's dims), the engine's test of AV on keys padded to whole SIMD folds
(tests/test_sim_engine_gemm_path.py).

Model: tests.support.tiny_encoder's TINY (64x64, 32-channel 4x4 embedding) with seeded random weights (seed 3), W8A8
PTQ-calibrated on 4 synthetic images, exported to QONNX and as a float bundle; ``samfpga build-hw --board kv260
--int-ops`` (every software step but HDL generation; the project's IntLayerNorm/IntSoftmax instead of FINN+'s float
LayerNorm/HWSoftmax, so the board-environment tests run those through samfpga.intexec); ``samfpga deploy`` with that
bundle. The committed package is what the board-environment tests and notebooks/02_board.ipynb load (no
torch/finn there); tests/test_backends_quant.py builds the same thing (with and without --int-ops) from scratch and
checks it against FINN.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

#: TINY with the bundled default's attention shape: every head 32 dims over 4 x 4 windows (16 keys)
WIDE_HEADS = {"embed_dims": [16, 32, 64, 64], "num_heads": [1, 1, 2, 2]}


def build(work: Path, int_ops: bool = False, pixel_input: bool = True, qonnx: Path | None = None,
          config: dict | None = None) -> tuple[Path, Path]:
    """(build dir, bundle dir) under ``work``; ``int_ops``: the build option ``--int-ops`` (integer LayerNorm and
    softmax layers instead of FINN+'s float ones); ``pixel_input``: ``--pixel-input`` (the accelerator takes
    uint8 pixels) or ``--no-pixel-input`` (the normalised float image, as before). ``qonnx``: an export of this
    same quantized encoder to build from (``tiny_encoder_qonnx()``, tests/conftest.py's session ``tiny_qonnx``)
    instead of exporting it again (45-75 s); only read. ``config``: fields of TINY replaced (``WIDE_HEADS``)."""
    import torch

    from samfpga.hw.build_cli import main
    from samfpga.models.build import variant_config
    from samfpga.models.export import export_bundle
    from samfpga.models.quant import calibrate, export_qonnx, quantize_encoder
    from samfpga.models.quant.source import random_student
    from tests.support.tiny_encoder import TINY, images

    torch.set_num_threads(1)
    sam = random_student(seed=3, config=variant_config("vit_t", **{**TINY, **(config or {})}))
    if qonnx is None:
        q = quantize_encoder(sam.image_encoder)
        calibrate(q, images(4, seed=0))
        qonnx = export_qonnx(q, work / "enc.onnx", (1, 3, 64, 64))
    from samfpga.hw.build import SOFTWARE_STEPS

    # every software step except HDL generation (which changes no arithmetic and takes minutes)
    steps = ",".join(s for s in SOFTWARE_STEPS if s != "hw_codegen")
    argv = ["--board", "kv260", "--model", str(qonnx), "--steps", steps, "--out", str(work / "build")]
    # explicit either way: build-hw's default is --int-ops
    argv += ["--pixel-input"] if pixel_input else ["--no-pixel-input"]
    if main(argv + (["--int-ops"] if int_ops else ["--no-int-ops"])) != 0:
        raise RuntimeError("build-hw failed")
    export_bundle(sam, work / "bundle", source="tiny test encoder (tests/support/tiny_deploy.py, seed 3)")
    return work / "build", work / "bundle"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--build", type=Path, help="reuse this build dir + --bundle instead of building")
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--int-ops", action="store_true", help="build with samfpga build-hw --int-ops")
    ap.add_argument("--no-pixel-input", dest="pixel_input", action="store_false",
                    help="build with --no-pixel-input (the accelerator takes the normalised float image)")
    ap.add_argument("--wide-heads", action="store_true", help="TINY with WIDE_HEADS (heads of 32 dims)")
    ap.add_argument("--graph-only", action="store_true",
                    help="write only graph.json, weights.npz, driver.json (samfpga.hw.build.package.export_build)")
    args = ap.parse_args(argv)
    from samfpga.deploy.write import write_package
    from samfpga.hw.build.package import export_build

    def write(b: Path, bundle: Path) -> None:
        if args.graph_only:
            export_build(b, args.out)
        else:
            write_package(b, args.out, bundle_dir=bundle)

    if args.build:
        write(args.build, args.bundle)
        return 0
    with tempfile.TemporaryDirectory(prefix="tiny_deploy_") as td:
        write(*build(Path(td), int_ops=args.int_ops, pixel_input=args.pixel_input,
                     config=WIDE_HEADS if args.wide_heads else None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
