"""A layer-sequential engine for the TinySAM-size encoder: one shared GEMM unit, one depthwise unit, DDR between
layers (own model; issue 15's "shared hardware for repeated blocks" taken to every layer).

Why: the per-layer dataflow designs (``samfpga.hw.plan.planner``, the FINN build with ``--roll``) give every layer
its own unit, stream FIFOs and width converters. On the KV260 the build of vit_t at 512² does not fit even at its
slowest folding (LUT 1.24-1.31x, block memory 1.22-1.28x the 85% limits, 0.10-0.24 fps; docs/plan.md), while the
DSP roofline is 55 fps. Here the encoder runs layer after layer on a few units that are as wide as the board allows,
so area is paid once and every layer runs at the engine's full width.

The engine (what the cycle and resource figures below assume):

- **GEMM unit**: the project's token-batched MVU (hw/samfpga/hw/rtl/token_batch_mvu.sv, PE x SIMD, dot products
  packed two per DSP48E2 by dot_pack.sv, requantiser inside) sized for the largest layer, running every conv
  (3 x 3 behind the depthwise unit's window, the image's conv behind the image window), linear layer and
  attention product in turn. Its input batch holds ``batch`` tokens of up to ``mw_cap`` values (a layer with wider vectors runs with fewer tokens per pass);
  weights and requantisation parameters stream from DDR once per pass (``token_batch_mvu.schedule_cycles``, the
  schedule the RTL bench matches cycle for cycle). The attention products use the same unit: per window and head,
  the window's queries are the batch and K (QK^T) or V^T (AV) the weight words, written to DDR by the qkv layer;
  QK^T runs as a raw frame (its sums unrequantised for the softmax, RAW_OUT), and a step before each AV transposes
  V on the unit (``v_transpose_step``, ``samfpga.hw.sim.attention_operands``).
- **Input path**: a strip reader (DMA) -> LayerNorm (int_layernorm.sv at ``ln_lanes``, its beats re-cut from and to
  the unit's by byte gearboxes) + a requantiser per lane -> the unit (a 3 x 3 conv: the reader -> the depthwise
  unit's window alone -> a byte gearbox from its 9 taps x ``dw_pe`` bytes to SIMD -> the unit, launched per strip;
  a conv after a LayerNorm: the LayerNorm between the reader and the window; the image's conv: image_window.sv, the
  image's table and 3 x 3 patches at stride 2, the image stored 4 bytes a pixel); a second
  reader brings the residual to an adder on the output path.
- **Output path**: the unit -> residual adder -> softmax (int_softmax.sv's pipelined architecture at ``sm_lanes``
  lanes, QK^T only: a row per N/lanes cycles, ``softmax_row_cycles``, plus its latency per step) -> the writer's
  pack (token_pack.sv: each token's outputs padded to whole PE folds dropped, the rest re-cut to the 16-byte port;
  ``pricing.TOKEN_PACK``) -> the writer (DMA; without a realignment buffer where every write is on whole beats,
  ``writes_on_whole_beats``), so it writes the layers' outputs alone.
- **Depthwise unit**: dw_core.sv (``dw_pe`` channels x 9 taps per cycle, its requantiser lanes; docs/dw_core.md)
  over the whole map, as the compiled program launches it (``dw_strip`` 0: its window's banks hold 4 rows of the
  widest map at the widest layer's channels), or in column strips with a one-column halo (banks sized for strips of
  ``dw_strip`` columns; each layer in the fewest strips that fit them, ``dw_tiles``; a launch per strip, its
  weights and lanes' parameters again each time, its halo columns read twice, all counted); it shares the reader and writer through byte gearboxes (the reader's SIMD bytes to its
  dw_pe, its dw_pe to the writer's PE).
- **Sequencing**: the host's ARM cores program each step's registers while the step before runs (the register
  block latches them when a step starts); a step costs max(its cycles, ``launch_cycles``) + ``START_GAP``.
- **DDR layout**: feature maps HWC (the strip reader / writer's). The attention layers' window order is a strip
  read: strips of ``window`` columns without halo give the windows one after another (column-major), tokens
  row-major within each, and the writer puts them back (tests/test_plan_engine.py checks both models).

Each step takes max(unit cycles, LayerNorm/softmax lanes, reader/writer ports at 16 B/cycle and at least
``RUN_CYCLES`` a run (``dma_cycles``), all its DDR bytes at ``ddr_efficiency`` of the board's peak), at least the
host's ``launch_cycles`` (``launched``), plus ``START_GAP``: transfers overlap compute (double-buffered DMA).

Built: the GEMM unit with run-time layer shapes and raw output (token_batch_mvu.sv, RT_SHAPE = 1, RAW_OUT = 1:
bit-exact in RTL simulation running layers of five shapes and raw frames back to back, and vit_t's 20 GEMM shapes
and attention products at the KV260 plan's size, docs/token_batch_mvu.md, docs/engine.md). Not built (the model prices them from the
parts that are): ``NOT_BUILT``. Not counted: the AXI interconnect to the PS ports, the PS.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path

from samfpga.backends.unit_regs import ENGINE_CNT_BITS
from samfpga.hw.boards import RESOURCES, Board, get_board
from samfpga.hw.plan.layers import Layer, Unit
from samfpga.hw.plan.pricing import (
    DDR_GBPS,
    DMA,
    ENGINE_COUNTS,
    SOFTMAX_YOSYS,
    acc_bits,
    byte_gearbox,
    dw_core,
    image_window,
    layernorm_lanes,
    path_glue,
    path_registers,
    requant_lanes,
    token_batch_logic,
    token_batch_memories,
    token_pack,
)
from samfpga.hw.sim import token_batch_mvu as tb
from samfpga.hw.sim.attention_operands import transpose_raw_shape
from samfpga.hw.sim.requant_lanes import residual_drain
from samfpga.hw.sim.requant_lanes import residual_lanes as residual_lanes_for
from samfpga.hw.sim.token_batch_mvu import whole_folds as _pad

#: bytes per cycle of one strip reader / writer port (AXI_DW = 128)
PORT_BYTES = 16
#: cycles a DMA run (one burst request, a segment of the access walk) costs at least, so a frame of N runs of B bytes
#: takes about max(3 N, its beats) (docs/access_reader.md, measured: 512 one-byte runs in 1,541 cycles; the bundled
#: default's V transposes in RTL, 4,096 one-beat runs in 12,409: bench/results/engine_default_kv260.md)
RUN_CYCLES = 3


#: cycles from a step's end to the next step's start when the host wrote that step (and its ap_start) while it ran:
#: the pending start fires the cycle the path is not busy, the configuration is latched then and the start follows
#: a cycle later (axil_regs.sv, CFG_LATCH = 1); measured on the tiny program: bench/results/engine_gemm_path_sim.md
START_GAP = 2


def launched(cfg: EngineConfig, cycles: int) -> int:
    """A step of ``cycles`` as the host launches it: its registers written while the step before runs
    (``StepSequencer``'s overlap), so it costs its own cycles or the host's ``launch_cycles``, whichever is more,
    and the start's gap."""
    return max(cycles, cfg.launch_cycles) + START_GAP


def dma_cycles(nbytes: int, runs: int) -> int:
    """Cycles of a reader or writer moving ``nbytes`` in ``runs`` runs: its beats, at least ``RUN_CYCLES`` a run."""
    return max(math.ceil(nbytes / PORT_BYTES), RUN_CYCLES * runs)


def is_av(layer: Layer) -> bool:
    """Whether ``layer`` is an attention block's AV product (the other matmul is QK^T)."""
    return layer.kind == "matmul" and not layer.name.endswith("matmul_qk")


def head_dims(unit: Unit) -> int:
    """An attention stage's head dims (its QK^T's MW)."""
    return next(x.mw for x in unit.blocks[0] if x.name.endswith("matmul_qk"))


def vt_runs(keys: int, rows: int, simd: int, pe: int) -> int:
    """Runs of a V transpose's writer per iteration (``engine_gemm_path.av_rows_write``: V^T's ``rows`` rows of
    ``keys`` values into AV's weight image, words of PE rows x SIMD keys, each fold's requantisation words ahead of
    it): the rows of a PE fold are one run when the keys are one whole SIMD fold, else each row's keys of each SIMD
    fold are a run of their own."""
    if keys == simd:
        return -(-rows // pe)
    return rows * -(-keys // simd)
#: token_batch_mvu.sv's logic at the engine's sizes over the planner's model of it (``pricing.token_batch_logic``,
#: fitted to Yosys at PE <= 10 x SIMD 40): the largest Yosys / model ratio of bench/results/engine_unit_synth.json
#: (PE 24-40 x SIMD 32-64, batch 128-256, RT_SHAPE = 1, with and without RAW_OUT; LUT without LUTRAM: the largest
#: is the RAW_OUT unit's, whose raw path the model leaves out), and the DSPs the run-time shape adds (its range
#: checks' and pass length's products) and the raw output's (its address and fold-count products).
#: tests/test_plan_engine.py checks these against that file.
UNIT_YOSYS_RATIO = {"LUT": 1.097, "FF": 1.267}
RT_SHAPE_DSP = 5
RAW_OUT_DSP = 4
#: TinyViT layers whose input passes a LayerNorm (Attention.norm, Mlp.norm; the neck's LayerNorm2d after neck.0)
LN_INPUT = ("attn.qkv", "mlp.fc1", "neck.2")
#: layers whose output is added to the block's input (x + attn(x), x + mlp(x), MBConv's x + conv3(...))
RESIDUAL_OUTPUT = ("attn.proj", "mlp.fc2", "conv3.c")
#: layers whose sums go to a LayerNorm unrequantised (the neck's convs: the FINN build keeps their sums, as
#: ``samfpga.hw.sim.engine_program`` finds in the tiny build's graph): raw frames of the sums' own width, and the
#: next step's LayerNorm reads them at that width
RAW_OUTPUT = ("neck.0", "neck.2")
#: the conv on the image (3 x 3 at stride 2 on 3 channels): behind the image window (image_window.sv: the image's
#: per-channel table, its patches; the image stored 4 bytes a pixel); every other 3 x 3 conv runs behind the
#: depthwise unit's window (``on_window``)
IMAGE_INPUT = ("patch_embed.seq.0.c",)
#: the GEMM unit's activation width: INT8 and UINT8 layers (after ReLU, the softmax's probabilities) on one unit
UNIT_ACT_BITS = 9
#: IntSoftmax as the vit_t build's QK^T softmax has it (bench/hw_estimates.py at 512², partition.onnx: INT21
#: accumulators in, UINT8 out); the bias tables are TinyViT's compact (head, |dy|, |dx|) tables with |B| up to
#: ``bias_max`` (an assumption: the bundled default's are below 0.1; BQ scales them by 2^(G+P), 35 bits at 4)
SOFTMAX_ATTRS = {"mult": 33428, "pre_shift": 25, "out_num": 1 << 56, "recip_bits": 43, "exp_frac_bits": 6,
                 "exp_bits": 16, "in_bits": 21, "out_bits": 8, "bias_max": 4.0}
#: IntLayerNorm as the vit_t build has it (INT8 in, INT13/14 out, lut_bits 10, r_bits 16, eps_int 16777)
LAYERNORM_ATTRS = {"eps_int": 16777, "frac_bits": 8, "lut_bits": 10, "r_bits": 16, "in_bits": 8, "out_bits": 14}


@dataclass(frozen=True)
class EngineConfig:
    """One engine and what it runs. Shapes: ``pe`` | nothing (layers pad MH up to a multiple of PE, MW of SIMD)."""

    board: str = "kv260"
    variant: str = "vit_t"
    image_size: int = 1024
    window_sizes: tuple[int, ...] | None = (8, 8, 8, 8)
    activation: str | None = "relu"
    pe: int = 32
    simd: int = 32
    batch: int = 128
    mw_cap: int = 1280
    dw_pe: int = 16
    #: columns per strip the depthwise window's banks are sized for at the widest channels; 0: none, each depthwise
    #: layer and window conv launched whole as the compiled program launches them (engine_program), so the banks
    #: hold the widest map's rows (the generated design's DW_W_MAX)
    dw_strip: int = 0
    ln_lanes: int = 4
    sm_lanes: int = 8
    axi_dw: int = 128
    w_bits: int = 8
    dot: str = "pack"
    ddr_efficiency: float = 0.7
    limit: float = 0.85
    clock_mhz: float | None = None
    #: host cycles to program one step's registers over AXI-Lite (assumption: 10 us at 200 MHz; not measured), spent
    #: while the step before runs (the block latches its configuration: ``launched``)
    launch_cycles: int = 2000
    #: memories of at least this many bits go to URAM where the board has it (else BRAM / LUTRAM as Vivado infers)
    uram_min_bits: int = 288 * 1024
    #: factor on the GEMM unit's fitted LUT / FF (1: the fit; the fit's measured foldings are PE <= 10, SIMD <= 40)
    unit_logic_scale: float = 1.0
    encoder_config: object | None = None

    def __post_init__(self) -> None:
        for k in ("pe", "simd", "batch", "mw_cap", "dw_pe", "ln_lanes", "sm_lanes", "axi_dw"):
            if getattr(self, k) < 1:
                raise ValueError(f"engine {k} = {getattr(self, k)}: must be >= 1")
        if self.dw_strip < 0:
            raise ValueError(f"engine dw_strip = {self.dw_strip}: columns (>= 1), or 0 for whole maps")
        if self.dot not in ("chain", "pack"):
            raise ValueError(f"engine dot {self.dot!r}: 'chain' or 'pack'")
        if self.dot == "pack" and self.pe % 2:
            raise ValueError(f"engine dot 'pack' needs an even PE, got {self.pe}")
        if self.pe * self.simd * self.w_bits % self.axi_dw:
            raise ValueError(f"engine PE {self.pe} x SIMD {self.simd} x {self.w_bits} bits: the GEMM unit's run-time "
                             f"shapes need weight words of whole {self.axi_dw}-bit AXI beats")
        board = get_board(self.board)  # ValueError naming the known boards
        if board.name not in DDR_GBPS:
            raise ValueError(f"board {board.name}: no DDR bandwidth known (samfpga.hw.plan.pricing.DDR_GBPS)")
        if not self.unit_logic_scale > 0:
            raise ValueError(f"unit_logic_scale {self.unit_logic_scale}: must be > 0")
        if not 0 < self.ddr_efficiency <= 1 or not 0 < self.limit <= 1:
            raise ValueError(f"ddr_efficiency {self.ddr_efficiency}, limit {self.limit}: each in (0, 1]")

    def tinyvit(self):
        from samfpga.hw.plan.layers import hardware_variant

        return self.encoder_config or hardware_variant(self.variant, self.image_size, self.window_sizes,
                                                       self.activation)

    def get_board(self) -> Board:
        return get_board(self.board)

    def clock(self) -> float:
        return self.clock_mhz or self.get_board().clock_mhz


@dataclass
class Step:
    """One engine step: a layer of one block over the whole feature map. ``cycles`` = ``launched``(max(bounds))."""

    name: str
    engine: str  # "gemm" | "attention" | "dw" | "layernorm"
    macs: int
    cycles: int
    bounds: dict[str, int]  # unit, layernorm, softmax, reader, residual, writer, ddr
    bytes_read: int
    bytes_written: int
    weight_bytes: int
    binding: str


@dataclass
class EnginePlan:
    config: dict
    board: str
    fits: bool
    fps: float
    cycles: int
    clock_mhz: float
    steps: list[Step]
    components: dict[str, dict]
    totals: dict[str, float]
    budget: dict[str, int]
    pressure: dict[str, float]
    binding: str
    ddr: dict
    roofline: dict
    by_engine: dict[str, dict]
    searched: int = 1
    not_built: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def gemm_unit(cfg: EngineConfig, units: list[Unit]) -> tb.TokenBatchConfig:
    """The engine's GEMM unit as built (bench/engine_unit_sim.py simulates it): token_batch_mvu.sv with run-time
    layer shapes, buffers for ``batch`` tokens of up to ``mw_cap`` values and the widest layer's outputs, sums as
    wide as the widest layer's, and (when the encoder has attention) the raw output for QK^T's sums (RAW_OUT, as
    wide as QK^T's)."""
    layers = [x for u in units for x in u.blocks[0] if x.kind in ("conv", "linear", "matmul")]
    acc = max(acc_bits(x, cfg.w_bits) for x in layers)
    mh_max = max(_pad(x.mh, cfg.pe) for x in layers)
    mw_in = min(_pad(cfg.mw_cap, cfg.simd), max(_pad(x.mw, cfg.simd) for x in layers))
    raw = [acc_bits(x, cfg.w_bits) for x in layers if x.name.endswith(("matmul_qk",) + RAW_OUTPUT)]
    # 9-bit signed activations: the encoder's layers take INT8 and UINT8 inputs (after ReLU and the softmax), as
    # the engine program of the tiny build needs (samfpga.hw.sim.engine_program, ``needs``)
    return tb.TokenBatchConfig(mw_in, mh_max, cfg.simd, cfg.pe, cfg.batch, a_bits=UNIT_ACT_BITS, w_bits=cfg.w_bits,
                               acc_bits=acc, requant=True, axi_dw=cfg.axi_dw, dot=cfg.dot, rt_shape=True,
                               raw_out=bool(raw), raw_bits=max(raw, default=0))


def layer_config(cfg: EngineConfig, unit: Unit, layer: Layer, gemm: tb.TokenBatchConfig) -> tb.TokenBatchConfig:
    """``layer``'s configuration on the GEMM unit ``gemm`` (``token_batch_mvu.layer_shape``: MW / MH padded to whole
    folds). A conv or linear layer: ``layer_batch`` tokens per pass. An attention product: per window and head an
    iteration of the window's t queries, as many per pass as the unit's banks hold; QK^T's sums go to the softmax
    unrequantised, a raw frame (RAW_OUT: each sum out as raw_words words through the output banks, so fewer queries
    per pass, the unit waiting as many cycles per finished sum)."""
    mw, mh = _pad(layer.mw, cfg.simd), _pad(layer.mh, cfg.pe)
    # raw frames (QK^T, the neck's convs) send each sum as the unit's RAW_BITS (the widest raw sums') in whole
    # bytes, as token_batch_mvu.sv does: one word count for every raw frame
    raw = layer.name.endswith(("matmul_qk",) + RAW_OUTPUT)
    if layer.kind != "matmul":
        return tb.layer_shape(gemm, mw, mh, min(layer_batch(cfg, layer), tb.max_batch(gemm, mw, mh, raw=raw)), raw=raw)
    return tb.layer_shape(gemm, mw, mh, min(unit.window * unit.window, tb.max_batch(gemm, mw, mh, raw=raw)), raw=raw)


def layer_batch(cfg: EngineConfig, layer: Layer) -> int:
    """Tokens per pass of ``layer``: ``batch``, fewer when its vectors are wider than ``mw_cap`` (the input batch
    memory holds batch x mw_cap values)."""
    mw = _pad(layer.mw, cfg.simd)
    cap = cfg.batch * _pad(cfg.mw_cap, cfg.simd)
    return max(1, min(cfg.batch, cap // mw))


def strip_tiles(cfg: EngineConfig, width: int) -> int:
    """Column strips the depthwise window's banks are sized for (``dw_size``): the most strips of >= ``dw_strip``
    columns that split a map ``width`` wide evenly (1 for a narrower map, or for every map at ``dw_strip`` 0)."""
    if cfg.dw_strip == 0:
        return 1
    t = max(1, width // cfg.dw_strip)
    while width % t:
        t -= 1
    return t


def dw_bank_words(cfg: EngineConfig) -> int:
    """Words of ``dw_pe`` bytes per bank of the depthwise window (dw_window.sv's DEPTH): ceil(cols / 3) x
    ceil(channels / dw_pe) for the widest padded strip and channels it is sized for (``dw_size``)."""
    key = (cfg.variant, cfg.image_size, cfg.window_sizes, cfg.activation, repr(cfg.encoder_config), cfg.dw_pe,
           cfg.dw_strip)
    if key not in _BANK_WORDS:  # the search asks per layer of every configuration
        cols, ch = dw_size(cfg, encoder_units(cfg))
        _BANK_WORDS[key] = dw_bank_depth(cfg, cols, ch)
    return _BANK_WORDS[key]


_BANK_WORDS: dict[tuple, int] = {}


def dw_tiles(cfg: EngineConfig, width: int, channels: int) -> int:
    """Column strips of a depthwise layer or window conv over a map ``width`` wide of ``channels`` channels: the
    fewest that split it evenly, each of an even number of columns (stride 2), whose padded strip fits the window's
    banks (ceil((S + 2) / 3) x ceil(channels / dw_pe) <= ``dw_bank_words``, as dw_window.sv checks at run time): a
    layer of fewer channels than the widest runs in wider strips."""
    words, cb = dw_bank_words(cfg), -(-channels // cfg.dw_pe)
    for t in range(1, width + 1):
        if width % t == 0 and (t == 1 or (width // t) % 2 == 0) and -(-(width // t + 2) // 3) * cb <= words:
            return t
    raise ValueError(f"a map {width} wide of {channels} channels fits no strip of the depthwise window's banks")


def on_window(layer: Layer) -> bool:
    """Whether ``layer`` runs on the GEMM unit behind the depthwise unit's window alone (dw_core.sv's cfg_window on
    engine_gemm_path.sv: a 3 x 3 conv on a stored map, launched strip by strip like a depthwise layer; bit-exact in
    RTL for the tiny build's, tests/test_sim_engine_gemm_path.py)."""
    return layer.kind == "conv" and layer.kernel == 3 and not layer.name.endswith(IMAGE_INPUT)


def window_channels(cfg: EngineConfig, layer: Layer) -> int:
    """Channels a pixel of a window conv's map as the window reads it: padded to whole beats of ``dw_pe`` whose 9
    taps are whole beats of the unit's SIMD (its patch, 9 C' values, in whole input beats)."""
    from samfpga.hw.sim.engine_gemm_path import window_channels as channels

    return channels(layer.in_channels, cfg.dw_pe, cfg.simd)


def _in_bytes(cfg: EngineConfig, layer: Layer) -> int:
    """Bytes of the layer's input map as read (k x k convs: the map once, not its windows; depthwise: its strips with
    their one-column halos, as the strip reader reads them)."""
    from samfpga.hw.sim.strip_reader import payload_bytes

    w = layer.in_width
    if layer.kind == "dwconv":
        return payload_bytes(w, w, layer.in_channels, dw_tiles(cfg, w, layer.in_channels), (layer.kernel - 1) // 2)
    if on_window(layer):
        cp = window_channels(cfg, layer)
        return payload_bytes(w, w, cp, dw_tiles(cfg, w, cp), (layer.kernel - 1) // 2)
    if layer.name.endswith(IMAGE_INPUT):  # the image as the image window reads it (4 bytes a pixel)
        from samfpga.hw.sim.image_window import stored_bytes

        return stored_bytes(w, w)
    if is_av(layer):  # AV: keys padded to whole SIMD folds
        return layer.vectors * _pad(layer.mw, cfg.simd)  # each token read with what follows it (av_read)
    return layer.vectors * layer.mw


def dw_unit_cycles(cfg: EngineConfig, layer: Layer, param_bits: int) -> int:
    """Cycles of the depthwise unit (dw_core.sv) on ``layer``, launched strip by strip (``dw_tiles`` launches: the
    path's reader takes one strip's columns and halos per launch; each after the first costs ``launch_cycles``): per
    strip its parameters (the weights, 9 taps per group of ``dw_pe`` channels in ceil(dw_pe bytes / a parameter
    beat of ``param_bits``, the lanes' parameter word) beats each, then a lane parameter beat per channel: they
    precede its first output), and the larger of the strips' padded input beats (one a cycle into the window:
    (H + 2) x (S + 2) pixels per strip of S columns, a beat per group each) and the output beats (a beat per output
    pixel and group), as measured on the GEMM path (tests/test_sim_engine_gemm_path.py)."""
    groups = math.ceil(layer.mh / cfg.dw_pe)
    params = 9 * groups * math.ceil(cfg.dw_pe * 8 / param_bits) + groups * cfg.dw_pe
    w = layer.in_width
    t = dw_tiles(cfg, w, layer.in_channels)
    pad = layer.kernel - 1
    in_beats = t * (w + pad) * (w // t + pad) * groups
    return t * params + max(in_beats, layer.vectors * groups) + (t - 1) * cfg.launch_cycles


def dw_param_bytes(cfg: EngineConfig, gemm: tb.TokenBatchConfig, channels: int) -> int:
    """DDR bytes of one launch's parameters of a depthwise layer of ``channels``: per group of dw_pe channels its 9
    taps' weights (a tap in beats of the lanes' parameter width), then a beat of each channel's lanes' parameters
    (dw_core.param_stream), every beat stored in a port beat of its own (engine_gemm_path.stored_params)."""
    pb = math.ceil((gemm.rq_scale_bits + gemm.rq_bias_bits + gemm.rq_shift_bits) / 8)
    return (math.ceil(channels / cfg.dw_pe) * 9 * math.ceil(cfg.dw_pe / pb) + channels) * PORT_BYTES


def ddr_bytes_per_cycle(cfg: EngineConfig) -> float:
    """DDR bytes per engine clock: the board's peak (``DDR_GBPS``) x ``ddr_efficiency``."""
    return DDR_GBPS[cfg.get_board().name][0] * 1e9 * cfg.ddr_efficiency / (cfg.clock() * 1e6)


def residual_lanes(cfg: EngineConfig, units: list[Unit]) -> int:
    """Lanes of the residual adder and its requantisers: the unit sends PE sums per SF = MW / SIMD cycles of a
    residual layer (one fold of outputs per pass over its inputs), so the fewest lanes of at least ceil(PE / the
    smallest SF) that divide PE keep up with every residual layer (``requant_lanes.residual_lanes``, the rule
    engine_gemm_path.sv is built by: byte gearboxes between; ``step_of`` checks the rate as the ``adder`` bound)."""
    sf = [_pad(x.mw, cfg.simd) // cfg.simd for u in units for x in u.blocks[0]
          if x.name.endswith(RESIDUAL_OUTPUT) and ".blocks." in x.name]
    return residual_lanes_for(cfg.pe, min(sf)) if sf else 1


def raw_words(cfg: EngineConfig, layer: Layer, gemm: tb.TokenBatchConfig) -> int:
    """Bytes per stored output value of ``layer``: the GEMM unit's raw words (``RAW_OUTPUT``) or one."""
    return gemm.raw_words if layer.name.endswith(RAW_OUTPUT) else 1


def step_of(cfg: EngineConfig, unit: Unit, layer: Layer, gemm: tb.TokenBatchConfig, in_words: int,
            res_lanes: int) -> Step:
    """The engine step that runs ``layer`` (one block's) over its feature map on the engine whose GEMM unit is
    ``gemm`` (``gemm_unit``); ``in_words``: bytes per input value (a raw frame's sums, ``raw_words``);
    ``res_lanes``: the engine's ``residual_lanes``."""
    bpc = ddr_bytes_per_cycle(cfg)
    b: dict[str, int] = {}
    # outputs padded to whole PE folds: the writer's pack drops the padding before it (token_pack.sv,
    # engine_gemm_path.writer_pattern), so it writes the layer's outputs alone
    rd, wr, wb = _in_bytes(cfg, layer) * in_words, layer.out_elems * raw_words(cfg, layer, gemm), 0
    res = layer.out_elems if layer.name.endswith(RESIDUAL_OUTPUT) and ".blocks." in layer.name else 0
    if layer.kind == "dwconv":
        engine = "dw"
        # its lanes' parameters in the GEMM unit's requantiser format (one parameter reader serves both)
        b["unit"] = dw_unit_cycles(cfg, layer, gemm.param_bits)
        wb = dw_param_bytes(cfg, gemm, layer.mh) * dw_tiles(cfg, layer.in_width, layer.in_channels)  # per strip
    elif layer.kind == "matmul":
        engine = "attention"
        t = unit.window * unit.window
        n = layer.vectors // t
        tbc = layer_config(cfg, unit, layer, gemm)
        b["unit"] = tb.schedule_cycles(tbc, n, t)["total"]
        wb = tb.ddr_bytes_per_frame(tbc, n, t)
        if tbc.raw:  # QK^T: a row per query of each window and head, the RTL's cycles per row (IntSoftmax)
            b["softmax"] = (layer.vectors * softmax_row_cycles(layer.mh, cfg.sm_lanes)
                            + softmax_latency_cycles(layer.mh, cfg.sm_lanes))
    elif on_window(layer):  # a launch per strip: the unit over the strip's tokens, the window over its padded beats
        engine = "gemm"
        cp, w = window_channels(cfg, layer), layer.in_width
        t = dw_tiles(cfg, w, cp)
        tbc = layer_config(cfg, unit, replace(layer, mw=layer.kernel ** 2 * cp), gemm)
        per = layer.vectors // t
        b["unit"] = t * tb.schedule_cycles(tbc, 1, per)["total"] + (t - 1) * cfg.launch_cycles
        b["window"] = t * (w + 2) * (w // t + 2) * (cp // cfg.dw_pe)
        wb = t * tb.ddr_bytes_per_frame(tbc, 1, per)
        if layer.name.endswith(LN_INPUT):  # the LayerNorm before the window: a row per pixel read (halos included)
            row = layernorm_row_cycles(layer.in_channels, cfg.ln_lanes)
            b["layernorm"] = rd // in_words // layer.in_channels * row
            # per strip the window's first output waits for two rows and three pixels of the LayerNorm's
            b["unit"] += t * (2 * (w // t + 2) + 3) * row
    else:
        engine = "gemm"
        tbc = layer_config(cfg, unit, layer, gemm)
        b["unit"] = tb.schedule_cycles(tbc, 1, layer.vectors)["total"]
        wb = tb.ddr_bytes_per_frame(tbc, 1, layer.vectors)
        if layer.name.endswith(IMAGE_INPUT):  # the image window's rows (its RTL simulation's cycle model)
            from samfpga.hw.sim import image_window

            b["window"] = image_window.model_cycles(layer.in_width, layer.in_width, layer.in_channels, cfg.simd)
        if layer.name.endswith(LN_INPUT):  # a row per token, the RTL's cycles per row (IntLayerNorm)
            c = layer.in_channels
            rows, row = rd // in_words // c, layernorm_row_cycles(c, cfg.ln_lanes)
            b["layernorm"] = rows * row
            # the LayerNorm takes a row's input and sends its output in turn (layernorm_lanes.sv): the unit's first
            # batch waits for its rows (measured on the GEMM path: tests/test_sim_engine_gemm_path.py)
            b["unit"] += min(rows, tbc.batch) * row
    if res and res_lanes < cfg.pe:
        # the unit's last batch drains through the residual lanes, PE / lanes times slower than the unit sends it
        # (measured on the GEMM path: tests/test_sim_engine_gemm_path.py)
        b["unit"] += residual_drain(min(layer.vectors, tbc.batch), _pad(layer.mh, cfg.pe), res_lanes, cfg.pe)
    # AV on keys padded to a SIMD fold reads a run a token (engine_gemm_path.av_read), else whole tensors in order
    av_runs = layer.vectors if is_av(layer) and layer.mw % cfg.simd else 0
    b["reader"] = dma_cycles(rd, av_runs)
    if res:
        b["residual"] = math.ceil(res / PORT_BYTES)
        b["adder"] = math.ceil(res / res_lanes)
    # the qkv layer scatters each token's outputs to the Q / K / V regions, a run of a head's dims each
    # (engine_program._attention_regions); the other layers write whole tensors or pixels' channels in runs
    wr_runs = layer.vectors * layer.mh // head_dims(unit) if layer.name.endswith("attn.qkv") else 0
    b["writer"] = dma_cycles(wr, wr_runs)
    b["ddr"] = math.ceil((rd + res + wr + wb) / bpc)
    binding = max(b, key=b.get)
    return Step(layer.name, engine, layer.macs, launched(cfg, b[binding]), b, rd + res, wr, wb, binding)


def v_transpose_step(cfg: EngineConfig, unit: Unit, av: Layer, gemm: tb.TokenBatchConfig) -> Step:
    """The step before ``av`` (a block's AV product) that transposes V on the GEMM unit for AV's weight words
    as the GEMM path runs it (``attention_operands.transpose_raw_shape``): per window and head d one-hot input
    vectors against V's rows as weights, a raw frame whose sums (V's values) leave as their low bytes, a fold a beat,
    straight to the writer: V^T's rows into AV's image, the keys padded to whole PE folds dropped by the writer's pack
    (AV's weight rows past d are zeros written once, or written as zero rows by zero inputs); its MACs are not the
    model's (``macs`` 0). The one-hot inputs are counted as read from DDR."""
    t = unit.window * unit.window
    n, d = av.vectors // t, av.mh
    # d one-hot rows when V^T's rows have one affine place in AV's image (d within one fold of PE rows, or whole
    # folds), else AV's dims padded to whole folds (engine_gemm_path.vt_tokens)
    rows = d if d <= gemm.pe or d % gemm.pe == 0 else tb.whole_folds(d, gemm.pe)
    tbc = transpose_raw_shape(t, d, gemm, rows)
    b = {"unit": tb.schedule_cycles(tbc, n, rows)["total"]}
    rd, wr, wb = n * rows * tbc.mw, n * rows * t, tb.ddr_bytes_per_frame(tbc, n, rows)
    b["reader"] = math.ceil(rd / PORT_BYTES)
    b["writer"] = dma_cycles(wr, n * vt_runs(t, rows, cfg.simd, gemm.pe))
    b["ddr"] = math.ceil((rd + wr + wb) / ddr_bytes_per_cycle(cfg))
    binding = max(b, key=b.get)
    return Step(f"{av.name} (V transpose)", "attention", 0, launched(cfg, b[binding]), b, rd, wr, wb, binding)


def requant_step(cfg: EngineConfig, unit: Unit, block: int, first: Layer, gemm: tb.TokenBatchConfig,
                 res_lanes: int) -> Step:
    """The step before MBConv block ``block`` (> 0) of ``unit``: the quantized model re-quantises the previous block's
    ReLU output (UINT8) for this block's INT8 input, two roundings no one requantiser reproduces, so the program
    runs it on the GEMM unit with identity weights (``engine_program._Compiler._requant``): C -> C over the block's
    map (``first``: its first layer, a 1 x 1 conv). Its multiply-accumulates are the unit's, not the model's
    (engine ``requant``)."""
    c = first.in_channels
    layer = Layer(f"{unit.name}.{block}.requant", "linear", unit.name, block, c, c, first.vectors, c * c,
                  in_channels=c, out_elems=first.vectors * c)
    return replace(step_of(cfg, unit, layer, gemm, in_words=1, res_lanes=res_lanes), engine="requant")


def mbconv(unit: Unit) -> bool:
    """Whether ``unit`` is a stage of MBConv blocks (TinyViT's first: blocks without attention)."""
    parts = unit.name.split(".")
    return len(parts) == 3 and parts[0] == "layers" and parts[2] == "blocks" and unit.window == 0


def schedule(cfg: EngineConfig, units: list[Unit]) -> list[Step]:
    """Every layer of every block in execution order (each AV product preceded by its V transpose, each MBConv block
    after the first by its input's re-quantisation, ``requant_step``), plus the neck's closing LayerNorm as its own
    pass."""
    gemm = gemm_unit(cfg, units)
    steps = []
    words = 1  # bytes per value of the previous layer's output
    lanes = residual_lanes(cfg, units)
    for u in units:
        for j, blk in enumerate(u.blocks):
            if j and mbconv(u):
                steps.append(requant_step(cfg, u, j, blk[0], gemm, lanes))
            for x in blk:
                if is_av(x):
                    steps.append(v_transpose_step(cfg, u, x, gemm))
                steps.append(step_of(cfg, u, x, gemm, in_words=words, res_lanes=lanes))
                words = raw_words(cfg, x, gemm)
    last = units[-1]
    if last.name == "neck":
        steps.append(layernorm_step(cfg, "neck.3 (LayerNorm2d)", last.out_elems, last.layers[-1].mh,
                                    raw_words(cfg, last.layers[-1], gemm)))
    return steps


def layernorm_step(cfg: EngineConfig, name: str, elems: int, channels: int, in_words: int) -> Step:
    """A LayerNorm no GEMM follows on the path (cfg_nm_only): ``elems`` values of ``in_words`` bytes in rows of
    ``channels`` in, 8-bit outputs to DDR (the neck's closing LayerNorm)."""
    rd = elems * in_words
    b = {"layernorm": elems // channels * layernorm_row_cycles(channels, cfg.ln_lanes),
         "reader": math.ceil(rd / PORT_BYTES), "writer": math.ceil(elems / PORT_BYTES),
         "ddr": math.ceil((rd + elems) / ddr_bytes_per_cycle(cfg))}
    k = max(b, key=b.get)
    return Step(name, "layernorm", 0, launched(cfg, b[k]), b, rd, elems, 0, k)


# --- resources ------------------------------------------------------------------------------------------------

@cache
def layernorm_row_cycles(channels: int, lanes: int) -> int:
    """Cycles per row of ``channels`` (padded to ``lanes``) in the steady state of layernorm_lanes.sv (int_layernorm.sv
    PIPELINED: a row streams in while the previous one streams out, the statistics' 4 stages and the row's last beat
    bound a row at 5 cycles; measured in tests/test_sim_layernorm_lanes.py)."""
    return max(_pad(channels, lanes) // lanes, 5)


@cache
def _softmax(n: int, lanes: int) -> dict[str, float]:
    """int_softmax.sv (pipelined) over rows of ``n`` at ``lanes``, without its bias tables (``softmax_bias``): the
    own model corrected by its Yosys difference at the plan's 64 keys (``pricing.SOFTMAX_YOSYS``, a line in lanes)."""
    from samfpga.hw.custom_ops.int_cost import softmax_model

    m = softmax_model(_softmax_op(n, lanes, False), None)
    return {**m, **{k: m[k] + a + b * lanes for k, (a, b) in SOFTMAX_YOSYS.items()}}


@cache
def softmax_row_cycles(n: int, lanes: int) -> int:
    """Cycles the engine's softmax (int_softmax.sv pipelined) takes per row of ``n`` logits (padded to ``lanes``) in
    a run of rows: the op's own count (IntSoftmax.row_cycles: n / lanes, the RTL's measured rate, and one cycle
    priming the registered read of its bias table, as the RTL's whole-table path does)."""
    return _softmax_op(_pad(n, lanes), lanes, True).row_cycles()


@cache
def softmax_latency_cycles(n: int, lanes: int) -> int:
    """Cycles the engine's softmax adds to a step's run of rows (IntSoftmax.latency_cycles: the last row's
    exponent and output phases and the pipelined divider)."""
    return _softmax_op(_pad(n, lanes), lanes, True).latency_cycles()


def qk_layers(units: list[Unit]) -> list[tuple[Unit, Layer, int]]:
    """The QK^T product of each stage with attention (its first block's; the stage's blocks share its shape):
    (unit, layer, heads), heads = the layer's rows (windows x heads x t) over the windows' t tokens each."""
    return [(u, x, x.vectors // (u.grid * u.grid)) for u in units for x in u.blocks[0]
            if x.name.endswith("matmul_qk")]


def softmax_bias_bits() -> int:
    """Bits of a bias entry as int_softmax.sv stores it: BQ = round(B log2(e) 2^(G+P)) (samfpga.kernels.softmax)
    for |B| up to ``SOFTMAX_ATTRS['bias_max']`` at the engine's pre-shift P, plus the sign."""
    from samfpga.kernels.softmax import L2E

    a = SOFTMAX_ATTRS
    return int(round(a["bias_max"] * L2E * 2.0 ** (a["exp_frac_bits"] + a["pre_shift"]))).bit_length() + 1


def softmax_bias(cfg: EngineConfig, units: list[Unit]) -> dict[str, float]:
    """The bias tables the engine's softmax reads: every attention block's compact (head, |dy|, |dx|) table (heads x
    window^2 entries of ``softmax_bias_bits``) in block RAM as int_softmax.sv holds them with BIAS_RAM (a copy per
    two lanes, read through registers: ``int_cost.bias_ram_bram36``), RT_SET (the layer's parameter set from a
    register) and SET_HEADS (each layer's heads, the tables packed one after the other), and per lane the |dy|,
    |dx| index arithmetic and the set's base (tests/test_sim_int_ops.py runs such a softmax bit-exactly)."""
    from samfpga.hw.custom_ops.int_cost import SM_LUT_PER_OFFSET_BIT, bias_ram_bram36

    qk = qk_layers(units)
    entries = sum(len(u.blocks) * heads * u.window * u.window for u, _, heads in qk)  # a table per block
    side = max((u.window for u, _, _ in qk), default=1)
    sb = max(1, (side - 1).bit_length())
    # per lane the |dy|, |dx| index and the layer's base added to it
    lut = cfg.sm_lanes * (SM_LUT_PER_OFFSET_BIT * 2 * sb + max(1, (entries - 1).bit_length()))
    return {"LUT": float(lut), "BRAM36": bias_ram_bram36(entries, softmax_bias_bits(), cfg.sm_lanes)}


def softmax_feed(feed) -> dict[str, float]:
    """raw_rows.sv at ``feed`` (``samfpga.hw.sim.raw_rows.RawRowsConfig``), the unit's raw QK^T sums as the
    softmax's rows: two row registers of which synthesis keeps the N keys' OUT_BITS (the padded keys and the sums'
    upper bits are never read), about a LUT per kept bit (its write enable and its share of the (N/L):1 read
    select) and half a LUT per output bit, and the counters. Fitted to one Yosys run at the KV260 1024² engine's
    size (bench/raw_rows_synth.py: 2,832 LUT, 2,697 FF)."""
    kept = 2 * feed.n * feed.out_bits
    counters = 4 + max(1, (feed.nf * feed.k - 1).bit_length()) + max(1, (feed.n // feed.lanes - 1).bit_length())
    return {"LUT": float(kept + feed.lanes * feed.out_bits // 2), "FF": float(kept + counters)}


@cache
def _softmax_op(n: int, lanes: int, bias: bool):
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    import samfpga.hw.custom_ops  # noqa: F401

    a = SOFTMAX_ATTRS
    node = helper.make_node("IntSoftmax_rtl", ["x", "bias"] if bias else ["x"], ["y"],
                            domain="finn.custom_op.fpgadataflow.rtl",
                            backend="fpgadataflow", NumChannels=n, PE=lanes, mult=a["mult"], pipelined=1,
                            pre_shift=a["pre_shift"], out_num=a["out_num"], recip_bits=a["recip_bits"],
                            exp_frac_bits=a["exp_frac_bits"], exp_bits=a["exp_bits"], numInputVectors=[1],
                            inputDataType=f"INT{a['in_bits']}", outputDataType=f"UINT{a['out_bits']}")
    return getCustomOp(node)


def _place(depth: int, width: int, copies: int, board: Board, cfg: EngineConfig, style: str = ""
           ) -> tuple[str, dict[str, float]]:
    from samfpga.hw.resources.memory import place

    m = place(depth, width, style or _style(cfg, depth, width))
    return m.kind, {"LUT": m.LUT * copies, "BRAM36": m.BRAM36 * copies, "URAM": m.URAM * copies}


def _style(cfg: EngineConfig, depth: int, width: int) -> str:
    """A memory's style by the plan's rule: "ultra" where the board has URAM and it holds at least
    ``uram_min_bits``, else "auto"."""
    return "ultra" if cfg.get_board().uram and depth * width >= cfg.uram_min_bits else "auto"


def _res(**kw: float) -> dict[str, float]:
    return {r: float(kw.get(r, 0.0)) for r in RESOURCES}


def _add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {r: a.get(r, 0.0) + b.get(r, 0.0) for r in RESOURCES}


def layernorm_size(cfg: EngineConfig, units: list[Unit]) -> tuple[int, int]:
    """(channels, input bits) the engine's LayerNorm must take: its widest layer's channels (a conv's input
    channels, not its window's values) and the widest inputs (the neck's LayerNorms take its convs' raw sums,
    RAW_OUTPUT; the blocks' take 8 bits)."""
    layers = [x for u in units for x in u.blocks[0]]
    channels = max(x.in_channels or x.mw for x in layers if x.name.endswith(LN_INPUT))
    in_bits = max([LAYERNORM_ATTRS["in_bits"]]
                  + [acc_bits(x, cfg.w_bits) for x in layers if x.name.endswith(RAW_OUTPUT)])
    return _pad(channels, cfg.ln_lanes), in_bits


def dw_size(cfg: EngineConfig, units: list[Unit]) -> tuple[int, int]:
    """(columns, channels) the depthwise unit (dw_core.sv) must take: its widest padded strip (``dw_strip``
    columns or the narrower map's, plus the padding / halo column on each side) and its widest layer's channels (a
    window conv's as the window reads them, ``window_channels``)."""
    dws = [x for u in units for x in u.blocks[0] if x.kind == "dwconv"]
    wins = [x for u in units for x in u.blocks[0] if on_window(x)]
    cols = max(x.in_width // strip_tiles(cfg, x.in_width) + x.kernel - 1 for x in dws + wins)
    return cols, max([x.in_channels for x in dws] + [window_channels(cfg, x) for x in wins])


def dw_banks(cfg: EngineConfig, cols: int, channels: int) -> dict[str, float]:
    """The depthwise window's line buffer (dw_window.sv): 12 banks (4 row slots x 3 column phases) of
    ceil(cols / 3) x ceil(channels / dw_pe) words of dw_pe bytes, by the memory model."""
    return _place(dw_bank_depth(cfg, cols, channels), cfg.dw_pe * 8, 12, cfg.get_board(), cfg,
                  dw_bank_style(cfg, cols, channels))[1]


def dw_bank_depth(cfg: EngineConfig, cols: int, channels: int) -> int:
    """Words of ``dw_pe`` bytes per bank of the depthwise window (dw_window.sv's DEPTH) for ``cols`` x ``channels``:
    ceil(cols / 3) x ceil(channels / dw_pe)."""
    return -(-cols // 3) * -(-channels // cfg.dw_pe)


def dw_bank_style(cfg: EngineConfig, cols: int, channels: int) -> str:
    """The RAM style of the depthwise window's banks for ``cols`` x ``channels`` (``dw_size``), as the plan prices
    them and the generated design builds them (dw_window.sv RAM_STYLE, engine_gemm_path.sv DW_RAM_STYLE): "ultra" on a
    board with URAM where a bank holds at least ``uram_min_bits``, else "auto" (block RAM by the tool's choice)."""
    return _style(cfg, dw_bank_depth(cfg, cols, channels), cfg.dw_pe * 8)


def image_memories(w_max: int, channels: int = 3) -> dict[str, float]:
    """The image window's block RAMs (image_window.sv) by the memory model: its row memories T, M and B (4 + 2 + 2
    rows of a power of two of words of 2 pixels, for images up to ``w_max`` wide) and its tables (one of 256 bytes
    per pixel of a word and channel)."""
    from samfpga.hw.resources.memory import place

    words = 1 << max(w_max // 2 - 1, 1).bit_length()
    rows = sum(place(n * words, 16 * channels, "block").BRAM36 for n in (4, 2, 2))
    return _res(BRAM36=rows + 2 * channels * place(256, 8, "block").BRAM36)


def _gearbox(out: dict[str, dict], name: str, in_b: int, out_b: int, whole: bool) -> None:
    """Add a byte_gearbox.sv of ``in_b`` -> ``out_b`` bytes named ``name`` to the components ``out``; ``whole``: its
    input is a unit's, always whole beats (the path ties its tkeep high), not the reader's."""
    form = "whole beats, tkeep tied high" if whole else "the reader's beats, tkeep a port"
    out[f"byte gearbox, {name} ({in_b} -> {out_b} bytes)"] = {
        **_res(**byte_gearbox(in_b, out_b, whole)),
        "source": f"byte_gearbox.sv's Yosys fit (pricing.BYTE_GEARBOX), {form}"}


def components(cfg: EngineConfig, units: list[Unit]) -> dict[str, dict]:
    """Every part of the engine: {name: {LUT, FF, BRAM36, URAM, DSP, source}}."""
    board = cfg.get_board()
    layers = [x for u in units for x in u.blocks[0]]
    gemm = [x for x in layers if x.kind in ("conv", "linear")]
    mats = [x for x in layers if x.kind == "matmul"]
    dws = [x for x in layers if x.kind == "dwconv"]
    out: dict[str, dict] = {}
    tbc = gemm_unit(cfg, units)
    logic = token_batch_logic(tbc)
    k = cfg.unit_logic_scale
    out["gemm unit logic"] = {**_res(LUT=k * UNIT_YOSYS_RATIO["LUT"] * logic["LUT"],
                                     FF=k * UNIT_YOSYS_RATIO["FF"] * logic["FF"],
                                     DSP=logic["DSP"] + RT_SHAPE_DSP + (RAW_OUT_DSP if tbc.raw_out else 0)),
                              "source": "Yosys-fitted model (pricing.token_batch_logic) x its Yosys ratio at the "
                                        "engine's size (bench/results/engine_unit_synth.json), RT_SHAPE = 1"}
    for name, depth, width, copies in token_batch_memories(tbc):
        # the accumulator RAM is read asynchronously (token_batch_mvu.sv's AccRam): LUTRAM, as Yosys maps it
        kind, r = _place(depth, width, copies, board, cfg, "distributed" if name == "accumulators" else "")
        out[f"gemm {name} ({copies}x {depth}x{width}, {kind})"] = {
            **_res(**r), "source": "samfpga.hw.resources.memory"}
    images = [x for x in gemm if x.name.endswith(IMAGE_INPUT)]
    if images:  # the image's table and patches, its rows in block RAM; the reader's beats re-cut to 2 pixels
        w = max(x.in_width for x in images)
        out[f"image window (image_window.sv, images {w} wide, 3 channels)"] = {
            **_add(_res(**image_window(cfg.simd)), image_memories(w)),
            "source": "image_window.sv's Yosys line in its patch's beats of SIMD (pricing.IMAGE_WINDOW) + its row "
                      "memories and tables by samfpga.hw.resources.memory (equal to Yosys at 512 and 1024)"}
        _gearbox(out, "reader -> image window", cfg.simd, 8, True)
    if dws:
        cols, ch = dw_size(cfg, units)
        out[f"depthwise unit (dw_core.sv, strips of {cols} columns, {ch} channels)"] = {
            **_add(_res(**dw_core(cfg.dw_pe)), dw_banks(cfg, cols, ch)),
            "source": "dw_core.sv's Yosys line at dw_pe (pricing.DW_CORE: padding, window, taps, lanes) + its "
                      "window's 12 banks by samfpga.hw.resources.memory (equal to Yosys at vit_t's size)"}
        gearboxes = [("reader -> depthwise", cfg.simd, cfg.dw_pe, False),
                     ("depthwise -> writer", cfg.dw_pe, cfg.pe, True)]
        if any(on_window(x) for x in gemm):  # the window's taps to the unit, a LayerNorm's outputs to the window
            gearboxes += [("window -> unit", 9 * cfg.dw_pe, cfg.simd, True),
                          ("layernorm -> window", cfg.ln_lanes, cfg.dw_pe, True)]
        for name, i, o, whole in gearboxes:
            _gearbox(out, name, i, o, whole)
    ln_ch, ln_in = layernorm_size(cfg, units)
    out[f"layernorm + lanes ({ln_ch} channels, {ln_in}-bit inputs)"] = {
        **_res(**layernorm_lanes(cfg.ln_lanes)),
        "source": "layernorm_lanes.sv at ln_lanes (Yosys line at vit_t's size, pricing.LAYERNORM_LANES)"}
    # on the path (engine_gemm_path.sv) the LayerNorm's beats are re-cut: the reader's bytes and raw sums to its
    # lanes, its outputs to the unit's SIMD and (a LayerNorm no GEMM follows) to the writer's PE
    raw_b = math.ceil(ln_in / 8)
    for name, i, o, whole in (("reader -> layernorm", cfg.simd, cfg.ln_lanes, False),
                              ("reader -> layernorm, raw sums", cfg.simd, raw_b * cfg.ln_lanes, False),
                              ("layernorm -> unit", cfg.ln_lanes, cfg.simd, True),
                              ("layernorm -> writer", cfg.ln_lanes, cfg.pe, True)):
        _gearbox(out, name, i, o, whole)
    if mats:
        t = max(u.window * u.window for u in units if u.window)
        out["softmax"] = {**_res(**_softmax(_pad(t, cfg.sm_lanes), cfg.sm_lanes)),
                          "source": "own model (int_cost.softmax_model) corrected to Yosys at 64 keys "
                                    "(pricing.SOFTMAX_YOSYS), pipelined, without its bias tables"}
        from samfpga.hw.sim.raw_rows import RawRowsConfig

        unit, qk, _ = qk_layers(units)[0]
        gemm = gemm_unit(cfg, units)
        feed = RawRowsConfig.for_unit(layer_config(cfg, unit, qk, gemm), n=_pad(t, cfg.sm_lanes),
                                      lanes=cfg.sm_lanes, out_bits=acc_bits(qk, cfg.w_bits))
        out["softmax feed (raw_rows)"] = {**_res(**softmax_feed(feed)),
                                          "source": "own model (engine.softmax_feed), fitted to Yosys"}
        # the rows' bytes (the softmax's outputs, a V transpose's low bytes) re-cut to the writer's beats
        _gearbox(out, "rows -> writer", cfg.sm_lanes, cfg.pe, True)
        out["softmax bias tables"] = {**_res(**softmax_bias(cfg, units)),
                                      "source": f"own model (engine.softmax_bias): every block's table, "
                                                f"{softmax_bias_bits()}-bit entries, a BRAM copy per two lanes "
                                                f"(int_softmax.sv BIAS_RAM, RT_SET, SET_HEADS)"}
    from samfpga.hw.resources.models import add_streams_terms, terms_total

    lanes = residual_lanes(cfg, units)
    add = terms_total(add_streams_terms(lanes, 9), "AddStreams_rtl")
    out[f"residual adder ({lanes} lanes)"] = {**_res(**add), "source": "own model (add_streams_terms)"}
    # the residual sum (9 bits) is requantised to 8 before it is stored (engine_program's add_rq)
    out["residual requantisers"] = {**_res(**requant_lanes("residual", lanes)),
                                    "source": "requant_lanes.sv at the adder's lanes (Yosys line, "
                                              "pricing.REQUANT_LANES)"}
    if lanes < cfg.pe:  # the unit's PE bytes to the lanes, the lanes' bytes to the writer (the residual reader
        # emits the lanes' bytes itself)
        for name, i, o in (("unit -> residual lanes", cfg.pe, lanes), ("residual lanes -> writer", lanes, cfg.pe)):
            _gearbox(out, name, i, o, True)
    widths = {k: getattr(cfg, k) for k in ("pe", "simd", "dw_pe", "ln_lanes", "sm_lanes")}
    out["path glue (engine_gemm_path.sv: stream muxes, step control, row counter)"] = {
        **_res(**path_glue(widths)), "source": "Yosys plane in the stream widths, the parts shelled "
                                              "(pricing.PATH_GLUE, bench/results/engine_path_glue_synth.json)"}
    out["path registers (AXI-Lite, engine_gemm_path_axil.sv)"] = {
        **_res(**path_registers()), "source": "Yosys, the AXI-Lite top less the path (pricing.PATH_GLUE)"}
    out[f"counts at {ENGINE_CNT_BITS} bits (unit, lanes, LayerNorm, depthwise unit)"] = {
        **_res(**ENGINE_COUNTS), "source": "Yosys, each module at 16 and 20 bits (bench/results/engine_counts_synth.json)"}
    aligned = "_aligned" if dma_on_whole_beats(units, cfg.pe) else ""
    wr = "access_writer_aligned" if writes_on_whole_beats(units, cfg.pe) else "access_writer"
    # the parameter reader is aligned always: each parameter beat is stored in a port beat of its own
    # (engine_gemm_path.stored_params)
    for name, kind in (("reader", f"access_reader{aligned}"), ("residual reader", f"access_reader{aligned}"),
                       ("parameter reader", "access_reader_aligned"), ("writer", wr)):
        out[name] = {**_res(**DMA[kind]), "source": f"Yosys ({kind}, bench/results/dma_synth.json)"}
    # the writer takes port beats (engine_gemm_path.sv): the unit side's PE bytes, each token's padding dropped,
    # re-cut to them
    out[f"writer's pack (token_pack.sv, {cfg.pe} -> {PORT_BYTES} bytes)"] = {
        **_res(**token_pack(cfg.pe)), "source": "Yosys (pricing.TOKEN_PACK, bench/results/token_pack_synth.json)"}
    if aligned:  # the aligned readers emit port beats (engine_gemm_path.sv DMA_ALIGNED), re-cut to their consumers'
        _gearbox(out, "input reader -> unit", PORT_BYTES, cfg.simd, False)
        _gearbox(out, "residual reader -> lanes", PORT_BYTES, lanes, False)
    return out


def dma_on_whole_beats(units: list[Unit], pe: int | None = None) -> bool:
    """Whether every read and write of the engine's program moves whole beats of PORT_BYTES from and to beat-aligned
    tensors, so the access reader and writer need no realignment buffer (ALIGNED = 1). With ``pe``, also each
    residual read past its token (its channels padded to whole PE folds: ``engine_gemm_path.over_padding``) is whole
    beats. The program reads and writes
    the convolutional stages' maps (stem, MBConv, downsampling) and the image as whole tensors in stored order; in the
    attention stages it moves runs of whole pixels' channels (window partition, residuals, the depthwise conv's window rows from a
    stream-order store: ``engine_program``'s layouts) or of one head's (Q, K, V). So: the image's bytes, and every
    attention stage's channels and head width, multiples of the beat. tests/test_sim_access_reader.py checks the
    tiny build's compiled program against this rule."""
    first = units[0].layers[0]
    if (first.in_width ** 2 * first.in_channels) % PORT_BYTES:  # the image (square)
        return False
    for u in units:
        if not any(x.kind == "matmul" for x in u.layers):
            continue
        for x in u.layers:
            av = is_av(x)
            qk = x.kind == "matmul" and not av
            chans = ([] if qk else [x.mh]) + ([] if av else [x.in_channels])  # QK^T's keys and AV's probabilities
            if any(c % PORT_BYTES for c in chans):  # are rows of the softmax's, read in stored order
                return False
    if pe is not None:
        res = [x.mh for u in units for x in u.layers if x.name.endswith(RESIDUAL_OUTPUT) and ".blocks." in x.name]
        return all(m % PORT_BYTES == 0 and _pad(m, pe) % PORT_BYTES == 0 for m in res)
    return True


def writes_on_whole_beats(units: list[Unit], pe: int) -> bool:
    """Whether every write of the engine's program is on whole beats of PORT_BYTES, so its writer is built without a
    realignment buffer (WR_ALIGNED; ``engine_gemm_path.wr_aligned`` checks the program): ``dma_on_whole_beats``, and
    the first convolution's channels (on the image, it writes each pixel's outputs as a run into the map its
    3 x 3 consumer reads with its channels padded: ``engine_gemm_path.image_write``). The writer writes no
    padding (its pack drops the unit's padded outputs)."""
    return dma_on_whole_beats(units, pe) and units[0].layers[0].mh % PORT_BYTES == 0


def evaluate(cfg: EngineConfig, units: list[Unit] | None = None) -> EnginePlan:
    """Cycles, resources and fit of the engine ``cfg`` on its board."""
    from samfpga.hw.plan.planner import roofline

    units = units if units is not None else encoder_units(cfg)
    board = cfg.get_board()
    clock = cfg.clock()
    steps = schedule(cfg, units)
    comps = components(cfg, units)
    tot = dict.fromkeys(RESOURCES, 0.0)
    for c in comps.values():
        for r in RESOURCES:
            tot[r] += c[r]
    budget = board.budget()
    pressure = {r: (tot[r] / (cfg.limit * budget[r]) if budget[r] else (math.inf if tot[r] else 0.0))
                for r in RESOURCES}
    binding = max(pressure, key=pressure.get)
    cycles = sum(s.cycles for s in steps)
    fps = clock * 1e6 / cycles
    macs = sum(x.macs for u in units for x in u.layers)
    moved = sum(s.bytes_read + s.bytes_written + s.weight_bytes for s in steps)
    by_engine: dict[str, dict] = {}
    for s in steps:
        e = by_engine.setdefault(s.engine, {"steps": 0, "cycles": 0, "macs": 0, "binding": {}})
        e["steps"] += 1
        e["cycles"] += s.cycles
        e["macs"] += s.macs
        e["binding"][s.binding] = e["binding"].get(s.binding, 0) + 1
    rf = roofline(macs, board, clock, cfg.w_bits)
    return EnginePlan(
        config=plan_config(cfg), board=board.name,
        fits=all(p <= 1.0 for p in pressure.values()), fps=fps, cycles=cycles, clock_mhz=clock, steps=steps,
        components=comps, totals=tot, budget=budget, pressure=pressure, binding=binding,
        ddr={"bytes_per_frame": moved, "gb_per_s": moved * fps / 1e9, "peak_gb_per_s": DDR_GBPS[board.name][0],
             "efficiency": cfg.ddr_efficiency, "source": DDR_GBPS[board.name][1]},
        roofline={**rf, "fraction": fps / rf["fps"],
                  "mac_utilisation": macs / (cycles * cfg.pe * cfg.simd)},
        by_engine=by_engine, not_built=list(NOT_BUILT))


def plan_config(cfg: EngineConfig) -> dict:
    """``cfg``'s fields as the report records them; with an ``encoder_config`` its image size, and its shape in place
    of the variant's name (the variant's defaults are not what was planned)."""
    c = {k: v for k, v in asdict(cfg).items() if k != "encoder_config"}
    e = cfg.encoder_config
    if e is not None:
        c["image_size"] = e.img_size
        c["variant"] = (f"encoder (dims {list(e.embed_dims)}, depths {list(e.depths)}, heads {list(e.num_heads)}, "
                        f"windows {list(e.window_sizes)})")
    return c


NOT_BUILT = (
    "the attention of more than one window size a build: on the GEMM path QK^T, the V transpose and AV run "
    "bit-exactly (the qkv writer's Q / K / V regions: engine_program._attention_regions; raw_rows + the softmax "
    "on the unit's raw sums; V^T's rows written into AV's weight image: engine_gemm_path.attention_steps), also "
    "with keys and dims padded to PE folds, but the rows' keys and the softmax's N are build parameters",
    "the depthwise unit's strips of a map stored in an address pattern (a window-ordered store: the path launches "
    "a depthwise layer strip by strip, each strip's columns and halos read as rows of one run, bit-exact in RTL "
    "for maps stored in order; a strip of a window-ordered map would compose two patterns; the tiny program runs "
    "that layer as one strip)",
    "wider scales (20 bits in the unit, 25 in the lanes) are simulated, not priced (the plan keeps 18)",
    "the host's step sequencer on a board: the host side (samfpga.backends.engine_host / engine_driver, the build's "
    "host files, engine deployment packages) runs the GEMM path's steps through the path's AXI-Lite block in RTL "
    "simulation, bit-exact (bench/results/engine_gemm_path_sim.md), each step's registers written while the step "
    "before runs (the block latches them at a start: CFG_LATCH), but the time the board's ARM takes to write a "
    "step is not measured (launch_cycles is an assumption; it costs only where a step is shorter)",
    "the engine's bitstream: samfpga build-hw --engine writes the engine as one design (engine_gemm_path_axil.sv "
    "at the program's parameters in a Verilog wrapper, Verilator lint clean, also for vit_t's 101-step program at "
    "512²; the Vivado block design with the PS, its register block and its masters on four HP ports: "
    "samfpga.hw.engine.design; engine_gemm_path.sv runs every step of the tiny program DDR to DDR bit-exactly, also "
    "at side lanes narrower than the unit and with outputs padded to whole PE folds), but Vivado has not run it: no "
    "synthesis, timing or resource figures of the design as a whole",
    "the depthwise unit's strips in a generated program (a plan with dw_strip > 0: banks for strips, not whole "
    "maps): strip launches exist (engine_gemm_path.strip_configs, bit-exact in RTL) but the compiled program "
    "launches every depthwise layer and 3 x 3 conv whole, and a window step whose outputs are padded to PE folds "
    "has no strips",
    "AXI interconnect to the PS ports and the PS itself (not counted)",
)


@cache
def _units_cached(variant: str, image_size: int, window_sizes: tuple | None, activation: str | None) -> list[Unit]:
    from samfpga.hw.plan.layers import encoder_layers

    return encoder_layers(EngineConfig(variant=variant, image_size=image_size, window_sizes=window_sizes,
                                       activation=activation).tinyvit())


def encoder_units(cfg: EngineConfig) -> list[Unit]:
    """The encoder's layers (``samfpga.hw.plan.layers.encoder_layers``), cached per variant and size."""
    from samfpga.hw.plan.layers import encoder_layers

    if cfg.encoder_config is not None:
        return encoder_layers(cfg.encoder_config)
    return _units_cached(cfg.variant, cfg.image_size, cfg.window_sizes, cfg.activation)


#: what ``search`` tries
SEARCH = {"pe": (8, 16, 24, 32, 40, 48, 64, 96, 128), "simd": (16, 32, 64), "batch": (64, 128, 256), "dw_pe": (8, 16, 32),
          "ln_lanes": (2, 4, 8), "sm_lanes": (4, 8, 16, 32)}


def path_runs(cfg: EngineConfig, units: list[Unit]) -> bool:
    """Whether the GEMM path runs every step of the engine ``cfg`` (``engine_gemm_path.attention_steps``,
    ``with_lanes`` refuse the others): each head's dims one SIMD fold (QK^T; AV's keys padded to whole SIMD folds
    where they are not: ``engine_gemm_path.av_read``), the softmax's lanes at most PE (raw_rows.sv takes PE sums a
    cycle) and dividing the keys, the depthwise unit's channels a beat dividing every depthwise layer's channels."""
    qks = qk_layers(units)
    keys = [u.window * u.window for u, _, _ in qks]
    dws = [x.mh for u in units for x in u.layers if x.kind == "dwconv"]
    return (all(x.mw == cfg.simd for _, x, _ in qks)
            and cfg.sm_lanes <= cfg.pe and all(k % cfg.sm_lanes == 0 for k in keys)
            and all(c % cfg.dw_pe == 0 for c in dws))


def search(cfg: EngineConfig, space: dict[str, tuple[int, ...]] | None = None,
           units: list[Unit] | None = None) -> EnginePlan:
    """The fastest engine of ``space`` (default ``SEARCH``) whose steps the GEMM path runs (``path_runs``) that fits
    ``cfg.board`` within ``cfg.limit``; when none fits, the one with the lowest worst pressure. Other fields come from
    ``cfg``."""
    space = space or SEARCH
    units = units if units is not None else encoder_units(cfg)
    keys = list(space)
    best, best_key, n = None, None, 0
    for vals in itertools.product(*(space[k] for k in keys)):
        v = dict(zip(keys, vals, strict=True))
        pe, simd = v.get("pe", cfg.pe), v.get("simd", cfg.simd)
        if (cfg.dot == "pack" and pe % 2) or pe * simd * cfg.w_bits % cfg.axi_dw:
            continue  # not buildable (EngineConfig refuses it)
        c = replace(cfg, **v)
        if not path_runs(c, units):
            continue
        p = evaluate(c, units)
        n += 1
        worst = max(p.pressure.values())
        k = (0, -p.fps, worst) if p.fits else (1, worst, -p.fps)
        if best_key is None or k < best_key:
            best, best_key = p, k
    if best is None:
        raise ValueError("engine search: no engine in the space whose steps the GEMM path runs (path_runs: SIMD "
                         "each head's dims; softmax lanes at most PE, dividing the attention's keys; depthwise lanes "
                         "dividing its channels)")
    best.searched = n
    return best


# --- report ---------------------------------------------------------------------------------------------------

def markdown(p: EnginePlan, chart: str | None = None) -> str:
    c = p.config
    lines = [f"# Engine plan: {c['variant']} {c['image_size']}² on {p.board} (own model)", "",
             f"Engine: GEMM PE {c['pe']} x SIMD {c['simd']} ({c['dot']}), batch {c['batch']} tokens of up to "
             f"{c['mw_cap']} values, depthwise {c['dw_pe']} channels, LayerNorm {c['ln_lanes']} lanes, softmax "
             f"{c['sm_lanes']} lanes, {p.clock_mhz:g} MHz, step launch {c['launch_cycles']} cycles.", "",
             f"**{'Fits' if p.fits else 'Does not fit'}** within {c['limit']:.0%} of every resource "
             f"(binding: {p.binding} {p.pressure[p.binding]:.2f}x); **{p.fps:.3f} fps** ({p.cycles:,} cycles per "
             f"frame); DSP roofline {p.roofline['fps']:.2f} fps, reached {p.roofline['fraction']:.1%}; GEMM MAC "
             f"utilisation {p.roofline['mac_utilisation']:.1%}; DDR {p.ddr['bytes_per_frame'] / 1e6:.1f} MB per "
             f"frame = {p.ddr['gb_per_s']:.2f} GB/s of {p.ddr['peak_gb_per_s']:g} peak.", "",
             *([f"![resources per component]({chart})", ""] if chart else []),
             "| resource | used | budget | of budget | of the limit |", "|---|---|---|---|---|"]
    for r in RESOURCES:
        b = p.budget[r]
        lines.append(f"| {r} | {p.totals[r]:,.0f} | {b:,} | {p.totals[r] / b:.1%} | {p.pressure[r]:.2f}x |"
                     if b else f"| {r} | {p.totals[r]:,.0f} | 0 | - | - |")
    lines += ["", "| component | LUT | FF | BRAM36 | URAM | DSP | source |", "|---|---|---|---|---|---|---|"]
    for k, v in p.components.items():
        lines.append(f"| {k} | {v['LUT']:,.0f} | {v['FF']:,.0f} | {v['BRAM36']:g} | {v['URAM']:g} | "
                     f"{v['DSP']:,.0f} | {v['source']} |")
    lines += ["", "| engine | steps | cycles | share | MACs | bound by (steps) |", "|---|---|---|---|---|---|"]
    for k, v in p.by_engine.items():
        lines.append(f"| {k} | {v['steps']} | {v['cycles']:,} | {v['cycles'] / p.cycles:.1%} | {v['macs']:,} | "
                     f"{', '.join(f'{b} {n}' for b, n in sorted(v['binding'].items()))} |")
    lines += ["", "Not built (priced from the parts that are): " + "; ".join(p.not_built) + "."]
    return "\n".join(lines) + "\n"


def write(p: EnginePlan, out: str | Path) -> dict[str, str]:
    """report.json, report.md and report.png (resources per component against the board) of ``p`` in ``out``."""
    from samfpga.hw.build.chart import resource_chart

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "report.json", out / "report.md"
    c = p.config
    png = resource_chart({k: {r: v[r] for r in RESOURCES} for k, v in p.components.items()}, p.budget, c["limit"],
                         f"engine {c['variant']} {c['image_size']}² on {p.board}: {p.fps:.3f} fps, "
                         f"{'fits' if p.fits else 'does not fit'}", out / "report.png")
    d = p.to_dict()
    d["label"] = ("own model (samfpga.hw.plan.engine): layer shapes from samfpga.models TinyViT, cycles from "
                  "token_batch_mvu.schedule_cycles and port/DDR bounds, resources from the project's models; no "
                  "FINN build, no synthesis of the engine as a whole")
    js.write_text(json.dumps(d, indent=1, default=float) + "\n")
    md.write_text(markdown(p, png.name))
    return {"json": str(js), "md": str(md), "png": str(png)}
