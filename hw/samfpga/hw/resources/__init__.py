"""Resource figures for every HW layer of a FINN graph, each labelled with where it came from.

``layer_costs(model, board)`` returns one ``LayerCost`` per HW node. A per-op-type model registered with
``register_model`` takes precedence; otherwise FINN's own analytical estimate is used and labelled
``"FINN estimate"``, with the resources FINN reports as 0 for that op type listed in ``LayerCost.unmodelled`` so a
report can say which zeros are not a measurement.
"""

from samfpga.hw.resources.cost import SOURCES, LayerCost, layer_costs, register_model, total

__all__ = ["SOURCES", "LayerCost", "layer_costs", "register_model", "total"]
