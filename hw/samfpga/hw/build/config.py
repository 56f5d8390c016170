"""Configuration of one FINN build (one dataclass, like FINN's DataflowBuildConfig)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from samfpga.hw.boards import Board, get_board

#: Steps that run on this machine (no Vivado), in order.
SOFTWARE_STEPS = (
    "qonnx_to_finn",
    "tidy_up",
    "streamline",
    "convert_to_hw",
    "minimize_bit_width_initial",
    "partition",
    "specialize",
    "fold",
    "minimize_bit_width",
    "transpose_decomposition",
    "estimates",
    "hw_codegen",
)
#: Steps that need Vivado / Vitis HLS; the build stops before them, with a message, when Vivado is missing.
VIVADO_STEPS = ("hls_ipgen", "fifo_sizing", "stitched_ip", "synth", "bitfile", "deployment")
DEFAULT_STEPS = SOFTWARE_STEPS + VIVADO_STEPS


@dataclass
class BuildConfig:
    """What to build and for which board.

    board:          board name from ``samfpga.hw.boards.BOARDS``
    output_dir:     build directory (intermediate/, hdl/, report.json, report.md, ...)
    target_fps:     frames per second FINN's folding aims for (ignored when ``folding_file`` is given)
    folding_file:   FINN folding JSON applied instead of target_fps
    clock_mhz:      overrides the board's default clock
    prefer_rtl:     ask specialisation for RTL implementations wherever FINN+ has them
    own_rtl:        apply samfpga.hw.custom_ops.UseOwnRTL (own AddStreams/DuplicateStreams RTL) on Zynq parts
    partition_limit: fraction of each board resource one partition may use when the report splits the graph
    steps:          names of the steps to run, in order (subset of DEFAULT_STEPS)
    """

    board: str
    output_dir: str
    target_fps: float = 10.0
    folding_file: str | None = None
    clock_mhz: float | None = None
    prefer_rtl: bool = True
    own_rtl: bool = True
    partition_limit: float = 0.85
    steps: tuple[str, ...] = DEFAULT_STEPS
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_board(self.board)  # one-line error for unknown boards
        unknown = [s for s in self.steps if s not in DEFAULT_STEPS]
        if unknown:
            raise ValueError(f"unknown build step(s) {unknown}; known steps: {', '.join(DEFAULT_STEPS)}")
        if self.target_fps <= 0:
            raise ValueError(f"target_fps must be > 0, got {self.target_fps}")
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
        d["steps"] = list(self.steps)
        return d
