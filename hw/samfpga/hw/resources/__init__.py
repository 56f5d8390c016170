"""Resource figures for every HW layer of a FINN graph, each labelled with where it came from.

``layer_costs(model, board)`` returns one ``LayerCost`` per HW node. A per-op-type model registered with
``register_model`` takes precedence (``samfpga.hw.resources.models`` registers the project's own models for every op
type of the encoder build); otherwise FINN's own analytical estimate is used and labelled ``"FINN estimate"``, with
the resources FINN reports as 0 for that op type listed in ``LayerCost.unmodelled``. ``fifo_costs(model, board)``
prices the FIFOs a dataflow pipeline needs (analytic depths; ``samfpga.hw.resources.fifo``). See docs/resources.md.
"""

from samfpga.hw.resources import models  # noqa: F401  (registers the own models)
from samfpga.hw.resources.cost import SOURCES, LayerCost, finn_estimate, layer_costs, register_model, total
from samfpga.hw.resources.fifo import estimate_fifo_depths, fifo_costs, stream_costs

__all__ = ["SOURCES", "LayerCost", "estimate_fifo_depths", "fifo_costs", "finn_estimate", "layer_costs",
           "register_model", "stream_costs", "total"]
