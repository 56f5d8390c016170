"""Where the memories of the HW layers go: memory styles, boards without URAM, runtime-writeable URAM.

FINN leaves ``ram_style`` at "auto" and the threshold depth triggers at 0 (RTL: "auto", Vivado decides) while its
estimate places memories by least waste over every primitive, URAM included; on a board without URAM (ZCU102,
PYNQ-Z2) that counts URAM the part does not have. ``STYLES`` are explicit placements the RTL and FINN's estimate
read the same way:

* ``distributed``: LUTRAM (MVAU/VVAU/SWG ``ram_style=distributed``; thresholds: both depth triggers at
  ``NEVER``, so the RTL says "distributed" and the estimate picks LUTRAM, the least-waste primitive)
* ``block``: BRAM (``ram_style=block``; thresholds: memories of depth ≥ ``BRAM_DEPTH`` in BRAM, shallower ones
  in LUTRAM)
* ``ultra``: URAM where the board has it (``ram_style=ultra``; thresholds: depth ≥ ``URAM_DEPTH`` in URAM)

URAM cannot be initialised by the bitstream: a layer whose weights or thresholds sit in URAM needs
``runtime_writeable_weights=1`` and the driver writes them at start-up (``mark_runtime_writeable``).
"""

from __future__ import annotations

import json

from samfpga.hw.boards import Board

NEVER = 2**31 - 1  # a depth trigger no memory reaches
BRAM_DEPTH = 256  # threshold memories this deep or deeper go to BRAM in the "block" style
URAM_DEPTH = 4096  # ... and to URAM in the "ultra" style
#: node attributes that place memories (recorded per fit option)
MEMORY_ATTRS = ("ram_style", "depth_trigger_bram", "depth_trigger_uram")
STYLES = ("block", "distributed", "ultra")
_THRESHOLD_TRIGGERS = {"block": (BRAM_DEPTH, NEVER), "distributed": (NEVER, NEVER), "ultra": (BRAM_DEPTH, URAM_DEPTH)}


def styles_for(board: Board) -> tuple[str, ...]:
    """The memory styles a board can take (no ``ultra`` without URAM)."""
    return tuple(s for s in STYLES if s != "ultra" or board.uram > 0)


def _set_style(op, style: str) -> bool:
    """Set ``style`` on one node's memory attributes; False when the node has none (or not this style)."""
    types = op.get_nodeattr_types()
    if "depth_trigger_bram" in types and "depth_trigger_uram" in types:
        bram, uram = _THRESHOLD_TRIGGERS[style]
        op.set_nodeattr("depth_trigger_bram", bram)
        op.set_nodeattr("depth_trigger_uram", uram)
        return True
    if "ram_style" in types:
        allowed = types["ram_style"][3] if len(types["ram_style"]) > 3 else {style}
        if style in allowed:
            op.set_nodeattr("ram_style", style)
            return True
    return False


#: model metadata: {output tensor of a Shuffle: memory style} of the PagePermute_rtl it becomes after folding (a
#: Shuffle has no memory attribute; ``ShuffleToPagePermute`` reads this). Keyed by tensor, which renaming nodes keeps.
SHUFFLE_STYLE_KEY = "samfpga_shuffle_ram_style"


def shuffle_styles(model) -> dict[str, str]:
    """``SHUFFLE_STYLE_KEY`` of ``model``: {Shuffle output tensor: memory style}."""
    return json.loads(model.get_metadata_prop(SHUFFLE_STYLE_KEY) or "{}")


def set_shuffle_style(model, node, style: str) -> None:
    """Record ``style`` for the PagePermute that the Shuffle ``node`` becomes."""
    styles = shuffle_styles(model)
    styles[node.output[0]] = style
    model.set_metadata_prop(SHUFFLE_STYLE_KEY, json.dumps(styles, sort_keys=True))


def is_shuffle(node) -> bool:
    from samfpga.hw import HW_DOMAIN

    return node.op_type == "Shuffle" and node.domain.startswith(HW_DOMAIN)


def apply_style(model, style: str, board: Board, names: set[str] | None = None) -> list[str]:
    """Set memory ``style`` on every HW node (or those in ``names``) that has memory attributes, and on the
    PagePermute each Shuffle becomes (``set_shuffle_style``); returns their names. ``ultra`` on a board without URAM
    is refused."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw import HW_DOMAIN

    if style not in STYLES:
        raise ValueError(f"unknown memory style {style!r}; one of {STYLES}")
    if style == "ultra" and board.uram == 0:
        raise ValueError(f"{board.name} has no URAM; memory style 'ultra' is not available")
    done = []
    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN) or (names is not None and n.name not in names):
            continue
        if is_shuffle(n):
            set_shuffle_style(model, n, style)
            done.append(n.name)
        elif _set_style(getCustomOp(n), style):
            done.append(n.name)
    return done


def place_without_uram(model, board: Board) -> list[str]:
    """On a board without URAM, every memory left to FINN's automatic placement ("auto", "ultra", depth triggers
    0) is put in BRAM (``block`` style, shallow threshold levels in LUTRAM); returns the nodes changed. No-op on
    boards with URAM."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw import HW_DOMAIN

    if board.uram > 0:
        return []
    changed = []
    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        op = getCustomOp(n)
        types = op.get_nodeattr_types()
        auto = ("ram_style" in types and op.get_nodeattr("ram_style") in ("auto", "ultra")) or (
            "depth_trigger_uram" in types and op.get_nodeattr("depth_trigger_uram") in (0, URAM_DEPTH))
        if auto and _set_style(op, "block"):
            changed.append(n.name)
    return changed


def mark_runtime_writeable(model, uram_nodes: list[str]) -> list[str]:
    """``runtime_writeable_weights=1`` on the nodes in ``uram_nodes`` that have weights or thresholds (the
    bitstream cannot initialise URAM; the driver writes them over AXI-lite). Returns the nodes marked."""
    from qonnx.custom_op.registry import getCustomOp

    names = set(uram_nodes)
    marked = []
    for n in model.graph.node:
        if n.name not in names:
            continue
        op = getCustomOp(n)
        if "runtime_writeable_weights" in op.get_nodeattr_types():
            op.set_nodeattr("runtime_writeable_weights", 1)
            marked.append(n.name)
    return marked
