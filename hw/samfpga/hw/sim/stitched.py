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


@dataclass
class StitchedResult:
    """The figures of one stitched simulation (bench/results/sim_stitched_*.json)."""

    build_dir: str
    prefix_nodes: int | None = None  # only the first N HW nodes of the build were stitched
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


def prefix_graph(model, n_nodes: int):
    """The first ``n_nodes`` nodes of ``model`` (graph order) as a graph of its own: its output is the one tensor
    that crosses the cut (a cut inside a fork/join is refused, naming the crossing tensors)."""
    import copy

    from onnx import helper

    nodes = list(model.graph.node)
    if not 0 < n_nodes <= len(nodes):
        raise ValueError(f"--nodes {n_nodes}: the graph has {len(nodes)} nodes")
    inside = {t for n in nodes[:n_nodes] for t in n.output}
    outs = {o.name for o in model.graph.output}
    cross = sorted({t for n in nodes[n_nodes:] for t in n.input if t in inside} | (inside & outs))
    if len(cross) != 1:
        raise ValueError(f"cannot cut after node {n_nodes} ({nodes[n_nodes - 1].name}): tensors {cross} cross the cut")
    m = copy.deepcopy(model)
    del m.graph.node[n_nodes:]
    shape = m.get_tensor_shape(cross[0])
    for vi in [v for v in m.graph.value_info if v.name == cross[0]]:
        m.graph.value_info.remove(vi)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(cross[0], 1, shape))
    used = {t for n in m.graph.node for t in n.input}
    for init in [i for i in m.graph.initializer if i.name not in used]:
        m.graph.initializer.remove(init)
    return m


def insert_fifos(model, min_depth: int | None = None) -> tuple[object, dict[str, FifoUse]]:
    """A ``StreamingFIFO`` (impl_style rtl) on every HW-to-HW edge of ``model`` with the depth
    ``estimate_fifo_depths`` gives it. Returns the model and the FIFOs by their output tensor name."""
    from onnx import helper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.resources.fifo import DEFAULT_MIN_DEPTH, estimate_fifo_depths

    estimates = estimate_fifo_depths(model, DEFAULT_MIN_DEPTH if min_depth is None else min_depth)
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
                   prepare_ip: bool = True):
    """FIFOs, DWCs, RTL specialisation, unique names and HDL for ``model`` (see module doc; ``prepare_ip=False``:
    the same graph and names without generating HDL).

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
    model = model.transform(InsertDWC()).transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames())
    model, fifos = insert_fifos(model, min_depth)
    model = model.transform(SpecializeLayers(part)).transform(GiveUniqueNodeNames())
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
        if not pre.graph.node:  # the partition takes the graph input itself (pixel input): nothing to execute
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
                 n_nodes: int | None = None) -> StitchedResult:
    """Stitch, simulate and compare the build in ``build_dir`` on ``images`` (one frame each; see module doc).

    resume: reuse the simulator and bench spec an earlier run left in ``work_dir/sim`` (same build, same images):
        its result when it has one, else the simulation alone is run again (no HDL generation, no Verilator build).
    n_nodes: stitch only the first ``n_nodes`` HW nodes (``prefix_graph``); the cycle estimate is then the slowest
        of those nodes' expected cycles (``get_exp_cycles``, as the report computes it for the whole build).
    """
    from collections import Counter

    from samfpga.hw.sim.runner import BenchResult, cocotb_run, finn_estimated_cycles, read_result, run_bench

    t0 = time.monotonic()
    build_dir, work_dir = Path(build_dir).resolve(), Path(work_dir).resolve()
    boot_finn(work_dir / "finn_build")
    report = json.loads((build_dir / "report.json").read_text())
    part = report["board"]["part"]
    res = StitchedResult(build_dir=str(build_dir), frames=len(images))
    res.cycles_estimated = int(report["total"]["bottleneck_cycles"])
    res.bottleneck_node = str(report["total"].get("bottleneck_node", ""))
    clk_ns = 1000.0 / float(report["clock_mhz"])
    model = hw_graph(build_dir)
    if n_nodes is not None:
        from qonnx.custom_op.registry import getCustomOp

        import samfpga.hw.custom_ops  # noqa: F401  (own RTL ops in the graph)

        model = prefix_graph(model, n_nodes)
        slow = max(model.graph.node, key=lambda n: int(getCustomOp(n).get_exp_cycles()))
        res.cycles_estimated, res.bottleneck_node = int(getCustomOp(slow).get_exp_cycles()), slow.name
        res.prefix_nodes = n_nodes
    log(f"[stitched] {len(model.graph.node)} HW nodes; inserting FIFOs and DWCs"
        + (" (resuming: no HDL generation)" if resume else ", generating HDL ..."))
    model, fifos, res.dwcs = stitched_model(model, part, clk_ns, min_depth, prepare_ip=not resume)
    res.nodes = len(model.graph.node)
    res.op_types = dict(Counter(n.op_type for n in model.graph.node))
    res.latency_estimated, _ = finn_estimated_cycles(model)
    if resume:
        sim = work_dir / "sim"
        spec = json.loads((sim / "spec.json").read_text())
        if not Path(spec["result"]).is_file():
            log(f"[stitched] re-running the simulation built in {sim} ...")
            cocotb_run(sim, sim / "spec.json")
        b = BenchResult(name="stitched", layer_types=[], params={}, frames=int(spec.get("frames", 1)))
        read_result(b, Path(spec["result"]), sim)
        b.passed = b.mismatches == 0 and b.words_compared > 0
    else:
        frames = [{model.graph.input[0].name: f["hw_in"]} for f in hw_inputs(build_dir, images)]
        log(f"[stitched] {res.nodes} nodes ({len(fifos)} FIFOs, {res.dwcs} DWCs); Verilator build + simulation of "
            f"{len(frames)} frames ...")
        probes = {f.name: f"{f.name}_i.maxcount" for f in fifos}
        # deadlock watch: no input accepted and no output for longer than FINN's (pessimistic, sequential) latency
        b = run_bench("stitched", model, frames, work_dir / "sim", pause=pause, seed=seed, bp_frames=1,
                      probes=probes, fast_compile=True, stall_cycles=max(100_000, res.latency_estimated),
                      stall_probes={f.name: f"{f.name}_i.count" for f in fifos})
    _figures(res, b, fifos)
    res.wall_s = round(time.monotonic() - t0, 1)
    return res


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
