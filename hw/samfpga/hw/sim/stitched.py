"""A whole FINN build as ONE stitched RTL design in Verilator, bit-exact against FINN's python execution, with
the simulated frame interval compared to the build report's cycle estimate.

From the build's HW graph (the dataflow partition after the ``estimates`` step, every node RTL):
1. Data-width converters where a producer's stream width differs from its consumer's (FINN's ``InsertDWC``);
   the build's estimates do not see them (FINN inserts them only at stitching).
2. FIFOs: one ``StreamingFIFO_rtl`` on every HW-to-HW edge, DWC edges included (FINN's order: DWCs, then FIFOs),
   with the depth of ``samfpga.hw.resources.fifo.estimate_fifo_depths`` (the build's FIFO model: analytic
   fork/join depths, else the minimum decoupling depth; FINN's own ``set_fifo_depths`` needs Vivado's xsim).
3. ``SpecializeLayers`` (FIFO/DWC to RTL), unique names, ``PrepareIP`` (HDL of every node).
4. ``samfpga.hw.sim.runner.run_bench``: ``stitch.generate_top`` wires the nodes by their ONNX tensors, Verilator
   builds it, ``axis_bench`` streams ``frames`` frames back to back (the first also under random backpressure),
   compares every output word with FINN's python execution (tolerance 0) and records when each output frame
   completed; each FIFO's ``maxcount`` (its highest fill) is read back.
The steady-state frame interval (spacing of output frames) is the figure FINN's estimate predicts: the report's
``bottleneck_cycles`` (slowest layer's expected cycles per frame). The first frame's latency is compared with
FINN's critical-path estimate of the stitched graph for information.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw import HW_DOMAIN
from samfpga.hw.sim.finn_boot import boot_finn
from samfpga.hw.sim.nodes import ZYNQ_PART

# how far the simulated frame interval may be from the build report's estimate (issue 11, item 6)
CYCLE_TOLERANCE = 0.15


@dataclass
class FifoUse:
    """One inserted FIFO: the edge, its depth (as the build priced it) and its highest fill in simulation."""

    name: str
    producer: str
    consumer: str
    depth: int
    width: int
    max_fill: int = -1
    reason: str = ""
    build_edge: str = ""  # "producer -> consumer" by the build's node names (a segment's nodes are renamed)


@dataclass
class StitchedResult:
    """The figures of one stitched simulation (bench/results/sim_stitched_*.json)."""

    build_dir: str
    node_range: list | None = None  # [first, last): only HW nodes first .. last-1 of the build were stitched
    node_names: list = field(default_factory=list)  # names of the range's first and last node
    engine: str = "cocotb"  # the testbench: cocotb (axis_bench) or cpp (cpp_bench)
    nodes: int = 0
    op_types: dict = field(default_factory=dict)
    frames: int = 0
    words_compared: int = 0
    mismatches: int = -1
    first_mismatches: list = field(default_factory=list)
    cycles_simulated: float = 0.0  # steady-state frame interval of the free-running pass
    cycles_estimated: int = 0  # report.json's bottleneck_cycles
    bottleneck_node: str = ""
    ratio: float = 0.0
    within_tolerance: bool = False
    tolerance: float = CYCLE_TOLERANCE
    latency_cycles: int = 0  # first frame: first input word in -> last output word out
    latency_estimated: int = 0  # FINN's critical path of the stitched graph (FIFOs and DWCs included)
    frame_done_cycles: list = field(default_factory=list)
    cycles_backpressure: int = 0
    fifos: list = field(default_factory=list)
    dwcs: int = 0
    build_s: float = 0.0
    sim_s: float = 0.0  # cpp engine: the simulator's own run time (both passes)
    cycles_per_s: int = 0
    wall_s: float = 0.0
    error: str = ""
    stalled: dict = field(default_factory=dict)
    passed: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def hw_graph(build_dir: Path):
    """The build's HW graph after ``estimates`` (``intermediate/NN_estimates.onnx``), checked to be all RTL."""
    from qonnx.core.modelwrapper import ModelWrapper

    graphs = sorted((Path(build_dir) / "intermediate").glob("*_estimates.onnx"))
    if not graphs:
        raise FileNotFoundError(f"{build_dir}: no intermediate/NN_estimates.onnx (run the build through 'estimates')")
    model = ModelWrapper(str(graphs[-1]))
    not_rtl = sorted({n.op_type for n in model.graph.node if not n.op_type.endswith("_rtl")})
    if not_rtl:
        raise ValueError(f"{graphs[-1]}: not all RTL, cannot stitch for Verilator: {not_rtl} "
                         "(HLS layers need Vitis HLS; host nodes must be outside the dataflow partition)")
    return model


def segment_graph(model, first: int, last: int):
    """Nodes ``first`` .. ``last - 1`` of ``model`` (graph order) as a graph of their own: its input is the one
    tensor that enters the range (the graph input when ``first`` is 0), its output the one tensor that leaves it;
    a cut inside a fork/join is refused, naming the crossing tensors."""
    import copy

    from onnx import helper

    nodes = list(model.graph.node)
    if not 0 <= first < last <= len(nodes):
        raise ValueError(f"node range {first}:{last}: the graph has {len(nodes)} nodes")
    inside = {t for n in nodes[first:last] for t in n.output}
    before = {t for n in nodes[:first] for t in n.output} | {i.name for i in model.graph.input}
    outs = {o.name for o in model.graph.output}
    cross_out = sorted({t for n in nodes[last:] for t in n.input if t in inside} | (inside & outs))
    cross_in = sorted({t for n in nodes[first:last] for t in n.input if t in before})
    if len(cross_out) != 1:
        raise ValueError(f"cannot cut after node {last} ({nodes[last - 1].name}): tensors {cross_out} leave the "
                         "range")
    if len(cross_in) != 1:
        raise ValueError(f"cannot cut before node {first} ({nodes[first].name}): tensors {cross_in} enter the "
                         "range")
    m = copy.deepcopy(model)
    del m.graph.node[last:]
    del m.graph.node[:first]
    for t, where in ((cross_in[0], m.graph.input), (cross_out[0], m.graph.output)):
        shape = m.get_tensor_shape(t)
        for vi in [v for v in m.graph.value_info if v.name == t]:
            m.graph.value_info.remove(vi)  # becomes a graph input/output (one ValueInfo per tensor)
        del where[:]
        where.append(helper.make_tensor_value_info(t, 1, shape))
    used = {t for n in m.graph.node for t in n.input}
    for init in [i for i in m.graph.initializer if i.name not in used]:
        m.graph.initializer.remove(init)
    return m


def cut_points(model) -> list[int]:
    """Indices ``k`` (1 .. number of nodes) at which ``model`` can be cut: exactly one tensor goes from nodes
    0..k-1 to nodes k.. (or to the graph output); ``segment_graph(model, a, b)`` needs ``a`` 0 or a cut point and
    ``b`` a cut point."""
    nodes = list(model.graph.node)
    outs = {o.name for o in model.graph.output}
    produced: set[str] = set()
    cuts = []
    for k, n in enumerate(nodes, start=1):
        produced |= set(n.output)
        later = {t for m in nodes[k:] for t in m.input}
        if len((produced & later) | (produced & outs if k == len(nodes) else set())) == 1:
            cuts.append(k)
    return cuts


def insert_fifos(model, min_depth: int | None = None,
                 depths: dict[tuple[str, str], int] | None = None) -> tuple[object, dict[str, FifoUse]]:
    """A ``StreamingFIFO`` (impl_style rtl) on every HW-to-HW edge of ``model`` with the depth
    ``estimate_fifo_depths`` gives it. Returns the model and the FIFOs by their output tensor name."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources.fifo import DEFAULT_MIN_DEPTH, estimate_fifo_depths

    estimates = estimate_fifo_depths(model, DEFAULT_MIN_DEPTH if min_depth is None else min_depth)
    unknown = set(depths or {}) - {(e.producer, e.consumer) for e in estimates}
    if unknown:
        raise ValueError(f"FIFO depth given for edges that have no FIFO: {sorted(unknown)}")
    for e in estimates:
        if (e.producer, e.consumer) in (depths or {}):
            e.reason = f"set by hand (the model: {e.depth}, {e.reason})"
            e.depth = int(depths[(e.producer, e.consumer)])
    fifos: dict[str, FifoUse] = {}
    graph = model.graph
    for e in estimates:
        producer = model.get_node_from_name(e.producer)
        consumer = model.get_node_from_name(e.consumer)
        k = list(producer.output).index(e.tensor)
        op = getCustomOp(producer)
        out = model.make_new_valueinfo_name()
        vi = helper.make_tensor_value_info(out, model.get_tensor_valueinfo(e.tensor).type.tensor_type.elem_type,
                                           list(op.get_normal_output_shape(k)))
        graph.value_info.append(vi)
        model.set_tensor_datatype(out, op.get_output_datatype(k))
        node = helper.make_node(
            "StreamingFIFO", [e.tensor], [out], domain=HW_DOMAIN, backend="fpgadataflow",
            depth=int(e.depth), folded_shape=[int(d) for d in op.get_folded_output_shape(k)],
            normal_shape=[int(d) for d in op.get_normal_output_shape(k)],
            dataType=op.get_output_datatype(k).name, impl_style="rtl", ram_style="auto",
            preferred_impl_style="rtl")
        graph.node.insert(list(graph.node).index(producer) + 1, node)
        for i, t in enumerate(consumer.input):
            if t == e.tensor:
                consumer.input[i] = out
        fifos[out] = FifoUse("", e.producer, e.consumer, int(e.depth), int(e.width), reason=e.reason)
    return model, fifos


def stitched_model(model, part: str = ZYNQ_PART, clk_ns: float = 5.0, min_depth: int | None = None,
                   prepare_ip: bool = True, depths: dict[tuple[str, str], int] | None = None, prefix: str = ""):
    """FIFOs, DWCs, RTL specialisation, unique names and HDL for ``model`` (see module doc; ``prepare_ip=False``:
    the same graph and names without generating HDL; ``prefix``: of every node name, hence of every module the
    nodes' HDL declares, so that several stitched graphs can share one design).

    Returns (the model after PrepareIP, the FIFOs with their node names, the number of DWCs inserted)."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops in the graph)

    # DWCs first, then a FIFO on every edge, DWC edges included, as FINN's set_fifo_depths orders them: an MVAU
    # reads each input vector in a burst (it replays it from its own buffer for the other output rows), so the
    # words an upsizing DWC assembles between bursts must wait in a FIFO between DWC and MVAU (without it the
    # stem + stage-0 prefix ran at 1.36x the estimated interval)
    model = model.transform(InsertDWC()).transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames(prefix))
    model, fifos = insert_fifos(model, min_depth, depths)
    model = model.transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames(prefix))
    not_rtl = sorted({n.op_type for n in model.graph.node if not n.op_type.endswith("_rtl")})
    if not_rtl:
        raise ValueError(f"after FIFO/DWC insertion, nodes not RTL: {not_rtl}")
    for n in model.graph.node:
        if n.op_type.startswith("StreamingFIFO"):
            fifos[n.output[0]].name = n.name
    dwcs = sum(n.op_type.startswith("StreamingDataWidthConverter") for n in model.graph.node)
    if prepare_ip:
        model = model.transform(PrepareIP(part, clk_ns))
    return model, list(fifos.values()), dwcs


def hw_inputs(build_dir: Path, images: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Inputs of the HW graph for ``images`` (N, *graph input shape: (N, 3, H, W) float32 normalised images, or
    (N, H, W, 3) uint8 pixels for a pixel-input build): the host layers before the dataflow partition (FINN's
    ``dataflow_parent.onnx``; none for a pixel-input build) run by FINN's python execution."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    parents = list((Path(build_dir) / "finn").rglob("dataflow_parent.onnx"))
    if not parents:
        raise FileNotFoundError(f"{build_dir}: no dataflow_parent.onnx (the build made no dataflow partition)")
    parent = ModelWrapper(str(parents[0]))
    sdp = next(n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition")
    # execute the host nodes in front of the partition only: a copy of the parent cut at the partition's input
    pre = _cut_before(parent, sdp)
    out = []
    for img in images:
        if not pre.graph.node:  # the partition takes the graph input itself (a pixel-input build)
            out.append({"hw_in": img[None].astype(np.float32)})
            continue
        ctx = execute_onnx(pre, {pre.graph.input[0].name: img[None].astype(np.float32)})
        out.append({"hw_in": ctx[pre.graph.output[0].name]})
    return out


def _cut_before(parent, sdp):
    """The part of ``parent`` that computes the first input of node ``sdp`` (host nodes only)."""
    import copy

    from onnx import helper

    m = copy.deepcopy(parent)
    target = sdp.input[0]
    keep, need = [], {target}
    for n in reversed(list(m.graph.node)):
        if set(n.output) & need:
            keep.append(n)
            need |= set(n.input)
    del m.graph.node[:]
    m.graph.node.extend(reversed(keep))
    shape = m.get_tensor_shape(target)
    for vi in [v for v in m.graph.value_info if v.name == target]:
        m.graph.value_info.remove(vi)  # becomes the graph output (one ValueInfo per tensor)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(target, 1, shape))
    return m


def run_stitched(build_dir: Path, images: np.ndarray, work_dir: Path, pause: float = 0.3, seed: int = 0,
                 min_depth: int | None = None, log=print, resume: bool = False,
                 fifo_depths: dict[tuple[str, str], int] | None = None,
                 node_range: tuple[int, int] | None = None, engine: str = "cocotb") -> StitchedResult:
    """Stitch, simulate and compare the build in ``build_dir`` on ``images`` (one frame each; see module doc).

    resume: reuse the simulator (and, for cocotb, the bench spec) an earlier run left in ``work_dir/sim`` (same
        build, same images): cocotb: its result when it has one, else the simulation alone is run again; cpp: the
        simulation is run again (no HDL generation, no Verilator build in either case).
    node_range: (first, last): stitch only HW nodes ``first`` .. ``last - 1`` (``segment_graph``, e.g. one stage);
        its input frames are FINN's python execution of the nodes before ``first``, and the cycle estimate is the
        slowest of the range's nodes' expected cycles (``get_exp_cycles``, as the report computes it for the build).
    fifo_depths: {(producer, consumer): depth} replacing the FIFO model's depth on those edges (names as the
        stitched graph has them: a result's ``fifos`` list them), to try a depth.
    engine: "cocotb" (``axis_bench``, Python drives every cycle) or "cpp" (``cpp_bench``, a C++-only testbench for
        runs of millions of cycles); both compare every output word and read every FIFO's highest fill.
    """
    from collections import Counter

    from samfpga.hw.sim.runner import BenchResult, cocotb_run, finn_estimated_cycles, read_result, run_bench

    if engine not in ("cocotb", "cpp"):
        raise ValueError(f"engine {engine!r}: expected 'cocotb' or 'cpp'")
    t0 = time.monotonic()
    build_dir, work_dir = Path(build_dir).resolve(), Path(work_dir).resolve()
    boot_finn(work_dir / "finn_build")
    report = json.loads((build_dir / "report.json").read_text())
    part = report["board"]["part"]
    res = StitchedResult(build_dir=str(build_dir), frames=len(images), engine=engine)
    res.cycles_estimated = int(report["total"]["bottleneck_cycles"])
    res.bottleneck_node = str(report["total"].get("bottleneck_node", ""))
    clk_ns = 1000.0 / float(report["clock_mhz"])
    full = hw_graph(build_dir)
    model = full
    if node_range is not None:
        from qonnx.custom_op.registry import getCustomOp

        import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops in the graph)

        first, last = node_range
        model = segment_graph(full, first, last)
        slow = max(model.graph.node, key=lambda n: int(getCustomOp(n).get_exp_cycles()))
        res.cycles_estimated, res.bottleneck_node = int(getCustomOp(slow).get_exp_cycles()), slow.name
        res.node_range = [first, last]
        res.node_names = [model.graph.node[0].name, model.graph.node[-1].name]
    log(f"[stitched] {len(model.graph.node)} HW nodes; inserting FIFOs and DWCs"
        + (" (resuming: no HDL generation)" if resume else ", generating HDL ..."))
    before = {}
    for n in model.graph.node:
        before.setdefault(n.op_type, []).append(n.name)
    model, fifos, res.dwcs = stitched_model(model, part, clk_ns, min_depth, prepare_ip=not resume,
                                            depths=fifo_depths)
    build_names = _build_names(before, model)
    for f in fifos:
        f.build_edge = f"{build_names.get(f.producer, f.producer)} -> {build_names.get(f.consumer, f.consumer)}"
    res.nodes = len(model.graph.node)
    res.op_types = dict(Counter(n.op_type for n in model.graph.node))
    res.latency_estimated, _ = finn_estimated_cycles(model)
    # the FIFO's fill counters: cocotb reads the wrapper's (unconnected) ports through VPI; the C++ bench wires the
    # counter registers of the wrapper's fifo.sv to its ports by hierarchical reference (Verilator keeps those)
    fill, high = ("fifo.Count", "fifo.MaxCount") if engine == "cpp" else ("count", "maxcount")
    probes = {f.name: f"{f.name}_i.{high}" for f in fifos}
    # deadlock watch: no input accepted and no output for longer than FINN's (pessimistic, sequential) latency
    stall = max(100_000, res.latency_estimated)
    stall_probes = {f.name: f"{f.name}_i.{fill}" for f in fifos}
    if resume and engine == "cocotb":
        sim = work_dir / "sim"
        spec = json.loads((sim / "spec.json").read_text())
        if not Path(spec["result"]).is_file():
            log(f"[stitched] re-running the simulation built in {sim} ...")
            cocotb_run(sim, sim / "spec.json")
        b = BenchResult(name="stitched", layer_types=[], params={}, frames=int(spec.get("frames", 1)))
        read_result(b, Path(spec["result"]), sim)
        b.passed = b.mismatches == 0 and b.words_compared > 0
    else:
        frames = segment_inputs(full, node_range[0] if node_range else 0, hw_inputs(build_dir, images), log)
        frames = [{model.graph.input[0].name: f} for f in frames]
        log(f"[stitched] {res.nodes} nodes ({len(fifos)} FIFOs, {res.dwcs} DWCs); {engine} simulation of "
            f"{len(frames)} frames ...")
        if engine == "cpp":
            from samfpga.hw.sim.cpp_bench import run_cpp_bench

            b = run_cpp_bench("stitched", model, frames, work_dir / "sim", pause=pause, seed=seed, bp_frames=1,
                              probes=probes, stall_cycles=stall, stall_probes=stall_probes, resume=resume, log=log)
            res.sim_s, res.cycles_per_s = b.params.get("sim_s", 0.0), b.params.get("cycles_per_s", 0)
        else:
            b = run_bench("stitched", model, frames, work_dir / "sim", pause=pause, seed=seed, bp_frames=1,
                          probes=probes, fast_compile=True, stall_cycles=stall, stall_probes=stall_probes)
    _figures(res, b, fifos)
    res.wall_s = round(time.monotonic() - t0, 1)
    return res


def _build_names(before: dict[str, list[str]], stitched) -> dict[str, str]:
    """Stitched node name -> the build's name of that node. ``GiveUniqueNodeNames`` renumbers a segment's nodes per
    op type; FIFO/DWC insertion keeps the order of the other nodes, so the k-th node of a type is the k-th before."""
    seen: dict[str, int] = {}
    names = {}
    for n in stitched.graph.node:
        k = seen.get(n.op_type, 0)
        if n.op_type in before and k < len(before[n.op_type]):
            names[n.name] = before[n.op_type][k]
            seen[n.op_type] = k + 1
    return names


def segment_inputs(full, first: int, hw_in: list[dict[str, np.ndarray]], log=print) -> list[np.ndarray]:
    """The input tensor of HW node ``first`` for each frame: FINN's python execution of nodes 0 .. ``first - 1``
    of the HW graph ``full`` on the frame's HW-graph input (``hw_inputs``); the input itself when ``first`` is 0."""
    from samfpga.hw.sim.runner import finn_reference

    if first == 0:
        return [f["hw_in"] for f in hw_in]
    head = segment_graph(full, 0, first)
    out = []
    for k, f in enumerate(hw_in):
        t = time.monotonic()
        y = finn_reference(head, {head.graph.input[0].name: f["hw_in"]})
        out.append(y[head.graph.output[0].name])
        log(f"[stitched] frame {k}: FINN python execution of HW nodes 0..{first - 1} in {time.monotonic() - t:.1f} s")
    return out


def _figures(res: StitchedResult, b, fifos: list[FifoUse]) -> None:
    """Copy the bench result ``b`` (``runner.BenchResult``) into ``res``: comparison, cycles, FIFO fill."""
    if b.stalled:
        # which FIFOs were full when it stopped: the edges whose depth was too small
        depth = {f.name: f.depth for f in fifos}
        res.stalled = {"message": b.stalled["message"],
                       "full_fifos": {k: v for k, v in b.stalled["probes"].items() if v >= depth[k]}}
    res.words_compared, res.mismatches, res.first_mismatches = b.words_compared, b.mismatches, b.first_mismatches
    res.frame_done_cycles, res.cycles_backpressure, res.build_s = (b.frame_done_cycles, b.cycles_with_backpressure,
                                                                   b.build_s)
    res.latency_cycles = int(b.cycles_simulated)
    res.cycles_simulated = round(float(b.frame_interval), 1)
    for f in fifos:
        f.max_fill = int(b.probes.get(f.name, -1))
    res.fifos = [asdict(f) for f in fifos]
    if res.cycles_estimated and res.cycles_simulated:
        res.ratio = round(res.cycles_simulated / res.cycles_estimated, 4)
        res.within_tolerance = abs(res.ratio - 1.0) <= CYCLE_TOLERANCE
    res.error = b.error
    res.passed = not b.error and b.mismatches == 0 and b.words_compared > 0


def write_result(res: StitchedResult, path: Path, extra: dict | None = None) -> dict:
    """``res`` (plus ``extra``, e.g. the command) as JSON at ``path``, written atomically; returns the dict."""
    d = {**(extra or {}), **res.to_dict()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(d, indent=1) + "\n")
    tmp.replace(path)
    return d
