"""The rolled graph: unrolled pieces and loops (one body graph + a per-iteration parameter store), in order.

``roll(model)`` finds the repeated stages (``blocks.find_stages``), compares their blocks (``body.compare_blocks``)
and, for each stage one body can serve, cuts the graph at the stages' borders (single tensors, so every piece has
one activation in and one out):

    RolledGraph.parts = [Straight (prefix), Loop (stage A), Straight, Loop (stage B), ..., Straight (suffix)]

A ``Loop``'s body is block 0's nodes with the unified attributes and datatypes and iteration 0's values in its
initializers; ``params`` holds every PARAMETER input's values stacked per iteration ((N, *shape) arrays) and
``attr_params`` the per-iteration attribute values. ``samfpga.hw.rolled.execute`` runs it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from samfpga.hw.rolled.blocks import RepeatedStage, find_stages
from samfpga.hw.rolled.body import BodyPlan, Role, compare_blocks


class NotRollable(ValueError):
    """A stage asked to be rolled whose blocks one body cannot serve; the message names each difference."""


@dataclass
class Loop:
    """One body run ``iterations`` times; iteration i uses ``params[t][i]`` for each PARAMETER initializer ``t``
    and ``attr_params[(node, attr)][i]`` for each per-iteration attribute."""

    body: object  # ModelWrapper: input = activation in, output = activation out
    params: dict[str, np.ndarray]
    attr_params: dict[tuple[str, str], list]
    iterations: int
    plan: BodyPlan

    def param_bytes(self) -> dict[str, float]:
        """One iteration's parameter bytes by kind (``BodyPlan.param_bytes``)."""
        return self.plan.param_bytes()


@dataclass
class RolledGraph:
    """``parts`` in order: ModelWrapper pieces run once and ``Loop``s. ``plans``: every repeated stage's comparison
    (rolled or not)."""

    parts: list = field(default_factory=list)
    plans: list[BodyPlan] = field(default_factory=list)

    @property
    def loops(self) -> list[Loop]:
        return [p for p in self.parts if isinstance(p, Loop)]


def submodel(model, nodes: list[str], inp: str, out: str):
    """The nodes ``nodes`` of ``model`` (in its order) as a model with input ``inp`` and output ``out``: the
    initializers they read, every tensor's shape and datatype annotation kept."""
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    g = model.graph
    keep = set(nodes)
    sel = [n for n in g.node if n.name in keep]
    used = {t for n in sel for t in (*n.input, *n.output) if t} | {inp, out}
    vi = {v.name: v for v in (*g.value_info, *g.input, *g.output)}
    for t in (inp, out):
        if t not in vi:
            raise ValueError(f"tensor {t} has no shape information in the graph")
    inits = [i for i in g.initializer if i.name in used]
    init_names = {i.name for i in inits}
    graph = helper.make_graph(copy.deepcopy(sel), f"{g.name}_{inp}_{out}", [copy.deepcopy(vi[inp])],
                              [copy.deepcopy(vi[out])], copy.deepcopy(inits),
                              value_info=[copy.deepcopy(v) for k, v in vi.items()
                                          if k in used and k not in (inp, out) and k not in init_names])
    graph.quantization_annotation.extend(copy.deepcopy(a) for a in g.quantization_annotation if a.tensor_name in used)
    m = helper.make_model(graph, opset_imports=list(model.model.opset_import))
    return ModelWrapper(m)


def body_model(model, plan: BodyPlan):
    """Block 0's sub-graph with the unified attributes and datatypes and iteration 0's initializer values."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    b0 = plan.stage.blocks[0]
    body = submodel(model, [c[0] for c in plan.columns], b0.act_in, b0.act_out)
    for n in body.graph.node:
        inst = getCustomOp(n) if n.domain.startswith(("finn", "qonnx")) else None
        for k, v in plan.attrs.get(n.name, {}).items():
            if inst is not None and k in inst.get_nodeattr_types():
                inst.set_nodeattr(k, v)
    for i in plan.inputs:
        body.set_initializer(i.tensor, np.asarray(i.values[0], dtype=np.float32))
    for t, dt in plan.tensor_types.items():
        body.set_tensor_datatype(t, DataType[dt])
    return body


def roll(model, stages: list[RepeatedStage] | None = None, strict: bool = False) -> RolledGraph:
    """``model`` (a FINN HW graph, one input and one output) as a ``RolledGraph``: every repeated stage
    (``find_stages``, or ``stages``) that one body serves becomes a ``Loop``; the others stay unrolled, their
    differences in ``plans``. ``strict``: raise ``NotRollable`` (naming each difference) instead of leaving a stage
    unrolled."""
    stages = find_stages(model) if stages is None else stages
    plans = [compare_blocks(model, s) for s in stages]
    if strict:
        bad = [p for p in plans if not p.rollable]
        if bad:
            raise NotRollable("; ".join(f"stage {p.stage.name}: " + "; ".join(str(d) for d in p.refused)
                                        for p in bad))
    order = [n.name for n in model.graph.node]
    pos = {n: i for i, n in enumerate(order)}
    parts, cur, cur_in = [], [], model.graph.input[0].name
    loops = {pos[p.stage.blocks[0].nodes[0]]: p for p in plans if p.rollable}
    i = 0
    while i < len(order):
        if i in loops:
            plan = loops[i]
            if cur:
                parts.append(submodel(model, cur, cur_in, plan.stage.blocks[0].act_in))
            parts.append(_loop(model, plan))
            cur, cur_in = [], plan.stage.blocks[-1].act_out
            i = pos[plan.stage.blocks[-1].nodes[-1]] + 1
            continue
        cur.append(order[i])
        i += 1
    if cur:
        parts.append(submodel(model, cur, cur_in, model.graph.output[0].name))
    return RolledGraph(parts, plans)


def _loop(model, plan: BodyPlan) -> Loop:
    params = {i.tensor: np.stack(i.values) for i in plan.inputs if i.role == Role.PARAMETER}
    return Loop(body_model(model, plan), params, dict(plan.attr_params), plan.stage.iterations, plan)
