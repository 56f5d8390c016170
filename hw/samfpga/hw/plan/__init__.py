"""Plan the TinySAM-size encoder on a board before building it: unrolled or rolled stages, weights on chip or
streamed from DDR, folding, memories, DDR traffic and fps (own model; ``python -m samfpga.hw.plan --help``)."""

from samfpga.hw.plan.planner import Plan, PlanConfig, plan

__all__ = ["Plan", "PlanConfig", "plan"]
