"""The named steps of a samfpga FINN build: ``fn(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper``.

Software steps wrap FINN+'s builder steps (``finn.builder.build_dataflow_steps``) with a FINN
``DataflowBuildConfig`` derived from ours (``finn_config``); ``streamline`` is the project's own (FINN's default
streamline stops at the Q/K/V fork of attention). Vivado steps raise ``VivadoRequired`` when Vivado is missing;
``flow.run_build`` then stops with a message. Estimates go to ``ctx.notes`` ("resources", "cycles", "segments"),
which ``report.build_report`` reads.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from samfpga.hw import HW_DOMAIN
from samfpga.hw.build.config import VIVADO_STEPS, BuildConfig
from samfpga.hw.finn_env import vivado_available


class VivadoRequired(RuntimeError):
    """Raised by a step that needs Vivado / Vitis HLS when they are not installed (message: what needs it)."""


@dataclass
class BuildContext:
    """State shared by the steps of one build."""

    cfg: BuildConfig
    out: Path
    notes: dict = field(default_factory=dict)
    _finn_cfg: object = None

    @property
    def finn_cfg(self):
        if self._finn_cfg is None:
            self._finn_cfg = finn_config(self.cfg, self.out)
        return self._finn_cfg


def finn_config(cfg: BuildConfig, out: Path):
    """FINN's DataflowBuildConfig matching ``cfg`` (what the wrapped FINN steps read); FINN's own reports go to
    ``out/finn/report``."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    board = cfg.board_spec
    fcfg = DataflowBuildConfig(
        output_dir=str(out / "finn"),
        synth_clk_period_ns=1000.0 / cfg.clock,
        fpga_part=board.part,
        board=board.finn_board,
        target_fps=None if cfg.folding_file else max(1, round(cfg.target_fps)),
        folding_config_file=cfg.folding_file,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
        standalone_thresholds=True,  # thresholds as own layers, so MVAUs can specialise to RTL
        requant_bitwidth_threshold=1024,  # FINN's inexact Requant inference off: build.requant.InferExactRequant
        save_intermediate_models=True,
    )
    Path(fcfg.get_report_directory()).mkdir(parents=True, exist_ok=True)
    Path(fcfg.get_intermediate_models_directory()).mkdir(parents=True, exist_ok=True)
    return fcfg


def _finn():
    import finn.builder.build_dataflow_steps as s

    return s


_CHANNELS_LAST = {2: "NC", 3: "NWC", 4: "NHWC"}
_CHANNELS_FIRST = {2: "NC", 3: "NCW", 4: "NCHW"}


def fix_threshold_layouts(model):
    """MultiThreshold nodes whose ``data_layout`` does not fit their input get a consistent one.

    FINN's layout inference labels token streams oddly: a 4-d layout on rank-2/3 tensors, or a layout without a
    channel axis ("NWH", "NHW", "NCH" on a rank-4 tensor). MultiThreshold execution then thresholds along axis 1
    and fails (or, with matching sizes, would threshold the wrong axis). Such layouts are replaced: per-channel
    thresholds (T: (C, steps), C > 1) get the layout whose channel axis has size C (last axis preferred),
    shared thresholds the rank's default (empty: NC / NWC / NCHW)."""
    from qonnx.custom_op.registry import getCustomOp

    for n in model.get_nodes_by_op_type("MultiThreshold"):
        op = getCustomOp(n)
        shape = model.get_tensor_shape(n.input[0])
        layout = op.get_nodeattr("data_layout")
        if shape is None or not layout or (len(layout) == len(shape) and layout.count("C") == 1):
            continue
        t = model.get_initializer(n.input[1])
        new = ""
        if t is not None and t.shape[0] > 1 and 2 <= len(shape) <= 4:
            if shape[-1] == t.shape[0]:
                new = _CHANNELS_LAST[len(shape)]
            elif shape[1] == t.shape[0]:
                new = _CHANNELS_FIRST[len(shape)]
        op.set_nodeattr("data_layout", new)
    return model


def step_qonnx_to_finn(model, ctx):
    from samfpga.hw.build.quant_rounding import QuantActToMultiThreshold  # rounds as each QONNX Quant does

    model = model.transform(QuantActToMultiThreshold())
    return fix_threshold_layouts(_finn().step_qonnx_to_finn(model, ctx.finn_cfg))


def step_tidy_up(model, ctx):
    from samfpga.hw.build.integer_split import IntegerSplit  # qkv Split on integers: StreamingSplit, MVAUs

    return fix_threshold_layouts(_finn().step_tidy_up(model, ctx.finn_cfg).transform(IntegerSplit()))


def step_streamline(model, ctx):
    """LayerNorm scale/bias split off (ExtractNormScaleBias), scalar biases absorbed into thresholds, FINN's
    Streamline (run as ``FastStreamline``: same graph, housekeeping only after rules that changed it), convs lowered to NHWC MatMul with transposes absorbed, Streamline again, then the project's
    ``StreamlineExtra`` (hw/samfpga/hw/build/streamline_rules.py; ``cfg.extra["streamline_extra"]``, default on).
    ``cfg.extra["streamline_plus"]`` adds FINN+'s StreamlinePlus (fork/residual aware) after each Streamline; off
    by default because it did not terminate on the encoder graphs here (see docs/hardware.md)."""
    from finn.transformation.streamline.absorb import (
        AbsorbConsecutiveTransposes,
        AbsorbTransposeIntoMultiThreshold,
    )
    from finn.transformation.streamline.extract_norm_scale_bias import ExtractNormScaleBias
    from qonnx.transformation.general import GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    from samfpga.hw.build.fast_streamline import FastStreamline
    from samfpga.hw.build.streamline_rules import AbsorbScalarBiasIntoMultiThresholdAll

    def streamline(m):
        from finn.transformation.streamline.reorder import MoveLinearPastFork

        m = m.transform(FastStreamline())
        # scales on a fork (the residual branch point) block absorption into the next thresholds: move them
        # onto each branch and streamline again
        m = m.transform(MoveLinearPastFork())
        m = m.transform(FastStreamline())
        if ctx.cfg.extra.get("streamline_plus"):
            from finn.transformation.streamline.streamline_plus import StreamlinePlus

            m = m.transform(StreamlinePlus())
        return m

    model = model.transform(ExtractNormScaleBias())
    model = model.transform(AbsorbScalarBiasIntoMultiThresholdAll())
    model = streamline(model)
    if model.get_nodes_by_op_type("Conv"):
        model = model.transform(LowerConvsToMatMul())
        model = model.transform(AbsorbTransposeIntoMultiThreshold())
        model = model.transform(AbsorbConsecutiveTransposes())
        model = streamline(model)
    if ctx.cfg.extra.get("streamline_extra", True):
        from samfpga.hw.build.streamline_rules import StreamlineExtra

        # float scales FINN's rules leave between integer layers (residual joins, per-channel conv scales
        # behind Transpose/Reshape, scales before LayerNorm): moved/absorbed exactly (hw/samfpga/hw/build/streamline_rules.py)
        model = model.transform(StreamlineExtra())
    model = model.transform(InferShapes())
    model = model.transform(InferDataTypes())
    model = model.transform(InferDataLayouts())
    model = fix_threshold_layouts(model)
    model = model.transform(RemoveUnusedTensors())
    return model.transform(GiveUniqueNodeNames())


def output_scales_to_host(model):
    """ElementwiseMul layers that multiply a graph output by a constant (the output dequantization scale) back to
    a plain ONNX ``Mul`` on the host: the accelerator then streams out integers and the float scale is one host
    multiplication, instead of a float multiplier layer at the end of the pipeline."""
    from onnx import helper

    outs = {o.name for o in model.graph.output}
    graph = model.graph
    for i, n in enumerate(list(graph.node)):
        if n.op_type != "ElementwiseMul" or n.domain != HW_DOMAIN or n.output[0] not in outs:
            continue
        if sum(model.get_initializer(t) is not None for t in n.input) != 1:
            continue
        graph.node.remove(n)
        graph.node.insert(i, helper.make_node("Mul", list(n.input), list(n.output), name=n.name))
    return model


def step_convert_to_hw(model, ctx):
    """FINN's ``step_convert_to_hw`` (standalone thresholds), thresholds rounded, own RTL ops on Zynq
    (``UseOwnRTL``)."""
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    from samfpga.hw.build.requant import InferExactRequant

    # uniform integer requantizers -> arithmetic Requant layers (exact cases only; thresholds integer first)
    model = model.transform(RoundAndClipThresholds()).transform(InferExactRequant())
    model = _finn().step_convert_to_hw(model, ctx.finn_cfg)
    # integer-input thresholds rounded up to integers (same result on integers): required by HDL generation
    model = model.transform(RoundAndClipThresholds())
    if ctx.cfg.own_rtl and ctx.cfg.board_spec.family != "versal":
        from samfpga.hw.custom_ops.transforms import UseOwnRTL

        model = model.transform(UseOwnRTL())
    return model


def step_minimize_bit_width_initial(model, ctx):
    """FINN+'s ``step_minimize_bit_width_initial``: weight and accumulator widths of MVAU/VVAU tightened to what
    the weights and input ranges need (instead of INT32 accumulators), thresholds rounded/clipped to the new
    input range; specialisation then sees the real widths. Exact: every reachable value still fits."""
    from samfpga.hw.build.requant import check_requant_inputs

    model = _finn().step_minimize_bit_width_initial(model, ctx.finn_cfg)
    check_requant_inputs(model)  # requant.sv drops input LSBs beyond its DSP port: never silently
    return model


def step_minimize_bit_width(model, ctx):
    """FINN+'s ``step_minimize_bit_width`` after folding (implementation-specific widths of the specialised
    layers), as in FINN+'s default step list."""
    return _finn().step_minimize_bit_width(model, ctx.finn_cfg)


def step_partition(model, ctx):
    """FINN's dataflow partition: HW nodes into one child graph (FINN supports one); the host nodes around it
    are listed in ``ctx.notes["host_nodes"]``; the build continues on the child graph. The output's
    dequantization scale goes to the host first (``output_scales_to_host``)."""
    model = output_scales_to_host(model)
    host = [[n.name, n.op_type] for n in model.graph.node if not n.domain.startswith(HW_DOMAIN)]
    ctx.notes["nodes_before_partition"] = len(model.graph.node)
    segments = _hw_segments(model)
    if len(segments) > 1:
        # host nodes between HW layers: FINN makes one dataflow partition only, so the graph stays whole (host
        # nodes in place) and each run of HW layers is reported as its own segment
        ctx.notes["segments"] = segments
        ctx.notes["partition"] = f"{len(segments)} HW segments separated by host nodes; FINN partition not applied"
        return model
    ctx.notes["host_nodes"] = host
    model = _finn().step_create_dataflow_partition(model, ctx.finn_cfg)
    ctx.notes["segments"] = [[n.name for n in model.graph.node]]
    return model


def step_specialize(model, ctx):
    if ctx.cfg.prefer_rtl:
        from qonnx.custom_op.registry import getCustomOp

        for n in model.graph.node:
            if not n.domain.startswith(HW_DOMAIN):
                continue
            op = getCustomOp(n)
            if "preferred_impl_style" in op.get_nodeattr_types() and op.get_nodeattr("preferred_impl_style") == "":
                op.set_nodeattr("preferred_impl_style", "rtl")
    model = _finn().step_specialize_layers(model, ctx.finn_cfg)
    _renamed_segments(model, ctx)
    return model


def step_fold(model, ctx):
    if ctx.cfg.folding_file:
        model = _finn().step_apply_folding_config(model, ctx.finn_cfg)
    else:
        if len(ctx.notes.get("segments", [])) > 1:
            # FINN's second folding pass analyses the whole graph as one pipeline and fails on host nodes
            ctx.finn_cfg.folding_two_pass_relaxation = False
        model = _finn().step_target_fps_parallelization(model, ctx.finn_cfg)
    _renamed_segments(model, ctx)
    return model


def step_transpose_decomposition(model, ctx):
    """FINN+'s ``step_transpose_decomposition``: each ``Shuffle`` (a Transpose, with the Reshapes around it, as one
    HW layer; FINN+ has no implementation of it) becomes a chain of InnerShuffle (swap of the two innermost axes:
    ``InnerShuffle_rtl``) and OuterShuffle (permutation of the outer axes, innermost fixed: ``OuterShuffle_hls``)
    layers, then specialised. Runs after folding, as in FINN+'s builder: the decomposition keeps each Shuffle's
    SIMD (folding leaves Shuffles at SIMD=1, it only folds specialised layers)."""
    model = _finn().step_transpose_decomposition(model, ctx.finn_cfg)
    _renamed_segments(model, ctx)
    return model


def _hw_segments(model) -> list[list[str]]:
    """Names of the runs of HW nodes between host nodes, in topological order."""
    segments, cur = [], []
    for n in model.graph.node:
        if n.domain.startswith(HW_DOMAIN):
            cur.append(n.name)
        elif cur:
            segments.append(cur)
            cur = []
    if cur:
        segments.append(cur)
    return segments


def _renamed_segments(model, ctx) -> None:
    """Recompute the HW segments after FINN renamed the nodes."""
    ctx.notes["segments"] = _hw_segments(model)


def step_estimates(model, ctx):
    """FINN's analytical estimates per HW node: ``notes["resources"][name]`` (LUT, BRAM_18K, URAM, DSP, ...) and
    ``notes["cycles"][name]``; FINN's own estimate reports under ``out/finn/report``."""
    from finn.analysis.fpgadataflow.exp_cycles_per_layer import exp_cycles_per_layer
    from finn.analysis.fpgadataflow.res_estimation import res_estimation

    part = ctx.cfg.board_spec.part
    ctx.notes["resources"] = model.analysis(lambda m: res_estimation(m, part))
    ctx.notes["cycles"] = model.analysis(exp_cycles_per_layer)
    return model


def step_hw_codegen(model, ctx):
    """FINN's PrepareIP: real HDL for RTL layers, C++/TCL for HLS layers; each node's code is moved to
    ``out/hdl/<node name>/`` and its ``code_gen_dir_ipgen`` attribute points there."""
    from qonnx.custom_op.registry import getCustomOp

    model = _finn().step_hw_codegen(model, ctx.finn_cfg)
    hdl = ctx.out / "hdl"
    hdl.mkdir(exist_ok=True)
    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        op = getCustomOp(n)
        src = op.get_nodeattr("code_gen_dir_ipgen")
        if src and Path(src).is_dir():
            dst = hdl / n.name
            shutil.move(src, dst)
            op.set_nodeattr("code_gen_dir_ipgen", str(dst))
    return model


def _vivado_step(name: str, finn_name: str) -> Callable:
    def run(model, ctx):
        if not vivado_available():
            raise VivadoRequired(f"step {name} (FINN {finn_name})")
        return getattr(_finn(), finn_name)(model, ctx.finn_cfg)

    run.__name__ = f"step_{name}"
    return run


_VIVADO_FINN = {
    "hls_ipgen": "step_hw_ipgen",
    "fifo_sizing": "step_set_fifo_depths",
    "stitched_ip": "step_create_stitched_ip",
    "synth": "step_out_of_context_synthesis",
    "bitfile": "step_synthesize_bitfile",
    "deployment": "step_deployment_package",
}
assert set(_VIVADO_FINN) == set(VIVADO_STEPS)

STEPS: dict[str, Callable] = {
    "qonnx_to_finn": step_qonnx_to_finn,
    "tidy_up": step_tidy_up,
    "streamline": step_streamline,
    "convert_to_hw": step_convert_to_hw,
    "minimize_bit_width_initial": step_minimize_bit_width_initial,
    "partition": step_partition,
    "specialize": step_specialize,
    "fold": step_fold,
    "minimize_bit_width": step_minimize_bit_width,
    "transpose_decomposition": step_transpose_decomposition,
    "estimates": step_estimates,
    "hw_codegen": step_hw_codegen,
    **{n: _vivado_step(n, f) for n, f in _VIVADO_FINN.items()},
}
