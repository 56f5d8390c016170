"""Plan the encoder on a board: per unit unrolled or rolled, weights on chip or streamed, the folding of each body,
the on-chip memories, DDR traffic per frame, cycles per frame and fps (``plan(cfg)``; own model throughout).

Execution model (stated in every report):

* The encoder is a chain of units (stem, each stage's blocks, each patch merging, neck; ``layers.encoder_layers``).
  An **unrolled** unit is a FINN dataflow pipeline with one hardware layer per model layer: its time per frame is
  its slowest layer's cycles. A **rolled** unit has one hardware body (the layers of one block) that runs once per
  block: time = blocks x iteration, iteration = max(body's slowest layer, weight fetch of one block). A block's
  output is the next block's input, so this assumes enough maps interleaved in the loop (``loop_frames`` K >= the
  body's latency / interval) to keep the body streaming; with one map a block costs the body's latency (measured in
  RTL on the reduced encoder's body, bench/rolled_loop.py: 3.47 intervals at 64², one window, K = 4 reaches the
  interval; 1.45 at 256², 16 windows, K = 2 reaches it; docs/rolled_stage.md).
  ``rolled_resident`` keeps every block's weights on chip (no fetch); ``rolled_streamed`` fetches each block's
  weights from DDR into a double buffer while the previous block computes (2 buffers on chip, the fetch stalls
  the body only when it is slower than the block's compute). ``unrolled_batched`` / ``rolled_batched``: the
  conv/linear layers keep no weights on chip; they run ``token_batch`` tokens per pass over the weights, which
  stream from DDR once per batch (a double-buffered batch of input vectors, B x PE accumulators and two output
  banks of B x MH values on chip; with ``batch_output`` "act" the values are requantised inside the unit and each
  output fold's requantisation parameters stream with its weights, taking ``param_words`` cycles each). This is
  the project's own unit, hw/samfpga/hw/rtl/token_batch_mvu.sv (finn-rtllib's MVU replays weights per token),
  priced with the MVU's logic model and a separate requantiser's.
* Units work on successive frames at the same time (frame pipelining, as FINN's dataflow). A rolled unit reads its
  input from a ping-pong frame buffer (2 feature maps) and loops its output back through a loop buffer (1 feature
  map: the body writes block i's output behind where it reads block i's input). These buffers stay on chip when
  the memory left allows, else live in DDR: input buffer write + read per frame, loop buffer write + read per block
  after the first.
* Column strips (``strips`` > 1, ``samfpga.hw.plan.strips``): a unit may run its feature map as vertical strips
  one after the other, so its line and window buffers are a strip wide; every layer computes its halo columns too
  (more cycles, more weight passes) and the unit reads its input, halos included, from a frame buffer (so does the
  unit after a tiled one).
* DDR: every unit's fetches and spills share the board's bandwidth x ``ddr_efficiency``; the frame period is the
  slowest unit or the DDR time of the frame's traffic, whichever is longer. Input image and output embedding
  cross DDR once per frame.
* Fit: the sum of every layer's LUT/FF/DSP (project models), of every memory (weights, line buffers, window
  buffers, frame buffers on chip; ``samfpga.hw.resources.memory``) and of the LayerNorm/softmax allowances stays
  within ``limit`` of every board resource. Memories over 4 Kb go to URAM (largest first, while it fits), then BRAM.
  Memories over 4 Kb are packed into 72-bit words. The DMA engines of every buffer in DDR, the image's and the
  embedding's, and rolled_streamed weight fetches are counted at the Yosys figures of the project's strip reader /
  writer (``pricing.DMA``; since 2026-12-03). Not counted: stream FIFOs between layers, data-width converters and
  the loop control (the host's: docs/rolled_stage.md).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import math
from dataclasses import asdict, dataclass, field

from samfpga.hw.boards import RESOURCES, Board, get_board
from samfpga.hw.plan import pricing
from samfpga.hw.plan.layers import Layer, Unit
from samfpga.hw.plan.strips import Strips, allowed_tiles, read_bytes, unit_strips
from samfpga.hw.resources import memory as mem
from samfpga.hw.sim.token_batch_mvu import stream_cycles

MODES = ("unrolled", "rolled_resident", "rolled_streamed", "unrolled_batched", "rolled_batched")
#: searched by default (rolled_resident, which saves DSPs but no memory, on request: it multiplies the search by 4/3
#: per repeated unit and never won in the vit_t plans)
DEFAULT_MODES = ("unrolled", "rolled_streamed", "unrolled_batched", "rolled_batched")

#: LayerNorm / softmax per transformer block, per layer (own model allowance: the mean per layer of IntLayerNorm_rtl
#: / IntSoftmax_rtl in the 256x256 KV260 build, bench/results/hw_build_kv260_int_ops.json: 12 LN 8,090 LUT 2,204 FF
#: 60 DSP 6 BRAM36; 6 softmax 5,215 LUT 1,017 FF 25 DSP), not scaled with folding
ALLOWANCE = {
    "IntLayerNorm_rtl": {"LUT": 674.0, "FF": 184.0, "BRAM36": 0.5, "URAM": 0.0, "DSP": 5.0},
    "IntSoftmax_rtl": {"LUT": 869.0, "FF": 170.0, "BRAM36": 0.0, "URAM": 0.0, "DSP": 4.2},
}


@dataclass(frozen=True)
class PlanConfig:
    """What to plan. ``window_sizes``/``activation``: the hardware variant of the encoder the FINN flow builds
    (windows that divide the stage grids, relu; as bench/hw_estimates.py). ``w4_units``: units whose weights may be
    4 bit (W4A8; only where the accuracy cost was measured acceptable: none by default)."""

    board: str = "kv260"
    variant: str = "vit_t"
    image_size: int = 1024
    window_sizes: tuple[int, ...] | None = (8, 8, 8, 8)
    activation: str | None = "relu"
    limit: float = 0.85
    ddr_efficiency: float = 0.7
    w_bits: int = 8
    w4_units: tuple[str, ...] = ()
    clock_mhz: float | None = None
    modes: tuple[str, ...] = DEFAULT_MODES
    token_batch: int = 16  # tokens per weight pass of the *_batched modes (the plan's choice among token_batches)
    token_batches: tuple[int, ...] = (4, 8, 16, 32)  # searched by ``plan``
    #: what a token-batched layer's output banks hold (2 x B x MH values: the weights-outer schedule emits tokens in
    #: order through them): "act" values requantised inside the unit (token_batch_mvu.sv with RQ = 1: ACT_BITS
    #: each; the per-channel parameters stream from DDR ahead of each output fold and take their own cycles) or
    #: "acc" accumulators (RQ = 0, a separate requantiser after the unit)
    batch_output: str = "act"
    #: the dot-product datapaths a token-batched layer may use (token_batch_mvu.sv's DOT): "chain" (dot_chain.sv, one
    #: DSP per product) and "pack" (dot_pack.sv, two per DSP48E2 at even PE); per layer the cheaper at its folding
    dot_products: tuple[str, ...] = ("chain", "pack")
    #: column strips (samfpga.hw.plan.strips): each unit runs its feature map as up to ``strips`` vertical strips
    #: of >= ``min_strip`` output columns (whole windows in attention units), so that line and window buffers are
    #: a strip wide; the halo columns are computed and read again (counted). ``strips`` is the plan's choice among
    #: ``strip_choices`` (searched by ``plan``)
    strips: int = 1
    strip_choices: tuple[int, ...] = (1, 2, 4)
    min_strip: int = 32
    #: bytes per AXI beat of the DMA that reads frame and loop buffers and the image (strip_reader.sv's AXI_DW / 8:
    #: a 128-bit HP port); reads of segments that are not beat-aligned are rounded out to whole beats (counted)
    dma_beat_bytes: int = 16
    encoder_config: object | None = None  # a TinyViTConfig overriding variant/size/windows (tests, bundles)
    #: resources set aside for what the plan does not count (stream FIFOs, width converters, Requant / Thresholding
    #: outside the units, padding, adds: ((resource, amount), ...), e.g. as a FINN build of the design measured
    #: them, bench/plan_build_reserve.py), added to the totals of every configuration the search tries
    reserved: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for r, v in self.reserved:
            if r not in RESOURCES or not v >= 0:
                raise ValueError(f"reserved {r}={v}: a resource of {', '.join(RESOURCES)} and an amount >= 0")
        if self.batch_output not in ("act", "acc"):
            raise ValueError(f"batch_output {self.batch_output!r}: 'act' or 'acc'")
        if not self.dot_products or not set(self.dot_products) <= {"chain", "pack"}:
            raise ValueError(f"dot_products {self.dot_products!r}: one or both of 'chain', 'pack'")
        if self.strips < 1 or any(t < 1 for t in self.strip_choices) or self.min_strip < 1:
            raise ValueError(f"strips {self.strips}, strip_choices {self.strip_choices}, min_strip {self.min_strip}: "
                             "each must be >= 1")

    def tinyvit(self):
        from samfpga.hw.plan.layers import hardware_variant

        return self.encoder_config or hardware_variant(self.variant, self.image_size, self.window_sizes,
                                                       self.activation)


@dataclass
class LayerPlan:
    name: str
    unit: str
    op_type: str
    pe: int
    simd: int
    cycles: int  # per run of the layer (one block)
    runs: int  # runs per frame (blocks of a rolled body, 1 otherwise)
    macs: int  # per frame, all runs
    res: dict[str, float]
    source: str


@dataclass
class Memory:
    name: str
    unit: str
    kind: str  # weights | line_buffer | window_buffer | frame_buffer | loop_buffer | token_batch | ... | read_fifo
    depth: int
    width: int
    count: int
    placed: str = ""  # LUTRAM | BRAM | URAM | DDR
    res: dict[str, float] = field(default_factory=dict)
    read_factor: float = 1.0  # frame / loop buffers: AXI bytes read per pass over the map's bytes (strip halos, beats)
    write_factor: float = 1.0  # ... and AXI bytes written per pass over the map's bytes (whole beats)

    @property
    def bits(self) -> int:
        return self.depth * self.width * self.count


@dataclass
class UnitPlan:
    name: str
    mode: str
    blocks: int
    w_bits: int
    cycles: int  # per frame
    iteration: int  # body cycles per block (rolled) or the unit's cycles
    fetch_cycles: int  # DDR cycles of one block's weights (rolled_streamed), else 0
    stall_cycles: int  # per frame: blocks x max(0, fetch - compute)
    ddr_bytes: int
    macs: int
    strips: int = 1  # column strips the unit runs its feature map as
    halo_macs: int = 0  # MACs per frame spent on the strips' halo columns (beyond ``macs``)


@dataclass
class Plan:
    config: dict
    board: dict
    fits: bool
    period_cycles: int
    fps: float
    clock_mhz: float
    units: list[UnitPlan]
    layers: list[LayerPlan]
    memories: list[Memory]
    totals: dict[str, float]
    budget: dict[str, int]
    ddr: dict
    binds: list[str]
    roofline: dict
    searched: int

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


class _Folds:
    """Per layer shape the Pareto foldings (``pricing.priced_foldings``) with cycles ascending, for bisection."""

    def __init__(self, board: Board):
        self.board = board
        self.cache: dict = {}

    def get(self, layer: Layer, target: float, w_bits: int, unit: tuple | None = None):
        k = (layer.shape_key(), w_bits, unit)
        if k not in self.cache:
            fs = sorted(pricing.priced_foldings(layer, w_bits, self.board, unit), key=lambda x: x[0])
            self.cache[k] = ([f[0] for f in fs], fs)
        cyc, fs = self.cache[k]
        # the slowest (cheapest) folding with cycles <= target
        i = bisect.bisect_right(cyc, target) - 1
        return fs[i] if i >= 0 else None


def _op_type(layer: Layer) -> str:
    return {"dwconv": "DepthwiseVVAU_rtl", "matmul": "MVAU_rtl (dynamic)"}.get(layer.kind, "MVAU_rtl")


def _window_buffers(unit: Unit, band: int) -> list[tuple[int, int, int]]:
    """(depth, width, count) of the window partition and reverse buffers of one attention block (own model): each
    a double-buffered band of ``window`` rows of ``band`` columns (the grid, or a strip with its halo), 8 channels
    per 64-bit word."""
    if not unit.window:
        return []
    elems = unit.window * band * unit.channels
    return [(math.ceil(elems / 8), 64, 2), (math.ceil(elems / 8), 64, 2)]


def _evaluate(units: list[Unit], modes: tuple[str, ...], wbits: tuple[int, ...], period: float, board: Board,
              cfg: PlanConfig, folds: _Folds, bytes_per_cycle: float, clock: float, detail: bool = False):
    """Resources, memories, DDR and unit times of one configuration at frame ``period`` cycles; None (and the
    reason) when a layer or a weight fetch cannot meet it."""
    tot = dict.fromkeys(RESOURCES, 0.0)
    mems: list[Memory] = []
    layer_plans: list[LayerPlan] = []
    if cfg.reserved:
        reserved = {r: sum(v for k, v in cfg.reserved if k == r) for r in RESOURCES}
        for r in RESOURCES:
            tot[r] += reserved[r]
        if detail:
            layer_plans.append(LayerPlan("reserved", "-", "reserved", 0, 0, 0, 1, 0, reserved,
                                         "PlanConfig.reserved (what the plan does not count)"))
    unit_plans: list[UnitPlan] = []
    ddr = 0.0
    prev_tiles = 1
    for ui, (u, mode, wb) in enumerate(zip(units, modes, wbits, strict=True)):
        n = u.repeats
        rolled = mode.startswith("rolled")
        batched = mode.endswith("batched")
        hw = list(u.blocks[0]) if rolled else u.layers
        st = _strips(u, rolled, cfg)
        halo_macs = 0
        budget = period / n if rolled else period
        block_bytes = sum(x.weights for x in u.blocks[0]) * wb / 8
        fetch = block_bytes / bytes_per_cycle if mode == "rolled_streamed" else 0.0
        if fetch > budget:
            return None, f"{u.name}: one block's weights take {fetch:,.0f} DDR cycles, more than its {budget:,.0f}"
        body = 0
        batched_bytes = 0.0
        for x0, sl in zip(hw, st.layers, strict=True):
            # under strips a layer computes its halo columns too (more vectors) and its line buffer is a strip wide
            x = x0 if not st.tiled else dataclasses.replace(x0, vectors=math.ceil(x0.vectors * sl.factor),
                                                             in_width=sl.in_width)
            halo_macs += (x.macs - x0.macs) * (n if rolled else 1)
            streamed = batched and x.kind not in ("matmul", "dwconv")  # layers with weights, streamed per batch
            bt = min(cfg.token_batch, x.vectors)
            passes = math.ceil(x.vectors / bt)
            target = budget
            unit = (cfg.batch_output == "act", cfg.dma_beat_bytes * 8, cfg.dot_products) if streamed else None
            while True:
                f = folds.get(x, target, pricing.ACT_BITS if x.dynamic else wb, unit)
                if f is None:
                    return None, f"{u.name}: {x.name} cannot reach {budget:,.0f} cycles at any folding"
                c, pe, simd, dot = f
                if not streamed:
                    break
                # the unit as hw/samfpga/hw/rtl/token_batch_mvu.sv builds it (samfpga.hw.sim.token_batch_mvu): with
                # in-unit requantisation each pass also takes NF x param_words cycles of parameter words, no MACs;
                # when they break the budget the next faster folding is tried (so feasibility stays monotonic in
                # the period, which the bisection needs)
                tbc = pricing.token_batch_unit(x, pe, simd, wb, bt, *unit[:2], dot=dot)
                # parameter words, and passes whose weights need more beats of the unit's AXI port than their MAC
                # cycles (PE x SIMD x W / B bits per cycle above the port width)
                pcyc = stream_cycles(tbc, x.vectors)
                if c + pcyc <= budget:
                    c += pcyc
                    break
                target = c - 1
            p = pricing.price_token_batch(x, tbc, board) if streamed else pricing.price(x, pe, simd, wb, board)
            for r in RESOURCES:
                tot[r] += p.res[r]
            body = max(body, c)
            copies = n if mode == "rolled_resident" else 2 if mode == "rolled_streamed" else 1
            if streamed:
                # weights (and with "act" the requantisation parameters) stream from DDR once per batch of B
                # tokens: a double-buffered batch of B input vectors (B x MW activations), B x PE accumulators and
                # two output banks of B x MH values on chip; every weight word is used on B tokens
                # (and the AXI read-data FIFO: token_batch_mvu.sv's WFIFO_DEPTH beats, distributed RAM)
                kinds = {"output_banks": "output_bank"}
                for mname, depth, width, copies in pricing.token_batch_memories(tbc):
                    mems.append(Memory(f"{x.name}.{mname}", u.name, kinds.get(mname, mname), depth, width, copies))
                batched_bytes += (n if rolled else 1) * tbc.pass_bytes * passes  # whole beats, as the unit reads
            elif p.weight_mem[0]:
                mems.append(Memory(f"{x.name}.weights", u.name, "weights", p.weight_mem[0], p.weight_mem[1], copies))
            for bname, d, w in p.buffers:
                mems.append(Memory(f"{x.name}.{bname}", u.name, "line_buffer", d, w, 1))
            if st.tiled and x.kernel > 1:
                # a padded k x k convolution on column strips gets its zero padding from strip_pad.sv (on the image
                # edge sides of each strip only, at run time), not from FINN's compile-time FMPadding
                sp_res = pricing.strip_pad(simd * pricing.ACT_BITS)
                for r in RESOURCES:
                    tot[r] += sp_res[r]
                if detail:
                    layer_plans.append(LayerPlan(f"{x.name}.strip_pad", u.name, "strip_pad", 0, simd, 0, 1, 0,
                                                 sp_res, "Yosys fit (own RTL, bench/results/strip_pad_synth.json)"))
            if detail:
                runs = n if rolled else 1
                layer_plans.append(LayerPlan(x.name, u.name, "token_batch_mvu" if streamed else _op_type(x), pe,
                                             simd, c, runs, x0.macs * runs,
                                             dict(p.res), p.source))
        attn_blocks = 1 if rolled else n
        if u.window:
            for k, (d, w, cnt) in enumerate(_window_buffers(u, st.band)):
                for b in range(attn_blocks):
                    mems.append(Memory(f"{u.name}.{b}.window_{'partition' if k == 0 else 'reverse'}", u.name,
                                       "window_buffer", d, w, cnt))
            for op, per in (("IntLayerNorm_rtl", 2), ("IntSoftmax_rtl", 1)):
                for r in RESOURCES:
                    tot[r] += attn_blocks * per * ALLOWANCE[op][r]
                if detail:
                    layer_plans.append(LayerPlan(f"{u.name}.{op}", u.name, op, 0, 0, 0, n, 0,
                                                 {r: attn_blocks * per * ALLOWANCE[op][r] for r in RESOURCES},
                                                 "own model (allowance: 256x256 build's mean per layer)"))
        iteration = max(body, math.ceil(fetch))
        ucycles = n * iteration if rolled else body
        udd = n * block_bytes if mode == "rolled_streamed" else batched_bytes
        ddr += udd
        # a rolled unit reads its input from a frame buffer; so does a unit in strips, or after one (its producer
        # writes strips, not the raster order a stream would need); the first unit reads the image from DDR
        if ui > 0 and (rolled or st.tiled or prev_tiles > 1):
            # written by the previous unit in its strips (strip_writer.sv: no halo), read in this unit's
            mems.append(Memory(f"{u.name}.frame_buffer", u.name, "frame_buffer", math.ceil(u.in_elems / 8), 64, 2,
                               read_factor=_read_factor(st, u.in_elems, cfg),
                               write_factor=_dma_factor(st.in_width, u.in_elems, prev_tiles, 0, cfg)))
        if rolled:
            mems.append(Memory(f"{u.name}.loop_buffer", u.name, "loop_buffer", math.ceil(u.out_elems / 8), 64, 1,
                               read_factor=_read_factor(st, u.out_elems, cfg),
                               write_factor=_dma_factor(st.in_width, u.out_elems, st.tiles, 0, cfg)))
        prev_tiles = st.tiles
        unit_plans.append(UnitPlan(u.name, mode, n, wb, ucycles, iteration, math.ceil(fetch),
                                   n * max(0, math.ceil(fetch) - body), int(udd), u.macs, st.tiles, int(halo_macs)))
    # frame I/O through DDR: the image in (3 x S x S bytes, its halo columns read again under strips) and the
    # embedding out
    io_bytes = units[0].in_elems * _read_factor(_strips(units[0], modes[0].startswith("rolled"), cfg),
                                                units[0].in_elems, cfg) \
        + units[-1].out_elems
    ddr += io_bytes
    ok, extra_ddr = _place(mems, tot, board, cfg.limit, units)
    ddr += extra_ddr
    # the DMA engines of what lives in DDR (priced after placement, which decides what spills); they can break a fit
    for name, unit, engine in _dma_engines(units, modes, mems, cfg.dma_beat_bytes):
        for r in RESOURCES:
            tot[r] += pricing.DMA[engine][r]
        if detail:
            layer_plans.append(LayerPlan(name, unit, engine, 0, 0, 0, 1, 0, dict(pricing.DMA[engine]),
                                         "Yosys (own RTL at 128-bit AXI, bench/results/dma_synth.json)"))
    cap = board.budget()
    ok = ok and all(tot[r] <= cfg.limit * cap[r] for r in RESOURCES)
    ddr_cycles = ddr / bytes_per_cycle
    slow = max(up.cycles for up in unit_plans)
    res = {"totals": tot, "memories": mems, "units": unit_plans, "layers": layer_plans, "ddr_bytes": ddr,
           "ddr_cycles": ddr_cycles, "io_bytes": io_bytes, "spill_bytes": extra_ddr, "slowest_unit": slow,
           "fits": ok}
    if not ok:
        return res, "resources"
    if ddr_cycles > period:
        return res, f"DDR: {ddr / 1e6:,.1f} MB per frame take {ddr_cycles:,.0f} cycles, more than {period:,.0f}"
    return res, None


def _dma_engines(units: list[Unit], modes: tuple[str, ...], mems: list[Memory], beat: int
                 ) -> list[tuple[str, str, str]]:
    """(name, unit, engine) of every strip DMA engine the configuration needs: the image's reader and the
    embedding's writer; a reader for a unit whose frame or loop buffer is in DDR (one engine serves both: block 0
    reads the frame buffer, the later blocks the loop buffer, at another base); a writer for a unit whose loop buffer
    or whose successor's frame buffer is in DDR; a weight fetch per rolled_streamed unit (a reader of whole beats).
    An engine is the ALIGNED build (``pricing.DMA``'s ``*_aligned``) where the maps it moves have channels that fill
    whole ``beat``-byte beats (every vit_t unit: 64 to 320 channels), else the realigning one (the 3-channel image)."""
    in_ddr = {(m.unit, m.kind) for m in mems if m.placed == "DDR"}

    def engine(kind: str, *channels: int) -> str:
        return f"strip_{kind}_aligned" if all(c and c % beat == 0 for c in channels) else f"strip_{kind}"

    out = [(f"{units[0].name}.image_dma", units[0].name, engine("reader", 3)),
           (f"{units[-1].name}.embedding_dma", units[-1].name, engine("writer", units[-1].channels))]
    for i, (u, mode) in enumerate(zip(units, modes, strict=True)):
        c_in = units[i - 1].channels if i else 3
        if (u.name, "frame_buffer") in in_ddr or (u.name, "loop_buffer") in in_ddr:
            out.append((f"{u.name}.input_dma", u.name, engine("reader", c_in, u.channels)))
        nxt = units[i + 1].name if i + 1 < len(units) else None
        if (u.name, "loop_buffer") in in_ddr or (nxt, "frame_buffer") in in_ddr:
            out.append((f"{u.name}.output_dma", u.name, engine("writer", u.channels)))
        if mode == "rolled_streamed":
            out.append((f"{u.name}.weight_fetch", u.name, "strip_reader_aligned"))
    return out


def _place(mems: list[Memory], tot: dict[str, float], board: Board, limit: float, units: list[Unit]):
    """Place memories (LUTRAM when small, else URAM largest first while it fits, else BRAM); frame and loop
    buffers go on chip only when they still fit, else to DDR. Adds to ``tot``; returns (fits, DDR bytes of the
    spilled buffers)."""
    budget = board.budget()
    cap = {r: limit * budget[r] for r in RESOURCES}
    fixed = [m for m in mems if m.kind not in ("frame_buffer", "loop_buffer")]
    fms = [m for m in mems if m.kind in ("frame_buffer", "loop_buffer")]
    for m in fixed:
        if m.depth <= mem.AUTO_LUTRAM_DEPTH or m.depth * m.width <= mem.AUTO_LUTRAM_BITS:
            m.placed, m.res = "LUTRAM", {"LUT": m.count * mem.lutram(m.depth, m.width)}
            tot["LUT"] += m.res["LUT"]
    big = sorted((m for m in fixed if not m.placed), key=lambda m: -m.bits)
    for m in big:
        # packed into 72-bit words (a narrow memory reads one wide word and serves it over several cycles)
        words = math.ceil(m.depth * m.width / 72)
        u = m.count * mem.uram(words, 72)
        b = m.count * mem.bram36(words, 72)
        # URAM (288 Kb, 8 BRAM36's worth) when it is at least 2/3 filled, and fits
        if budget["URAM"] and tot["URAM"] + u <= cap["URAM"] and u * 8 <= b * 1.5 + 8:
            m.placed, m.res = "URAM", {"URAM": u}
        else:
            m.placed, m.res = "BRAM", {"BRAM36": b}
        for r, v in m.res.items():
            tot[r] += v
    fits = all(tot[r] <= cap[r] for r in RESOURCES)
    spilled = 0.0
    by_unit = {u.name: u for u in units}
    for m in sorted(fms, key=lambda m: m.bits):
        words = math.ceil(m.depth * m.width / 72)
        u = m.count * mem.uram(words, 72)
        b = m.count * mem.bram36(words, 72)
        if fits and budget["URAM"] and tot["URAM"] + u <= cap["URAM"]:
            m.placed, m.res = "URAM", {"URAM": u}
        elif fits and tot["BRAM36"] + b <= cap["BRAM36"]:
            m.placed, m.res = "BRAM", {"BRAM36": b}
        else:
            m.placed, m.res = "DDR", {}
            fm_bytes = m.depth * m.width / 8  # one feature map
            n = by_unit[m.unit].repeats
            # frame buffer: written once, read once per frame; loop buffer: written and read per block after the
            # first; reads with the strips' halo columns
            spilled += (m.write_factor + m.read_factor) * fm_bytes * (1 if m.kind == "frame_buffer" else n - 1)
        for r, v in m.res.items():
            tot[r] += v
    return fits, spilled


def _dma_factor(w: int, elems: int, tiles: int, halo: int, cfg: PlanConfig) -> float:
    """AXI bytes moved per pass over a square map of ``elems`` 8-bit values, ``w`` columns wide, in ``tiles`` strips
    with ``halo`` columns (``strips.read_bytes``: whole beats; the strip writer's are the same segments, halo 0),
    over ``elems``."""
    c = elems // (w * w) if w else 0
    if c * w * w != elems:  # not a square map (a token sequence): moved whole, as one run of beats
        if tiles > 1:
            raise ValueError(f"a map of {elems} values is not {w} x {w} x C, so it cannot be moved in strips")
        return math.ceil(elems / cfg.dma_beat_bytes) * cfg.dma_beat_bytes / elems
    return read_bytes(w, w, c, tiles, halo, cfg.dma_beat_bytes) / elems


def _read_factor(st: Strips, elems: int, cfg: PlanConfig) -> float:
    """A unit's input (``st.in_width`` columns) read in its strips with their halo: ``_dma_factor``."""
    return _dma_factor(st.in_width, elems, st.tiles, st.in_halo, cfg)


def _strips(unit: Unit, rolled: bool, cfg: PlanConfig) -> Strips:
    """The unit's strips under ``cfg`` (its hardware layers: one block's for a rolled body, all unrolled)."""
    return _strips_cached(unit, rolled, allowed_tiles(unit, cfg.strips, cfg.min_strip))


@functools.cache
def _strips_cached(unit: Unit, rolled: bool, tiles: int) -> Strips:
    return unit_strips(unit, list(unit.blocks[0]) if rolled else unit.layers, tiles)


def roofline(macs: int, board: Board, clock: float, w_bits: int = 8) -> dict:
    """The DSP roofline at ``w_bits``-bit weights and 8-bit activations (``Board.macs_per_dsp``)."""
    k = board.macs_per_dsp(w_bits)
    peak = board.dsp * k * clock * 1e6
    return {"encoder_macs": macs, "dsp": board.dsp, "macs_per_dsp": k, "clock_mhz": clock,
            "peak_macs_per_s": peak, "fps": peak / macs,
            "basis": f"{board.dsp} {board.dsp_kind} x {k} MAC (W{w_bits}A8) x {clock:g} MHz"}


def plan(cfg: PlanConfig, units: list[Unit] | None = None) -> Plan:
    """The fastest configuration that fits ``cfg.board`` (see the module docstring) over ``cfg.token_batches``, or
    when none does, the smallest one and what binds."""
    from samfpga.hw.plan.layers import encoder_layers

    units = units if units is not None else encoder_layers(cfg.tinyvit())
    best = None
    for t, b in itertools.product(cfg.strip_choices, cfg.token_batches):
        p = _plan_one(dataclasses.replace(cfg, token_batch=b, strips=t), units)
        cap = {r: cfg.limit * p.budget[r] for r in RESOURCES}
        worst = max(p.totals[r] / cap[r] if cap[r] else (math.inf if p.totals[r] else 0.0) for r in RESOURCES)
        key = (not p.fits, -p.fps if p.fits else worst)
        if best is None or key < best[0]:
            best = (key, p)
    return best[1]


def _plan_one(cfg: PlanConfig, units: list[Unit]) -> Plan:
    board = get_board(cfg.board)
    clock = cfg.clock_mhz or board.clock_mhz
    gbps, ddr_src = pricing.DDR_GBPS[board.name]
    bpc = gbps * 1e9 * cfg.ddr_efficiency / (clock * 1e6)
    folds = _Folds(board)
    choices = []
    for u in units:
        # units with repeated identical blocks: unrolled or one of the rolled modes; other units: unrolled with
        # weights on chip or streamed in token batches
        rep = u.repeats > 1 and u.identical
        ms = [m for m in cfg.modes if (m == "unrolled" or m.startswith("rolled")) if rep] if rep else \
            [m for m in cfg.modes if m.startswith("unrolled")]
        if not ms:
            ms = ["unrolled"]
        ws = [cfg.w_bits] + ([4] if u.name in cfg.w4_units and cfg.w_bits != 4 else [])
        choices.append([(m, w) for m in ms for w in ws])
    macs = sum(u.macs for u in units)
    hi = float(max(x.macs for u in units for x in u.layers)) * 4  # every layer at PE = SIMD = 1 is below this
    best = None
    searched = 0
    for combo in itertools.product(*choices):
        modes = tuple(c[0] for c in combo)
        wbits = tuple(c[1] for c in combo)
        searched += 1

        def ok(p: float, modes=modes, wbits=wbits) -> bool:
            r, why = _evaluate(units, modes, wbits, p, board, cfg, folds, bpc, clock)
            return why is None

        if best is not None and not ok(best[0] * 0.999):
            continue  # cannot beat the best found so far
        if not ok(hi):
            continue
        lo_p, hi_p = 1.0, hi
        for _ in range(60):
            if hi_p / lo_p < 1.002:
                break
            mid = math.sqrt(lo_p * hi_p)
            if ok(mid):
                hi_p = mid
            else:
                lo_p = mid
        if best is None or hi_p < best[0]:
            best = (hi_p, modes, wbits)
    if best is None:
        return _no_fit(cfg, units, board, clock, bpc, folds, choices, macs, searched, gbps, ddr_src)
    period, modes, wbits = best
    r, _ = _evaluate(units, modes, wbits, period, board, cfg, folds, bpc, clock, detail=True)
    cycles = math.ceil(max(r["slowest_unit"], r["ddr_cycles"]))
    binds = _binds(units, modes, wbits, period, board, cfg, folds, bpc, clock, r)
    return _make(cfg, board, True, cycles, clock, r, modes, macs, searched, binds, gbps, ddr_src, bpc)


def _binds(units, modes, wbits, period, board, cfg, folds, bpc, clock, r) -> list[str]:
    """What stops the plan from going faster: evaluate 3% faster and name the failure."""
    faster, why = _evaluate(units, modes, wbits, period * 0.97, board, cfg, folds, bpc, clock)
    out = []
    if why == "resources" and faster is not None:
        cap = {x: cfg.limit * board.budget()[x] for x in RESOURCES}
        over = {x: faster["totals"][x] / cap[x] for x in RESOURCES if cap[x] and faster["totals"][x] > cap[x]}
        for x, v in sorted(over.items(), key=lambda kv: -kv[1]):
            out.append(f"{x}: 3% faster needs {faster['totals'][x]:,.0f} ({v:.2f}x the {100 * cfg.limit:.0f}% "
                       f"budget of {cap[x]:,.0f})")
    elif why:
        out.append(why)
    if r["ddr_cycles"] >= 0.97 * r["slowest_unit"]:
        out.append(f"DDR bandwidth: {r['ddr_bytes'] / 1e6:,.1f} MB per frame = {r['ddr_cycles']:,.0f} cycles at "
                   f"{cfg.ddr_efficiency:.0%} efficiency")
    return out or ["(none found 3% faster)"]


def _no_fit(cfg, units, board, clock, bpc, folds, choices, macs, searched, gbps, ddr_src) -> Plan:
    """Nothing fits: the configuration with the lowest worst resource pressure at the slowest folding."""
    hi = float(max(x.macs for u in units for x in u.layers)) * 4
    best = None
    cap = {x: cfg.limit * board.budget()[x] for x in RESOURCES}
    for combo in itertools.product(*choices):
        modes, wbits = tuple(c[0] for c in combo), tuple(c[1] for c in combo)
        r, why = _evaluate(units, modes, wbits, hi, board, cfg, folds, bpc, clock, detail=True)
        if r is None:
            continue
        p = {x: (r["totals"][x] / cap[x] if cap[x] else (math.inf if r["totals"][x] else 0.0)) for x in RESOURCES}
        worst = max(p.values())
        if best is None or worst < best[0]:
            best = (worst, modes, r, p)
    worst, modes, r, p = best
    over = sorted((x for x in RESOURCES if p[x] > 1.0), key=lambda x: -p[x])
    binds = [f"{x}: {r['totals'][x]:,.0f} needed at the slowest folding, "
             + ("the board has none" if not cap[x] else f"{p[x]:.2f}x the {100 * cfg.limit:.0f}% budget "
                                                         f"({cap[x]:,.0f})") for x in over]
    cycles = math.ceil(max(r["slowest_unit"], r["ddr_cycles"]))
    return _make(cfg, board, False, cycles, clock, r, modes, macs, searched, binds, gbps, ddr_src, bpc)


def _make(cfg, board, fits, cycles, clock, r, modes, macs, searched, binds, gbps, ddr_src, bpc) -> Plan:
    c = asdict(cfg)
    c.pop("encoder_config", None)
    ddr = {"peak_gbps": gbps, "source": ddr_src, "efficiency": cfg.ddr_efficiency,
           "bytes_per_cycle": bpc, "bytes_per_frame": r["ddr_bytes"], "cycles_per_frame": r["ddr_cycles"],
           "weights_bytes": sum(u.ddr_bytes for u in r["units"]), "spill_bytes": r["spill_bytes"],
           "io_bytes": r["io_bytes"],
           "gbps_at_plan_fps": r["ddr_bytes"] * clock * 1e6 / cycles / 1e9,
           "utilization": r["ddr_bytes"] * clock * 1e6 / cycles / (gbps * 1e9)}
    return Plan(config=c, board=board.to_dict(), fits=fits, period_cycles=cycles, fps=clock * 1e6 / cycles,
                clock_mhz=clock, units=r["units"], layers=r["layers"], memories=r["memories"], totals=r["totals"],
                budget=board.budget(), ddr=ddr, binds=binds, roofline=roofline(macs, board, clock, cfg.w_bits),
                searched=searched)
