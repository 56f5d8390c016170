"""Configuration of one FINN build: ``BuildConfig`` (what, for which board, which steps) and ``BuildOptions``
(documented switches of individual steps), like FINN's ``DataflowBuildConfig``.

The step names come from the one step list in ``samfpga.hw.build.steps`` (``PIPELINE``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from samfpga.hw.boards import Board, get_board
from samfpga.transforms import PIXEL_MEAN, PIXEL_STD


def strips_per_stage(roll_strips: int | tuple[int, ...], stages: list[str]) -> tuple[int, ...]:
    """``BuildOptions.roll_strips`` as one count per rolled stage (``stages``: their names, in graph order); a tuple
    of another length than the stages is refused, naming them."""
    if not isinstance(roll_strips, tuple):
        return (roll_strips,) * len(stages)
    if len(roll_strips) != len(stages):
        raise ValueError(f"roll_strips {roll_strips}: {len(roll_strips)} counts for {len(stages)} rolled stages "
                         f"({', '.join(stages) or 'none'}); give one count per stage, in graph order, or one count "
                         "for all")
    return roll_strips


@dataclass(frozen=True)
class BuildOptions:
    """Switches of individual steps; the defaults are the flow as documented in docs/hardware.md.

    streamline_extra:  run the project's ``StreamlineExtra`` after FINN's streamlining (float scales between
                       integer layers moved/absorbed exactly; hw/samfpga/hw/build/streamline_rules.py)
    channels_last:     sink the layout transposes around convs, residual joins and thresholds until they cancel
                       (``channels_last.ChannelsLast``): no whole-map shuffle buffers, channels-last thresholds
    streamline_plus:   also run FINN+'s ``StreamlinePlus`` after each Streamline (off: it did not terminate on the
                       encoder graphs here)
    fit_ladder_ratio:  ratio between consecutive cycle targets the fit search tabulates (``fit.build_table``); a
                       smaller ratio finds a finer optimum at the cost of more folding trials
    search_memory:     let the fit search also choose memory styles per layer (BRAM / LUTRAM / URAM) instead of
                       FINN's automatic placement
    mvau_wwidth_max:   FINN's SetFolding limit on an MVAU's weight bits per PE (SIMD x weight bits), as in FINN's
                       DataflowBuildConfig (36: SIMD <= 4 at INT8). It also bounds the foldings the fit prices for
                       the token-batched unit, whose weights come from DDR: 128 (SIMD 16) gave vit_t at 512² on the
                       ZCU104 20.3 fps at 171k LUT against 15.2 fps at 193k (bench/results/hw_estimates_rolled_512.md)
    int_ops:           integer LayerNorm / softmax RTL layers instead of FINN+'s float HLS layers (on by default).
                       A model quantized with ``QuantConfig(int_norm=True)`` (what ``samfpga build-hw`` exports
                       from a checkpoint) carries them as its own arithmetic: converted exactly, bit-exact
                       Brevitas -> QONNX -> FINN (tests/test_int_norm_chain.py). A float-LayerNorm QONNX model's
                       LayerNormalization / Softmax are replaced approximately (``samfpga.hw.build.int_ops``,
                       ``IntOpsConfig``; listed as ``int_ops.approximate`` in the build results); off keeps them float
    pixel_input:       the accelerator takes the resized uint8 image (NHWC): ``pixel_mean``/``pixel_std`` folded into
                       the input quantizer's thresholds, pad codes for SAM's zero padding
                       (``samfpga.hw.build.pixel_input``); off: the host sends the normalised float32 image
    pixel_mean, pixel_std: the normalisation folded (SAM's; a bundle with others is refused by ``samfpga deploy``)
    window_residual:   take each residual around windowed attention in window order: the window partition /
                       unpartition shuffles moved outside its fork and join (``window_residual.WindowOrderResidual``,
                       exact), so the skip FIFO holds about a window instead of pages of rows
    token_batch:       B > 0: MVAU + Requant pairs with constant weights may run on the project's token-batched
                       unit, their weights and parameters in DDR read once per B tokens
                       (``samfpga.hw.custom_ops.token_batch``; the build writes their DDR image,
                       ``ddr_weights.bin``): the fit search prices each pair both ways and chooses (without the fit
                       search: every pair); ``token_batch_layers`` imposes the unit on the MVAUs it names (only
                       those); 0 (default): weights on chip
    token_batch_dot:   the unit's dot products: "chain" (dot_chain.sv, default), "pack" (two per DSP48E2, even PE)
                       or "tree"
    roll:              build each repeated stage that one body serves as that body run once per block
                       (``samfpga.hw.build.rolling``): the fit search folds the blocks alike and counts the body once
                       with N x its cycles, its per-iteration parameters and its loop's DMA engines; a body layer on
                       the token-batched unit reads iteration i's weights at BASE + i x STRIDE in DDR. The report
                       counts the rolled graph; the build stops before ``hw_codegen`` (no HDL for rolled bodies yet)
    roll_verify:       with ``roll``: run the rolled graph against the unrolled one on a random input (FINN python
                       execution, tolerance 0) and fail the build when any value differs
    roll_strips:       with ``roll``: each rolled body built for this many column strips (``samfpga.hw.rolled.strips``;
                       the loop runs every block strip by strip, halo columns included): the fit search and the
                       report price the body at the widest strip's width (sliding windows, window shuffles, FIFOs a
                       strip wide), its cycles summed over the strips, and the DDR reads the halos add (loop buffer,
                       token-batched weights per pass). A body strips cannot cut (attention over a whole map, strips
                       that are not whole windows or do not divide the map) stays a map wide; ``rolled.strips`` in
                       the results says why. 1 (default): whole maps. A tuple gives each rolled stage its own
                       count, in graph order (one entry per stage that rolls; ``strips_per_stage``): narrow maps
                       pay for strips with halo columns (a 32-column map in 2 strips of whole 8-column windows
                       computes 48 columns), wide ones gain the most. Priced only: the rolled HDL, host.json and
                       driver run whole maps, so ``hw_codegen`` refuses a build with strips
    """

    streamline_extra: bool = True
    channels_last: bool = True
    streamline_plus: bool = False
    fit_ladder_ratio: float = 2.0
    search_memory: bool = True
    mvau_wwidth_max: int = 36
    int_ops: bool = True
    pixel_input: bool = True
    pixel_mean: tuple[float, float, float] = PIXEL_MEAN
    pixel_std: tuple[float, float, float] = PIXEL_STD
    window_residual: bool = True
    token_batch: int = 0
    token_batch_layers: tuple[str, ...] = ()
    token_batch_dot: str = "chain"
    roll: bool = False
    roll_verify: bool = True
    roll_strips: int | tuple[int, ...] = 1

    @property
    def strip_counts(self) -> tuple[int, ...]:
        """``roll_strips`` as a tuple (one count for every stage, or one per stage)."""
        return self.roll_strips if isinstance(self.roll_strips, tuple) else (self.roll_strips,)

    @property
    def strips(self) -> bool:
        """Whether any rolled body is built for more than one column strip."""
        return max(self.strip_counts) > 1

    def strips_per_stage(self, stages: list[str]) -> tuple[int, ...]:
        """``roll_strips`` as one count per rolled stage (``strips_per_stage``)."""
        return strips_per_stage(self.roll_strips, stages)

    def __post_init__(self) -> None:
        if not self.fit_ladder_ratio > 1.0:
            raise ValueError(f"fit_ladder_ratio must be > 1, got {self.fit_ladder_ratio}")
        if self.token_batch < 0:
            raise ValueError(f"token_batch must be >= 0 (0: weights on chip), got {self.token_batch}")
        if self.token_batch_dot not in ("chain", "pack", "tree"):
            raise ValueError(f"token_batch_dot must be chain, pack or tree, got {self.token_batch_dot!r}")
        counts = self.strip_counts
        if not counts or any(not isinstance(n, int) or n < 1 for n in counts):
            raise ValueError(f"roll_strips must be >= 1 (1: whole maps), or a non-empty tuple of such counts, one "
                             f"per rolled stage; got {self.roll_strips!r}")
        if self.strips and not self.roll:
            raise ValueError(f"roll_strips {self.roll_strips} needs roll (strips are of rolled bodies)")
        if self.mvau_wwidth_max < 1:
            raise ValueError(f"mvau_wwidth_max must be >= 1 (weight bits per PE), got {self.mvau_wwidth_max}")


@dataclass
class BuildConfig:
    """What to build and for which board.

    board:          board name from ``samfpga.hw.boards.BOARDS``
    output_dir:     build directory (intermediate/, hdl/, report.json, report.md, build.log, ...)
    target_fps:     upper limit of the throughput the fit search aims for (None: as fast as fits); with
                    ``fit=False`` FINN's own folding aims for it (default then 10 fps)
    folding_file:   FINN folding JSON applied instead of the fit search
    fit:            search the folding (PE/SIMD per layer, memory styles) for the highest throughput that fits
                    within ``fit_limit`` of every board resource (``samfpga.hw.build.fit``); False: FINN's
                    ``target_fps`` folding
    fit_limit:      fraction of each board resource the design may use
    clock_mhz:      overrides the board's default clock
    prefer_rtl:     ask specialisation for RTL implementations wherever FINN+ has them
    own_rtl:        apply samfpga.hw.custom_ops.UseOwnRTL (own AddStreams/DuplicateStreams RTL) on Zynq parts
    steps:          names of the steps to run, in order (subset of ``DEFAULT_STEPS``; None: all)
    options:        switches of individual steps (``BuildOptions``)
    """

    board: str
    output_dir: str
    target_fps: float | None = None
    folding_file: str | None = None
    fit: bool = True
    fit_limit: float = 0.85
    clock_mhz: float | None = None
    prefer_rtl: bool = True
    own_rtl: bool = True
    steps: tuple[str, ...] | None = None
    options: BuildOptions = field(default_factory=BuildOptions)

    def __post_init__(self) -> None:
        from samfpga.hw.build.steps import DEFAULT_STEPS

        get_board(self.board)  # one-line error for unknown boards
        if self.steps is None:
            self.steps = DEFAULT_STEPS
        self.steps = tuple(self.steps)
        unknown = [s for s in self.steps if s not in DEFAULT_STEPS]
        if unknown:
            raise ValueError(f"unknown build step(s) {unknown}; known steps: {', '.join(DEFAULT_STEPS)}")
        if self.target_fps is not None and not self.target_fps > 0:
            raise ValueError(f"target_fps must be > 0, got {self.target_fps}")
        if not 0 < self.fit_limit <= 1:
            raise ValueError(f"fit_limit must be in (0, 1], got {self.fit_limit}")
        if self.clock_mhz is not None and not self.clock_mhz > 0:
            raise ValueError(f"clock_mhz must be > 0, got {self.clock_mhz}")
        if self.folding_file is not None and not Path(self.folding_file).is_file():
            raise ValueError(f"folding file not found: {self.folding_file}")

    @property
    def board_spec(self) -> Board:
        return get_board(self.board)

    @property
    def clock(self) -> float:
        """Clock in MHz the estimates use."""
        return self.clock_mhz or self.board_spec.clock_mhz

    def to_dict(self) -> dict:
        d = asdict(self)
        d["steps"] = list(self.steps or ())
        return d
