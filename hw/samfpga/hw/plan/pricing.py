"""Cycles and resources of one planned layer at a folding, by the project's resource models.

Compute layers are priced with ``samfpga.hw.resources.models.mvau_terms`` (finn-rtllib MVU structure, Yosys-calibrated;
attention matmuls in its ``dynamic`` mode), the depthwise conv with ``samfpga.hw.custom_ops.costs.dw_vvau_resources``
(the project's DepthwiseVVAU_rtl), the requantizer after each with ``requant_rtl_cost`` (finn-rtllib requant.sv), all
through a shape-only stand-in for a FINN node (``ShapeOp``: the attributes those models read). Memories are priced
with ``samfpga.hw.resources.memory``. Cycles follow FINN's ``get_exp_cycles`` of MVAU/VVAU:
(MH/PE) * (MW/SIMD) * vectors. Own-model additions (labelled in each figure's ``source``): line buffers of the
sliding windows, the window-partition buffers, weight copies of rolled bodies, LayerNorm/softmax allowances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from samfpga.hw.boards import RESOURCES, Board
from samfpga.hw.plan.layers import Layer

ACT_BITS = 8

#: DDR peak bandwidth per board, GB/s, with its source. KV260 and PYNQ-Z2 from /work/shared/REFERENCE.md (KV260:
#: DDR4 64-bit 2400; PYNQ-Z2: DDR3 ~2.1 GB/s); ZCU104/ZCU102: PS DDR4 64-bit, assumed 2400 MT/s like the KV260
#: (not in REFERENCE.md); VCK190: one DDR4 64-bit 3200 controller (assumed).
DDR_GBPS: dict[str, tuple[float, str]] = {
    "kv260": (19.2, "REFERENCE.md: DDR4 64-bit 2400"),
    "zcu104": (19.2, "assumed: PS DDR4 64-bit at 2400 MT/s"),
    "zcu102": (19.2, "assumed: PS DDR4 64-bit at 2400 MT/s"),
    "pynq-z2": (2.1, "REFERENCE.md: DDR3 ~2.1 GB/s"),
    "vck190": (25.6, "assumed: DDR4 64-bit 3200"),
}


#: One DMA engine as the project's own RTL builds it (strip_reader.sv, strip_writer.sv, access_reader.sv, access_writer.sv;
#: AXI_DW = STREAM_W = 128, 40-bit addresses; ALIGNED = 0 for any byte alignment, ``*_aligned`` with ALIGNED = 1 for maps on
#: whole beats): Yosys ``synth_xilinx -family xcup`` cell counts, LUT including LUTRAM
#: (``python bench/dma_synth.py``, bench/results/dma_synth.json; tests/test_plan.py checks these equal that file).
#: The planner prices a reader per unit input and a writer per unit output that lives in DDR, the image's reader and
#: the embedding's writer, and a rolled_streamed unit's weight fetch as an aligned reader (``planner._dma_engines``);
#: the layer-sequential engine's readers and writer are access DMAs (``engine.components``).
DMA: dict[str, dict[str, float]] = {
    "strip_reader": {"LUT": 2893.0, "FF": 605.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 4.0},
    "strip_writer": {"LUT": 2780.0, "FF": 711.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 7.0},
    "strip_reader_aligned": {"LUT": 692.0, "FF": 336.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 4.0},
    "strip_writer_aligned": {"LUT": 623.0, "FF": 439.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 7.0},
    "access_reader": {"LUT": 3235.0, "FF": 1062.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    "access_reader_aligned": {"LUT": 1095.0, "FF": 793.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    "access_writer": {"LUT": 3285.0, "FF": 1197.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 3.0},
    "access_writer_aligned": {"LUT": 1203.0, "FF": 925.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 3.0},
    # the engine's writer: its tails take the unit's outputs padded to whole PE folds (TAIL = 1, access_walk.sv)
    "access_writer_tail": {"LUT": 3538.0, "FF": 1323.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 3.0},
    "access_writer_aligned_tail": {"LUT": 1369.0, "FF": 1051.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 3.0},
}


#: token_pack.sv (the engine writer's input: the unit side's PE bytes, each token's padding dropped, re-cut to the
#: 16-byte port) at each PE the engine's plan searches: Yosys ``synth_xilinx -family xcup`` cell counts
#: (``python bench/token_pack_synth.py``, bench/results/token_pack_synth.json; tests/test_plan_engine.py checks these
#: equal that file). Its muxes follow G = gcd(PE, 16) more than PE (40: 954 LUT, 48: 672).
TOKEN_PACK: dict[int, dict[str, float]] = {
    8: {"LUT": 520.0, "FF": 332.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    16: {"LUT": 530.0, "FF": 396.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    24: {"LUT": 671.0, "FF": 460.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    32: {"LUT": 539.0, "FF": 527.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    40: {"LUT": 954.0, "FF": 591.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    48: {"LUT": 672.0, "FF": 655.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    64: {"LUT": 807.0, "FF": 783.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    96: {"LUT": 1195.0, "FF": 1042.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
    128: {"LUT": 1478.0, "FF": 1298.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 0.0},
}


def token_pack(pe: int) -> dict[str, float]:
    """token_pack.sv's resources at ``pe`` bytes a beat: ``TOKEN_PACK``'s measurement, or for a PE not measured the
    dearest (LUT) of those measured at or above it (above them all: the widest scaled by pe / its PE)."""
    if pe in TOKEN_PACK:
        return dict(TOKEN_PACK[pe])
    top = max(TOKEN_PACK)
    if pe > top:
        return {k: v * pe / top for k, v in TOKEN_PACK[top].items()}
    return dict(max((TOKEN_PACK[p] for p in TOKEN_PACK if p >= pe), key=lambda r: r["LUT"]))


#: requant_lanes.sv (the engine's requantiser lanes after the depthwise unit, the LayerNorm and the residual adder,
#: parameters for 320 channels in LUTRAM, 18-bit scales): (fixed, per lane) per resource, the line through Yosys
#: ``synth_xilinx -family xcup`` counts at 4 and 16 lanes (``python bench/requant_lanes_synth.py``,
#: bench/results/requant_lanes_synth.json "model"; tests/test_plan_engine.py checks these equal that file).
REQUANT_LANES: dict[str, dict[str, tuple[float, float]]] = {
    "depthwise": {"LUT": (825.67, 242.58), "FF": (73.0, 91.5), "DSP": (0.0, 1.0), "BRAM36": (0.0, 0.0)},
    "layernorm": {"LUT": (888.33, 236.42), "FF": (73.0, 85.5), "DSP": (0.0, 1.0), "BRAM36": (0.0, 0.0)},
    "residual": {"LUT": (814.0, 245.75), "FF": (73.0, 80.5), "DSP": (0.0, 1.0), "BRAM36": (0.0, 0.0)},
}


#: layernorm_lanes.sv (the engine's LayerNorm at run-time channels with its requantiser lanes) sized for vit_t's
#: widest LayerNorm (320 channels) at the neck's 28-bit raw sums: (fixed, per lane) per resource, the line through
#: Yosys ``synth_xilinx -family xcup`` counts at 2 and 8 lanes (``python bench/layernorm_lanes_synth.py``,
#: bench/results/layernorm_lanes_synth.json "model"; tests/test_plan_engine.py checks these equal that file).
LAYERNORM_LANES: dict[str, tuple[float, float]] = {
    "LUT": (2707.33, 1079.33), "FF": (1040.67, 83.67), "DSP": (18.0, 9.0), "BRAM36": (0.5, 0.0)}


def layernorm_lanes(lanes: int) -> dict[str, float]:
    """layernorm_lanes.sv at ``lanes`` (``LAYERNORM_LANES``'s line)."""
    return {r: a + b * lanes for r, (a, b) in LAYERNORM_LANES.items()}


def requant_lanes(use: str, lanes: int) -> dict[str, float]:
    """requant_lanes.sv at ``lanes`` for ``use`` (depthwise | layernorm | residual): REQUANT_LANES's line."""
    return {r: a + b * lanes for r, (a, b) in REQUANT_LANES[use].items()}


#: dw_core.sv (the engine's depthwise unit at run-time shape: strip padding, the 3 x 3 window, PE channels x 9 taps,
#: its requantiser lanes) without its window's banks (``engine.dw_banks``): per resource the Yosys ``synth_xilinx
#: -family xcup`` counts at PE 8, 16 and 32 (the plan's dw_pe space) for vit_t's depthwise layers at 1024², sized as
#: the design builds it (whole maps: 514 columns; banks in URAM) (``python bench/dw_core_synth.py``,
#: bench/results/dw_core_synth.json "model"; tests/test_plan_engine.py checks these equal that file).
DW_CORE: dict[str, tuple[tuple[int, float], ...]] = {
    "LUT": ((8, 8353.0), (16, 12631.0), (32, 24345.0)),
    "FF": ((8, 3264.0), (16, 5959.0), (32, 11360.0)),
    "DSP": ((8, 83.0), (16, 163.0), (32, 323.0))}


def piecewise(points: tuple[tuple[int, float], ...], x: float) -> float:
    """The piecewise-linear function through ``points`` (x ascending) at ``x``, its end segments extended."""
    k = next((i for i in range(1, len(points) - 1) if x <= points[i][0]), len(points) - 1)
    (x0, y0), (x1, y1) = points[k - 1], points[k]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def dw_core(pe: int) -> dict[str, float]:
    """dw_core.sv at ``pe`` channels per beat, its banks not counted (``DW_CORE``'s points)."""
    return {r: (piecewise(DW_CORE[r], pe) if r in DW_CORE else 0.0) for r in RESOURCES}


#: byte_gearbox.sv (a byte stream re-cut from IN_B to OUT_B bytes per beat), per form ("keep": the input's tkeep a
#: port; "whole": tied high, as engine_gemm_path.sv builds its units' re-cuts, whose beats are always whole) and
#: architecture (``gearbox_architecture``): LUT per input bit and per bit of its byte muxes (``gearbox_mux_inputs``),
#: the least-squares fit to Yosys counts at 20 width pairs scaled by its largest Yosys / fit ratio (no measured
#: point priced below Yosys; a whole gather's negative input term is the fit's: with OUT_B >= 2 IN_B its sum is
#: positive)
#: (``python bench/byte_gearbox_synth.py``, bench/results/byte_gearbox_synth.json "model"; tests/test_plan_engine.py
#: checks these equal that file); FF: its bytes and counters. No DSP, no block RAM. IN_B = OUT_B is a wire.
BYTE_GEARBOX: dict[str, dict[str, dict[str, float]]] = {
    "keep": {"split": {"LUT_per_input_bit": 1.4165, "LUT_per_mux_input_bit": 0.5638},
             "gather": {"LUT_per_input_bit": 1.2738, "LUT_per_mux_input_bit": 0.3457},
             "buffer": {"LUT_per_input_bit": 4.039, "LUT_per_mux_input_bit": 0.6967}},
    "whole": {"split": {"LUT_per_input_bit": 0.1523, "LUT_per_mux_input_bit": 0.5938},
              "gather": {"LUT_per_input_bit": -0.271, "LUT_per_mux_input_bit": 0.3881},
              "buffer": {"LUT_per_input_bit": 0.7845, "LUT_per_mux_input_bit": 1.4058}}}


def gearbox_architecture(in_b: int, out_b: int) -> str:
    """byte_gearbox.sv's build for ``in_b`` -> ``out_b`` bytes: "split" (wide to narrow: a held beat and a carry),
    "gather" (OUT_B a multiple of IN_B: input beats land in slots of the output register) or "buffer" (narrow to
    wide otherwise: a shifting buffer of IN_B + OUT_B bytes)."""
    if in_b > out_b:
        return "split"
    return "gather" if out_b % in_b == 0 else "buffer"


def gearbox_mux_inputs(in_b: int, out_b: int) -> int:
    """The byte gearbox's mux inputs. A buffer: for each of its IN_B + OUT_B buffer bytes, the input bytes that can
    land on it (an input lands at an offset that is a multiple of gcd(IN_B, OUT_B) up to OUT_B), summed. A split: for
    each output byte, the (IN_B + OUT_B) / gcd + 1 offsets of {carry, held beat} it can come from. A gather has no
    data mux (a slot's flops load the input or are reset): its OUT_B output bytes' tkeep compares stand in."""
    g = math.gcd(in_b, out_b)
    arch = gearbox_architecture(in_b, out_b)
    if arch == "split":
        return out_b * ((in_b + out_b) // g + 1)
    if arch == "gather":
        return out_b
    return sum(1 for b in range(in_b + out_b) for k in range(out_b // g + 1) if 0 <= b - k * g < in_b)


def byte_gearbox(in_b: int, out_b: int, whole: bool = False) -> dict[str, float]:
    """Resources of one byte gearbox from ``in_b`` to ``out_b`` bytes per beat (``BYTE_GEARBOX``); ``whole``: its
    input beats always whole (tkeep tied high)."""
    if in_b == out_b:
        return {r: 0.0 for r in RESOURCES}
    cap = in_b + out_b
    arch = gearbox_architecture(in_b, out_b)
    fit = BYTE_GEARBOX["whole" if whole else "keep"][arch]
    return {**{r: 0.0 for r in RESOURCES},
            "LUT": fit["LUT_per_input_bit"] * 8 * in_b
            + fit["LUT_per_mux_input_bit"] * 8 * gearbox_mux_inputs(in_b, out_b),
            # the buffer's bytes and its count; a split's held beat, carry and three counts; a gather's output
            # register, its slot and byte counts
            "FF": (8 * out_b + math.ceil(math.log2(out_b // in_b + 1)) + math.ceil(math.log2(cap + 1)) + 1
                   if arch == "gather" else
                   8 * cap + (3 if arch == "split" else 1) * math.ceil(math.log2(cap + 1)) + 1)}


#: image_window.sv (the first conv's window on the raw image: 3 channels, patches in beats of OUT_B = the GEMM unit's
#: SIMD), logic only: [fixed, per beat of a patch], the line through Yosys at
#: OUT_B 64 (1 beat) and 16 (2 beats), images up to 1024 wide (``python bench/image_window_synth.py``,
#: bench/results/image_window_synth.json "model"; tests/test_plan_engine.py checks these equal that file). Its block
#: RAMs (rows and tables): ``engine.image_memories``.
IMAGE_WINDOW: dict[str, tuple[float, float]] = {"LUT": (239.0, 94.0), "FF": (258.0, 2.0)}


def image_window(out_b: int) -> dict[str, float]:
    """image_window.sv's logic (3 channels) at ``out_b`` bytes an output beat (``IMAGE_WINDOW``)."""
    from samfpga.hw.sim.image_window import patch_beats

    nb = patch_beats(3, out_b)
    return {**{r: 0.0 for r in RESOURCES}, **{k: a + b * nb for k, (a, b) in IMAGE_WINDOW.items()}}


#: int_softmax.sv as the engine runs it (pipelined, rows of 64 keys, no bias tables): Yosys minus the own model
#: (``int_cost.softmax_model``) as [fixed, per lane], the line through the 4- and 32-lane points; the corrected
#: model is within 0.6% of Yosys at 8 and 16 lanes, where the model alone was -1.7% and +8.3% off (and +17% at 32).
#: ``python bench/int_softmax_synth.py`` (bench/results/int_softmax_synth.json; tests/test_plan_engine.py checks these
#: equal that file's line). DSPs: the model's equal Yosys' at every point.
SOFTMAX_YOSYS: dict[str, tuple[float, float]] = {"LUT": (787.86, -84.41), "FF": (12.57, 0.11)}

#: the engine's glue: engine_gemm_path.sv's own logic (the muxes routing its parts' streams to one another and to the
#: writer, its step control, the attention's row counter), LUT = c0 + sum c_w x the stream width w in bytes (least
#: squares over 7 Yosys runs, every run within 1% of it), FF a constant; and its AXI-Lite register block
#: (engine_gemm_path_axil.sv less the path: 119 registers, the bits the path's ports take, and their copy latched at
#: each start, CFG_LATCH = 1: about 2,200 FF) built without read-back (CFG_READ = 0: the host sequencer never reads a
#: register it wrote; with read-back it is 2,025 LUT, 4,976 FF), the larger of the tiny and the KV260 widths. The
#: image window and its gearbox, and the writer's pack, are shelled too (priced on their own).
#: ``python bench/engine_path_glue_synth.py`` (bench/results/engine_path_glue_synth.json, the parts shelled by
#: samfpga.hw.synth.shells; tests/test_plan_engine.py checks these equal that file's fit). No DSP, no block RAM.
PATH_GLUE: dict = {"LUT": {"c0": 85.3, "pe": 16.352, "simd": 19.098, "dw_pe": 8.176, "ln_lanes": 23.789,
                           "sm_lanes": -0.644},
                   "FF": 35.0, "registers": {"LUT": 416.0, "FF": 4454.0}}


#: the engine's counts at ENGINE_CNT_BITS (20) instead of 16 bits: the GEMM unit's iteration / token / shape
#: counters, the residual's and the LayerNorm's lanes' and the depthwise unit's token counts; Yosys, each module at
#: both widths (``python bench/engine_counts_synth.py``, bench/results/engine_counts_synth.json ``total``)
ENGINE_COUNTS: dict[str, float] = {"LUT": 152.0, "FF": 40.0, "DSP": 2.0}


def path_glue(widths: dict[str, int]) -> dict[str, float]:
    """engine_gemm_path.sv's own logic at stream ``widths`` (bytes: pe, simd, dw_pe, ln_lanes, sm_lanes), ``PATH_GLUE``."""
    lut = PATH_GLUE["LUT"]
    return {**{r: 0.0 for r in RESOURCES}, "LUT": lut["c0"] + sum(lut[k] * widths[k] for k in lut if k != "c0"),
            "FF": PATH_GLUE["FF"]}


def path_registers() -> dict[str, float]:
    """The path's AXI-Lite register block (``PATH_GLUE["registers"]``)."""
    return {**{r: 0.0 for r in RESOURCES}, **PATH_GLUE["registers"]}


#: strip_pad.sv (zero padding inserted per column strip: a padded k x k convolution in a unit that runs in strips)
#: as c0 + c1 x BW, the unit's stream width in bits: least squares over Yosys ``synth_xilinx -family xcup`` counts at
#: BW = 8 .. 512 (``python bench/strip_pad_synth.py``, bench/results/strip_pad_synth.json; tests/test_plan.py checks
#: these equal that file's fit). No DSP, no block RAM.
STRIP_PAD: dict[str, tuple[float, float]] = {"LUT": (311.312, 0.999), "FF": (241.0, 0.0)}


def strip_pad(bw: int) -> dict[str, float]:
    """Resources of one strip padding unit on a ``bw``-bit stream (``STRIP_PAD``)."""
    return {r: (STRIP_PAD[r][0] + STRIP_PAD[r][1] * bw if r in STRIP_PAD else 0.0) for r in RESOURCES}

#: token_batch_mvu.sv's fabric beside its DSPs (LUT excluding LUTRAM, FF) as c0 + c1 x gearbox bits + c2 x PE, least
#: squares over the unit's Yosys counts with its dot products as DSP slices (``synth_xilinx -family xc7``, where Yosys
#: packs post-adders; it packs none into DSP48E2), RQ = 1 and RQ = 0 apart
#: (``python bench/token_batch_synth.py``, bench/results/token_batch_synth.json; tests/test_plan.py keeps every
#: measured unit within ``TOKEN_BATCH_FIT_ERROR`` of this model). The gearbox (weight words assembled from AXI beats)
#: and the per-PE requantiser and accumulators are most of it.
TOKEN_BATCH_FIT: dict[bool, dict[str, tuple[float, float, float]]] = {
    True: {"LUT": (666.553, 1.287, 360.926), "FF": (582.754, 1.008, 360.885)},
    False: {"LUT": (559.193, 1.349, 66.315), "FF": (625.089, 1.234, 61.072)},
}
TOKEN_BATCH_FIT_ERROR = 0.15
#: dot_chain.sv's flip-flops beyond its shift registers and its control delay line, per skewed operand bit and lane
#: (Yosys, the CHAIN units of bench/results/token_batch_synth.json: 1.7-2.1)
CHAIN_FF_PER_LANE_BIT = 2.0


def gearbox_slots(tbc) -> bool:
    """Whether token_batch_mvu.sv builds its gearbox as a ring of word slots (words of whole AXI beats)."""
    return tbc.word_bits % tbc.axi_dw == 0


def gearbox_bits(tbc) -> int:
    """Flip-flops of token_batch_mvu.sv's weight-word gearbox: with words of whole beats, a ring of 2 + PW words
    (the word in use, the next one, a fold's parameter words); otherwise a shifting buffer of those words and one
    AXI beat, in chunks of gcd(AXI width, word width) (its ``CAP * G``)."""
    if gearbox_slots(tbc):
        return (2 + tbc.param_words) * tbc.word_bits
    g = math.gcd(tbc.axi_dw, tbc.word_bits)
    return ((2 + tbc.param_words) * (tbc.word_bits // g) + tbc.axi_dw // g) * g


def gearbox_mux_bits(tbc) -> int:
    """The gearbox's multiplexed bits, the LUT regressor of ``TOKEN_BATCH_FIT``: the ring's read of the word in use
    (one LUT6 per bit for up to 4 slots, ceil((slots - 1) / 3) in general), or every bit of the shifting buffer
    (each takes the bit above it, a beat's chunk, or itself)."""
    if gearbox_slots(tbc):
        return tbc.word_bits * math.ceil((1 + tbc.param_words) / 3)
    return gearbox_bits(tbc)


def dot_chain_srl_luts(pe: int, simd: int, a_bits: int, w_bits: int) -> int:
    """Shift-register LUTs of dot_chain.sv as Yosys maps them (bench/results/token_batch_synth.json, exact): lane s
    waits s cycles; its first cycle is the DSP's own operand register, the rest one SRL per bit and 32 cycles
    (SRLC32E) for every lane from s = 2, the activations shared by the PE chains."""
    per_bit = sum(math.ceil(d / 32) for d in range(2, simd))
    return (a_bits + pe * w_bits) * per_bit


def pack_segment(a_bits: int, w_bits: int, a_signed: bool = True, w_signed: bool = True) -> int:
    """dot_pack.sv's segment length K: the most slices whose low-lane sum of products stays within 18 signed bits
    (K * max|a * w| < 2^17; 7 for INT8 x INT8), as the RTL's ``seg_len`` computes it."""
    amax = 1 << (a_bits - 1) if a_signed else (1 << a_bits) - 1
    wmax = 1 << (w_bits - 1) if w_signed else (1 << w_bits) - 1
    return max(1, min(1024, ((1 << 17) - 1) // (amax * wmax)))


def dot_pack_fabric(pe: int, simd: int, a_bits: int, w_bits: int, acc: int, a_signed: bool = True,
                    w_signed: bool = True) -> dict[str, float]:
    """dot_pack.sv's fabric (LUT, FF) beside its PE/2 x SIMD slices, as Yosys counts it with the slices as black
    boxes (bench/results/token_batch_synth.json "dot_pack"; tests/test_plan.py: within 2 LUTs in 8 of 9 cases, 5.2%
    under at PE 2 x SIMD 32 INT8, where Yosys maps 42 more SRLs): the skew shift registers (lane s waits D = s mod K + the segment's offset cycles; two of them in flip-flops, the
    rest one SRL per bit and 32 cycles) and per PE pair the split of each segment's P (an ACC-wide adder for the
    high lane's borrow) and two pipelined trees over the G segments (2 x (G - 1) ACC-wide adders)."""
    k = pack_segment(a_bits, w_bits, a_signed, w_signed)
    ks, g = min(k, simd), math.ceil(simd / k)
    srl = 0
    for s in range(simd):
        kk = min(k, simd - (s // k) * k)
        d = s % k + (ks - kk)
        srl += math.ceil((d - 2) / 32) if d >= 3 else 0
    srl *= a_bits + pe * w_bits
    logic = (pe // 2) * (2 * acc * (g - 1) + (acc - 5) * g + 4)
    return {"LUT": float(srl + logic), "FF": float(srl + logic)}


def token_batch_logic(tbc) -> dict[str, float]:
    """LUT (excluding LUTRAM: the planner prices the unit's memories itself), FF and DSP of one token_batch_mvu.sv
    (``tbc``: samfpga.hw.sim.token_batch_mvu.TokenBatchConfig), Yosys-fitted (``TOKEN_BATCH_FIT``). DSPs: one per
    product (tree or chain; half as many with "pack", two products per DSP48E2) and per PE the requantiser's
    acc x scale product (one DSP48E2 up to 27-bit sums, two beyond).
    With ``tbc.dot`` "chain" (dot_chain.sv, the timing-closable form at 200 MHz: the tree is one combinational
    cascade of SIMD post-adders) its skew shift registers and flip-flops are added, with "pack" dot_pack.sv's fabric
    (``dot_pack_fabric``)."""
    from samfpga.hw.resources.models import dsp_mult

    c = TOKEN_BATCH_FIT[bool(tbc.requant)]
    gb = {"LUT": gearbox_mux_bits(tbc), "FF": gearbox_bits(tbc)}
    res = {k: c[k][0] + c[k][1] * gb[k] + c[k][2] * tbc.pe for k in ("LUT", "FF")}
    products = tbc.pe * tbc.simd // (2 if tbc.dot == "pack" else 1)
    # the requantiser's acc x scale product per PE: one DSP48E2 up to a 27-bit accumulator, two beyond (Yosys:
    # 864 DSPs at PE 48 x SIMD 32 with 29-bit sums, bench/results/engine_unit_synth.json)
    res["DSP"] = float(products + (tbc.pe * dsp_mult(tbc.acc_bits, tbc.rq_scale_bits) if tbc.requant else 0))
    if tbc.dot == "chain":
        res["LUT"] += dot_chain_srl_luts(tbc.pe, tbc.simd, tbc.a_bits, tbc.w_bits)
        res["FF"] += CHAIN_FF_PER_LANE_BIT * (tbc.a_bits + tbc.pe * tbc.w_bits) * tbc.simd
    elif tbc.dot == "pack":
        f = dot_pack_fabric(tbc.pe, tbc.simd, tbc.a_bits, tbc.w_bits, tbc.acc_bits, tbc.a_signed, tbc.w_signed)
        res["LUT"] += f["LUT"]
        res["FF"] += f["FF"]
    return res


def token_batch_memories(tbc) -> list[tuple[str, int, int, int]]:
    """The on-chip memories of one token_batch_mvu.sv (``tbc``: its TokenBatchConfig) as (name, depth, width bits,
    copies): the double-buffered batch of B input vectors, B x PE accumulators, two output banks of B x NF beats,
    and the AXI read-data FIFO (WFIFO_DEPTH beats). The planner places them with the rest of the plan's memories;
    the FINN node's cost model (``custom_ops.token_batch``) prices them alone."""
    return [("token_batch", tbc.batch * tbc.mw // tbc.simd, tbc.simd * tbc.a_bits, 2),
            ("accumulators", tbc.batch, tbc.pe * tbc.acc_bits, 1),
            ("output_banks", tbc.batch * tbc.nf, tbc.pe * tbc.out_value_bits, 2),
            ("read_fifo", tbc.wfifo_depth, tbc.axi_dw, 1)]


class _DT:
    def __init__(self, bits: int):
        self._b = bits

    def bitwidth(self) -> int:
        return self._b

    def is_integer(self) -> bool:
        return True

    def min(self) -> int:
        return -(1 << (self._b - 1))


class _Node:
    def __init__(self, name: str, op_type: str):
        self.name, self.op_type, self.input = name, op_type, ["x", "w"]


class ShapeOp:
    """The part of a FINN custom-op instance the project's resource models read: node attributes and datatypes."""

    def __init__(self, name: str, op_type: str, attrs: dict, in_bits: int, w_bits: int, out_bits: int):
        self.onnx_node = _Node(name, op_type)
        self._a, self._in, self._w, self._out = attrs, in_bits, w_bits, out_bits

    def get_nodeattr(self, k):
        return self._a[k]

    def get_nodeattr_types(self):
        return self._a

    def get_input_datatype(self, ind: int = 0):
        return _DT(self._w if ind == 1 else self._in)

    def get_output_datatype(self, ind: int = 0):
        return _DT(self._out)


def acc_bits(layer: Layer, w_bits: int) -> int:
    return w_bits + ACT_BITS + math.ceil(math.log2(max(2, layer.mw)))


def cycles(layer: Layer, pe: int, simd: int) -> int:
    """FINN's expected cycles of an MVAU / VVAU at PE, SIMD: (MH/PE) * (MW/SIMD) * vectors."""
    return (layer.mh // pe) * (layer.mw // simd) * layer.vectors


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def priced_foldings(layer: Layer, w_bits: int, board: Board, unit: tuple | None = None
                    ) -> list[tuple[int, int, int, str]]:
    """Pareto list (cycles descending) of (cycles, PE, SIMD, dot) with PE | MH, SIMD | MW, each the cheapest of the
    foldings at its cycle count or below by the board-normalised logic ``LUT / board LUTs + DSP / board DSPs`` of
    ``price`` (the project's models; dot ""), or for a token-batched layer (``unit`` = (requant, AXI bits, the dot
    datapaths allowed)) of ``token_batch_logic``, the project's unit with the cheapest of its dot-product datapaths
    (dot "chain" or "pack", the latter at even PE). Ranking by DSP-equivalents alone (the
    planner's rule until 2026-12-02) picked wide-PE foldings whose per-PE logic costs LUTs, which bind first on the
    KV260 (W4A8 worst: 3 lanes per DSP made PE = 32 look cheap)."""
    return _priced_foldings(layer.shape_key(), layer, w_bits, board, unit)


def token_batch_unit(layer: Layer, pe: int, simd: int, w_bits: int, batch: int, requant: bool, axi_dw: int,
                     dot: str = "chain"):
    """The TokenBatchConfig of ``layer`` as the planner builds it, its dot products on ``dot`` ("chain":
    dot_chain.sv, "pack": dot_pack.sv)."""
    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig

    return TokenBatchConfig(layer.mw, layer.mh, simd, pe, batch, w_bits=w_bits, acc_bits=acc_bits(layer, w_bits),
                            requant=requant, axi_dw=axi_dw, dot=dot)


def price_token_batch(layer: Layer, tbc, board: Board) -> Priced:
    """A token-batched layer on the project's unit (``tbc``: its TokenBatchConfig): logic and DSPs by
    ``token_batch_logic`` (Yosys-fitted), its line buffer as ``price`` has it; the unit's memories (input batch,
    accumulators, output banks, read FIFO) are the planner's to add."""
    r = token_batch_logic(tbc)
    buffers = price(layer, tbc.pe, tbc.simd, tbc.w_bits, board).buffers
    return Priced({"LUT": r["LUT"], "FF": r["FF"], "BRAM36": 0.0, "URAM": 0.0, "DSP": r["DSP"]}, (0, 0), buffers,
                  f"Yosys-fitted (token_batch_mvu.sv + dot_{tbc.dot}.sv, bench/results/token_batch_synth.json)")


@cache
def _priced_foldings(key, layer: Layer, w_bits: int, board: Board, unit: tuple | None = None
                     ) -> list[tuple[int, int, int, str]]:
    cands = []
    for pe in _divisors(layer.mh):
        for simd in _divisors(layer.mw):
            if unit is None:
                opts = [(price(layer, pe, simd, w_bits, board).res, "")]
            else:
                requant, axi_dw, dots = unit
                opts = [(token_batch_logic(token_batch_unit(layer, pe, simd, w_bits, 1, requant, axi_dw, d)), d)
                        for d in dots if d != "pack" or pe % 2 == 0]
            for r, d in opts:
                cost = r["LUT"] / board.lut + r["DSP"] / board.dsp
                cands.append((cost, pe * simd, cycles(layer, pe, simd), pe, simd, d))
    cands.sort()
    out: list[tuple[int, int, int, str]] = []
    best = math.inf
    for _, _, c, pe, simd, d in cands:
        if c < best:
            out.append((c, pe, simd, d))
            best = c
    return sorted(out, key=lambda x: -x[0])


@dataclass
class Priced:
    """One layer's hardware at a folding: resources (LUT, FF, BRAM36, URAM, DSP) without its weight memory, the
    weight memory as (depth, width) words, and line buffers as (depth, width)."""

    res: dict[str, float]
    weight_mem: tuple[int, int]
    buffers: list[tuple[str, int, int]]
    source: str


def price(layer: Layer, pe: int, simd: int, w_bits: int, board: Board) -> Priced:
    """Logic and DSPs of ``layer`` at (PE, SIMD) with ``w_bits`` weights on finn-rtllib's units and the project's
    DepthwiseVVAU, its requantiser included (memories separately, see ``Priced``). Token-batched layers are priced
    as the project's unit by ``price_token_batch``."""
    return _price(layer.shape_key(), layer.kind, layer.mw, layer.mh, layer.kernel, layer.in_width, layer.in_channels,
                  pe, simd, w_bits, board)


@cache
def _price(key, kind, mw, mh, kernel, in_width, in_channels, pe, simd, w_bits, board: Board) -> Priced:
    from samfpga.hw.custom_ops.costs import dw_vvau_resources
    from samfpga.hw.resources.models import mvau_terms, requant_rtl_cost, terms_total

    a = w_bits + ACT_BITS + math.ceil(math.log2(max(2, mw)))
    res = dict.fromkeys(("LUT", "FF", "BRAM36", "URAM", "DSP"), 0.0)
    buffers: list[tuple[str, int, int]] = []
    if kind == "dwconv":
        r = dw_vvau_resources(pe, simd, mw // simd, mh // pe, w_bits, a)
        rom = simd * pe * w_bits * math.ceil((mh // pe) * (mw // simd) / 32)
        r = {**r, "LUT": r["LUT"] - rom}  # weights are priced as a memory of their own (copies for rolled bodies)
        source = "own model (DepthwiseVVAU_rtl, samfpga.hw.custom_ops.costs)"
    else:
        dyn = kind == "matmul"
        op = ShapeOp("l", "MVAU_rtl", {"PE": pe, "SIMD": simd, "MW": mw, "MH": mh,
                                       "mem_mode": "dynamic" if dyn else "external", "ram_style": "auto"},
                     ACT_BITS, ACT_BITS if dyn else w_bits, a)
        r = terms_total(mvau_terms(op, None, board), "MVAU_rtl")
        source = "own model (MVAU_rtl, samfpga.hw.resources.models)"
    for k, v in r.items():
        res[k] += float(v)
    rq = requant_rtl_cost(ShapeOp("rq", "Requant_rtl", {"PE": pe, "NumChannels": mh}, a, 0, ACT_BITS), None, board)
    for k in res:
        res[k] += float(getattr(rq, k))
    wdepth = 0 if kind == "matmul" else (mw * mh) // (pe * simd)
    if kernel > 1:
        # sliding-window line buffer (own model): k-1 image rows plus k pixels of all input channels
        par = pe if kind == "dwconv" else max(1, simd // (kernel * kernel)) if simd >= kernel * kernel else 1
        depth = ((kernel - 1) * in_width + kernel) * in_channels // par
        buffers.append(("line_buffer", depth, par * ACT_BITS))
    return Priced(res, (wdepth, pe * simd * w_bits), buffers, source)
