"""Own resource models (source "own model") for every HW op type of the encoder build, as functions of node attributes.

Each model adds up named structural terms (``detail["terms"]``): compute logic from what the RTL/HLS builds
(adders, comparators, multiplexers, counters, pipeline registers), memories priced by ``memory.place`` (ram_style,
depth x width), DSPs as the RTL instantiates them. Logic terms (not memories, not DSPs) are scaled by a per-op
calibration factor ``CALIBRATION`` fitted to Yosys ``synth_xilinx -family xcup`` counts of representative
configurations (bench/resource_models.py); HLS op types cannot be synthesised here and keep factor 1 with their
assumed operator costs (``HLS_FLOAT_OPS``), which ``detail["basis"]`` says.

Register another op type (e.g. a helper's new RTL layer) with::

    from samfpga.hw.resources import LayerCost, register_model

    @register_model("MyOp_rtl")
    def my_op_cost(op, model, board) -> LayerCost:   # op: FINN custom-op instance, model: ModelWrapper
        ...
        return LayerCost(op.onnx_node.name, "MyOp_rtl", LUT=..., FF=..., source="own model", detail={...})

``samfpga.hw.resources.models.cost_from_terms`` builds that ``LayerCost`` from a ``Terms`` accumulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from samfpga.hw.boards import Board
from samfpga.hw.resources import memory
from samfpga.hw.resources.cost import LayerCost, register_model

#: Per-op-type factors on the logic LUT/FF terms, fitted to Yosys counts (bench/resource_models.py; see
#: docs/resources.md for the run). Missing entries mean 1.0 (not calibrated).
CALIBRATION: dict[str, dict[str, float]] = {
    # geometric means of (Yosys - fixed terms) / logic terms over the bench configurations (run of 2026-12-01,
    # bench/results/resource_models.json "fit"); 1-2 configurations per op type, so these are coarse
    "AddStreams_rtl": {"LUT": 0.946, "FF": 1.0},
    "MVAU_rtl": {"LUT": 2.395, "FF": 2.5},
    "ConvolutionInputGenerator_rtl": {"LUT": 1.531, "FF": 0.568},
    "FMPadding_rtl": {"LUT": 1.653, "FF": 1.056},
    "StreamingDataWidthConverter_rtl": {"LUT": 2.445, "FF": 0.96},
    "InnerShuffle_rtl": {"LUT": 2.05, "FF": 2.72},
    "StreamingFIFO_rtl": {"LUT": 1.225, "FF": 1.346},
    # Yosys / logic terms of Requant_rtl C=128 PE=1 INT20->INT8 with its ROM in BRAM (ram_style block: the LUTs
    # are all logic), run of 2026-12-02 (bench/results/fit_memory.md); one configuration, coarse
    "Requant_rtl": {"LUT": 1.81, "FF": 2.68},
}

#: Assumed cost of one Vitis HLS float32 operator on UltraScale+ (fully pipelined, DSP-based where HLS uses DSPs),
#: in the range AMD's HLS operator characterisation reports; the HLS layers cannot be synthesised here (no
#: Vitis HLS, no finn-hlslib), so these are assumptions, labelled as such in each LayerCost's detail.
HLS_FLOAT_OPS: dict[str, dict[str, float]] = {
    "fadd": {"LUT": 220, "FF": 330, "DSP": 2},
    "fmul": {"LUT": 90, "FF": 150, "DSP": 3},
    "fdiv": {"LUT": 800, "FF": 1300, "DSP": 0},
    "fsqrt": {"LUT": 500, "FF": 800, "DSP": 0},
    "fexp": {"LUT": 900, "FF": 1100, "DSP": 7},
    "fcmp": {"LUT": 70, "FF": 10, "DSP": 0},
    "fcvt": {"LUT": 130, "FF": 150, "DSP": 0},  # int <-> float conversion
}
#: HLS control (FSM, loop counters, AXI-Stream handshake) of one HLS layer
HLS_CONTROL = {"LUT": 150, "FF": 200}


@dataclass
class Terms:
    """Named resource terms of one layer; ``logic`` terms get the calibration factor, ``fixed`` ones do not."""

    logic: dict[str, dict[str, float]] = field(default_factory=dict)
    fixed: dict[str, dict[str, float]] = field(default_factory=dict)
    runtime_load: list[str] = field(default_factory=list)

    def add(self, name: str, **res: float) -> None:
        d = self.logic.setdefault(name, {})
        for k, v in res.items():
            d[k] = d.get(k, 0.0) + float(v)

    def add_fixed(self, name: str, **res: float) -> None:
        d = self.fixed.setdefault(name, {})
        for k, v in res.items():
            d[k] = d.get(k, 0.0) + float(v)

    def add_memory(self, name: str, depth: int, width: int, ram_style: str = "auto", count: int = 1) -> None:
        m = memory.place(int(depth), int(width), ram_style)
        self.add_fixed(name, LUT=count * m.LUT, BRAM36=count * m.BRAM36, URAM=count * m.URAM)
        self.fixed[name]["kind"] = m.kind  # type: ignore[assignment]
        self.fixed[name]["shape"] = f"{count}x {depth}x{width}"  # type: ignore[assignment]
        if m.runtime_load:
            self.runtime_load.append(name)


def cost_from_terms(op, terms: Terms, basis: str) -> LayerCost:
    """Sum ``terms`` into a labelled ``LayerCost`` (own model). ``basis`` says what the constants rest on."""
    op_type = op.onnx_node.op_type
    cal = CALIBRATION.get(op_type, {})
    tot = terms_total(terms, op_type)
    detail = {"basis": basis, "calibration": cal or "none", "terms": {**terms.logic, **terms.fixed},
              "fixed_terms": sorted(terms.fixed)}
    if terms.runtime_load:
        detail["runtime_load"] = terms.runtime_load
        detail["note"] = ("URAM cannot be initialised by the bitstream: these memories need runtime-writeable "
                          "weights loaded by the driver")
    return LayerCost(op.onnx_node.name, op_type, LUT=tot["LUT"], FF=tot["FF"],
                     BRAM36=tot["BRAM36"], URAM=tot["URAM"], DSP=tot["DSP"], source="own model", detail=detail)


# --- helpers ---------------------------------------------------------------------------------------------------

def _attr(op, name: str, default=None):
    return op.get_nodeattr(name) if name in op.get_nodeattr_types() else default


def clog2(n: int) -> int:
    return max(1, math.ceil(math.log2(max(2, int(n)))))


def _counter(terms: Terms, name: str, n: int) -> None:
    """A wrapping counter to ``n``: one LUT and one FF per bit (increment on the carry chain + compare)."""
    if n > 1:
        b = clog2(n)
        terms.add(name, LUT=b + 1, FF=b)


def _handshake(terms: Terms, out_width: int, in_streams: int = 1) -> None:
    """An output register (valid + data) and ready logic per stream."""
    terms.add("axis_handshake", LUT=2 * in_streams + 2, FF=out_width + 1)


def _bits(op, which: str, ind: int = 0) -> int:
    dt = op.get_input_datatype(ind) if which == "in" else op.get_output_datatype(ind)
    return int(dt.bitwidth())


def dsp_mult(a: int, b: int) -> int:
    """DSP48E2 (27x18) count of an a x b multiplier as Yosys splits it (one fewer than the tiling when both
    operands exceed a DSP's: the high x high product lands in fabric)."""
    n = math.ceil(a / 27) * math.ceil(b / 18)
    return n - 1 if a > 27 and b > 18 else n


def dsp_version(board: Board) -> int:
    """finn-rtllib's DSP VERSION: 1 DSP48E1, 2 DSP48E2, 3 DSP58."""
    return {"DSP48E1": 1, "DSP48E2": 2, "DSP58": 3}[board.dsp_kind]


def mvu_lanes(version: int, w_bits: int, a_bits: int, narrow: bool = False) -> int:
    """MAC lanes packed into one DSP by finn-rtllib mvu.sv (its NUM_LANES): the A port (25 bit DSP48E1, 27 bit
    DSP48E2) holds lanes of ``w_bits + a_bits - 1`` bits. W8A8 -> 2 lanes, W4A8 -> 3, W4A4 -> 4 on DSP48E2."""
    a_width = 25 + 2 * (version > 1)
    if a_width == w_bits:
        return 1
    return 1 + (a_width - (0 if narrow else 1) - w_bits) // (w_bits + a_bits - 1)


def _narrow_weights(op, model) -> bool:
    """finn's NARROW_WEIGHTS: the weights never take the datatype's minimum (e.g. INT8 in [-127, 127])."""
    import numpy as np

    if _attr(op, "mem_mode", "") in ("dynamic", "external_mem") or model is None:
        return False
    w = model.get_initializer(op.onnx_node.input[1])
    return w is not None and float(np.min(w)) != float(op.get_input_datatype(1).min())


def _ram_style(op, key: str = "ram_style") -> str:
    return _attr(op, key, "auto") or "auto"


def memstream_terms(t: Terms, name: str, depth: int, width: int) -> None:
    """The logic of finn-rtllib memstream.sv streaming ``depth`` words of ``width`` bits (its memory is priced
    apart): address counter, output registers."""
    t.add(name, LUT=clog2(depth) + 2 + width // 8, FF=2 * width + clog2(depth))


# --- RTL layers -------------------------------------------------------------------------------------------------

def mvau_terms(op, model, board: Board, vvu: bool = False) -> Terms:
    """finn-rtllib mvu_vvu_axi + mvu.sv (DSP48E1/E2) or mvu_vvu_8sx9_dsp58 (DSP58), plus its weight memory."""
    pe, simd = int(op.get_nodeattr("PE")), int(op.get_nodeattr("SIMD"))
    w, a = int(op.get_input_datatype(1).bitwidth()), _bits(op, "in")
    acc = int(op.get_output_datatype().bitwidth())
    if vvu:
        ch, k = int(op.get_nodeattr("Channels")), op.get_nodeattr("Kernel")
        mw, mh = int(k[0] * k[1]), ch
        rows = mw * mh
    else:
        mw, mh = int(op.get_nodeattr("MW")), int(op.get_nodeattr("MH"))
        rows = mw * mh
    sf, nf = mw // simd, mh // pe
    ver = dsp_version(board)
    t = Terms()
    if ver == 3 and (vvu or (w <= 8 and a <= 9)):
        lanes, dsps = 3, pe * math.ceil(simd / 3)  # INT8 mode of DSP58: 3-element dot product per slice
        t.add("dsp58_chain", LUT=pe * acc, FF=pe * acc)
    else:
        lanes = mvu_lanes(ver, w, a, _narrow_weights(op, model))
        pipes = math.ceil(pe / lanes)
        dsps = pipes * simd
        # mvu.sv: per SIMD and lane a LUT6_2 pair recovering the lane's cross-lane borrow, then per lane a SIMD-input
        # adder tree of the low part (lane width) and of the 2-bit high parts, then per PE the accumulator join
        lane_w = w + a - 1 + clog2(simd)
        if lanes > 1:
            t.add("lane_split", LUT=pipes * simd * (lanes - 1) * 2, FF=pipes * simd * (lanes - 1) * 6)
            t.add("lane_adder_trees", LUT=pipes * lanes * (simd - 1) * (lane_w + 2),
                  FF=pipes * lanes * (lane_w + 2) * clog2(simd))
        t.add("accumulators", LUT=pe * acc, FF=pe * acc * 2)
        # operands registered in fabric in front of the DSP cascade (activation broadcast, weight per lane)
        t.add("operand_regs", FF=pipes * simd * (a + w * lanes) * 2)
    t.add_fixed("dsp", DSP=dsps)
    # output pipeline buffer (OBuf: pipeline depth words of PE x ACC) and handshake
    depth = 4 + clog2(simd) + 3
    t.add("output_buffer", LUT=pe * acc * math.ceil(depth / 32) + pe * acc // 2, FF=pe * acc)
    _counter(t, "fold_counters", sf)
    _counter(t, "fold_counters", nf)
    _handshake(t, pe * acc)
    # activation replay buffer (replays the SF input words NF times)
    if not vvu and nf > 1 and sf > 1:
        t.add_memory("activation_replay", sf, simd * a, "auto")
    mode = _attr(op, "mem_mode", "internal_decoupled")
    wdepth, wwidth = rows // (pe * simd), pe * simd * w
    if mode in ("internal_decoupled", "internal_embedded"):
        t.add_memory("weights", wdepth, wwidth, _ram_style(op))
        memstream_terms(t, "weight_streamer", wdepth, wwidth)
    elif mode == "dynamic":
        # dynamic_load.sv: two buffers (write one, replay the other), SIMD banks, distributed RAM by default
        t.add_memory("dynamic_buffers", wdepth, wwidth, _ram_style(op) if _ram_style(op) != "auto" else
                     "distributed", count=2)
        t.add("dynamic_loader", LUT=4 * clog2(wdepth) + wwidth // 4, FF=wwidth + 4 * clog2(wdepth))
    return t


@register_model("MVAU_rtl")
def mvau_rtl_cost(op, model, board: Board) -> LayerCost:
    return cost_from_terms(op, mvau_terms(op, model, board), "finn-rtllib mvu.sv structure, Yosys-calibrated")


@register_model("Thresholding_rtl")
def thresholding_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib thresholding.sv: a binary-search pipeline of ceil(log2(N+1)) stages per PE; stage s holds
    CF x 2^s thresholds of the threshold width, placed by depth_trigger_bram/uram (else Vivado's auto)."""
    pe = int(op.get_nodeattr("PE"))
    wbits = int(op.get_input_datatype(1).bitwidth()) if len(op.onnx_node.input) > 1 else _bits(op, "in")
    obits = _bits(op, "out")
    trig_b, trig_u = int(_attr(op, "depth_trigger_bram", 0)), int(_attr(op, "depth_trigger_uram", 0))
    t = Terms()
    stages = op.get_pe_mem_geometries()
    for s, (width, depth) in enumerate(stages):
        style = ("ultra" if trig_u and depth >= trig_u else "block" if trig_b and depth >= trig_b else
                 "distributed" if trig_b else "auto")
        t.add_memory(f"thresholds_stage{s}", int(depth), int(width), style, count=pe)
        # comparator on the carry chain (1 LUT/bit) + pipeline register of value, pointer and result
        t.add("stage_compare", LUT=pe * (wbits + 2), FF=pe * (wbits + clog2(depth) + 2))
    if int(_attr(op, "runtime_writeable_weights", 0)):
        t.add("axilite_config", LUT=60 + 2 * wbits, FF=80 + wbits)
    t.add("output_bias", LUT=pe * obits, FF=pe * obits)
    _counter(t, "channel_fold", int(op.get_nodeattr("NumChannels")) // pe)
    _handshake(t, pe * obits)
    return cost_from_terms(op, t, "finn-rtllib thresholding.sv structure, Yosys-calibrated")


@register_model("ConvolutionInputGenerator_rtl")
def swg_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib swg (default impl): one circular line buffer of FINN's ``get_buffer_depth()`` words of
    SIMD x bits, address generator (5 nested counters + head/tail increments), output register."""
    simd, bits = int(op.get_nodeattr("SIMD")), _bits(op, "in")
    width, depth = simd * bits, int(op.get_buffer_depth())
    t = Terms()
    t.add_memory("line_buffer", depth, width, _ram_style(op))
    a = clog2(depth)
    t.add("address_generator", LUT=10 * a + 40, FF=8 * a + 30)
    t.add("read_mux_regs", LUT=width // 2, FF=2 * width)
    _handshake(t, width)
    return cost_from_terms(op, t, "finn-rtllib swg template structure, Yosys-calibrated")


@register_model("FMPadding_rtl")
def fmpadding_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib fmpadding: x/y/channel counters, a zero-insertion mux on SIMD x bits, a 2-deep output buffer."""
    simd, bits = int(op.get_nodeattr("SIMD")), _bits(op, "in")
    img = op.get_nodeattr("ImgDim")
    pad = op.get_nodeattr("Padding")
    t = Terms()
    width = simd * bits
    for d, p in zip(img, (pad[0] + pad[2], pad[1] + pad[3]), strict=False):
        _counter(t, "position_counters", int(d) + int(p))
    _counter(t, "position_counters", int(op.get_nodeattr("NumChannels")) // simd)
    t.add("zero_mux_buffer", LUT=width, FF=2 * width)
    _handshake(t, width)
    return cost_from_terms(op, t, "finn-rtllib fmpadding structure, Yosys-calibrated")


@register_model("Reshape_rtl")
def reshape_rtl_cost(op, model, board: Board) -> LayerCost:
    """FINN's Reshape_rtl is dwc_axi at equal input and output widths: a pass-through of wires (Yosys finds no cell
    in it, bench/results/resource_models.md). Free in hardware, so 0 with the reason in ``detail``."""
    c = cost_from_terms(op, Terms(), "dwc_axi at equal widths is wires only (Yosys: no cells)")
    c.detail["free"] = "pass-through: stream wires, no logic"
    return c


@register_model("StreamingDataWidthConverter_rtl")
def dwc_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib dwc_axi/vpc.sv: a shift register of max(in, out) bits with a word counter."""
    wi, wo = int(op.get_nodeattr("inWidth")), int(op.get_nodeattr("outWidth"))
    t = Terms()
    big, small = max(wi, wo), min(wi, wo)
    ratio = max(1, math.ceil(big / small))
    t.add("shift_register", LUT=big if ratio > 1 else 0, FF=big)
    _counter(t, "word_counter", ratio)
    _handshake(t, wo)
    return cost_from_terms(op, t, "finn-rtllib dwc_axi structure, Yosys-calibrated")


@register_model("StreamingFIFO_rtl")
def fifo_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib fifo.sv (a RAM FIFO with an output stage): depth x width in SRL/LUTRAM/BRAM by ram_style."""
    depth = int(op.get_nodeattr("depth"))
    width = int(op.get_instream_width())
    return cost_from_terms(op, fifo_terms(depth, width, _ram_style(op)), "finn-rtllib fifo.sv structure")


def fifo_terms(depth: int, width: int, ram_style: str = "auto") -> Terms:
    """One stream FIFO of ``depth`` words of ``width`` bits (also used to price estimated FIFO depths)."""
    t = Terms()
    if depth <= 2:
        t.add("register_stage", LUT=2, FF=depth * width + 2)
        return t
    if ram_style in ("auto", "distributed") and depth <= 64:
        # fifo.sv keeps its words in a RAM with separate read/write ports: RAM32M16/RAM64M8 (Yosys and Vivado)
        t.add_fixed("storage", LUT=memory.lutram_sdp(depth, width))
    elif ram_style == "distributed":
        t.add_fixed("storage", LUT=memory.lutram_sdp(depth, width))
    else:
        t.add_memory("storage", depth, width, "block" if ram_style == "auto" else ram_style)
    a = clog2(depth)
    t.add("pointers", LUT=3 * a + 4, FF=3 * a + 2)
    _handshake(t, width)
    return t


@register_model("InnerShuffle_rtl")
def inner_shuffle_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib inner_shuffle: swaps the two innermost axes (I x J) through SIMD memory banks of 2*I*J/SIMD
    words (double buffered page) with rotators of SIMD x bits on the write and read side."""
    simd = int(op.get_nodeattr("SIMD"))
    shape = op.get_nodeattr("transpose_in_shape") or op.get_nodeattr("in_shape")
    i, j = int(shape[-2]), int(shape[-1])
    bits = int(op.get_input_datatype().bitwidth())
    t = Terms()
    t.add_memory("banks", max(1, 2 * i * j // simd), bits, "auto", count=simd)
    rot = simd * bits * clog2(simd) if simd > 1 else 0
    t.add("rotators", LUT=2 * rot, FF=2 * simd * bits)
    t.add("address_generators", LUT=simd * clog2(2 * i * j) + 30, FF=simd * clog2(2 * i * j) + 30)
    _handshake(t, simd * bits)
    return cost_from_terms(op, t, "finn-rtllib inner_shuffle structure, Yosys-calibrated")


@register_model("AddStreams_rtl")
def addstreams_rtl_cost(op, model, board: Board) -> LayerCost:
    """hw/samfpga/hw/rtl/add_streams.sv: PE adders of O_BITS (carry chain, ~1 LUT/bit) and one output register."""
    return cost_from_terms(op, add_streams_terms(int(op.get_nodeattr("PE")), _bits(op, "out")),
                           "add_streams.sv structure, Yosys-calibrated")


def add_streams_terms(pe: int, o_bits: int) -> Terms:
    """add_streams.sv with parameters PE and O_BITS."""
    t = Terms()
    t.add("adders", LUT=pe * o_bits)
    t.add("output_register", LUT=3, FF=pe * o_bits + 1)
    return t


def terms_total(terms: Terms, op_type: str) -> dict[str, float]:
    """Calibrated totals of ``terms`` for ``op_type`` (what ``cost_from_terms`` would report)."""
    cal = CALIBRATION.get(op_type, {})
    tot = {"LUT": 0.0, "FF": 0.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0}
    for t in terms.logic.values():
        for k, v in t.items():
            tot[k] += v * cal.get(k, 1.0)
    for t in terms.fixed.values():
        for k, v in t.items():
            if k in tot:
                tot[k] += v
    return {k: float(math.ceil(v)) if k in ("LUT", "FF") else v for k, v in tot.items()}


@register_model("DuplicateStreams_rtl")
def duplicatestreams_rtl_cost(op, model, board: Board) -> LayerCost:
    """hw/samfpga/hw/rtl/duplicate_streams.sv: one data register shared by N outputs, N valid flags."""
    n = int(op.get_nodeattr("NumOutputStreams"))
    width = int(op.get_instream_width())
    t = Terms()
    t.add("register", LUT=n + 2, FF=width + n)
    return cost_from_terms(op, t, "duplicate_streams.sv structure, Yosys-calibrated")


def _varying_bits(values, width: int) -> int:
    """Bit columns of ``width``-bit two's complement ``values`` that are not the same in every value (a constant
    column of a ROM is a wire, in LUTs and in a trimmed block ROM alike)."""
    mask = (1 << width) - 1
    words = [int(v) & mask for v in values]
    ones = zeros = 0
    for w in words:
        ones |= w
        zeros |= ~w & mask
    return bin(ones & zeros).count("1")


def requant_rom_arrays(op, model, board: Board) -> tuple[int, dict[str, tuple[int, int]]]:
    """(depth, {array: (declared, varying)}) of one PE's parameter ROMs of requant.sv (custom_ops.requant_rom: scale
    S, bias S+X, shift ``clog2`` of its range; three arrays, each its own memory): the declared bits per entry, the
    bits that differ between entries (from the node's scale/bias initializers through
    ``samfpga.kernels.requant.fixed_point_params``, the RTL's own decomposition; the widest PE), and the entries
    (channel fold). Without initializers every bit counts."""
    import numpy as np

    from samfpga.kernels.requant import fixed_point_params, mul_widths

    pe, ch = int(op.get_nodeattr("PE")), int(op.get_nodeattr("NumChannels"))
    k, n = _bits(op, "in"), _bits(op, "out")
    s, x = mul_widths(k, dsp_version(board))
    cf = ch // pe
    inits = [model.get_initializer(i) for i in op.onnx_node.input[1:3]] if model is not None else []
    if len(inits) < 2 or any(v is None for v in inits):
        return cf, {"scale": (s, s), "bias": (s + x, s + x), "shift": (6, 6)}
    scale, bias = (np.broadcast_to(np.asarray(v, dtype=np.float32).ravel(), (ch,)) for v in inits)
    p = fixed_point_params(scale, bias, k, n, dsp_version(board))
    out = {"scale": (s, 0), "bias": (s + x, 0), "shift": (1, 0)}
    for lane in range(pe):
        idx = slice(lane, ch, pe)  # channel c = cf * PE + pe (FINN's [PE][CF] layout)
        t = [int(v) for v in p.shift[idx]]
        tw = clog2(max(t) - min(t) + 1) if max(t) > min(t) else 1
        for name, vals, w in (("scale", p.scale[idx], s), ("bias", p.bias[idx], s + x),
                              ("shift", [v - min(t) for v in t], tw)):
            out[name] = (max(out[name][0], w), max(out[name][1], _varying_bits(vals, w)))
    return cf, out


def requant_rom_bits(op, model, board: Board) -> tuple[int, int, int]:
    """(declared, varying, depth): ``requant_rom_arrays`` summed over the three arrays."""
    cf, arrays = requant_rom_arrays(op, model, board)
    return sum(d for d, _ in arrays.values()), sum(v for _, v in arrays.values()), cf


@register_model("Requant_rtl")
def requant_rtl_cost(op, model, board: Board) -> LayerCost:
    """finn-rtllib requant.sv: per PE one DSP (x * scale + bias), a per-channel parameter ROM (scale, bias, shift)
    of CF entries placed by ``ram_style`` (custom_ops.requant_rom: "auto" is Vivado's choice), a variable right
    shift and the output clip."""
    pe, ch = int(op.get_nodeattr("PE")), int(op.get_nodeattr("NumChannels"))
    k, n = _bits(op, "in"), _bits(op, "out")
    ver = dsp_version(board)
    aw, bw = (25, 18) if ver == 1 else (27, 18) if ver == 2 else (27, 24)
    x, s = (k, 25) if k <= bw else (min(aw, k), bw)
    cf = ch // pe
    t = Terms()
    t.add_fixed("dsp", DSP=pe)
    if _attr(op, "mem_mode", "internal_embedded") == "internal_decoupled":
        # FINN's memstream: one memory of CF words of PE parameter lanes (scale, shift, bias), written by FINN's
        # decomposition into an init file: every declared bit is stored
        width = int(op._derive_decoupled_widths(model, board.part)["params_stream_width"])
        t.add_memory("parameters", cf, width, _ram_style(op))
        memstream_terms(t, "parameter_streamer", cf, width)
    elif cf > 1:
        # three ROM arrays, each its own memory, of the bits that vary (a constant column is a wire)
        for name, (_, varying) in requant_rom_arrays(op, model, board)[1].items():
            if varying:
                t.add_memory(f"parameters_{name}", cf, varying, _ram_style(op), count=pe)
    t.add("shift_clip", LUT=pe * (s + x) // 2 + pe * n * 2, FF=pe * (s + x + n) + 4)
    _counter(t, "channel_counter", cf)
    _handshake(t, pe * n)
    return cost_from_terms(op, t, "finn-rtllib requant.sv structure")


# --- HLS layers (no synthesis possible here: assumed operator costs) ------------------------------------------

def _hls_ops(t: Terms, name: str, lanes: int, **ops: int) -> None:
    for op_name, n in ops.items():
        c = HLS_FLOAT_OPS[op_name]
        t.add(f"{name}:{op_name}", **{k: lanes * n * v for k, v in c.items()})


def _hls_basis(desc: str) -> str:
    return f"{desc}; HLS float operator costs assumed (HLS_FLOAT_OPS), not synthesised here"


@register_model("LayerNorm_hls")
def layernorm_hls_cost(op, model, board: Board) -> LayerCost:
    """finn-hlslib LayerNorm (float): per SIMD lane a cast, mean/variance accumulation (2 fadd, 1 fmul), normalise
    (fadd + fmul); one rsqrt (fsqrt + fdiv) per row; the row is buffered for the second pass (C floats)."""
    simd = int(op.get_nodeattr("SIMD"))
    ch = int(op.get_nodeattr("ifm_dim")[-1])
    t = Terms()
    in_float = not op.get_input_datatype().is_integer()
    _hls_ops(t, "lane", simd, fadd=3, fmul=2, **({} if in_float else {"fcvt": 1}))
    _hls_ops(t, "row", 1, fsqrt=1, fdiv=1, fadd=2)
    t.add_memory("row_buffer", max(1, ch // simd), simd * 32, "auto", count=2)
    t.add("control", **HLS_CONTROL)
    return cost_from_terms(op, t, _hls_basis("finn-hlslib layernorm structure"))


@register_model("HWSoftmax_hls")
def softmax_hls_cost(op, model, board: Board) -> LayerCost:
    """finn-hlslib softmax (float): per SIMD lane a max compare, exp, accumulate and multiply by the reciprocal;
    one reciprocal per row; the row is buffered between the max/sum pass and the output pass."""
    simd = int(op.get_nodeattr("SIMD"))
    ch = int(op.get_nodeattr("ifm_dim")[-1])
    t = Terms()
    _hls_ops(t, "lane", simd, fcmp=1, fexp=1, fadd=2, fmul=1)
    _hls_ops(t, "row", 1, fdiv=1)
    t.add_memory("row_buffer", max(1, ch // simd), simd * 32, "auto", count=2)
    t.add("control", **HLS_CONTROL)
    return cost_from_terms(op, t, _hls_basis("finn-hlslib softmax structure"))


@register_model("ElementwiseAdd_hls", "ElementwiseMul_hls", "ElementwiseSub_hls")
def elementwise_hls_cost(op, model, board: Board) -> LayerCost:
    """FINN elementwise binary op, PE lanes: float operator when any operand is float, otherwise integer adder
    (1 LUT/bit) or multiplier (DSP48 when an operand exceeds 10 bits, else LUT array ~ wa x wb / 2); a constant
    operand is held in a per-channel memory."""
    pe = int(op.get_nodeattr("PE"))
    lhs, rhs = op.get_input_datatype(0), op.get_input_datatype(1)
    out_bits = _bits(op, "out")
    is_mul = op.onnx_node.op_type.startswith("ElementwiseMul")
    t = Terms()
    if not (lhs.is_integer() and rhs.is_integer()):
        conv = int(lhs.is_integer()) + int(rhs.is_integer())
        _hls_ops(t, "lane", pe, **({"fmul": 1} if is_mul else {"fadd": 1}), **({"fcvt": conv} if conv else {}))
    elif is_mul:
        wa, wb = lhs.bitwidth(), rhs.bitwidth()
        if max(wa, wb) > 10:
            t.add_fixed("dsp", DSP=pe * math.ceil(wa / 27) * math.ceil(wb / 18))
        else:
            t.add("multipliers", LUT=pe * wa * wb // 2 + pe * out_bits)
    else:
        t.add("adders", LUT=pe * out_bits)
    t.add("registers", FF=pe * (lhs.bitwidth() + rhs.bitwidth() + out_bits))
    for side in ("lhs", "rhs"):
        if _attr(op, f"{side}_style", "input") == "const":
            shape = op.get_nodeattr(f"{side}_shape")
            n = int(math.prod(shape))
            dt = lhs if side == "lhs" else rhs
            t.add_memory(f"{side}_constants", max(1, n // pe), pe * dt.bitwidth(), _ram_style(op))
    t.add("control", **HLS_CONTROL)
    return cost_from_terms(op, t, _hls_basis("FINN elementwise_binary HLS structure"))


@register_model("VVAU_hls")
def vvau_hls_cost(op, model, board: Board) -> LayerCost:
    """finn-hlslib Vector_Vector_Activate_Batch (depthwise conv): PE x SIMD multipliers (DSP when resType is dsp,
    else LUT arrays of ~ w x a / 2 LUTs as Vivado maps small products), adder trees, weights in memory by
    ram_style (FINN's internal_decoupled streamer)."""
    pe, simd = int(op.get_nodeattr("PE")), int(op.get_nodeattr("SIMD"))
    w, a = int(op.get_input_datatype(1).bitwidth()), _bits(op, "in")
    acc = int(op.get_output_datatype().bitwidth())
    ch, k = int(op.get_nodeattr("Channels")), op.get_nodeattr("Kernel")
    kk = int(k[0] * k[1])
    t = Terms()
    res = _attr(op, "resType", "auto")
    if res == "dsp" or (res == "auto" and w * a > 64):
        t.add_fixed("dsp", DSP=pe * simd)
    else:
        t.add("multipliers", LUT=pe * simd * (w * a // 2 + w + a))
    t.add("adder_trees", LUT=pe * (simd - 1) * (w + a + clog2(simd)) + pe * acc, FF=pe * (simd * (w + a) + acc))
    mode = _attr(op, "mem_mode", "internal_decoupled")
    if mode in ("internal_decoupled", "internal_embedded"):
        t.add_memory("weights", max(1, ch * kk // (pe * simd)), pe * simd * w, _ram_style(op))
    if int(_attr(op, "noActivation", 1)) == 0:
        # thresholds in the HLS layer: PE tables of (2^out - 1) entries per channel fold
        obits = _bits(op, "out")
        t.add_memory("thresholds", max(1, ch // pe) * (2 ** obits - 1), acc, _ram_style(op, "ram_style_thresholds"),
                     count=pe)
    t.add("control", **HLS_CONTROL)
    return cost_from_terms(op, t, _hls_basis("finn-hlslib VVAU structure (integer datapath)"))


@register_model("StreamingSplit_hls")
def split_hls_cost(op, model, board: Board) -> LayerCost:
    """FINN StreamingSplit: routes channel groups of the input stream to N outputs; output registers + counter."""
    simd = int(op.get_nodeattr("SIMD"))
    bits = _bits(op, "in")
    n = len(op.get_nodeattr("ChannelsPerStream"))
    t = Terms()
    t.add("output_registers", LUT=n * 2 + simd * bits // 4, FF=n * (simd * bits + 1))
    _counter(t, "channel_counter", sum(op.get_nodeattr("ChannelsPerStream")) // simd)
    t.add("control", **HLS_CONTROL)
    return cost_from_terms(op, t, _hls_basis("FINN StreamingSplit HLS structure"))


def outer_shuffle_buffer(op) -> int:
    """Words of FINN's OuterShuffle circular buffer: the power of two FINN's own model of the HLS input_gen loop
    nest derives (outer_shuffle.py: max read-pointer retract + write-pointer delay + 2)."""
    import numpy as np
    from finn.custom_op.fpgadataflow.outer_shuffle import _NestSim

    in_shape = list(op.get_nodeattr("transpose_in_shape"))
    perm = list(op.get_nodeattr("perm"))
    simd = int(op.get_nodeattr("SIMD"))
    out_shape = [in_shape[p] for p in perm]
    adjusted = in_shape + [1]
    strides = [int(np.prod(adjusted[i + 1:])) for i in range(len(in_shape))]
    coeffs = [strides[p] for p in perm]
    out_shape[-1] = int(out_shape[-1] / simd)
    lc = [1 if x == 1 else int(x / simd) for x in coeffs]
    total = int(np.prod(out_shape))
    nest = _NestSim(True, total, *[int(v) for pair in zip(out_shape, lc, strict=True) for v in pair])
    return 1 << max(1, math.ceil(math.log2(max(1, nest.max_rp_retract + 4 + 2))))


@register_model("OuterShuffle_hls")
def outer_shuffle_hls_cost(op, model, board: Board) -> LayerCost:
    """FINN OuterShuffle (HLS): a circular buffer of FINN's computed size of SIMD x bits words and a loop-nest
    address generator (one counter and stride adder per axis)."""
    simd = int(op.get_nodeattr("SIMD"))
    bits = int(op.get_input_datatype().bitwidth())
    depth = outer_shuffle_buffer(op)
    axes = len(op.get_nodeattr("perm"))
    t = Terms()
    t.add_memory("buffer", depth, simd * bits, "auto")
    t.add("loop_nest", LUT=axes * 2 * clog2(depth) + 40, FF=axes * 2 * clog2(depth) + 40)
    t.add("control", **HLS_CONTROL)
    t.add("registers", FF=2 * simd * bits)
    t.detail_depth = depth  # type: ignore[attr-defined]
    return cost_from_terms(op, t, _hls_basis("FINN OuterShuffle HLS structure (buffer size from FINN's model)"))


@register_model("DuplicateStreams_hls")
def duplicatestreams_hls_cost(op, model, board: Board) -> LayerCost:
    """finn-hlslib DuplicateStreams: read one word, write N; output registers."""
    n = int(op.get_nodeattr("NumOutputStreams"))
    width = int(op.get_instream_width())
    t = Terms()
    t.add("registers", LUT=n * 2, FF=(n + 1) * width)
    t.add("control", **HLS_CONTROL)
    return cost_from_terms(op, t, _hls_basis("finn-hlslib DuplicateStreams structure"))
