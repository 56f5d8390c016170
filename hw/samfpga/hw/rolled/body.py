"""One loop body for the blocks of a repeated stage: what is shared, what changes per iteration, what differs.

``compare_blocks(model, stage)`` lines up the blocks' nodes (by op type, in graph order) and checks them node by
node against block 0:

- **wiring**: each input comes from the block's activation input, from the same output of the same node of the
  block, or from an initializer; anything else is a structural difference;
- **initializer inputs** (weights, Requant scale/bias, threshold tables, softmax bias tables) are classed
  ``CONSTANT`` (equal in every block) or ``PARAMETER`` (per iteration), as FINN+'s loop rolling classes its loop
  inputs; the activation input is ``ACTIVATION``;
- **attributes** fall in four kinds: datatypes (``DTYPE_ATTRS``: unified to the widest, except where the layer
  clips to them, ``CLIPPING``), per-iteration arithmetic constants (``PARAM_ATTRS``: integer LayerNorm/softmax
  constants, a threshold layer's output offset), implementation choices (``IMPL_ATTRS``: folding, memory styles,
  FIFO depths; the body takes one, the largest; ``NAME_ATTRS``: names), and structure (everything else: must be
  equal);
- **a Thresholding in some blocks only**, in a chain (its input read by it alone): the body carries it, and the
  blocks without it get an identity table (steps at every input value above the lowest, offset the lowest: the
  count is the input), as long as the input range has at most ``thresholds.IDENTITY_MAX_STEPS`` steps;
- **threshold tables** with different step counts are padded to the longest with steps no input reaches (so the
  count, the output, is unchanged), and a shared table is broadcast per channel.

Differences that one body can absorb go to ``BodyPlan.unified`` with how; the others to ``BodyPlan.refused``, each
naming the block, the node and the attribute or input. Widening a datatype keeps the Python execution exact (the
layers here do not clip to input/weight/accumulator types) but costs hardware width; the report says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from samfpga.hw.rolled.blocks import RepeatedStage, base_op
from samfpga.hw.rolled.datatypes import widest
from samfpga.hw.rolled.thresholds import THRESHOLD_INPUT, identity_thresholds, pad_thresholds


class Role(str, Enum):
    """How a loop input changes over the iterations (FINN+'s FINNLoop classes)."""

    ACTIVATION = "ACTIVATION"  # the looped-back stream
    CONSTANT = "CONSTANT"  # the same in every iteration
    PARAMETER = "PARAMETER"  # one value per iteration


#: attributes holding datatypes (a name, or a list of names)
DTYPE_ATTRS = frozenset({"inputDataType", "weightDataType", "outputDataType", "accDataType", "inputDataTypes",
                         "dtype", "data_type", "lhs_dtype", "rhs_dtype", "out_dtype"})
#: (base op, attribute) datatypes the layer clips or scales to: must be equal in every block
CLIPPING = frozenset({("Requant", "outputDataType"), ("IntLayerNorm", "outputDataType"),
                      ("IntSoftmax", "outputDataType")})
#: per-iteration arithmetic constants held as attributes (base op -> attributes)
PARAM_ATTRS: dict[str, frozenset[str]] = {
    "Thresholding": frozenset({"ActVal"}),
    "MVAU": frozenset({"ActVal"}),
    "VVAU": frozenset({"ActVal"}),
    "IntLayerNorm": frozenset({"eps_int", "negate"}),
    "IntSoftmax": frozenset({"mult", "pre_shift", "out_num", "recip_bits"}),
    # where the block's weights start in the DDR image: the rolled unit reads iteration i's at BASE + i x STRIDE
    "TokenBatchMVU": frozenset({"ddr_offset"}),
}
#: implementation choices (folding, memories, FIFOs, generated code): functionally neutral
IMPL_ATTRS = frozenset({
    "PE", "SIMD", "mem_mode", "ram_style", "ram_style_thresholds", "resType", "runtime_writeable_weights",
    "inFIFODepths", "outFIFODepths", "code_gen_dir_cppsim", "code_gen_dir_ipgen", "ipgen_path", "ip_path",
    "ip_vlnv", "exec_mode", "rtlsim_so", "executable_path", "res_estimate", "cycles_rtlsim", "cycles_estimate",
    "rtlsim_trace", "partition_id", "slr", "mem_port", "depth_trigger_uram", "depth_trigger_bram",
    "uram_threshold", "preferred_impl_style", "cpp_interface", "hls_style", "pumpedCompute", "pumpedMemory",
    "gen_top_module", "device_id",
})
#: attributes that only name things (PagePermute_rtl records the Shuffle it replaced)
NAME_ATTRS = frozenset({"original_node_name"})
@dataclass(frozen=True)
class Difference:
    """One way block ``block`` differs from block 0 at body node ``node`` (block 0's name; ``other``: the block's
    own node). ``item``: ``attribute <name>``, ``input <slot> ...``, ``node`` (present in one block only),
    ``datatype of <tensor>``. ``how``: how the body unifies it ('' when refused)."""

    block: int
    node: str
    other: str
    item: str
    values: tuple
    how: str = ""

    def __str__(self) -> str:
        vals = ", ".join(_short(v) for v in self.values)
        s = f"block {self.block}: {self.node}" + (f" (= {self.other})" if self.other and self.other != self.node
                                                  else "") + f": {self.item}: {vals}"
        return s + (f" -> {self.how}" if self.how else "")


def _short(v) -> str:
    s = str(v.tolist() if isinstance(v, np.ndarray) else v)
    return s if len(s) <= 60 else s[:57] + "..."


@dataclass
class LoopInput:
    """An initializer input of a body node: ``tensor`` (block 0's name), its role, per-iteration values (padded
    where unified) and its (widest) datatype."""

    node: str
    op_type: str
    slot: int
    tensor: str
    role: Role
    values: list[np.ndarray]
    datatype: str

    @property
    def bits(self) -> int:
        from qonnx.core.datatype import DataType

        return DataType[self.datatype].bitwidth()

    def bytes_per_iteration(self) -> float:
        """Bytes of one iteration's value at its datatype's bit width (packed)."""
        return self.values[0].size * self.bits / 8


@dataclass
class BodyPlan:
    """The comparison of a stage's blocks (module doc). ``columns[k]``: body node k's name in each block."""

    stage: RepeatedStage
    columns: list[tuple[str, ...]]
    inputs: list[LoopInput] = field(default_factory=list)
    attr_params: dict[tuple[str, str], list] = field(default_factory=dict)  # (body node, attribute) -> N values
    attrs: dict[str, dict[str, object]] = field(default_factory=dict)  # body node -> unified attribute values
    tensor_types: dict[str, str] = field(default_factory=dict)  # body tensor -> unified datatype
    unified: list[Difference] = field(default_factory=list)
    refused: list[Difference] = field(default_factory=list)

    @property
    def rollable(self) -> bool:
        return not self.refused

    def param_bytes(self) -> dict[str, float]:
        """Bytes of one iteration's PARAMETER values at their datatypes' widths, by kind: ``weights`` (MVAU/VVAU
        weights), ``requant`` (scale and bias), ``thresholds``, ``norm_softmax`` (the integer softmax's bias
        table), ``other``; and ``attributes``: the per-iteration attribute values (4 bytes each, 8 for values
        beyond 32 bits, one bit per channel for flag lists)."""
        out = dict.fromkeys(("weights", "requant", "thresholds", "norm_softmax", "other", "attributes"), 0.0)
        for i in self.inputs:
            if i.role == Role.PARAMETER:
                out[_kind(i.op_type, i.slot)] += i.bytes_per_iteration()
        for vals in self.attr_params.values():
            if isinstance(vals[0], list):  # per-channel flags (IntLayerNorm negate)
                out["attributes"] += len(vals[0]) / 8
            else:
                out["attributes"] += 8 if any(abs(int(v)) >= 2**31 for v in vals) else 4
        return out

    def summary(self) -> dict:
        """JSON-able counts: roles, unified/refused differences (as strings), parameter bytes per iteration."""
        roles = {Role.ACTIVATION.value: 1}  # the looped-back stream (blocks are cut at single tensors)
        roles.update({r.value: sum(i.role == r for i in self.inputs) for r in (Role.CONSTANT, Role.PARAMETER)})
        return {"blocks": self.stage.iterations, "activation": [b.act_in for b in self.stage.blocks], "body_nodes": len(self.columns), "exact_units": self.stage.exact,
                "inputs": roles, "attribute_parameters": len(self.attr_params),
                "param_bytes_per_iteration": self.param_bytes(),
                "unified": [str(d) for d in self.unified], "refused": [str(d) for d in self.refused],
                "rollable": self.rollable}


def _kind(op_type: str, slot: int) -> str:
    op = base_op(op_type)
    if op in ("MVAU", "VVAU", "DepthwiseVVAU"):
        return "weights" if slot == 1 else "thresholds"
    if op == "TokenBatchMVU":
        return "weights" if slot == 1 else "requant"
    return {"Requant": "requant", "Thresholding": "thresholds", "IntLayerNorm": "norm_softmax",
            "IntSoftmax": "norm_softmax"}.get(op, "other")


def _attrs(node) -> dict[str, object]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def _source(t: str, block, where: dict[str, tuple[int, int]], inits: set[str]):
    if t == block.act_in:
        return ("act",)
    if t in where:
        return ("node",) + where[t]
    if t in inits:
        return ("init",)
    return ("ext", t)


def _align(ref: list, other: list) -> tuple[list[tuple[int, int]], list[tuple[str, list[int], list[int]]]]:
    """Pairs (i in ref, j in other) of nodes matched by op type in order, and the unmatched stretches."""
    sm = difflib.SequenceMatcher(None, [n.op_type for n in ref], [n.op_type for n in other], autojunk=False)
    pairs, gaps = [], []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            pairs += list(zip(range(i1, i2), range(j1, j2), strict=True))
        else:
            gaps.append((tag, list(range(i1, i2)), list(range(j1, j2))))
    return pairs, gaps


def compare_blocks(model, stage: RepeatedStage) -> BodyPlan:
    """Compare the blocks of ``stage`` in ``model`` (module doc); the plan for one body serving all of them."""
    import copy

    model = copy.deepcopy(model)  # identity thresholds (below) add initializers
    g = model.graph
    byname = {n.name: n for n in g.node}
    blocks = [[byname[n] for n in b.nodes] for b in stage.blocks]
    ref = blocks[0]
    refused: list[Difference] = []
    unified: list[Difference] = []
    # columns: block-0 nodes with a counterpart (same op type, in order) in every block
    match: list[dict[int, int]] = [{i: i for i in range(len(ref))}]
    # per block: an identity node's input tensor -> (its producer's index in the block, output slot)
    aliases: list[dict[str, tuple[int, int]]] = [{}]
    for b, nodes in enumerate(blocks[1:], 1):
        pairs, gaps = _align(ref, nodes)
        m = dict(pairs)
        match.append(m)
        aliases.append({})
        for _tag, ri, oi in gaps:
            for i in ri:
                ident = identity_thresholds(model, ref, i, nodes, m, b) if not oi else None
                if ident is None:
                    refused.append(Difference(b, ref[i].name, "", "node", (f"{ref[i].op_type} in block 0 only",)))
                    continue
                node, how, producer = ident
                nodes.append(node)
                byname[node.name] = node
                m[i] = len(nodes) - 1
                aliases[b][node.input[0]] = producer
                unified.append(Difference(b, ref[i].name, "", "node", (f"{ref[i].op_type} in block 0 only",), how))
            for j in oi:
                refused.append(Difference(b, nodes[j].name, nodes[j].name, "node",
                                          (f"{nodes[j].op_type} in block {b} only",)))
    inits = {i.name for i in g.initializer}
    cols = [i for i in range(len(ref)) if all(i in m for m in match)]
    columns = [tuple(blocks[b][match[b][i]].name for b in range(len(blocks))) for i in cols]
    plan = BodyPlan(stage, columns, unified=unified, refused=refused)
    wheres = []
    for b, nodes in enumerate(blocks):
        pos = {match[b][i]: k for k, i in enumerate(cols)}  # node index in block b -> column
        where = {t: (pos.get(j, -1), s) for j, n in enumerate(nodes) for s, t in enumerate(n.output)}
        for pre, (j, slot) in aliases[b].items():  # an identity node reads its producer's output
            where[pre] = (pos.get(j, -1), slot)
        wheres.append(where)
    for k, col in enumerate(columns):
        nodes = [byname[name] for name in col]
        _compare_wiring(plan, k, nodes, stage, wheres, inits)
        _compare_attrs(plan, nodes)
        _compare_inits(model, plan, nodes)
        _compare_tensor_types(model, plan, nodes)
    _compare_tensor_types(model, plan, None)
    return plan


def _compare_wiring(plan: BodyPlan, k: int, nodes: list, stage: RepeatedStage, wheres: list, inits: set[str]):
    ref = nodes[0]
    srcs0 = [_source(t, stage.blocks[0], wheres[0], inits) for t in ref.input]
    for b, n in enumerate(nodes[1:], 1):
        srcs = [_source(t, stage.blocks[b], wheres[b], inits) for t in n.input]
        if len(srcs) != len(srcs0) or len(n.output) != len(ref.output):
            plan.refused.append(Difference(b, ref.name, n.name, "inputs/outputs",
                                           (f"{len(ref.input)}/{len(ref.output)}", f"{len(n.input)}/{len(n.output)}")))
            continue
        for s, (a, c) in enumerate(zip(srcs0, srcs, strict=True)):
            if a != c:
                plan.refused.append(Difference(b, ref.name, n.name, f"input {s} source", (a, c)))
    for s, src in enumerate(srcs0):
        if src[0] == "ext":
            plan.refused.append(Difference(0, ref.name, ref.name, f"input {s}",
                                           (f"reads {src[1]} from outside the block",)))


def _compare_attrs(plan: BodyPlan, nodes: list) -> None:
    ref = nodes[0]
    op = base_op(ref.op_type)
    all_attrs = [_attrs(n) for n in nodes]
    unified = dict(all_attrs[0])
    padded_steps = THRESHOLD_INPUT.get(op, (None, None))[1]
    for name in sorted(set().union(*all_attrs)):
        vals = [a.get(name) for a in all_attrs]
        if all(v == vals[0] for v in vals):
            continue
        first = next(b for b, v in enumerate(vals) if v != vals[0])
        if name in DTYPE_ATTRS and (op, name) not in CLIPPING and None not in vals:
            w = _widest_attr(vals)
            if w is not None:
                unified[name] = w
                plan.unified.append(Difference(first, ref.name, nodes[first].name, f"attribute {name}",
                                               tuple(vals), f"widest: {w}"))
                continue
        elif name in PARAM_ATTRS.get(op, ()):
            plan.attr_params[(ref.name, name)] = vals
            plan.unified.append(Difference(first, ref.name, nodes[first].name, f"attribute {name}", tuple(vals),
                                           "per-iteration parameter"))
            continue
        elif name in NAME_ATTRS:
            plan.unified.append(Difference(first, ref.name, nodes[first].name, f"attribute {name}", tuple(vals),
                                           "a name: the body keeps block 0's"))
            continue
        elif name in IMPL_ATTRS and None not in vals:
            pick = max(vals, key=_size_key)
            unified[name] = pick
            plan.unified.append(Difference(first, ref.name, nodes[first].name, f"attribute {name}", tuple(vals),
                                           f"implementation: body takes {_short(pick)}"))
            continue
        elif name == padded_steps and None not in vals:
            unified[name] = max(vals)
            plan.unified.append(Difference(first, ref.name, nodes[first].name, f"attribute {name}", tuple(vals),
                                           f"thresholds padded to {max(vals)} steps"))
            continue
        plan.refused.append(Difference(first, ref.name, nodes[first].name, f"attribute {name}", tuple(vals)))
    plan.attrs[ref.name] = unified


def _size_key(v):
    if isinstance(v, list):
        return (len(v), [x for x in v if isinstance(x, int | float)])
    return (0, [v]) if isinstance(v, int | float) else (0, [])


def _widest_attr(vals: list):
    if all(isinstance(v, list) for v in vals):
        if len({len(v) for v in vals}) != 1:
            return None
        cols = [widest([v[i] for v in vals]) for i in range(len(vals[0]))]
        return None if None in cols else cols
    if all(isinstance(v, str) for v in vals):
        return widest(vals)
    return None


def _compare_inits(model, plan: BodyPlan, nodes: list) -> None:
    ref = nodes[0]
    op = base_op(ref.op_type)
    for s, t in enumerate(ref.input):
        if model.get_initializer(t) is None:
            continue
        tensors = [n.input[s] if s < len(n.input) else "" for n in nodes]
        values = [model.get_initializer(x) for x in tensors]
        if any(v is None for v in values):
            continue  # wiring already refused it
        values = [np.asarray(v) for v in values]
        dts = [model.get_tensor_datatype(x).name for x in tensors]
        if len({v.shape for v in values}) > 1:
            padded = pad_thresholds(op, s, values, nodes, model)
            if padded is None:
                first = next(b for b, v in enumerate(values) if v.shape != values[0].shape)
                plan.refused.append(Difference(first, ref.name, nodes[first].name, f"input {s} ({t}) shape",
                                               tuple(v.shape for v in values)))
                continue
            shapes = [v.shape for v in values]
            values, pad_dt = padded
            dts.append(pad_dt)
            first = next(b for b, sh in enumerate(shapes) if sh != shapes[0])
            plan.unified.append(Difference(first, ref.name, nodes[first].name, f"input {s} ({t}) shape",
                                           tuple(shapes), f"thresholds padded/broadcast to {values[0].shape}"))
            wattr = plan.attrs[ref.name].get("weightDataType")
            if isinstance(wattr, str) and widest([wattr, pad_dt]) is not None:
                plan.attrs[ref.name]["weightDataType"] = widest([wattr, pad_dt])
        dt = widest(dts)
        if dt is None:
            plan.refused.append(Difference(0, ref.name, ref.name, f"input {s} ({t}) datatype", tuple(dts)))
            continue
        if len(set(dts[: len(nodes)])) > 1:
            first = next(b for b, d in enumerate(dts) if d != dts[0])
            plan.unified.append(Difference(first, ref.name, nodes[first].name, f"input {s} ({t}) datatype",
                                           tuple(dts[: len(nodes)]), f"widest: {dt}"))
        same = all(np.array_equal(v, values[0]) for v in values)
        plan.inputs.append(LoopInput(ref.name, ref.op_type, s, t, Role.CONSTANT if same else Role.PARAMETER, values, dt))
        plan.tensor_types[t] = dt


def _compare_tensor_types(model, plan: BodyPlan, nodes: list | None) -> None:
    """Datatype annotations of node outputs (or, with ``nodes`` None, of the activation in/out) unified to the
    widest over the blocks."""
    if nodes is None:
        blocks = plan.stage.blocks
        pairs = [("activation input", [b.act_in for b in blocks]), ("activation output", [b.act_out for b in blocks])]
        where = blocks[0].nodes[0]
    else:
        pairs = [(f"output {s}", [n.output[s] for n in nodes]) for s in range(len(nodes[0].output))]
        where = nodes[0].name
    for what, tensors in pairs:
        dts = [model.get_tensor_datatype(t).name for t in tensors]
        w = widest(dts)
        if w is None:
            plan.refused.append(Difference(0, where, where, f"datatype of {what} {tensors[0]}", tuple(dts)))
            continue
        plan.tensor_types[tensors[0]] = w
        if len(set(dts)) > 1:
            first = next(b for b, d in enumerate(dts) if d != dts[0])
            plan.unified.append(Difference(first, where, "", f"datatype of {what} {tensors[0]}", tuple(dts),
                                           f"widest: {w}"))
    if nodes is None:
        # the loop-back stream carries both: input and output of the body get the widest of the two
        a, b = plan.stage.blocks[0].act_in, plan.stage.blocks[0].act_out
        both = widest([plan.tensor_types[a], plan.tensor_types[b]])
        if both is None:
            plan.refused.append(Difference(0, where, where, "loop-back datatype",
                                           (plan.tensor_types[a], plan.tensor_types[b])))
        elif {plan.tensor_types[a], plan.tensor_types[b]} != {both}:
            plan.unified.append(Difference(0, where, "", "loop-back datatype",
                                           (plan.tensor_types[a], plan.tensor_types[b]), f"widest: {both}"))
            plan.tensor_types[a] = plan.tensor_types[b] = both
