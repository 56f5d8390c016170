"""Single-node FINN HW-layer graphs, specialised to RTL and with their HDL generated (no Vivado needed).

Each builder returns a ``ModelWrapper`` holding one node (plus initializers) after ``SpecializeLayers``
(RTL preferred) and ``PrepareIP`` (which renders the RTL wrapper and the memory init files).
The shapes and data types follow the encoder's use of the layer, with small dimensions so Verilator compiles fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samfpga.hw import HW_DOMAIN
from samfpga.hw.sim.finn_boot import boot_finn

# Zynq UltraScale+ (ZCU104/KV260 class): DSP48E2, i.e. MVU VERSION 2
ZYNQ_PART = "xczu7ev-ffvc1156-2-e"
CLK_NS = 5.0
DOMAIN = HW_DOMAIN


@dataclass
class NodeSpec:
    """One FINN HW node to build: op type, attributes, tensors (name -> (shape, FINN datatype))."""

    op_type: str
    attrs: dict
    inputs: dict[str, tuple[tuple[int, ...], str]]
    outputs: dict[str, tuple[tuple[int, ...], str]]
    initializers: dict[str, tuple[np.ndarray, str]] = field(default_factory=dict)
    name: str = ""
    # optional (lo, hi) of the random values drawn for a graph input (default: its datatype's whole range)
    input_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)


def _make_graph(specs: list[NodeSpec]):
    """Chain ``specs`` into one ONNX graph; tensors with the same name connect nodes."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    produced = {t for s in specs for t in s.outputs}
    consumed = {t for s in specs for t in s.inputs}
    nodes, vis, gin, gout, dtypes = [], [], [], [], {}
    for i, s in enumerate(specs):
        ins = list(s.inputs) + list(s.initializers)
        nodes.append(
            helper.make_node(
                s.op_type, ins, list(s.outputs), domain=DOMAIN, backend="fpgadataflow",
                name=s.name or f"{s.op_type}_{i}", **s.attrs,
            )
        )
        for t, (shape, dt) in {**s.inputs, **s.outputs}.items():
            dtypes[t] = dt
            vi = helper.make_tensor_value_info(t, TensorProto.FLOAT, list(shape))
            if t in s.inputs and t not in produced:
                gin.append(vi)
            elif t in s.outputs and t not in consumed:
                gout.append(vi)
            elif t in s.outputs:
                vis.append(vi)
    graph = helper.make_graph(nodes, "sim_segment", gin, gout, value_info=vis)
    model = ModelWrapper(qonnx_make_model(graph, producer_name="samfpga.hw.sim"))
    for t, dt in dtypes.items():
        model.set_tensor_datatype(t, DataType[dt])
    for s in specs:
        for t, (arr, dt) in s.initializers.items():
            model.set_initializer(t, arr.astype(np.float32))
            model.set_tensor_datatype(t, DataType[dt])
    return model


def build_hw_graph(specs: list[NodeSpec], part: str = ZYNQ_PART, clk_ns: float = CLK_NS):
    """Build, specialise (RTL preferred) and generate HDL for a chain of FINN HW nodes.

    Returns the ``ModelWrapper``; each node's ``code_gen_dir_ipgen`` holds its wrapper and init files.
    """
    boot_finn()
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    import samfpga.hw.custom_ops  # noqa: F401  (registers the project's own RTL ops with FINN)

    model = _make_graph(specs)
    model = model.transform(SpecializeLayers(part))
    model = model.transform(GiveUniqueNodeNames())
    bad = [n.op_type for n in model.graph.node if not n.op_type.endswith("_rtl")]
    if bad:
        raise ValueError(f"nodes {bad} did not specialise to RTL for part {part}")
    return model.transform(PrepareIP(part, clk_ns))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rand(dt: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Uniform random integers over the whole range of FINN datatype ``dt`` (shape ``shape``, dtype float32).

    FLOAT32/FLOAT16: normal values (scale 8) of both signs on a grid of 1/8, so that values drawn for inputs and
    for thresholds coincide often (ties exercise the ``>=`` of thresholding). Negative zero is normalised to +0.0
    (FINN's float thresholding RTL orders -0.0 below +0.0; docs/simulation.md)."""
    from qonnx.core.datatype import DataType

    d = DataType[dt]
    if not d.is_integer():
        x = np.round(64.0 * rng.standard_normal(size=shape)) / 8.0 + 0.0  # + 0.0 turns -0.0 into +0.0
        return x.astype(np.float16 if dt == "FLOAT16" else np.float32).astype(np.float32)
    return rng.integers(int(d.min()), int(d.max()) + 1, size=shape).astype(np.float32)


def mvau(mw: int = 12, mh: int = 8, simd: int = 3, pe: int = 2, n: int = 4, idt: str = "INT4",
         wdt: str = "INT4", odt: str = "INT32", seed: int = 0, iters: int = 1, ram_style: str = "auto",
         runtime_writeable: int = 0) -> NodeSpec:
    """Matrix-vector unit, weights in a decoupled memory stream (FINN's default for MVAU_rtl). ``iters`` > 1: the
    unit of a rolled body serving that many blocks (``samfpga.hw.custom_ops.looped``), each with its own random
    weights (``samfpga.hw.custom_ops.mvau_rtl``). ``ram_style`` "ultra" with ``runtime_writeable`` 1: the weights
    in URAM, written over AXI-Lite at run time (Zynq: no init file)."""
    import json

    rng = _rng(seed)
    sets = [_rand(wdt, (mw, mh), rng) for _ in range(iters)]
    w = sets[0]
    loop = {} if iters == 1 else dict(loop_iterations=iters,
                                      loop_values=json.dumps({"weights": [s.tolist() for s in sets]}))
    return NodeSpec(
        "MVAU",
        dict(MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=idt, weightDataType=wdt, outputDataType=odt,
             ActVal=0, binaryXnorMode=0, noActivation=1, mem_mode="internal_decoupled",
             numInputVectors=[1, n], accDataType=odt, preferred_impl_style="rtl", ram_style=ram_style,
             runtime_writeable_weights=runtime_writeable, **loop),
        {"mvau_in": ((1, n, mw), idt)},
        {"mvau_out": ((1, n, mh), odt)},
        {"mvau_w": (w, wdt)},
    )


def thresholding(ch: int = 8, pe: int = 2, n: int = 6, idt: str = "INT12", odt: str = "UINT4",
                 seed: int = 1, runtime_writeable: int = 0,
                 t_range: tuple[int, int] | None = None, wdt: str | None = None) -> NodeSpec:
    """Multi-threshold activation (the quantised activation after every MVAU), sorted random thresholds.

    t_range: (lo, hi) the thresholds are drawn from; default the whole threshold datatype range.
    wdt: threshold datatype (default ``idt``); FINN's RoundAndClipThresholds makes it one bit wider than the input
        (e.g. INT33 for INT32 accumulators), since thresholds are clipped to [min - 1, max + 1] of the input.
    """
    from qonnx.core.datatype import DataType

    wdt = wdt or idt
    steps = DataType[odt].get_num_possible_values() - 1
    if t_range is None:
        t = _rand(wdt, (ch, steps), _rng(seed))
    else:
        t = _rng(seed).integers(t_range[0], t_range[1] + 1, size=(ch, steps)).astype(np.float32)
    t = np.sort(t, axis=1)
    return NodeSpec(
        "Thresholding",
        dict(NumChannels=ch, PE=pe, numSteps=steps, inputDataType=idt, weightDataType=wdt,
             outputDataType=odt, ActVal=int(DataType[odt].min()), numInputVectors=[1, n],
             runtime_writeable_weights=runtime_writeable, preferred_impl_style="rtl"),
        {"thr_in": ((1, n, ch), idt)},
        {"thr_out": ((1, n, ch), odt)},
        {"thr_t": (t, wdt)},
    )


def thresholding_looped(ch: int = 8, pe: int = 2, n: int = 3, idt: str = "INT12", odt: str = "INT6", steps: int = 15,
                        act_vals: tuple[int, ...] = (-8, -3, 0), seed: int = 4, broadcast: bool = False,
                        runtime_writeable: int = 0) -> NodeSpec:
    """The thresholding layer of a rolled body serving ``len(act_vals)`` blocks (``samfpga.hw.custom_ops.looped``),
    each with its own sorted random thresholds and output offset ``ActVal``; ``steps`` thresholds per channel and an
    output datatype ``odt`` wider than the count (as a rolled body's widest datatype makes it), so that the core's
    stages and the output width differ. ``broadcast``: one threshold row for every channel (FINN's C = PE case);
    ``runtime_writeable``: thresholds also writable over AXI-Lite."""
    import json

    from qonnx.core.datatype import DataType

    rng = _rng(seed)
    sets = [np.sort(_rand(idt, (1 if broadcast else ch, steps), rng), axis=1) for _ in act_vals]
    for a in act_vals:
        if a < DataType[odt].min() or a + steps > DataType[odt].max():
            raise ValueError(f"ActVal {a} + {steps} steps does not fit {odt}")
    return NodeSpec(
        "Thresholding",
        dict(NumChannels=ch, PE=pe, numSteps=steps, inputDataType=idt, weightDataType=idt, outputDataType=odt,
             ActVal=act_vals[0], numInputVectors=[1, n], preferred_impl_style="rtl", loop_iterations=len(act_vals),
             runtime_writeable_weights=runtime_writeable,
             loop_values=json.dumps({"ActVal": list(act_vals), "thresholds": [s.tolist() for s in sets]})),
        {"thr_in": ((1, n, ch), idt)},
        {"thr_out": ((1, n, ch), odt)},
        {"thr_t": (sets[0], idt)},
    )


def swg(ifm: int = 6, ch: int = 4, k: int = 3, stride: int = 1, simd: int = 2, dt: str = "UINT4",
        depthwise: int = 0, parallel_window: int = 0) -> NodeSpec:
    """Sliding-window (im2col) generator in front of a convolution's MVAU/VVAU."""
    ofm = (ifm - k) // stride + 1
    return NodeSpec(
        "ConvolutionInputGenerator",
        dict(ConvKernelDim=[k, k], IFMChannels=ch, IFMDim=[ifm, ifm], OFMDim=[ofm, ofm], SIMD=simd,
             Stride=[stride, stride], Dilation=[1, 1], inputDataType=dt, outputDataType=dt,
             depthwise=depthwise, parallel_window=parallel_window, preferred_impl_style="rtl"),
        {"swg_in": ((1, ifm, ifm, ch), dt)},
        {"swg_out": ((1, ofm, ofm, k * k * ch), dt)},
    )


def fmpadding(ifm: int = 5, ch: int = 4, pad: int = 1, simd: int = 2, dt: str = "UINT4") -> NodeSpec:
    """Zero padding of a feature map (in front of every padded convolution)."""
    o = ifm + 2 * pad
    return NodeSpec(
        "FMPadding",
        dict(ImgDim=[ifm, ifm], Padding=[pad, pad, pad, pad], NumChannels=ch, SIMD=simd, inputDataType=dt,
             numInputVectors=1, preferred_impl_style="rtl"),
        {"pad_in": ((1, ifm, ifm, ch), dt)},
        {"pad_out": ((1, o, o, ch), dt)},
    )


def dwc(shape: tuple[int, ...] = (1, 4, 12), in_width: int = 12, out_width: int = 8,
        dt: str = "UINT4") -> NodeSpec:
    """Stream data-width converter between layers of different folding."""
    return NodeSpec(
        "StreamingDataWidthConverter",
        dict(inShape=list(shape), outShape=list(shape), inWidth=in_width, outWidth=out_width, dataType=dt,
             preferred_impl_style="rtl"),
        {"dwc_in": (shape, dt)},
        {"dwc_out": (shape, dt)},
    )


def fifo(shape: tuple[int, ...] = (1, 16, 4), simd: int = 2, depth: int = 8, dt: str = "INT4") -> NodeSpec:
    """Stream FIFO between layers (depths set by FINN's FIFO sizing)."""
    folded = (*shape[:-1], shape[-1] // simd, simd)
    return NodeSpec(
        "StreamingFIFO",
        dict(depth=depth, folded_shape=list(folded), normal_shape=list(shape), dataType=dt,
             impl_style="rtl", preferred_impl_style="rtl"),
        {"fifo_in": (shape, dt)},
        {"fifo_out": (shape, dt)},
    )


def page_permute(in_shape: tuple[int, ...], perm: tuple[int, ...], dt: str = "INT8", simd: int = 1,
                 transpose_in_shape: tuple[int, ...] | None = None, out_shape: tuple[int, ...] | None = None,
                 ram_style: str = "auto", pages: int = 0) -> NodeSpec:
    """Own RTL: a Transpose of ``transpose_in_shape`` (default ``in_shape``) by ``perm`` through one buffered page
    (hw/samfpga/hw/rtl/page_permute.sv); ``out_shape`` defaults to the transposed shape."""
    logical = tuple(transpose_in_shape or in_shape)
    out = tuple(out_shape or [logical[p] for p in perm])
    return NodeSpec(
        "PagePermute",
        dict(in_shape=list(in_shape), transpose_in_shape=list(logical), perm=list(perm), out_shape=list(out),
             data_type=dt, SIMD=simd, ram_style=ram_style, pages=pages, preferred_impl_style="rtl"),
        {"pp_in": (tuple(in_shape), dt)},
        {"pp_out": (out, dt)},
    )


def addstreams(ch: int = 8, pe: int = 4, n: int = 6, dt0: str = "INT8", dt1: str = "INT8") -> NodeSpec:
    """Own RTL: integer residual add of two streams (hw/samfpga/hw/rtl/add_streams.sv)."""
    from qonnx.core.datatype import DataType

    from samfpga.hw.custom_ops.addstreams import sum_datatype

    odt = sum_datatype(DataType[dt0], DataType[dt1]).name
    return NodeSpec(
        "AddStreams",
        dict(NumChannels=ch, PE=pe, inputDataTypes=[dt0, dt1], outputDataType=odt, numInputVectors=[1, n],
             preferred_impl_style="rtl"),
        {"add_in0": ((1, n, ch), dt0), "add_in1": ((1, n, ch), dt1)},
        {"add_out": ((1, n, ch), odt)},
    )


def duplicatestreams(ch: int = 8, pe: int = 2, n: int = 6, dt: str = "INT8", outputs: int = 2) -> NodeSpec:
    """Own RTL: one stream copied to ``outputs`` streams (hw/samfpga/hw/rtl/duplicate_streams.sv)."""
    return NodeSpec(
        "DuplicateStreams",
        dict(NumChannels=ch, PE=pe, NumOutputStreams=outputs, inputDataType=dt, numInputVectors=[1, n],
             preferred_impl_style="rtl"),
        {"dup_in": ((1, n, ch), dt)},
        {f"dup_out{i}": ((1, n, ch), dt) for i in range(outputs)},
    )


def chain(*specs: NodeSpec) -> list[NodeSpec]:
    """Connect ``specs`` in order: each spec's first input tensor is renamed to the previous spec's first output."""
    out: list[NodeSpec] = []
    for i, s in enumerate(specs):
        s.inputs = dict(s.inputs)
        if out:
            prev_name, (prev_shape, prev_dt) = next(iter(out[-1].outputs.items()))
            first, (shape, dt) = next(iter(s.inputs.items()))
            if tuple(shape) != tuple(prev_shape) or dt != prev_dt:
                raise ValueError(f"cannot chain {out[-1].op_type} {prev_shape}/{prev_dt} into {s.op_type} "
                                 f"{shape}/{dt}")
            s.inputs = {prev_name: s.inputs.pop(first), **s.inputs}
        # unique tensor names per position so the same layer type can appear twice
        s.outputs = {f"{k}_{i}": v for k, v in s.outputs.items()}
        s.initializers = {f"{k}_{i}": v for k, v in s.initializers.items()}
        if not out:
            s.inputs = {f"{k}_{i}": v for k, v in s.inputs.items()}
        out.append(s)
    return out


def stem_segment(img: int = 8, seed: int = 7, ch: int = 3, cout: int = 8, simd: int = 3, pe: int = 2,
                 idt: str = "UINT8", acc: str = "INT20", odt: str = "UINT4") -> list[NodeSpec]:
    """The encoder's stem pattern: pad -> sliding window (3x3, stride 2) -> MVAU -> FIFO -> thresholding.

    Defaults: the first stem conv (RGB UINT8 input, 3 channels at SIMD 3), INT4 weights, INT20 accumulator,
    UINT4 activation. ``ch=32, cout=64`` gives TinyViT-5M's second stem conv (32 -> 64 channels).
    """
    k, pad, stride = 3, 1, 2
    padded = img + 2 * pad
    ofm = (padded - k) // stride + 1
    mv = mvau(mw=k * k * ch, mh=cout, simd=simd, pe=pe, idt=idt, wdt="INT4", odt=acc, seed=seed)
    mv.attrs["numInputVectors"] = [1, ofm, ofm]
    mv.inputs = {"mvau_in": ((1, ofm, ofm, k * k * ch), idt)}
    mv.outputs = {"mvau_out": ((1, ofm, ofm, cout), acc)}
    th = thresholding(ch=cout, pe=pe, n=0, idt=acc, odt=odt, seed=seed + 1, t_range=(-3000, 3000))
    th.attrs["numInputVectors"] = [1, ofm, ofm]
    th.inputs = {"thr_in": ((1, ofm, ofm, cout), acc)}
    th.outputs = {"thr_out": ((1, ofm, ofm, cout), odt)}
    return chain(
        fmpadding(ifm=img, ch=ch, pad=pad, simd=simd, dt=idt),
        swg(ifm=padded, ch=ch, k=k, stride=stride, simd=simd, dt=idt),
        mv,
        fifo(shape=(1, ofm, ofm, cout), simd=pe, depth=16, dt=acc),
        th,
    )


def residual_segment(n: int = 6, ch: int = 8, pe: int = 2, fifo_depth: int = 16, seed: int = 11) -> list[NodeSpec]:
    """A residual block's stream topology with the project's own RTL: fork -> (skip: FIFO) + (MVAU) -> add.

    DuplicateStreams feeds the skip branch (a FIFO deep enough to hold the words the MVAU reads before its first
    output) and a pointwise MVAU (INT8 x INT4 -> INT16); AddStreams adds both (INT8 + INT16 -> INT17).
    """
    dup = duplicatestreams(ch=ch, pe=pe, n=n, dt="INT8")
    dup.inputs = {"res_in": ((1, n, ch), "INT8")}
    dup.outputs = {"res_skip": ((1, n, ch), "INT8"), "res_branch": ((1, n, ch), "INT8")}
    ff = fifo(shape=(1, n, ch), simd=pe, depth=fifo_depth, dt="INT8")
    ff.inputs = {"res_skip": ((1, n, ch), "INT8")}
    ff.outputs = {"res_skip_q": ((1, n, ch), "INT8")}
    mv = mvau(mw=ch, mh=ch, simd=pe, pe=pe, n=n, idt="INT8", wdt="INT4", odt="INT16", seed=seed)
    mv.inputs = {"res_branch": ((1, n, ch), "INT8")}
    mv.outputs = {"res_mvau": ((1, n, ch), "INT16")}
    mv.initializers = {"res_w": mv.initializers["mvau_w"]}
    add = addstreams(ch=ch, pe=pe, n=n, dt0="INT8", dt1="INT16")
    add.inputs = {"res_skip_q": ((1, n, ch), "INT8"), "res_mvau": ((1, n, ch), "INT16")}
    add.outputs = {"res_out": ((1, n, ch), add.attrs["outputDataType"])}
    return [dup, ff, mv, add]


# Versal (VCK190 class, DSP58): FINN's RTL VVU (depthwise convolution) exists only for DSP58
VERSAL_PART = "xcvc1902-vsva2197-2MP-e-S"


def vvau(ch: int = 4, k: int = 3, dim: int = 3, pe: int = 2, simd: int = 3, idt: str = "INT8",
         wdt: str = "INT4", odt: str = "INT32", seed: int = 5) -> NodeSpec:
    """Depthwise-convolution vector unit (MBConv's depthwise 3x3); RTL only on Versal (VERSION 3, DSP58)."""
    w = _rand(wdt, (ch, 1, k, k), _rng(seed))
    return NodeSpec(
        "VVAU",
        dict(PE=pe, SIMD=simd, Dim=[dim, dim], Channels=ch, Kernel=[k, k], inputDataType=idt,
             weightDataType=wdt, outputDataType=odt, accDataType=odt, ActVal=0, noActivation=1,
             mem_mode="internal_decoupled", preferred_impl_style="rtl"),
        {"vvau_in": ((1, dim, dim, k * k * ch), idt)},
        {"vvau_out": ((1, dim, dim, ch), odt)},
        {"vvau_w": (w, wdt)},
    )


def depthwise_vvau(ch: int = 8, k: int = 3, dim: int = 3, pe: int = 2, simd: int = 3, idt: str = "INT8",
                   wdt: str = "INT4", odt: str = "INT16", seed: int = 5, iters: int = 1) -> NodeSpec:
    """Own RTL: depthwise 3x3 conv (FINN VVAU semantics, no activation) for Zynq (hw/samfpga/hw/rtl/dw_vvau.sv).
    ``iters`` > 1: the layer of a rolled body serving that many blocks (``samfpga.hw.custom_ops.looped``), each
    with its own random weights."""
    import json

    spec = vvau(ch=ch, k=k, dim=dim, pe=pe, simd=simd, idt=idt, wdt=wdt, odt=odt, seed=seed)
    spec.op_type = "DepthwiseVVAU"
    spec.attrs["mem_mode"] = "internal_embedded"  # the weights are constants of the wrapper
    if iters > 1:
        rng = _rng(seed + 1)
        w0 = spec.initializers["vvau_w"][0]
        sets = [w0] + [_rand(wdt, w0.shape, rng) for _ in range(iters - 1)]
        spec.attrs.update(loop_iterations=iters, loop_values=json.dumps({"weights": [w.tolist() for w in sets]}))
    return spec


def streaming_split(channels: tuple[int, ...] = (8, 8, 8), simd: int = 4, n: int = 4,
                    dt: str = "INT8") -> NodeSpec:
    """Own RTL: split along the channels (the q/k/v split of attention; hw/samfpga/hw/rtl/stream_split.sv)."""
    total = sum(channels)
    return NodeSpec(
        "StreamingSplit",
        dict(SIMD=simd, ChannelsPerStream=list(channels), inputDataType=dt, numInputVectors=[1, n],
             preferred_impl_style="rtl"),
        {"split_in": ((1, n, total), dt)},
        {f"split_out{i}": ((1, n, c), dt) for i, c in enumerate(channels)},
    )


def depthwise_conv_segment(ifm: int = 5, ch: int = 8, pe: int = 2, dt: str = "INT8", wdt: str = "INT4",
                           odt: str = "INT16") -> list[NodeSpec]:
    """MBConv's depthwise 3x3 as the encoder streams it: sliding window (depthwise order, SIMD = PE) -> own
    DepthwiseVVAU (SIMD 1). FINN's python execution of the VVAU sees the window in (K, C) order behind the
    generator, while the hardware stream is in (C/PE, K, PE) order: the stitched bench checks both agree."""
    ofm = ifm - 2
    vv = depthwise_vvau(ch=ch, dim=ofm, pe=pe, simd=1, idt=dt, wdt=wdt, odt=odt)
    return chain(swg(ifm=ifm, ch=ch, simd=pe, dt=dt, depthwise=1), vv)


def reshape(inp_shape: tuple[int, ...] = (1, 16, 12), out_shape: tuple[int, ...] = (1, 4, 4, 12), pe: int = 4,
            dt: str = "INT8") -> NodeSpec:
    """Reshape as a HW layer (FINN's ``InferReshape``; e.g. tokens (1, N, C) <-> feature map (1, H, W, C), or the
    qkv split (1, N, 3C) -> (1, N, 3, C)). Its RTL is FINN's DWC at equal widths: ``pe`` elements per word,
    row-major order unchanged, so ``pe`` must divide the innermost dimension of both shapes."""
    return NodeSpec(
        "Reshape",
        dict(inp_shape=list(inp_shape), out_shape=list(out_shape), dtype=dt, PE=pe, preferred_impl_style="rtl"),
        {"rs_in": (tuple(inp_shape), dt)},
        {"rs_out": (tuple(out_shape), dt)},
    )


def transpose_graph(in_shape: tuple[int, ...], perm: tuple[int, ...], dt: str = "INT8", simd: int = 1,
                    reshape_to: tuple[int, ...] | None = None, part: str = ZYNQ_PART, clk_ns: float = CLK_NS,
                    after_decomposition=None):
    """An ONNX Transpose (optionally fed by a Reshape to ``reshape_to``) turned into RTL by FINN's own flow:
    ``InferShuffle`` (Reshape + Transpose -> one Shuffle), SIMD set as a folding config would,
    ``ShuffleDecomposition`` + ``InferInnerOuterShuffles`` (FINN+'s transpose decomposition: InnerShuffle = swap of
    the two innermost axes, OuterShuffle = permutation of the outer axes), ``SpecializeLayers`` and ``PrepareIP``.

    in_shape: graph input shape; perm: the Transpose's permutation (of ``reshape_to`` when given).
    after_decomposition: optional qonnx Transformation applied after the decomposition, before specialisation
        (e.g. ``samfpga.hw.custom_ops.transforms.OuterShuffleToInnerShuffles``).
    Returns the ``ModelWrapper``; raises ValueError when a decomposed layer is not RTL (OuterShuffle exists only
    as HLS in FINN+ 1.6.1).
    """
    boot_finn()
    from finn.transformation.fpgadataflow.convert_to_hw.shuffle import InferShuffle
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.fpgadataflow.transpose_decomposition import (
        InferInnerOuterShuffles,
        ShuffleDecomposition,
    )
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveUniqueNodeNames
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    logical = tuple(reshape_to) if reshape_to is not None else tuple(in_shape)
    out_shape = [logical[p] for p in perm]
    nodes_, inits = [], []
    t_in = "tr_in"
    if reshape_to is not None:
        inits.append(helper.make_tensor("tr_shape", TensorProto.INT64, [len(logical)], list(logical)))
        nodes_.append(helper.make_node("Reshape", [t_in, "tr_shape"], ["tr_reshaped"], name="Reshape_0"))
        t_in = "tr_reshaped"
    nodes_.append(helper.make_node("Transpose", [t_in], ["tr_out"], perm=list(perm), name="Transpose_0"))
    graph = helper.make_graph(
        nodes_, "sim_transpose",
        [helper.make_tensor_value_info("tr_in", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("tr_out", TensorProto.FLOAT, out_shape)], initializer=inits)
    model = ModelWrapper(qonnx_make_model(graph, producer_name="samfpga.hw.sim"))
    model.set_tensor_datatype("tr_in", DataType[dt])
    model = model.transform(InferShapes()).transform(InferDataTypes())
    # FINN's default filter skips a graph's first Transpose (an NCHW->NHWC input conversion); here it is the layer
    model = model.transform(InferShuffle(_filter=lambda m, n: True))
    for n in model.get_nodes_by_op_type("Shuffle"):
        getCustomOp(n).set_nodeattr("SIMD", simd)
    model = model.transform(ShuffleDecomposition()).transform(InferInnerOuterShuffles())
    if after_decomposition is not None:
        model = model.transform(after_decomposition)
    model = model.transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames())
    bad = [n.op_type for n in model.graph.node if not n.op_type.endswith("_rtl")]
    if bad:
        raise ValueError(f"transpose {perm} of {logical} decomposed into non-RTL layers {bad}")
    return model.transform(PrepareIP(part, clk_ns))


def mvau_dynamic(mw: int = 8, mh: int = 6, simd: int = 2, pe: int = 3, heads: int = 2, n: int = 4,
                 idt: str = "INT8", wdt: str = "INT8", odt: str = "INT20") -> NodeSpec:
    """Attention matmul (Q K^T or A V): both operands streamed (``mem_mode=dynamic``). The second input carries one
    (mw, mh) matrix per head, each applied to the head's ``n`` rows; FINN's dynamic loader buffers and replays it."""
    return NodeSpec(
        "MVAU",
        dict(MW=mw, MH=mh, SIMD=simd, PE=pe, inputDataType=idt, weightDataType=wdt, outputDataType=odt,
             ActVal=0, binaryXnorMode=0, noActivation=1, mem_mode="dynamic",
             numInputVectors=[1, heads, n], accDataType=odt, preferred_impl_style="rtl"),
        {"mm_a": ((1, heads, n, mw), idt), "mm_b": ((1, heads, mw, mh), wdt)},
        {"mm_out": ((1, heads, n, mh), odt)},
    )


def int_layernorm(ch: int = 16, pe: int = 2, n: int = 6, idt: str = "INT8", eps: float = 0.25,
                  frac_bits: int = 8, lut_bits: int = 10, seed: int = 11, negate: bool = True,
                  iters: int = 1) -> NodeSpec:
    """Own RTL: integer LayerNorm (hw/samfpga/hw/rtl/int_layernorm.sv); ``eps`` in input units squared;
    ``negate``: every third channel's output negated (a negative LayerNorm gamma). ``iters`` > 1: the layer of a
    rolled body serving that many blocks (``samfpga.hw.custom_ops.looped``), iteration i with eps x 4^i and every
    third channel from channel i + 1 negated."""
    import json

    from samfpga.kernels.layernorm import eps_int_for, out_bits_for

    odt = f"INT{out_bits_for(ch, frac_bits)}"
    sets = [(eps_int_for(ch, eps * 4.0 ** i), [int(negate and c % 3 == (1 + i) % 3) for c in range(ch)])
            for i in range(iters)]
    loop = {} if iters == 1 else dict(loop_iterations=iters, loop_values=json.dumps(
        {"eps_int": [e for e, _ in sets], "negate": [f for _, f in sets]}))
    return NodeSpec(
        "IntLayerNorm",
        dict(NumChannels=ch, PE=pe, inputDataType=idt, outputDataType=odt, numInputVectors=[1, n],
             eps_int=sets[0][0], frac_bits=frac_bits, lut_bits=lut_bits, negate=sets[0][1],
             preferred_impl_style="rtl", **loop),
        {"ln_in": ((1, n, ch), idt)},
        {"ln_out": ((1, n, ch), odt)},
    )


def int_softmax(n: int = 16, pe: int = 2, heads: int = 2, windows: int = 2, idt: str = "INT16",
                scale: float = 2.0 ** -9, out_scale: float = 2.0 ** -8, bias: bool | str = True,
                exp_frac_bits: int = 6, seed: int = 12, iters: int = 1, pipelined: int = 0,
                div_step_bits: int = 2, bias_ram: int = 0) -> NodeSpec:
    """Own RTL: integer softmax over rows of ``n`` (hw/samfpga/hw/rtl/int_softmax.sv), input
    (windows, heads, n, n) as attention logits, with a (heads * n, n) bias table: random when ``bias`` is True,
    TinyViT's (head, |dy|, |dx|) structure in a sqrt(n)-wide window when ``bias == "window"`` (the RTL's compact
    table), none when False. ``iters`` > 1: the layer of a rolled body serving that many blocks
    (``samfpga.hw.custom_ops.looped``): iteration i with its own bias table, the logit scale x 3^i (another
    multiplier and pre-shift) and the output scale x 2^-i (another out_num). ``pipelined``, ``div_step_bits``,
    ``bias_ram``: the RTL architecture (the node attributes of the same names)."""
    import json

    from samfpga.kernels.softmax import make_params

    rng = _rng(seed)
    sets = []
    for i in range(iters):
        b = None
        if bias == "window":
            side = int(round(n ** 0.5))
            y, x = np.divmod(np.arange(n), side)
            idx = np.abs(y[:, None] - y[None, :]) * side + np.abs(x[:, None] - x[None, :])
            b = rng.normal(scale=2.0, size=(heads, n))[:, idx].reshape(heads * n, n)
        elif bias:
            b = rng.normal(scale=2.0, size=(heads * n, n))
        sets.append(make_params(n, scale * 3.0 ** i, out_scale * 2.0 ** -i, b, out_bits=8,
                                exp_frac_bits=exp_frac_bits))
    p = sets[0]
    shape = (windows, heads, n, n)
    inits = {} if p.bias is None else {
        "sm_bias": (p.bias.astype(np.float32),
                    f"INT{max(int(np.abs(q.bias).max()).bit_length() for q in sets) + 1}")}
    loop = {}
    if iters > 1:
        values = {k: [getattr(q, k) for q in sets] for k in ("mult", "pre_shift", "out_num")}
        if p.bias is not None:
            values["bias"] = [q.bias.tolist() for q in sets]
        loop = dict(loop_iterations=iters, loop_values=json.dumps(values))
    return NodeSpec(
        "IntSoftmax",
        dict(NumChannels=n, PE=pe, inputDataType=idt, outputDataType="UINT8", numInputVectors=list(shape[:-1]),
             mult=p.mult, pre_shift=p.pre_shift, out_num=p.out_num, recip_bits=p.recip_bits,
             exp_frac_bits=p.exp_frac_bits, exp_bits=p.exp_bits, pipelined=pipelined, div_step_bits=div_step_bits,
             bias_ram=bias_ram, preferred_impl_style="rtl", **loop),
        {"sm_in": (shape, idt)},
        {"sm_out": (shape, "UINT8")},
        inits,
    )


def requant(ch: int = 8, pe: int = 2, n: int = 6, idt: str = "INT20", odt: str = "INT8", k_range: tuple[int, int] = (1, 6),
            mem_mode: str = "internal_embedded", seed: int = 3, ram_style: str = "auto", iters: int = 1) -> NodeSpec:
    """FINN+'s arithmetic requantizer as ``samfpga.hw.build.requant.InferExactRequant`` makes it: per-channel
    power-of-two scales 2**-k (k in ``k_range``) and biases ``0.5 - T0/d + out_bias`` on the 1/d grid, within what
    requant.sv accepts (|bias| < 2**(in_bits - out_bits)). ``mem_mode``: "internal_decoupled" (parameters decomposed
    in Python into a memstream) or "internal_embedded" (parameters printed into the SV source as decimals);
    ``ram_style``: the parameter ROM's style (``samfpga.hw.custom_ops.requant_rom``). ``iters`` > 1: the layer of
    a rolled body serving that many blocks (``samfpga.hw.custom_ops.looped``), each with its own scales and biases
    (iteration i's exponents drawn from ``k_range`` shifted by i, so the shift windows differ); the parameters are
    then decoupled whatever ``mem_mode`` says."""
    import json

    from qonnx.core.datatype import DataType

    rng = _rng(seed)
    lim = 2 ** max(0, DataType[idt].bitwidth() - DataType[odt].bitwidth() - 4)
    sets = []
    for i in range(iters):
        d = 2.0 ** rng.integers(k_range[0] + i, k_range[1] + i + 1, size=ch)
        bias = 0.5 - (rng.integers(-lim, lim + 1, size=ch) + rng.integers(0, d) / d)
        sets.append(((1.0 / d).astype(np.float32), bias.astype(np.float32)))
    loop = {}
    if iters > 1:
        mem_mode = "internal_decoupled"
        loop = dict(loop_iterations=iters, loop_values=json.dumps(
            {"scale": [s.tolist() for s, _ in sets], "bias": [b.tolist() for _, b in sets]}))
    return NodeSpec(
        "Requant",
        dict(NumChannels=ch, PE=pe, inputDataType=idt, outputDataType=odt, numInputVectors=[1, n], narrow=0,
             mem_mode=mem_mode, preferred_impl_style="rtl", **({"ram_style": ram_style} if ram_style != "auto" else {}),
             **loop),
        {"rq_in": ((1, n, ch), idt)},
        {"rq_out": ((1, n, ch), odt)},
        {"rq_scale": (sets[0][0], "FLOAT32"), "rq_bias": (sets[0][1], "FLOAT32")},
    )
