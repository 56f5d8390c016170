"""Build a FINN HW graph's RTL with Verilator and run the cocotb stream bench against FINN's python execution."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from samfpga.hw.custom_ops.looped import at_iteration, iterations, looped_ops
from samfpga.hw.sim.finn_boot import boot_finn
from samfpga.hw.sim.rtllib import dynload_sources, memstream_sources, stage_sources
from samfpga.hw.sim.stitch import _decoupled, _dynamic, generate_top
from samfpga.hw.sim.toolchain import prune_build, setup_verilator_env

BENCH_MODULE = "samfpga.hw.sim.axis_bench"
# Verilator lint classes FINN's library trips without affecting behaviour (width casts, unnamed generates, ...)
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-WIDTH", "-Wno-INITIALDLY", "-Wno-MULTIDRIVEN",
                  "-Wno-PINMISSING", "-Wno-SELRANGE", "--no-timing", "-O2", "--x-assign", "0", "--x-initial", "0"]


@dataclass
class BenchResult:
    """Outcome of one bench (one JSON entry of hw/reports/sim/report.json)."""

    name: str
    layer_types: list[str]
    params: dict
    words_compared: int = 0
    mismatches: int = -1
    cycles_simulated: int = 0
    cycles_with_backpressure: int = 0
    axilite_writes: int = 0
    finn_estimated_cycles: int = 0
    finn_max_node_cycles: int = 0
    cycles_ratio: float = 0.0
    cycles_ratio_max_node: float = 0.0
    frames: int = 1
    frame_done_cycles: list = field(default_factory=list)
    frame_interval: float = 0.0
    probes: dict = field(default_factory=dict)
    stalled: dict = field(default_factory=dict)
    wall_s: float = 0.0
    build_s: float = 0.0
    passed: bool = False
    error: str = ""
    first_mismatches: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# Verilator's runtime objects are the same for every design built with the same flags; compiling them takes about
# half of a small bench's build. They are kept in a per-process temporary folder (never in the repo, gone with the
# process) and copied into later build folders, where make finds them up to date. cocotb's verilator.o includes the
# design's header, so it is always rebuilt.
_RUNTIME_OBJS = ("verilated", "verilated_dpi", "verilated_threads", "verilated_vpi")
_runtime_cache: dict[str, Path] = {}


def _runtime_key() -> str:
    import hashlib
    import os

    text = "|".join([os.environ.get("PATH", "").split(os.pathsep)[0], os.environ.get("MAKEFLAGS", ""),
                     " ".join(VERILATOR_ARGS)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reuse_runtime_objects(build_dir: Path) -> bool:
    cache = _runtime_cache.get(_runtime_key())
    if cache is None:
        return False
    import os

    build_dir.mkdir(parents=True, exist_ok=True)
    # Verilator regenerates Vtop.mk (a prerequisite of these objects) after this copy, so the copies are dated
    # an hour ahead to stay newer than it; make may warn about clock skew, harmlessly
    future = time.time() + 3600
    for name in _RUNTIME_OBJS:
        for ext in (".o", ".d"):
            dst = build_dir / f"{name}{ext}"
            shutil.copy(cache / f"{name}{ext}", dst)
            os.utime(dst, (future, future))
    return True


def _stash_runtime_objects(build_dir: Path) -> None:
    import atexit
    import tempfile

    key = _runtime_key()
    if key in _runtime_cache or not all((build_dir / f"{n}.o").is_file() for n in _RUNTIME_OBJS):
        return
    cache = Path(tempfile.mkdtemp(prefix="samfpga_verilated_rt_"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    for name in _RUNTIME_OBJS:
        for ext in (".o", ".d"):
            shutil.copy(build_dir / f"{name}{ext}", cache / f"{name}{ext}")
    _runtime_cache[key] = cache


def _pack(arr: np.ndarray, op, index: int, is_input: bool) -> tuple[list[int], int, int]:
    """Words of a node stream for tensor ``arr`` (FINN's rtlsim packing); returns (words, padded bits, mask)."""
    from finn.util.data_packing import npy_to_rtlsim_input

    if is_input:
        shape = op.get_folded_input_shape(index)
        dt = op.get_input_datatype(index)
        width, padded = op.get_instream_width(index), op.get_instream_width_padded(index)
    else:
        shape = op.get_folded_output_shape(index)
        dt = op.get_output_datatype(index)
        width, padded = op.get_outstream_width(index), op.get_outstream_width_padded(index)
    words = npy_to_rtlsim_input(arr.reshape(shape), dt, padded)
    return [int(w) for w in words], padded, (1 << width) - 1


def finn_estimated_cycles(model) -> tuple[int, int]:
    """FINN's estimate for the graph: (critical-path latency cycles, cycles of the slowest node).

    Both come from ``finn.analysis.fpgadataflow.dataflow_performance`` (built on each node's ``get_exp_cycles``).
    """
    from finn.analysis.fpgadataflow.dataflow_performance import dataflow_performance
    from finn.transformation.fpgadataflow.annotate_cycles import AnnotateCycles

    perf = model.transform(AnnotateCycles()).analysis(dataflow_performance)
    return int(perf["critical_path_cycles"]), int(perf["max_cycles"])


def run_bench(name: str, model, inputs: dict[str, np.ndarray] | list[dict[str, np.ndarray]], work_dir: Path,
              params: dict | None = None, pause: float = 0.3, seed: int = 0, tamper: int = 0,
              axilite: tuple[str, list[tuple[int, int]]] | None = None, bp_frames: int | None = None,
              probes: dict[str, str] | None = None, fast_compile: bool = True, stall_cycles: int | None = None,
              stall_probes: dict[str, str] | None = None, ddr: dict[str, tuple[bytes, list[tuple[int, int]]]] | None = None,
              flush_frames: int = 0) -> BenchResult:
    """Simulate ``model`` (FINN HW graph after PrepareIP) on ``inputs`` and compare with FINN's execution.

    inputs: graph input name -> float32 array of integers in the tensor's FINN datatype, shape = normal shape;
        or a list of such dicts: frames streamed back to back (the free-running pass measures the frame interval).
        Frame k is compared with the python execution of iteration k of the graph's looped layers
        (``samfpga.hw.custom_ops.looped``); both passes stream every frame, so the count of frames should be a
        multiple of the layers' iterations.
    bp_frames: how many of the frames (from the first) the random-backpressure pass streams (default all).
    probes: {label: "instance.signal"} of ``sim_top`` read after the run (into ``BenchResult.probes``).
    fast_compile: compile the verilated C++ at -O0 (quicker builds of small benches; slower simulation).
    stall_cycles, stall_probes: deadlock watch (``axis_bench``): stop after that many cycles without progress and
        record ``stall_probes`` ({label: "instance.signal"}) in ``BenchResult.stalled``.
    work_dir: build folder (Verilator objects, staged and patched HDL, spec/result JSON); created if missing.
    tamper: flip the lowest bit of the first ``tamper`` expected words of ``m_axis_0`` (self-check that the
        comparison catches wrong words; a tampered bench must fail).
    axilite: (node name, [(byte address, 32-bit word), ...]) written to that node's AXI-Lite before streaming.
    flush_frames: after the AXI-Lite writes, stream the first frame this many times and drop the output, as the
        package's driver does after writing runtime weights (a memstream prefetches words before they are written).
    ddr: {token-batched node name: (DDR image at address 0, [(register offset, word), ...])}: an AXI RAM holding the
        image on the node's ``m_axi_gmem`` and the writes on its ``s_axi_control`` before streaming (every
        ``TokenBatchMVU_rtl`` of the model needs one).
    """
    boot_finn()
    setup_verilator_env(fast_compile=fast_compile)
    t0 = time.monotonic()
    frames = list(inputs) if isinstance(inputs, list) else [inputs]
    for op in looped_ops(model):
        n = iterations(op)
        if len(frames) % n or (bp_frames is not None and bp_frames % n):
            raise ValueError(f"{op.onnx_node.name} serves {n} iterations: stream a multiple of {n} frames in each "
                             f"pass (got {len(frames)}, backpressure pass {bp_frames or len(frames)})")
    res = BenchResult(name=name, layer_types=[n.op_type for n in model.graph.node], params=params or {},
                      frames=len(frames))
    res.finn_estimated_cycles, res.finn_max_node_cycles = finn_estimated_cycles(model)
    # frame k of a graph with looped layers (rolled-body parameter sets) is their iteration k's pass
    expected = [finn_reference(at_iteration(model, k), f) for k, f in enumerate(frames)]
    at_iteration(model, 0)
    spec = _stream_spec(model, frames, expected, pause, seed, tamper,
                        res.finn_estimated_cycles + (len(frames) - 1) * res.finn_max_node_cycles)
    spec["frames"] = len(frames)
    spec["bp_frames"] = len(frames) if bp_frames is None else max(1, min(bp_frames, len(frames)))
    spec["probes"] = dict(probes or {})
    if stall_cycles:
        spec["stall_cycles"] = int(stall_cycles)
        spec["stall_probes"] = dict(stall_probes or {})

    work_dir = Path(work_dir).resolve()  # the simulator runs in work_dir/run; paths handed to it are absolute
    if work_dir.exists():
        shutil.rmtree(work_dir)
    staged = stage_hdl(model, work_dir, [axilite[0]] if axilite else ())
    if axilite:
        spec["axilite_port"] = f"{axilite[0]}_s_axilite"
        spec["axilite_writes"] = [[int(a), int(w)] for a, w in axilite[1]]
    spec["flush_frames"] = int(flush_frames)
    from samfpga.hw.sim.stitch import token_batch_ports

    missing = sorted(set(token_batch_ports(model)) - set(ddr or {}))
    if missing:
        raise ValueError(f"token-batched nodes {missing} need a DDR image and register writes (ddr=...)")
    spec["ddr"] = []
    for node_name, (image, writes) in (ddr or {}).items():
        path = work_dir / f"ddr_{node_name}.bin"
        path.write_bytes(image)
        spec["ddr"].append({"ram": f"{node_name}_m_axi_gmem", "axil": f"{node_name}_s_axi_control",
                            "image": str(path), "writes": [[int(a), int(w)] for a, w in writes]})
    spec_path = work_dir / "spec.json"
    spec["result"] = str(work_dir / "result.json")
    spec_path.write_text(json.dumps(spec))
    (work_dir / "run").mkdir(parents=True, exist_ok=True)

    _build_and_simulate(res, staged, work_dir, spec_path)
    read_result(res, Path(spec["result"]), work_dir)
    res.passed = not res.error and res.mismatches == 0 and res.words_compared > 0
    res.wall_s = round(time.monotonic() - t0, 2)
    return res


def finn_reference(model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """FINN's python execution of ``model`` on ``inputs``: graph output name -> array (the expected streams)."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        # RTL nodes execute through their python model when not set to rtlsim (FINN+ rtlsim needs xsim)
        op = getCustomOp(node)
        if "exec_mode" in op.get_nodeattr_types():
            op.set_nodeattr("exec_mode", "cppsim")
    return execute_onnx(model, dict(inputs), return_full_exec_context=False)


def _stream_spec(model, inputs: list[dict[str, np.ndarray]], expected: list[dict[str, np.ndarray]], pause: float,
                 seed: int, tamper: int, estimated_cycles: int) -> dict:
    """The bench spec (axis_bench's JSON): input and expected output words per stream (frames concatenated),
    widths, masks, timeout."""
    from qonnx.custom_op.registry import getCustomOp

    consumers = {}
    producers = {}
    for node in model.graph.node:
        for k, t in enumerate(node.input):
            consumers.setdefault(t, (node, k))
        for k, t in enumerate(node.output):
            producers[t] = (node, k)
    spec = {"inputs": {}, "expected": {}, "masks": {}, "widths": {}, "pause": pause, "seed": seed}
    for i, t in enumerate(m.name for m in model.graph.input):
        node, k = consumers[t]
        words = []
        for f in inputs:
            w, padded, _ = _pack(np.asarray(f[t], dtype=np.float32), getCustomOp(node), k, True)
            words += w
        spec["inputs"][f"s_axis_{i}"] = [str(w) for w in words]
        spec["widths"][f"s_axis_{i}"] = padded
    n_out_words = 0
    for i, t in enumerate(t.name for t in model.graph.output):
        node, k = producers[t]
        words = []
        for f in expected:
            w, padded, mask = _pack(np.asarray(f[t], dtype=np.float32), getCustomOp(node), k, False)
            words += w
        spec["expected"][f"m_axis_{i}"] = [str(w) for w in words]
        spec["masks"][f"m_axis_{i}"] = str(mask)
        spec["widths"][f"m_axis_{i}"] = padded
        n_out_words += len(words)
    if tamper:
        exp = spec["expected"]["m_axis_0"]
        for i in range(min(tamper, len(exp))):
            exp[i] = str(int(exp[i]) ^ 1)
    n_in_words = sum(len(w) for w in spec["inputs"].values())
    spec["timeout_cycles"] = int(20 * (estimated_cycles + n_in_words + n_out_words) / (1 - pause) ** 2 + 20000)
    return spec


def stage_hdl(model, work_dir: Path, axilite_nodes: Sequence[str] = ()) -> list[Path]:
    """Every node's HDL (memstream / dynamic-load wrappers included) staged and patched under work_dir/hdl, plus
    the generated top level; memory init files copied to work_dir/run. The runtime-writeable memories of
    ``axilite_nodes`` stay empty and their AXI-Lite ports are the top's ``<node>_s_axilite_*`` (the bench loads
    them); the others are preloaded (``preload_runtime_memories``). Returns the source list, in order."""
    from qonnx.custom_op.registry import getCustomOp

    src_dir = work_dir / "hdl"
    files: list[Path] = []
    for node in model.graph.node:
        op = getCustomOp(node)
        files += [Path(f) for f in op.get_rtl_file_list(abspath=True)]
        code_dir = Path(op.get_nodeattr("code_gen_dir_ipgen"))
        if _decoupled(op):
            # weights (MVAU/VVAU: <node>_memstream_wrapper) or Requant parameters (<node>_params_memstream_wrapper)
            files += memstream_sources() + sorted(code_dir.glob(f"{node.name}_*memstream_wrapper.v"))
        if _dynamic(op):
            files += dynload_sources() + [code_dir / f"{node.name}_dynamic_load_wrapper.v"]
        # memory init files ($readmemh with paths relative to the simulator's working directory)
        for dat in code_dir.glob("*.dat"):
            (work_dir / "run").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dat, work_dir / "run" / dat.name)
    # SystemVerilog packages must precede their users on Verilator's command line
    files.sort(key=lambda p: 0 if p.stem.endswith("_pkg") else 1)
    staged = stage_sources(files, src_dir)
    for name in axilite_nodes:  # empty as the board's URAM, whatever FINN placed them in: the bench writes them
        for wrapper in src_dir.glob(f"{name}_memstream_wrapper.v"):
            wrapper.write_text(_ANY_INIT.sub(r'\1""', wrapper.read_text(), count=1))
        for dat in (work_dir / "run").glob(f"{name}_threshs_*.dat"):
            dat.write_text("".join("0" * len(w) + "\n" for w in dat.read_text().split()))
    preload_runtime_memories(model, src_dir, skip=axilite_nodes)
    top = src_dir / "sim_top.sv"
    generate_top(model, top, axilite_nodes=axilite_nodes)
    staged.append(top)
    return staged


_EMPTY_INIT = re.compile(r'(parameter\s+INIT_FILE\s*=\s*)""')
_ANY_INIT = re.compile(r'(parameter\s+INIT_FILE\s*=\s*)"[^"]*"')


def preload_runtime_memories(model, src_dir: Path, skip: Sequence[str] = ()) -> list[str]:
    """Initialise, in the staged HDL under ``src_dir``, the memories the driver loads at run time.

    FINN generates a memstream without an init file where the bitstream cannot initialise the memory (URAM on Zynq:
    ``runtime_writeable_weights``); on the board the driver writes the build's words over AXI-Lite before the first
    frame. The bench loads the same words (the node's ``memblock.dat`` / ``params_memblock.dat``) at time 0 instead,
    except for the nodes in ``skip``, whose AXI-Lite the bench programs itself. Returns the names of the preloaded
    wrappers.
    """
    from qonnx.custom_op.registry import getCustomOp

    done = []
    for node in model.graph.node:
        op = getCustomOp(node)
        if node.name in skip or not _decoupled(op):
            continue
        code_dir = Path(op.get_nodeattr("code_gen_dir_ipgen"))
        for wrapper in sorted(code_dir.glob(f"{node.name}_*memstream_wrapper.v")):
            staged = src_dir / wrapper.name
            text = staged.read_text()
            if not _EMPTY_INIT.search(text):
                continue
            dat = code_dir / ("params_memblock.dat" if "_params_" in wrapper.name else "memblock.dat")
            if not dat.is_file():
                raise FileNotFoundError(f"{node.name}: runtime-loaded memory without its words ({dat})")
            staged.write_text(_EMPTY_INIT.sub(lambda m, d=dat: f'{m.group(1)}"{d}"', text, count=1))
            done.append(wrapper.name)
    return done


def verilator_build(staged: list[Path], work_dir: Path, toplevel: str = "sim_top") -> None:
    """Verilator build of ``toplevel`` (the generated ``sim_top`` unless a wrapper around it is given) from the
    ``staged`` sources into ``work_dir/sim_build``."""
    from cocotb_tools.runner import get_runner

    _reuse_runtime_objects(work_dir / "sim_build")
    get_runner("verilator").build(sources=staged, hdl_toplevel=toplevel, build_dir=work_dir / "sim_build",
                                  build_args=VERILATOR_ARGS, defines={"FINN_SIMULATION": 1}, always=True,
                                  log_file=work_dir / "build.log")
    _stash_runtime_objects(work_dir / "sim_build")
    prune_build(work_dir / "sim_build")


def cocotb_run(work_dir: Path, spec_path: Path) -> None:
    """One run of the stream bench (``axis_bench``) on the design built in ``work_dir`` with the spec file."""
    from cocotb_tools.runner import get_runner

    (work_dir / "run").mkdir(parents=True, exist_ok=True)
    # a fresh runner object knows no sources: the top level's language is given, not inferred from them
    get_runner("verilator").test(test_module=BENCH_MODULE, hdl_toplevel="sim_top", hdl_toplevel_lang="verilog",
                                 build_dir=work_dir / "sim_build",
                                 test_dir=work_dir / "run", extra_env={"SAMFPGA_BENCH_SPEC": str(spec_path)},
                                 results_xml=str(work_dir / "results.xml"), log_file=work_dir / "sim.log")


def _build_and_simulate(res: BenchResult, staged: list[Path], work_dir: Path, spec_path: Path) -> None:
    """Verilator build and cocotb run of the bench; a failure is recorded in ``res.error``."""
    tb = time.monotonic()
    try:
        verilator_build(staged, work_dir)
        res.build_s = round(time.monotonic() - tb, 2)
        cocotb_run(work_dir, spec_path)
    except (Exception, SystemExit) as exc:
        # a failed build/sim is a failed bench, reported with its log location (the runner exits on a
        # failing cocotb test, e.g. a mismatch, whose details are still in the result file)
        res.error = f"{type(exc).__name__}: {exc} (logs in {work_dir})"


def read_result(res: BenchResult, result_path: Path, work_dir: Path) -> None:
    """Copy the bench's result file (words compared, mismatches, cycles) into ``res``."""
    if result_path.is_file():
        r = json.loads(result_path.read_text())
        res.words_compared = r["words_compared"]
        res.mismatches = r["mismatches"]
        res.first_mismatches = r["first_mismatches"]
        res.cycles_simulated = r["cycles"]
        res.cycles_with_backpressure = r["cycles_backpressure"]
        res.axilite_writes = r.get("axilite_writes", 0)
        res.frame_done_cycles = r.get("frame_done_cycles", [])
        res.frame_interval = r.get("frame_interval", 0.0)
        res.probes = r.get("probes", {})
        if r.get("stalled"):
            res.stalled = {"message": r["stalled"], "probes": r.get("stall_probes", {})}
        if res.finn_estimated_cycles:
            res.cycles_ratio = round(res.cycles_simulated / res.finn_estimated_cycles, 3)
        if res.finn_max_node_cycles:
            res.cycles_ratio_max_node = round(res.cycles_simulated / res.finn_max_node_cycles, 3)
    elif not res.error:
        res.error = f"simulation wrote no result (logs in {work_dir})"
