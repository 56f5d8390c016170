"""The state one build's steps share: the config, the output directory and the typed results the steps produce
(what ``report.build_report`` reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from samfpga.hw.build.config import BuildConfig
    from samfpga.hw.build.fit import FitResult
    from samfpga.hw.resources import LayerCost


@dataclass
class BuildResults:
    """What the steps found out, filled in as the build runs.

    host_nodes:      (name, op_type) of the nodes the partition step left on the host around the dataflow
                     partition (the nodes of the HW graph itself are counted by the report)
    nodes_before_partition: node count of the whole graph before the partition step
    segments:        names of the runs of HW nodes between host nodes, in graph order (one when FINN's dataflow
                     partition applies)
    partition_note:  why FINN's partition was not applied (host nodes between HW layers), else None
    costs:           ``LayerCost`` per HW node name, from the ``estimates`` step (each figure labelled)
    cycles:          expected cycles per frame per HW node name (FINN's ``get_exp_cycles``)
    memory_forced:   HW nodes whose memories the flow placed (BRAM / LUTRAM) because the board has no URAM
    runtime_writeable: HW nodes with memories in URAM, which the bitstream cannot initialise: their weights /
                     thresholds must be written by the driver at run time
    fit:             the fit search's result (``samfpga.hw.build.fit.FitResult``) when it ran
    fifos:           the FIFOs a stitched pipeline needs (analytic depths, ``samfpga.hw.resources.fifo``), priced
    int_ops:         what the integer LayerNorm/softmax conversion replaced and skipped (with the reason), when on
    window_residual: the forks of residuals moved into window order, and those refused with the reason, when on
    pixel_input:     the uint8 input's description (``pixel_input.PixelInput.to_json``: layout, pad codes), when on
    token_batch:     the token-batched layers (node: DDR offset, bytes, DDR bytes per frame), the pairs kept on chip
                     (MVAU: reason), the DDR image's file and size, when ``options.token_batch`` is on
    token_batch_choice: the MVAUs the fit search put on the token-batched unit (block 0's choice given to every block
                     of a rolled body); None when it did not choose (no fit search, or ``token_batch`` off)
    rolled:          with ``options.roll``: the stages rolled and refused at folding, the token-batched layers
                     chosen for the bodies, and from the ``roll`` step the rolled graph's report rows, stages, loop
                     DDR bytes and the rolled-vs-unrolled check (``samfpga.hw.build.rolling``)
    """

    host_nodes: list[tuple[str, str]] = field(default_factory=list)
    nodes_before_partition: int | None = None
    segments: list[list[str]] = field(default_factory=list)
    partition_note: str | None = None
    costs: dict[str, LayerCost] = field(default_factory=dict)
    int_ops: dict = field(default_factory=dict)
    window_residual: dict = field(default_factory=dict)
    pixel_input: dict | None = None
    fifos: list[LayerCost] = field(default_factory=list)
    cycles: dict[str, int] = field(default_factory=dict)
    memory_forced: list[str] = field(default_factory=list)
    runtime_writeable: list[str] = field(default_factory=list)
    fit: FitResult | None = None
    token_batch: dict = field(default_factory=dict)
    token_batch_choice: list[str] | None = None
    rolled: dict = field(default_factory=dict)


@dataclass
class BuildContext:
    """State shared by the steps of one build: ``cfg``, the output directory ``out``, the ``results``."""

    cfg: BuildConfig
    out: Path
    results: BuildResults = field(default_factory=BuildResults)
    _finn_cfg: object = None

    @property
    def finn_cfg(self):
        """FINN's ``DataflowBuildConfig`` for this build (made on first use)."""
        if self._finn_cfg is None:
            self._finn_cfg = finn_config(self.cfg, self.out)
        return self._finn_cfg


def finn_config(cfg: BuildConfig, out: Path):
    """FINN's DataflowBuildConfig matching ``cfg`` (what the wrapped FINN steps read); FINN's own reports go to
    ``out/finn/report``."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType

    board = cfg.board_spec
    fcfg = DataflowBuildConfig(
        output_dir=str(out / "finn"),
        synth_clk_period_ns=1000.0 / cfg.clock,
        fpga_part=board.part,
        board=board.finn_board,
        target_fps=None if cfg.folding_file else max(1, round(cfg.target_fps or 10.0)),
        folding_config_file=cfg.folding_file,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
        standalone_thresholds=True,  # thresholds as own layers, so MVAUs can specialise to RTL
        requant_bitwidth_threshold=1024,  # FINN's inexact Requant inference off: build.requant.InferExactRequant
        save_intermediate_models=True,
    )
    Path(fcfg.get_report_directory()).mkdir(parents=True, exist_ok=True)
    Path(fcfg.get_intermediate_models_directory()).mkdir(parents=True, exist_ok=True)
    return fcfg
