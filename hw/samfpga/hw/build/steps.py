"""The named steps of a samfpga FINN build, ``fn(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper``, and
the one list that orders them (``PIPELINE``; ``SOFTWARE_STEPS``, ``VIVADO_STEPS``, ``DEFAULT_STEPS`` and ``STEPS``
derive from it).

Software steps wrap FINN+'s builder steps (``finn.builder.build_dataflow_steps``) with a FINN
``DataflowBuildConfig`` derived from ours (``context.finn_config``); ``streamline`` is the project's own (FINN's
default streamline stops at the Q/K/V fork of attention); ``fold`` searches the folding that fits the board
(``fit.py``). Vivado steps raise ``VivadoRequired`` when Vivado is missing; ``flow.run_build`` then stops with a
message. Results go to ``ctx.results`` (``context.BuildResults``), which ``report.build_report`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from samfpga.hw import HW_DOMAIN
from samfpga.hw.build.context import BuildContext, finn_config
from samfpga.hw.build.pixel_input import step_pixel_input
from samfpga.hw.finn_env import vivado_available

__all__ = ["DEFAULT_STEPS", "HW_DOMAIN", "PIPELINE", "SOFTWARE_STEPS", "STEPS", "VIVADO_STEPS", "BuildContext",
           "BuildStopped", "Step", "VivadoRequired", "finn_config"]


class BuildStopped(RuntimeError):
    """Raised by a step that cannot run in this build; ``flow.run_build`` stops there, writes the report of what
    the earlier steps produced, and says why (the message)."""


class VivadoRequired(BuildStopped):
    """Raised by a step that needs Vivado / Vitis HLS when they are not installed (message: what needs it)."""


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


def _streamline_pass(model, plus: bool):
    """FINN's Streamline (as ``FastStreamline``: same graph, housekeeping only after rules that changed it),
    scales on forks moved onto the branches, Streamline again; FINN+'s StreamlinePlus after it when ``plus``."""
    from finn.transformation.streamline.reorder import MoveLinearPastFork

    from samfpga.hw.build.fast_streamline import FastStreamline

    model = model.transform(FastStreamline())
    # scales on a fork (the residual branch point) block absorption into the next thresholds: move them onto
    # each branch and streamline again
    model = model.transform(MoveLinearPastFork())
    model = model.transform(FastStreamline())
    if plus:
        from finn.transformation.streamline.streamline_plus import StreamlinePlus

        model = model.transform(StreamlinePlus())
    return model


def _lower_convs(model):
    """Convs to NHWC MatMuls (``LowerConvsToMatMul``), the transposes it adds absorbed where possible."""
    from finn.transformation.streamline.absorb import (
        AbsorbConsecutiveTransposes,
        AbsorbTransposeIntoMultiThreshold,
    )
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = model.transform(LowerConvsToMatMul())
    model = model.transform(AbsorbTransposeIntoMultiThreshold())
    return model.transform(AbsorbConsecutiveTransposes())


def _retype(model):
    """Shapes, datatypes and layouts inferred again, threshold layouts repaired, names made unique."""
    from qonnx.transformation.general import GiveUniqueNodeNames, RemoveUnusedTensors
    from qonnx.transformation.infer_data_layouts import InferDataLayouts
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes

    model = model.transform(InferShapes())
    model = model.transform(InferDataTypes())
    model = model.transform(InferDataLayouts())
    model = fix_threshold_layouts(model)
    model = model.transform(RemoveUnusedTensors())
    return model.transform(GiveUniqueNodeNames())


def step_streamline(model, ctx):
    """LayerNorm scale/bias split off (ExtractNormScaleBias), scalar biases absorbed into thresholds, a streamline
    pass (``_streamline_pass``), convs lowered to NHWC MatMul with transposes absorbed and a second pass, then the
    project's ``StreamlineExtra`` (hw/samfpga/hw/build/streamline_rules.py; ``options.streamline_extra``).
    ``options.streamline_plus`` adds FINN+'s StreamlinePlus to each pass (off: it did not terminate on the
    encoder graphs here, see docs/hardware.md)."""
    from finn.transformation.streamline.extract_norm_scale_bias import ExtractNormScaleBias

    from samfpga.hw.build.streamline_rules import AbsorbScalarBiasIntoMultiThresholdAll
    from samfpga.hw.build.threshold_reference import RecordBiasChains

    opts = ctx.cfg.options
    # float-bias requantizers as Brevitas/QONNX evaluate them, for UseReferenceThresholds in convert_to_hw
    model = model.transform(RecordBiasChains())
    model = model.transform(ExtractNormScaleBias())
    model = model.transform(AbsorbScalarBiasIntoMultiThresholdAll())
    model = _streamline_pass(model, opts.streamline_plus)
    if model.get_nodes_by_op_type("Conv"):
        model = _streamline_pass(_lower_convs(model), opts.streamline_plus)
    if opts.streamline_extra:
        from samfpga.hw.build.streamline_rules import StreamlineExtra

        # float scales FINN's rules leave between integer layers (residual joins, per-channel conv scales
        # behind Transpose/Reshape, scales before LayerNorm): moved/absorbed exactly
        model = model.transform(StreamlineExtra())
    if opts.channels_last:
        from samfpga.hw.build.channels_last import ChannelsLast

        model = model.transform(ChannelsLast())
    return _retype(model)


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

    from samfpga.hw.build import int_ops

    model = int_ops.apply_from_build(model, ctx)  # integer LayerNorm/softmax layers (options.int_ops)
    from samfpga.hw.build.requant import InferExactRequant

    # uniform integer requantizers -> arithmetic Requant layers (exact cases only; thresholds integer first),
    # after the integer LayerNorm/softmax took the quantizers they fold
    from samfpga.hw.build.threshold_reference import UseReferenceThresholds

    # float-bias requantizers: the breakpoints of QONNX's float32 evaluation, not of float32 streamlining
    model = model.transform(RoundAndClipThresholds()).transform(UseReferenceThresholds())
    model = model.transform(InferExactRequant())
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


def hw_segments(model) -> list[list[str]]:
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


def output_layout_to_host(model):
    """A Shuffle whose output leaves the accelerator (a graph output, or only host nodes after it) back to a plain
    ``Transpose`` on the host: the embedding leaves the pipeline channels-last and the host reorders it (one numpy
    transpose) instead of a whole-map shuffle buffer at the end of the pipeline."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    outs = {o.name for o in model.graph.output}
    graph = model.graph
    for i, n in enumerate(list(graph.node)):
        if n.op_type != "Shuffle" or not n.domain.startswith(HW_DOMAIN):
            continue
        after = model.find_consumers(n.output[0])
        if not (n.output[0] in outs or (after and all(not c.domain.startswith(HW_DOMAIN) for c in after))):
            continue
        op = getCustomOp(n)
        if list(op.get_nodeattr("transpose_in_shape")) != list(op.get_nodeattr("in_shape")) or \
                list(op.get_nodeattr("transpose_out_shape")) != list(op.get_nodeattr("out_shape")):
            continue  # reshapes folded into the shuffle: left on the accelerator
        graph.node.remove(n)
        graph.node.insert(i, helper.make_node("Transpose", [n.input[0]], [n.output[0]], name=n.name,
                                              perm=list(op.get_nodeattr("perm"))))
    return model


def step_partition(model, ctx):
    """FINN's dataflow partition: HW nodes into one child graph (FINN supports one); the host nodes around it go
    to ``results.host_nodes``; the build continues on the child graph. The output's dequantization scale goes to
    the host first (``output_scales_to_host``), and a layout shuffle at its end (``output_layout_to_host``). With host
    nodes between HW layers the graph stays whole."""
    res = ctx.results
    model = output_layout_to_host(output_scales_to_host(model))
    res.nodes_before_partition = len(model.graph.node)
    res.segments = hw_segments(model)
    if len(res.segments) > 1:
        # FINN makes one dataflow partition only: the graph stays whole (host nodes in place) and each run of HW
        # layers is reported as its own segment
        res.partition_note = f"{len(res.segments)} HW segments separated by host nodes; FINN partition not applied"
        return model
    res.host_nodes = [(n.name, n.op_type) for n in model.graph.node if not n.domain.startswith(HW_DOMAIN)]
    model = _finn().step_create_dataflow_partition(model, ctx.finn_cfg)
    res.segments = [[n.name for n in model.graph.node]]
    return model


def step_specialize(model, ctx):
    """``preferred_impl_style=rtl`` where unset (``cfg.prefer_rtl``), then FINN's ``step_specialize_layers``; then
    the residuals around windowed attention taken in window order (``options.window_residual``)."""
    if ctx.cfg.prefer_rtl:
        from qonnx.custom_op.registry import getCustomOp

        for n in model.graph.node:
            if not n.domain.startswith(HW_DOMAIN):
                continue
            op = getCustomOp(n)
            if "preferred_impl_style" in op.get_nodeattr_types() and op.get_nodeattr("preferred_impl_style") == "":
                op.set_nodeattr("preferred_impl_style", "rtl")
    model = _finn().step_specialize_layers(model, ctx.finn_cfg)
    from samfpga.hw.build import window_residual

    model = window_residual.apply_from_build(model, ctx)  # attention residuals in window order (options)
    ctx.results.segments = hw_segments(model)
    return model


def step_fold(model, ctx):
    """Folding: the fit search (``cfg.fit``: highest throughput within ``cfg.fit_limit`` of every board resource,
    capped by ``cfg.target_fps``; ``fit.py``), or a folding file, or FINN's ``target_fps`` folding. On a board
    without URAM, memories left to FINN's automatic placement are put in BRAM (``memory.place_without_uram``)."""
    from samfpga.hw.build import memory

    cfg, board = ctx.cfg, ctx.cfg.board_spec
    if cfg.folding_file:
        model = _finn().step_apply_folding_config(model, ctx.finn_cfg)
    elif cfg.fit:
        _fit(model, ctx)
    else:
        if len(ctx.results.segments) > 1:
            # FINN's second folding pass analyses the whole graph as one pipeline and fails on host nodes
            ctx.finn_cfg.folding_two_pass_relaxation = False
        model = _finn().step_target_fps_parallelization(model, ctx.finn_cfg)
    ctx.results.memory_forced = memory.place_without_uram(model, board)
    ctx.results.segments = hw_segments(model)
    return model


#: searches with a FIFO reserve after the first (the reserve only grows, so this converges or stops here)
FIFO_RESERVE_ROUNDS = 3


def _with_token_batch(model, token_batch: tuple | None):
    """``model`` with the pairs ``token_batch`` = (B, dot, MVAU names) on the token-batched unit (a copy), or
    ``model`` itself when it names none: what the fit search prices a choice as."""
    if not token_batch or not token_batch[2]:
        return model
    import copy

    from samfpga.hw.custom_ops.token_batch import UseTokenBatchMVU

    b, dot, names = token_batch
    return copy.deepcopy(model).transform(UseTokenBatchMVU(b, dot, names=tuple(sorted(names))))


def _fifo_totals(model, board, own_rtl: bool = True, token_batch: tuple | None = None) -> dict[str, float]:
    """Summed resources of the FIFOs and width converters ``model`` (folded) needs once its layers are built
    (``after_folding``: a Shuffle's FIFOs are those of the PagePermute it becomes), by
    ``samfpga.hw.resources.stream_costs``; ``token_batch``: with those pairs on the token-batched unit
    (``_with_token_batch``; the unit's start-up sets the FIFOs around it)."""
    from samfpga.hw.boards import RESOURCES
    from samfpga.hw.build.after_folding import after_folding
    from samfpga.hw.resources import stream_costs

    tot = dict.fromkeys(RESOURCES, 0.0)
    for c in stream_costs(after_folding(_with_token_batch(model, token_batch), board.part, own_rtl), board):
        for r, v in c.resources().items():
            tot[r] += v
    return tot


def _fit(model, ctx) -> None:
    """Fit search on ``model`` (in place): table of per-layer options, search, chosen attributes applied.

    With ``options.token_batch`` each MVAU + Requant pair the token-batched unit can compute also has options as that
    unit (``rolling.TokenBatchPricer``): the search chooses per pair whether its weights stay on chip or stream from
    DDR (``token_batch_layers`` imposes the unit on the pairs it names); the choice goes to
    ``results.token_batch_choice`` for the ``token_batch`` step. With ``options.roll`` the blocks of each rolled stage
    are tied (``rolling.tie``): one folding, N x the cycles, their resources once plus the other iterations'
    on-chip parameters."""
    from samfpga.hw.build import fit, memory, rolling

    cfg, board, opts = ctx.cfg, ctx.cfg.board_spec, ctx.cfg.options
    styles = memory.styles_for(board) if opts.search_memory else ("",)
    if not opts.search_memory:
        memory.place_without_uram(model, board)
    plans = _rolled_plans(model, ctx) if opts.roll else []
    if plans:
        ctx.results.rolled["at_folding"]["widened"] = rolling.unify_datatypes(model, plans)
    pricer, couple = None, None
    if opts.token_batch:
        pricer = rolling.TokenBatchPricer(board, opts.token_batch, opts.token_batch_dot,
                                          set(opts.token_batch_layers) or None)
        couple = pricer.pairs(model)
    columns = {p.stage.name: rolling.present_columns(model, [p]) for p in plans}
    repeats = {x: p.stage.iterations for p in plans for col in columns[p.stage.name] for x in col}
    twins = None
    if plans and opts.strips:
        # each body priced as built for column strips, as the roll step will price it
        twins = rolling.StripTwins(model, plans, opts.strips_per_stage([p.stage.name for p in plans]), board,
                                   cfg.own_rtl,
                                   (opts.token_batch, opts.token_batch_dot, set(opts.token_batch_layers) or None)
                                   if pricer else None)
        ctx.results.rolled["at_folding"]["strips"] = twins.stages
    alt = twins.alternative(pricer) if twins and pricer else pricer
    table = fit.build_table(model, board, cfg.clock, cfg.target_fps, opts.fit_ladder_ratio, styles,
                            opts.mvau_wwidth_max, own_rtl=cfg.own_rtl,
                            alternative=(rolling.TOKEN_BATCH, alt) if pricer else None, repeats=repeats,
                            twins=twins)
    groups = fit.pair_variants(table.groups, couple, rolling.TOKEN_BATCH) if pricer else table.groups
    if opts.token_batch_layers:
        groups = fit.only_variant(groups, rolling.TOKEN_BATCH)
    if plans:
        in_ddr = set(couple or {}) | set((couple or {}).values())
        extra = {}
        for p in plans:
            for col in columns[p.stage.name]:
                x, n = col[0], p.stage.iterations
                extra[x] = {"": rolling.param_extra(rolling.param_bits(p, x), n)}
                if x in in_ddr:
                    extra[x][rolling.TOKEN_BATCH] = rolling.param_extra(rolling.param_bits(p, x, True), n)
        groups = rolling.tie(groups, plans, model, extra)
    # each body node (block 0's name) -> its name in every block
    mates = {c[0]: c for cols in columns.values() for c in cols}
    candidates = [groups]
    if pricer and not opts.token_batch_layers:
        # the search re-weights resources greedily and the FIFO reserve below only grows, so more options can lead
        # to a slower choice: the unit wherever it applies and no unit at all are settled too, the fastest kept
        candidates += [fit.only_variant(groups, rolling.TOKEN_BATCH), fit.only_variant(groups, "")]
        if plans:  # the unit in the rolled bodies, weights on chip elsewhere
            candidates.append(fit.only_variant(fit.only_variant(groups, rolling.TOKEN_BATCH, set(mates)), "",
                                               set().union(*(g.names for g in groups)) - set(mates)))
    # a Shuffle's wider words need width converters the search does not see (they come with the FIFO reserve)
    candidates += [fit.without_origin(c, fit.WORD_WIDTH) for c in candidates]
    best = None

    def tb_names(cand: list, choice: list[int]) -> list[str]:
        # every block's node of a rolled body takes the body's choice (the tied group names block 0's)
        if not pricer:
            return []
        return sorted(y for x in fit.chosen(cand, choice, rolling.TOKEN_BATCH) if x in couple
                      for y in mates.get(x, (x,)))

    for cand in candidates:
        result, need = _settle(model, cand, ctx, bool(plans), tb_names)
        if best is None or _rank(result) < _rank(best[1]):
            best = (cand, result, need)
    groups, result, need = best
    fit.apply(model, groups, result.choice)
    # what the report will count for this choice: its layers as built plus the FIFOs and width converters it needs
    # (and a rolled build's loop DMA engines)
    result.streams = need
    result.predicted = fit.layer_totals(groups, result.choice, result.streams)
    result.table_seconds = table.seconds
    result.advice = fit.advice(result.totals, result.by_op_type, board, cfg.fit_limit)
    ctx.results.fit = result
    if pricer:
        ctx.results.token_batch_choice = tb_names(groups, result.choice)


def _rolled_remainder(model, groups: list, choice: list[int], ctx, token_batch: tuple) -> dict[str, float]:
    """What a rolled build of ``model`` as folded costs beyond the fit table's layers: the rolled graph priced as the
    ``roll`` step will price it (``rolling.rolled_costs`` after ``token_batch`` and ``after_folding``: FIFOs, width
    converters, loop DMA engines, and the body's layers at its unified attributes) minus the table's figures for the
    choice, per resource (at least 0)."""
    from samfpga.hw.boards import RESOURCES
    from samfpga.hw.build import fit
    from samfpga.hw.build.after_folding import after_folding
    from samfpga.hw.build.rolling import rolled_costs

    cfg = ctx.cfg
    m = after_folding(_with_token_batch(model, token_batch), cfg.board_spec.part, cfg.own_rtl)
    _rg, rc = rolled_costs(m, cfg.board_spec, cfg.own_rtl, strips=cfg.options.roll_strips)
    table = fit.layer_totals(groups, choice)
    return {r: max(0.0, sum(x[r] for x in rc.rows) - table[r]) for r in RESOURCES}


def _rank(result) -> tuple:
    """Order of fit results: fitting before not, then the faster; of those that do not fit, the nearest to fitting."""
    return (0, result.cycles) if result.fits else (1, result.over_by)


def _settle(model, groups: list, ctx, rolled: bool, tb_names):
    """``fit.search`` on ``groups`` with the FIFOs its choice needs reserved: the FIFOs a folding needs are not in the
    table (their depths depend on the folding of both neighbours), so the search runs again with the FIFOs of the
    last choice reserved until the reserve covers them. ``tb_names(groups, choice)``: the MVAUs a choice puts on the
    token-batched unit. Returns (result, the choice's FIFO totals); ``model`` is left folded as the last search
    chose."""
    from samfpga.hw.build import fit

    cfg, board, opts = ctx.cfg, ctx.cfg.board_spec, ctx.cfg.options

    def need_of(result):
        fit.apply(model, groups, result.choice)
        tb = (opts.token_batch, opts.token_batch_dot, tb_names(groups, result.choice))
        if rolled:
            return _rolled_remainder(model, groups, result.choice, ctx, tb)
        return _fifo_totals(model, board, cfg.own_rtl, token_batch=tb)

    result = fit.search(groups, board.budget(), cfg.clock, cfg.fit_limit, cfg.target_fps)
    for _ in range(FIFO_RESERVE_ROUNDS):
        need = need_of(result)
        if all(need[r] <= result.reserved.get(r, 0.0) for r in need):
            return result, need
        reserve = {r: max(need[r], result.reserved.get(r, 0.0)) for r in need}
        result = fit.search(groups, board.budget(), cfg.clock, cfg.fit_limit, cfg.target_fps, reserved=reserve)
    return result, need_of(result)


def _rolled_plans(model, ctx) -> list:
    """The stages one body serves (``rolling.rollable``), recorded in ``results.rolled`` with those refused."""
    from samfpga.hw.build import rolling

    plans, refused = rolling.rollable(model)
    ctx.results.rolled["at_folding"] = {
        "stages": [{"name": p.stage.name, "iterations": p.stage.iterations, "body_nodes": len(p.columns)}
                   for p in plans],
        "refused": [{"name": p.stage.name, "iterations": p.stage.iterations,
                     "differences": [str(d) for d in p.refused][:20]} for p in refused]}
    return plans


def step_token_batch(model, ctx):
    """With ``options.token_batch`` = B: MVAU + Requant pairs onto the token-batched unit (``UseTokenBatchMVU``), their
    weights and requantisation parameters packed into one DDR image, ``out/ddr_weights.bin``; off: nothing."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops.token_batch import (
        UseTokenBatchMVU,
        assign_ddr_offsets,
        ddr_image,
        kept_pairs,
        unit_summary,
    )

    opts = ctx.cfg.options
    if not opts.token_batch:
        return model
    from qonnx.transformation.general import GiveUniqueNodeNames

    # the fit search's choice (the pairs whose weights it put in DDR), else those named, else every pair
    names = ctx.results.token_batch_choice
    if names is None and opts.token_batch_layers:
        names = list(opts.token_batch_layers)
    fused = model.transform(UseTokenBatchMVU(opts.token_batch, opts.token_batch_dot,
                                             names=tuple(sorted(names)) if names is not None else None))
    converted = {n.name.removeprefix("TokenBatchMVU_rtl_") for n in fused.graph.node
                 if n.op_type == "TokenBatchMVU_rtl"}
    # the names later steps give (FINN renames every node <op_type>_<index>), so the report's names are the build's
    model, size = assign_ddr_offsets(fused.transform(GiveUniqueNodeNames()))
    image = ddr_image(model)
    path = ctx.out / "ddr_weights.bin"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(image + bytes(size - len(image)))
    tmp.replace(path)
    keys = ("ddr_offset", "bytes", "ddr_bytes_per_frame", "batch", "dot")
    summaries = {n.name: unit_summary(getCustomOp(n)) for n in model.graph.node if n.op_type == "TokenBatchMVU_rtl"}
    layers = {name: {k: x[k] for k in keys} for name, x in summaries.items()}
    kept = kept_pairs(model)
    missing = sorted(set(opts.token_batch_layers) - converted - set(kept))
    chosen_by_fit = ctx.results.token_batch_choice is not None
    if missing:
        raise ValueError(f"token_batch_layers: no MVAU + Requant pair named {missing} in the folded graph")
    ctx.results.token_batch = {"batch": opts.token_batch, "dot": opts.token_batch_dot, "layers": layers,
                               "chosen_by": "fit search" if chosen_by_fit else
                               ("token_batch_layers" if opts.token_batch_layers else "every pair"),
                               "kept": kept,
                               "image": path.name, "image_bytes": size,
                               "ddr_bytes_per_frame": sum(x["ddr_bytes_per_frame"] for x in layers.values())}
    ctx.results.segments = hw_segments(model)
    return model


def step_transpose_decomposition(model, ctx):
    """FINN+'s ``step_transpose_decomposition``: each ``Shuffle`` (a Transpose, with the Reshapes around it, as one
    HW layer; FINN+ has no implementation of it) becomes a chain of InnerShuffle (swap of the two innermost axes:
    ``InnerShuffle_rtl``) and OuterShuffle (permutation of the outer axes, innermost fixed: ``OuterShuffle_hls``)
    layers, then specialised. Runs after folding, as in FINN+'s builder: the decomposition keeps each Shuffle's
    SIMD. On Zynq with ``own_rtl``, ``UseOwnRTL(after_folding=True)`` then maps depthwise VVAUs and OuterShuffles
    to RTL. Before that (``own_rtl``), every Shuffle ``page_view`` accepts becomes ONE own ``PagePermute_rtl``
    (one buffered page instead of FINN's 2-3 double-buffered InnerShuffles; ``ShuffleToPagePermute``)."""
    from samfpga.hw.build.after_folding import after_folding

    # one conversion for the build and for the fit search's pricing (after_folding.py)
    model = after_folding(model, ctx.cfg.board_spec.part, ctx.cfg.own_rtl)
    ctx.results.segments = hw_segments(model)
    return model


def step_estimates(model, ctx):
    """Resources per HW node through ``samfpga.hw.resources.layer_costs`` (own models where registered, FINN's
    estimate otherwise, each labelled) into ``results.costs``, FINN's expected cycles into ``results.cycles``.
    Layers with memories in URAM are made runtime-writeable (``memory.mark_runtime_writeable``)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build import memory
    from samfpga.hw.resources import layer_costs, stream_costs

    res, board = ctx.results, ctx.cfg.board_spec
    res.memory_forced = sorted(set(res.memory_forced) | set(memory.place_without_uram(model, board)))
    res.costs = {c.name: c for c in layer_costs(model, board)}
    # no FIFOs or width converters exist before Vivado's set_fifo_depths: the ones the stitched pipeline will have
    # are priced (FINN's InsertDWC on a copy; FIFO depths from the analytic model)
    res.fifos = stream_costs(model, board)
    res.cycles = {n.name: int(getCustomOp(n).get_exp_cycles()) for n in model.graph.node
                  if n.domain.startswith(HW_DOMAIN)}
    res.runtime_writeable = memory.mark_runtime_writeable(model, [n for n, c in res.costs.items() if c.URAM > 0])
    return model


def step_roll(model, ctx):
    """With ``options.roll``: the rolled graph (``samfpga.hw.rolled.roll``) priced as built, each body once
    (``rolling.rolled_costs``: its layers, FIFOs, per-iteration parameters, loop DMA engines and DDR traffic), and
    with ``roll_verify`` run against the unrolled graph (tolerance 0; a difference fails the build). Off: nothing."""
    from samfpga.hw.build import rolling

    opts, res = ctx.cfg.options, ctx.results
    if not opts.roll:
        return model
    rg, rc = rolling.rolled_costs(model, ctx.cfg.board_spec, ctx.cfg.own_rtl, strips=opts.roll_strips)
    res.rolled.update(rows=rc.rows, stages=rc.stages, loop_ddr_bytes=rc.loop_ddr_bytes,
                      strip_weight_ddr_bytes=rc.strip_weight_ddr_bytes,
                      refused=[{"name": p.stage.name, "differences": [str(d) for d in p.refused][:20]}
                               for p in rg.plans if not p.rollable])
    # per stage: which body layers hold every iteration's parameters in their own HDL, which still cannot
    from samfpga.hw.rolled.hdl import looped_body

    res.rolled["hdl"] = [{"name": st["name"], **looped_body(loop)[1].to_dict()}
                         for st, loop in zip(rc.stages, rg.loops)]
    if not rc.stages:
        raise ValueError("roll: no repeated stage of this graph can be rolled: "
                         + ("; ".join(f"{p.stage.name}: {p.refused[0]}" for p in rg.plans) or "none found"))
    if opts.roll_verify:
        check = rolling.verify(rg, model)
        res.rolled["verify"] = check
        if check["differing"]:
            raise ValueError(f"roll: the rolled graph differs from the unrolled one in {check['differing']} of "
                             f"{check['values']} values (max |diff| {check['max_abs_diff']:g}) on {check['input']}")
    return model


def step_hw_codegen(model, ctx):
    """FINN's PrepareIP: real HDL for RTL layers, C++/TCL for HLS layers; each node's code is moved to
    ``out/hdl/<node name>/`` and its ``code_gen_dir_ipgen`` attribute points there. With ``options.roll`` every
    part of the rolled graph instead (``samfpga.hw.rolled.codegen``), then the build stops."""
    if ctx.cfg.options.strips:
        raise ValueError(f"hw_codegen: roll_strips {ctx.cfg.options.roll_strips}: column strips are priced only (the "
                         "fit and the report); the rolled HDL, host.json and driver run whole maps. Build the HDL "
                         "without --roll-strips")
    if ctx.cfg.options.roll:
        # every part of the rolled graph (pieces run once, loop bodies with every iteration's parameters) through
        # PrepareIP, host.json for the board's driver, and the Vivado design joining the parts around their DMA
        # engines (the HDL the RTL benches simulate); FINN's own IP steps do not apply to it
        from samfpga.hw.rolled import codegen
        from samfpga.hw.vivado.module_design import run_vivado

        index = codegen.generate(model, ctx.out, ctx.cfg.board_spec, ctx.cfg.clock)
        ctx.results.rolled["codegen"] = index
        script = ctx.out / index["vivado"]["script"]
        done = (f"hw_codegen: HDL of the rolled graph generated ({codegen.summary(index)}; rolled/parts.json, "
                f"rolled/host.json), its parts' Vivado design linted ({index['vivado']['sources']} sources) and "
                f"written to {script}")
        if not vivado_available():
            raise VivadoRequired(f"{done}; the bitstream needs Vivado: vivado -mode batch -source {script} "
                                 f"(then copy its rolled.bit and rolled.hwh to {ctx.out / 'rolled'})")
        bit = run_vivado(script, ctx.out / "rolled", "rolled")
        raise BuildStopped(f"{done}; bitstream {bit} (rolled builds end here: FINN's IP steps do not apply)")

    from samfpga.hw.rolled.codegen import move_code

    model = _finn().step_hw_codegen(model, ctx.finn_cfg)
    move_code(model, ctx.out / "hdl")
    return model


def _vivado_step(name: str, finn_name: str) -> Callable:
    def run(model, ctx):
        if not vivado_available():
            raise VivadoRequired(f"step {name} (FINN {finn_name})")
        return getattr(_finn(), finn_name)(model, ctx.finn_cfg)

    run.__name__ = f"step_{name}"
    run.__doc__ = f"FINN's ``{finn_name}`` (needs Vivado)."
    return run


@dataclass(frozen=True)
class Step:
    """One named build step: its function and whether it needs Vivado / Vitis HLS."""

    name: str
    fn: Callable
    needs_vivado: bool = False

    @property
    def doc(self) -> str:
        """First line of the step function's docstring."""
        return (self.fn.__doc__ or "").strip().split("\n")[0]


#: The build, in order (FINN+'s ``default_build_dataflow_steps`` order). The only list of step names.
PIPELINE: tuple[Step, ...] = (
    Step("qonnx_to_finn", step_qonnx_to_finn),
    Step("tidy_up", step_tidy_up),
    Step("streamline", step_streamline),
    Step("pixel_input", step_pixel_input),  # uint8 image in: normalisation folded into the first thresholds
    Step("convert_to_hw", step_convert_to_hw),
    Step("minimize_bit_width_initial", step_minimize_bit_width_initial),
    Step("partition", step_partition),
    Step("specialize", step_specialize),
    Step("fold", step_fold),
    Step("minimize_bit_width", step_minimize_bit_width),
    Step("token_batch", step_token_batch),
    Step("transpose_decomposition", step_transpose_decomposition),
    Step("estimates", step_estimates),
    Step("roll", step_roll),
    Step("hw_codegen", step_hw_codegen),
    Step("hls_ipgen", _vivado_step("hls_ipgen", "step_hw_ipgen"), needs_vivado=True),
    Step("fifo_sizing", _vivado_step("fifo_sizing", "step_set_fifo_depths"), needs_vivado=True),
    Step("stitched_ip", _vivado_step("stitched_ip", "step_create_stitched_ip"), needs_vivado=True),
    Step("synth", _vivado_step("synth", "step_out_of_context_synthesis"), needs_vivado=True),
    Step("bitfile", _vivado_step("bitfile", "step_synthesize_bitfile"), needs_vivado=True),
    Step("deployment", _vivado_step("deployment", "step_deployment_package"), needs_vivado=True),
)
#: name -> step function
STEPS: dict[str, Callable] = {s.name: s.fn for s in PIPELINE}
#: steps that run on this machine (no Vivado), in order
SOFTWARE_STEPS: tuple[str, ...] = tuple(s.name for s in PIPELINE if not s.needs_vivado)
#: steps that need Vivado / Vitis HLS; the build stops before them, with a message, when Vivado is missing
VIVADO_STEPS: tuple[str, ...] = tuple(s.name for s in PIPELINE if s.needs_vivado)
DEFAULT_STEPS: tuple[str, ...] = tuple(s.name for s in PIPELINE)
