"""``LayerCost`` and the dispatch from a HW node to the model that prices it (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from samfpga.hw import HW_DOMAIN
from samfpga.hw.boards import RESOURCES, Board

#: Where a figure comes from, from weakest to strongest evidence.
SOURCES = ("FINN estimate", "own model", "Yosys synthesis", "Vivado synthesis", "board")


@dataclass
class LayerCost:
    """Resources of one HW layer. BRAM in 36 Kb blocks. ``source`` is one of ``SOURCES``; ``unmodelled`` names
    the resources the source returned as 0 without modelling them (not free, just not counted)."""

    name: str
    op_type: str
    LUT: float = 0.0
    FF: float = 0.0
    BRAM36: float = 0.0
    URAM: float = 0.0
    DSP: float = 0.0
    source: str = "FINN estimate"
    unmodelled: tuple[str, ...] = ()
    detail: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown resource source {self.source!r}; one of {SOURCES}")

    def resources(self) -> dict[str, float]:
        return {r: float(getattr(self, r)) for r in RESOURCES}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unmodelled"] = list(self.unmodelled)
        return d


#: op_type -> fn(node_inst, model, board) -> LayerCost
CostModel = Callable[[object, object, Board], LayerCost]
_MODELS: dict[str, CostModel] = {}


def register_model(*op_types: str) -> Callable[[CostModel], CostModel]:
    """Decorator: ``fn`` prices nodes of these op types (e.g. ``"MVAU_rtl"``), replacing FINN's estimate."""

    def deco(fn: CostModel) -> CostModel:
        for op in op_types:
            if op in _MODELS and _MODELS[op] is not fn:
                # one model per op type: a second one would silently win or lose by import order
                raise ValueError(f"a cost model for {op} is already registered ({_MODELS[op].__module__}."
                                 f"{_MODELS[op].__qualname__}); one model per op type")
            _MODELS[op] = fn
        return fn

    return deco


def finn_estimate(node_inst, board: Board) -> LayerCost:
    """FINN's analytical estimate of one node (``node_res_estimation``), in our units. FINN has no FF model."""
    est = node_inst.node_res_estimation(board.part)
    cost = LayerCost(
        name=node_inst.onnx_node.name, op_type=node_inst.onnx_node.op_type,
        LUT=float(est.get("LUT", 0)), FF=float(est.get("FF", 0)), BRAM36=float(est.get("BRAM_18K", 0)) / 2.0,
        URAM=float(est.get("URAM", 0)), DSP=float(est.get("DSP", 0)), source="FINN estimate",
        detail={"finn": {k: v for k, v in est.items()}},
    )
    cost.unmodelled = tuple(r for r in ("LUT", "FF") if getattr(cost, r) == 0)
    types = node_inst.get_nodeattr_types()
    if cost.URAM and "mem_mode" in types and node_inst.get_nodeattr("mem_mode") == "dynamic":
        # FINN's MVAU.uram_estimation has no case for mem_mode "dynamic" (both operands streamed) and returns a
        # URAM count on top of bram_estimation's, which already prices the buffered operand in BRAM: counting both
        # is double, and on parts without URAM it makes every option impossible for the fit search
        cost.detail["finn_uram_dropped"] = cost.URAM
        cost.URAM = 0.0
    return cost


def layer_costs(model, board: Board) -> list[LayerCost]:
    """One ``LayerCost`` per HW node of ``model`` (a qonnx ModelWrapper), in graph order."""
    from qonnx.custom_op.registry import getCustomOp

    out = []
    for node in model.graph.node:
        if not node.domain.startswith(HW_DOMAIN):
            continue
        inst = getCustomOp(node)
        fn = _MODELS.get(node.op_type)
        out.append(fn(inst, model, board) if fn else finn_estimate(inst, board))
    return out


def total(costs: list[LayerCost]) -> dict[str, float]:
    """Sum of every resource over ``costs``."""
    return {r: float(sum(getattr(c, r) for c in costs)) for r in RESOURCES}
