"""The reduced encoder the rolled flow is tested and measured on (tests/test_rolled.py, bench/rolled_loop.py): the
tiny student family with ``DEPTHS`` blocks per stage (an MBConv stage of 2 and a transformer stage of 3 roll),
seeded, W8A8 with integer LayerNorm / softmax and biases, through the build's own steps (kv260).

``hw_graphs`` runs the steps up to ``specialize``; ``rolled_folded`` the folding steps after it with ``roll``. FINN's
build directory must be booted first (``samfpga.hw.finn_env.boot``: once per process).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

DEPTHS = (2, 1, 3, 1)
#: the build's steps from the QONNX export to specialised HW layers
FRONT_STEPS = ("qonnx_to_finn", "tidy_up", "streamline", "pixel_input", "convert_to_hw", "minimize_bit_width_initial",
               "partition", "specialize")
#: the build's steps from there to the graph the rolled bodies' HDL is generated from
FOLD_STEPS = ("fold", "minimize_bit_width", "transpose_decomposition")


def reduced_qonnx(out: Path, image_size: int = 64, depths: Sequence[int] = DEPTHS) -> Path:
    """``out/enc.onnx``: the QONNX export (input (1, 3, S, S), S = ``image_size``) of ``tiny_quant_encoder`` with
    ``depths`` (weights seed 3, Linear biases normal(0, 0.1) seed 11), quantized as ``samfpga build-hw`` quantizes a
    checkpoint: W8A8, integer LayerNorm / softmax, integer biases; PTQ on ``statistics_images(4, seed=0)``."""
    from samfpga.models.quant import export_qonnx
    from samfpga.models.quant.source import tiny_quant_encoder

    q = tiny_quant_encoder(int_norm=True, bias_on_grid=True, linear_bias_std=0.1, depths=list(depths),
                           image_size=image_size)
    return export_qonnx(q, out / "enc.onnx", (1, 3, image_size, image_size))


def hw_graphs(work: Path, image_size: int = 64, keep: Sequence[str] = ("specialize",)) -> dict:
    """The reduced encoder's graphs after ``FRONT_STEPS`` (kv260, default options; files under ``work``): a copy of
    the graph after each step named in ``keep``, by name."""
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401  (the project's ops, registered before any step)
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS, BuildContext

    model = ModelWrapper(str(reduced_qonnx(work, image_size)))
    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(work / "b")), out=work / "b")
    graphs = {}
    with installed():
        for name in FRONT_STEPS:
            model = STEPS[name](model, ctx)
            if name in keep:
                graphs[name] = copy.deepcopy(model)
    return graphs


def rolled_folded(specialized, work: Path):
    """``FOLD_STEPS`` with ``roll`` (each rolled stage's blocks folded alike; kv260, no token-batched unit) on a copy
    of ``specialized`` (``hw_graphs``'s ``specialize`` graph)."""
    from samfpga.hw.build.config import BuildConfig, BuildOptions
    from samfpga.hw.build.speedups import installed
    from samfpga.hw.build.steps import STEPS, BuildContext

    ctx = BuildContext(cfg=BuildConfig(board="kv260", output_dir=str(work), options=BuildOptions(roll=True)), out=work)
    model = copy.deepcopy(specialized)
    with installed():
        for name in FOLD_STEPS:
            model = STEPS[name](model, ctx)
    return model
