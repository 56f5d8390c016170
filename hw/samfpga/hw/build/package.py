"""From a build directory to what the board needs: the integer reference graph and the driver description.

``export_build(BUILD_DIR, OUT)`` writes
    OUT/graph.json, OUT/weights.npz   the build's final graph (``samfpga-intgraph``, executed by samfpga.intexec
                                      without FINN): host layers before the accelerator (from FINN's dataflow
                                      parent), the HW layers of the last intermediate model, host layers after
    OUT/driver.json                   the driver description (``samfpga-driver``): board, part, clock, DMA names
                                      and address map, I/O datatypes, normal/folded/packed shapes, output scale
    OUT/runtime_weights/<node>.dat    the words of each runtime-writeable layer (memories in URAM, which the
                                      bitstream cannot initialise), written by the driver over AXI-Lite
It reads what ``samfpga.hw.build.flow`` wrote (``intermediate/NN_<step>.onnx``, ``build_config.json``,
``finn/intermediate_models/dataflow_parent.onnx``) and changes nothing there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from samfpga.backends.rolled_host import align_up
from samfpga.hw import HW_DOMAIN
from samfpga.hw.boards import BOARDS

#: Base addresses of the AXI-Lite control ports of the DMA engines in the block design (tcl generator uses the
#: same): PL ranges behind the PS's general-purpose master ports (Zynq US+ M_AXI_HPM0_FPD, Zynq-7000 M_AXI_GP0).
PL_BASE = {"zynq_us+": 0xA000_0000, "zynq7": 0x4000_0000}
DMA_RANGE = 0x1_0000


def pl_base(family: str) -> int:
    """``PL_BASE`` of board family ``family``; ValueError naming the families that have one."""
    if family not in PL_BASE:
        raise ValueError(f"no PL address base for the board family {family!r} (have: {', '.join(PL_BASE)})")
    return PL_BASE[family]

#: Attributes that are build-machine paths or simulation state, not part of the computation.
_SKIP_ATTRS = {"code_gen_dir_ipgen", "code_gen_dir_cppsim", "ipgen_path", "ip_path", "ip_vlnv", "executable_path",
               "rtlsim_so", "rtlsim_trace", "exec_mode", "backend", "res_estimate", "cycles_estimate",
               "cycles_rtlsim", "gen_top_module", "model"}


class PackageError(ValueError):
    """The build directory lacks something the package needs (message names the file)."""


def final_model_path(build_dir: Path) -> Path:
    inter = sorted((build_dir / "intermediate").glob("*.onnx"))
    if not inter:
        raise PackageError(f"{build_dir}/intermediate: no intermediate models (not a samfpga build directory?)")
    return inter[-1]


def _op_name(node) -> str:
    op = node.op_type
    for style in ("_hls", "_rtl"):
        if node.domain.startswith(HW_DOMAIN) and op.endswith(style):
            return op[: -len(style)]
    return op


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        if a.name in _SKIP_ATTRS:
            continue
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, list):
            v = [x.decode() if isinstance(x, bytes) else x for x in v]
        elif not isinstance(v, (int, float, str)):
            continue  # tensors/graphs: not used by any layer's arithmetic here
        out[a.name] = v
    return out


def _dtype(model, t: str) -> str:
    dt = model.get_tensor_datatype(t)
    return dt.name if dt is not None else "FLOAT32"


def _add_tensor(spec: dict, model, t: str) -> None:
    shape = model.get_tensor_shape(t)
    if shape is None:
        init = model.get_initializer(t)
        shape = list(init.shape) if init is not None else None
    if shape is None:
        raise PackageError(f"tensor {t} has no shape in the build's graph")
    spec["tensors"][t] = {"shape": [int(s) for s in shape], "dtype": _dtype(model, t)}


def intgraph_spec(final, parent=None) -> tuple[dict, dict[str, np.ndarray]]:
    """``(graph.json dict, weights)`` of the final HW graph ``final`` (ModelWrapper), with the host nodes of
    ``parent`` (FINN's dataflow parent; its StreamingDataflowPartition node stands for ``final``) around it."""
    spec: dict = {"format": "samfpga-intgraph", "version": 1, "tensors": {}, "nodes": []}
    weights: dict[str, np.ndarray] = {}

    def add_node(model, node, on: str, rename: dict[str, str]) -> None:
        ins = [rename.get(t, t) for t in node.input if t]
        outs = [rename.get(t, t) for t in node.output]
        for t_model, t in zip([t for t in node.input if t], ins, strict=True):
            init = model.get_initializer(t_model)
            if init is not None:
                weights[t] = np.asarray(init)
            _add_tensor(spec, model, t_model)
            spec["tensors"][t] = spec["tensors"].pop(t_model) if t != t_model else spec["tensors"][t]
        for t_model, t in zip(node.output, outs, strict=True):
            _add_tensor(spec, model, t_model)
            if t != t_model:
                spec["tensors"][t] = spec["tensors"].pop(t_model)
        spec["nodes"].append({"name": node.name, "op": _op_name(node), "inputs": ins, "outputs": outs,
                              "attrs": _attrs(node), "on": on})

    hw_in, hw_out = final.graph.input[0].name, final.graph.output[0].name
    if parent is None:
        hw_nodes = [n for n in final.graph.node if n.domain.startswith(HW_DOMAIN)]
        if [n for n in final.graph.node if not n.domain.startswith(HW_DOMAIN)]:
            # several HW segments: host nodes stay in place; the accelerator is the first..last HW node
            pass
        for n in final.graph.node:
            add_node(final, n, "hw" if n.domain.startswith(HW_DOMAIN) else "host", {})
        spec["input"], spec["output"] = hw_in, hw_out
        first, last = hw_nodes[0], hw_nodes[-1]
        spec["accelerator"] = {"input": first.input[0], "output": last.output[0]}
    else:
        sdp = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
        if len(sdp) != 1:
            raise PackageError(f"dataflow parent has {len(sdp)} StreamingDataflowPartition nodes, expected 1")
        sdp = sdp[0]
        rename = {hw_in: sdp.input[0], hw_out: sdp.output[0]}
        for n in parent.graph.node:
            if n is sdp:
                for m in final.graph.node:
                    add_node(final, m, "hw", rename)
            else:
                add_node(parent, n, "host", {})
        spec["input"], spec["output"] = parent.graph.input[0].name, parent.graph.output[0].name
        spec["accelerator"] = {"input": sdp.input[0], "output": sdp.output[0]}
    # the graph input's own shape/dtype (no producer)
    return spec, weights


def _io_entry(op, model, tensor: str, ind: int, direction: str, dma: str) -> dict:
    dt = _dtype(model, tensor)
    if direction == "in":
        normal, folded = op.get_normal_input_shape(ind), op.get_folded_input_shape(ind)
    else:
        normal, folded = op.get_normal_output_shape(ind), op.get_folded_output_shape(ind)
    from qonnx.core.datatype import DataType

    bits = DataType[dt].bitwidth()
    packed = [*list(folded[:-1]), math.ceil(int(folded[-1]) * bits / 8)]
    return {"tensor": tensor, "dtype": dt, "bits": bits, "shape_normal": [int(s) for s in normal],
            "shape_folded": [int(s) for s in folded], "shape_packed": [int(s) for s in packed],
            "stream_width_bits": int(folded[-1]) * bits, "dma": dma}


def driver_description(final, cfg: dict, spec: dict, words: dict[str, np.ndarray] | None = None) -> dict:
    """The ``samfpga-driver`` dict for the final HW graph of a build with config ``cfg`` (build_config.json);
    ``words``, when given, receives each runtime-writeable layer's words (``runtime_weights_description``)."""
    from qonnx.custom_op.registry import getCustomOp

    board = BOARDS[cfg["board"]]
    hw = [n for n in final.graph.node if n.domain.startswith(HW_DOMAIN)]
    first, last = getCustomOp(hw[0]), getCustomOp(hw[-1])
    base = PL_BASE.get(board.family)
    if base is None:
        raise PackageError(f"board {board.name}: no PYNQ DMA shell for family {board.family}")
    inp = _io_entry(first, final, hw[0].input[0], 0, "in", "idma0")
    out = _io_entry(last, final, hw[-1].output[0], 0, "out", "odma0")
    post = [n for n in spec["nodes"] if n["on"] == "host" and n["op"] == "Mul"]
    tb = token_batch_description(final, base + 2 * DMA_RANGE)
    return {
        "format": "samfpga-driver", "version": 1,
        "board": board.name, "part": board.part, "family": board.family,
        "platform": "zynq-iodma", "fclk_mhz": float(cfg.get("clock_mhz") or board.clock_mhz), "batch_size": 1,
        "inputs": [inp], "outputs": [out],
        "dma": {"idma0": {"base": base, "range": DMA_RANGE, "direction": "mm2s"},
                "odma0": {"base": base + DMA_RANGE, "range": DMA_RANGE, "direction": "s2mm"}},
        "accelerator": {"name": "StreamingDataflowPartition_0", "nodes": len(hw),
                        "first": hw[0].name, "last": hw[-1].name},
        "output_scale_nodes": [n["name"] for n in post],
        "runtime_weights": runtime_weights_description(
            final, base + (2 + len(tb.get("token_batch", {}).get("units", []))) * DMA_RANGE, words),
        **tb,
    }


#: the token-batched layers' DDR image in a package (written by the build's token_batch step)
DDR_IMAGE = "ddr_weights.bin"


def axilite_ports(final) -> dict[str, str]:
    """{HW node name: its AXI-Lite interface as the stitched IP names it}: FINN's CreateStitchedIP numbers the
    external AXI-Lite interfaces in graph order (``<interface>_<k>``)."""
    from qonnx.custom_op.registry import getCustomOp

    ports, k = {}, 0
    for n in final.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        for name in getCustomOp(n).get_verilog_top_module_intf_names().get("axilite", []):
            ports[n.name] = f"{name}_{k}"
            k += 1
    return ports


#: folder of a package's runtime weight files (one per runtime-writeable layer, 32-bit hex words, one per line)
RUNTIME_DIR = "runtime_weights"


def runtime_words(op, model) -> np.ndarray:
    """The 32-bit words the driver writes from AXI-Lite address 0 of runtime-writeable layer ``op``: FINN's
    ``decoupled_runtime`` file of its weights or thresholds (input 1), as FINN's own driver writes it."""
    import tempfile

    from samfpga.hw.custom_ops import looped

    name = op.onnx_node.name
    values = model.get_initializer(op.onnx_node.input[1])
    if values is None:
        raise PackageError(f"{name}: runtime-writeable, but its input 1 is not an initializer")
    if "loop_iterations" in op.get_nodeattr_types() and looped.iterations(op) > 1:
        lines = op.runtime_words(model)  # a rolled body's layer: every iteration's set, as its memory holds them
    else:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "runtime.dat"
            op.make_weight_file(values, "decoupled_runtime", str(path))
            lines = path.read_text().split()
    if any(len(w) > 8 and int(w, 16) >> 32 for w in lines):
        raise PackageError(f"{name}: runtime words wider than 32 bits (thresholds over 32 bits are not supported "
                           "by the AXI-Lite writes)")
    return np.array([int(w, 16) for w in lines], dtype=np.uint32)


def runtime_writeable_nodes(model) -> list:
    """The HW nodes of ``model`` (graph order) whose memories the bitstream cannot initialise
    (``runtime_writeable_weights=1``: URAM on Zynq): the driver writes their words over AXI-Lite."""
    from qonnx.custom_op.registry import getCustomOp

    out = []
    for n in model.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        op = getCustomOp(n)
        if "runtime_writeable_weights" in op.get_nodeattr_types() and op.get_nodeattr("runtime_writeable_weights"):
            out.append(n)
    return out


def axilite_range(words: int) -> int:
    """The AXI-Lite range of a runtime-writeable layer of ``words`` 32-bit words: the power of two, at least 4 KiB,
    that holds them."""
    return max(0x1000, 1 << (4 * words - 1).bit_length())


def runtime_weights_description(final, regs_base: int, words: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Per runtime-writeable HW layer (``runtime_writeable_weights=1``, graph order): its AXI-Lite port, the address
    the block design gives it (from ``regs_base``, each aligned to its range: the power of two, at least 4 KiB,
    that holds its words), its word count and file in the package. ``words``, when given, receives each layer's
    words (``runtime_words``, computed once here) for ``write_runtime_weights``."""
    from qonnx.custom_op.registry import getCustomOp

    ports = axilite_ports(final)
    out, addr = [], regs_base
    for n in runtime_writeable_nodes(final):
        op = getCustomOp(n)
        if n.name not in ports:
            raise PackageError(f"{n.name}: runtime-writeable, but FINN gives it no AXI-Lite interface "
                               f"(mem_mode {op.get_nodeattr('mem_mode') if 'mem_mode' in op.get_nodeattr_types() else '-'})")
        w = runtime_words(op, final)
        if words is not None:
            words[n.name] = w
        rng = axilite_range(len(w))
        addr = align_up(addr, rng)
        out.append({"name": n.name, "axilite_port": ports[n.name], "regs": addr, "range": rng, "words": len(w),
                    "file": f"{RUNTIME_DIR}/{n.name}.dat"})
        addr += rng
    return out


def write_runtime_weights(entries: list[dict], words: dict[str, np.ndarray], out: Path) -> None:
    """The files of ``runtime_weights_description`` entries under ``out`` (hex words, one per line), from the
    ``words`` that description collected."""
    for e in entries:
        path = out / e["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{int(w):08x}\n" for w in words[e["name"]]))


def token_batch_description(final, regs_base: int) -> dict:
    """``{"token_batch": ...}`` for a final graph with token-batched layers (else ``{}``): the DDR image's file, and
    per unit its AXI-Lite register block's address (after the DMAs, one ``DMA_RANGE`` each), its weights' offset in
    the image and the register values the driver writes (``samfpga.backends.unit_regs.TOKEN_BATCH_MVU``; BASE is
    the image buffer's address plus ``ddr_offset``)."""
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.custom_ops.token_batch import unit_summary

    units = []
    lite = axilite_ports(final)
    n_mm = 0  # FINN's CreateStitchedIP numbers the external interfaces in graph order
    for n in final.graph.node:
        if not n.domain.startswith(HW_DOMAIN):
            continue
        op = getCustomOp(n)
        intf = op.get_verilog_top_module_intf_names()
        if n.op_type.startswith("TokenBatchMVU"):
            s = unit_summary(op)
            units.append({"name": n.name, "regs": regs_base + len(units) * DMA_RANGE, "range": DMA_RANGE,
                          **{k: s[k] for k in ("ddr_offset", "bytes", "stride", "iters", "tokens")},
                          "axilite_port": lite[n.name], "aximm_port": f"m_axi_gmem{n_mm}"})
        n_mm += len(intf.get("aximm", []))
    return {"token_batch": {"image": DDR_IMAGE, "units": units}} if units else {}


def load_build(build_dir: str | Path):
    """(final ModelWrapper, dataflow parent or None, build_config dict) of a build directory."""
    from samfpga.hw.finn_env import boot

    d = Path(build_dir)
    if not d.is_dir():
        raise PackageError(f"{d}: no such build directory")
    cfgp = d / "build_config.json"
    if not cfgp.is_file():
        raise PackageError(f"{cfgp}: missing (not a samfpga build directory)")
    boot()
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401  (own ops' classes for getCustomOp)

    final = ModelWrapper(str(final_model_path(d)))
    pp = d / "finn" / "intermediate_models" / "dataflow_parent.onnx"
    parent = ModelWrapper(str(pp)) if pp.is_file() and all(
        n.domain.startswith(HW_DOMAIN) for n in final.graph.node) else None
    return final, parent, json.loads(cfgp.read_text())


def pixel_input_info(build_dir: str | Path) -> dict | None:
    """The uint8 input's description the build's ``pixel_input`` step wrote (layout, pad codes, the normalisation
    folded), or None for a build whose accelerator takes the normalised float image."""
    from samfpga.hw.build.pixel_input import PIXEL_INPUT_FILE

    p = Path(build_dir) / PIXEL_INPUT_FILE
    return json.loads(p.read_text()) if p.is_file() else None


def export_build(build_dir: str | Path, out: str | Path) -> dict:
    """Write graph.json, weights.npz and driver.json for ``build_dir`` into ``out`` (created), with the DDR image
    of token-batched layers (checked against the final graph) and the runtime weight files; returns the driver
    description."""
    final, parent, cfg = load_build(build_dir)
    data = None
    if any(n.op_type.startswith("TokenBatchMVU") for n in final.graph.node):
        from samfpga.hw.custom_ops.token_batch import ddr_image

        src = Path(build_dir) / DDR_IMAGE
        if not src.is_file():
            raise PackageError(f"{src}: missing (the build's token_batch step writes it)")
        data = src.read_bytes()
        want = ddr_image(final)
        if data[:len(want)] != want or any(data[len(want):]):
            raise PackageError(f"{src}: does not hold the final graph's token-batched weights (rebuild)")
    return write_export(final, parent, cfg, Path(out), data)


def write_export(final, parent, cfg: dict, out: Path, ddr: bytes | None = None) -> dict:
    """The package files of a final HW graph (and its dataflow parent or None) under ``out`` (created): graph.json,
    weights.npz, driver.json, ``ddr`` as the token-batched layers' DDR image, the runtime weight files; returns
    the driver description."""
    spec, weights = intgraph_spec(final, parent)
    words: dict[str, np.ndarray] = {}
    drv = driver_description(final, cfg, spec, words)
    out.mkdir(parents=True, exist_ok=True)
    (out / "graph.json").write_text(json.dumps(spec, indent=1) + "\n")
    np.savez_compressed(out / "weights.npz", **weights)
    if "token_batch" in drv:
        if ddr is None:
            raise PackageError("the graph has token-batched layers: their DDR image is needed")
        (out / DDR_IMAGE).write_bytes(ddr)
    write_runtime_weights(drv["runtime_weights"], words, out)
    (out / "driver.json").write_text(json.dumps(drv, indent=2) + "\n")
    return drv


def python_view(model):
    """Copy of ``model`` with each specialised layer (``X_hls`` / ``X_rtl``) mapped to its HW abstraction ``X``,
    whose Python execution FINN provides (HLS layers otherwise execute only in cppsim/rtlsim)."""
    import copy

    m = copy.deepcopy(model)
    for n in m.graph.node:
        for style in ("hls", "rtl"):
            if n.domain == f"{HW_DOMAIN}.{style}" and n.op_type.endswith(f"_{style}"):
                n.op_type = n.op_type[: -len(style) - 1]
                n.domain = HW_DOMAIN
    return m


def finn_execute(build_dir: str | Path, x: np.ndarray, work: str | Path) -> np.ndarray:
    """FINN's Python execution (qonnx/finn ``execute_onnx``) of the build's whole graph on ``x``: the dataflow
    parent with its partition node pointing at the final HW graph (``python_view``), or the final graph alone."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    final, parent, _ = load_build(build_dir)
    view = python_view(final)
    if parent is None:
        model = view
    else:
        Path(work).mkdir(parents=True, exist_ok=True)
        child = Path(work) / "final_python_view.onnx"
        view.save(str(child))
        model = parent
        for n in model.graph.node:
            if n.op_type == "StreamingDataflowPartition":
                getCustomOp(n).set_nodeattr("model", str(child))
    out = execute_onnx(model, {model.graph.input[0].name: x})
    return out[model.graph.output[0].name]
