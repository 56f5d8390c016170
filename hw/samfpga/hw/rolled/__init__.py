"""Loop rolling of repeated blocks, in Python: the N identical blocks of a stage as one body run N times.

- ``blocks``: the repeated stages of a FINN HW graph, found by structure (``find_stages``);
- ``body``: the blocks compared node by node; inputs classed ACTIVATION / CONSTANT / PARAMETER, differences
  unified (widest datatype: ``datatypes``; padded or identity threshold tables: ``thresholds``; per-iteration
  constants) or refused with the node named (``compare_blocks`` -> ``BodyPlan``);
- ``graph``: the rolled graph (unrolled pieces + ``Loop``s: body + per-iteration parameter store; ``roll``);
- ``execute``: its FINN python execution, and the unrolled graph's, for the bit-exact comparison.

See docs/loop_rolling.md.
"""

from samfpga.hw.rolled.blocks import Block, RepeatedStage, block_scopes, find_stages, units
from samfpga.hw.rolled.body import BodyPlan, Difference, LoopInput, Role, compare_blocks
from samfpga.hw.rolled.datatypes import widest
from samfpga.hw.rolled.execute import execute_rolled, execute_unrolled
from samfpga.hw.rolled.graph import Loop, NotRollable, RolledGraph, roll, submodel

__all__ = ["Block", "BodyPlan", "Difference", "Loop", "LoopInput", "NotRollable", "RepeatedStage", "Role",
           "RolledGraph", "block_scopes", "compare_blocks", "execute_rolled", "execute_unrolled", "find_stages", "roll", "submodel",
           "units", "widest"]
