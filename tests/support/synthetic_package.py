"""A small deployment package made with numpy alone, for the board-environment tests of the driver path.

Its graph is a miniature of an encoder build's: host Transpose (NCHW -> NHWC), a float-input Thresholding
(FLOAT32 stream from the host: the input quantiser), a 16x16/16 sliding window, an MVAU (768 -> 16), an INT8
Thresholding, and the host's output scale Mul; output (1, 4, 4, 16) NHWC for the tiny bundle's (16, 4, 4)
embedding. ``direct(x)`` computes the same function without samfpga.kernels (its own formula), and the package's
self-check vector holds that result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

TINY_BUNDLE = Path(__file__).resolve().parents[1] / "runtime" / "data" / "tiny_bundle"
BASE = 0xA000_0000


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t_in = np.sort(rng.normal(size=(3, 15)).astype(np.float32), axis=1)
    w = rng.integers(-8, 8, size=(768, 16)).astype(np.float32)
    t_out = np.sort(rng.integers(-400, 400, size=(16, 255)), axis=1).astype(np.float32)
    return {"T_in": t_in, "W": w, "T_out": t_out, "scale": np.array(0.05, dtype=np.float32)}


def direct(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The graph's function written out: (1,3,64,64) float32 -> (1,4,4,16) float32."""
    xh = x.transpose(0, 2, 3, 1)
    q = np.zeros(xh.shape)
    for c in range(3):
        q[..., c] = (xh[..., c, None] >= w["T_in"][c]).sum(-1) - 8  # ActVal -8: INT4
    patches = q.reshape(1, 4, 16, 4, 16, 3).transpose(0, 1, 3, 2, 4, 5).reshape(1, 4, 4, 768)
    acc = patches @ w["W"].astype(np.float64)
    y = np.zeros(acc.shape)
    for c in range(16):
        y[..., c] = (acc[..., c, None] >= w["T_out"][c]).sum(-1) - 128
    return (y.astype(np.float32) * w["scale"]).astype(np.float32)


def graph_spec() -> dict:
    t = lambda shape, dt: {"shape": shape, "dtype": dt}  # noqa: E731
    return {
        "format": "samfpga-intgraph", "version": 1, "input": "image", "output": "embedding",
        "accelerator": {"input": "x_nhwc", "output": "y_int"},
        "tensors": {"image": t([1, 3, 64, 64], "FLOAT32"), "x_nhwc": t([1, 64, 64, 3], "FLOAT32"),
                    "T_in": t([3, 15], "FLOAT32"), "x_q": t([1, 64, 64, 3], "INT4"),
                    "x_win": t([1, 4, 4, 768], "INT4"), "W": t([768, 16], "INT4"), "acc": t([1, 4, 4, 16], "INT19"),
                    "T_out": t([16, 255], "INT19"), "y_int": t([1, 4, 4, 16], "INT8"), "scale": t([], "FLOAT32"),
                    "embedding": t([1, 4, 4, 16], "FLOAT32")},
        "nodes": [
            {"name": "Transpose_0", "op": "Transpose", "inputs": ["image"], "outputs": ["x_nhwc"],
             "attrs": {"perm": [0, 2, 3, 1]}, "on": "host"},
            {"name": "Thresholding_rtl_0", "op": "Thresholding", "inputs": ["x_nhwc", "T_in"], "outputs": ["x_q"],
             "attrs": {"ActVal": -8, "PE": 3, "NumChannels": 3}, "on": "hw"},
            {"name": "ConvolutionInputGenerator_rtl_0", "op": "ConvolutionInputGenerator", "inputs": ["x_q"],
             "outputs": ["x_win"], "attrs": {"ConvKernelDim": [16, 16], "Stride": [16, 16], "Dilation": [1, 1]},
             "on": "hw"},
            {"name": "MVAU_rtl_0", "op": "MVAU", "inputs": ["x_win", "W"], "outputs": ["acc"],
             "attrs": {"MW": 768, "MH": 16, "numInputVectors": [1, 4, 4], "noActivation": 1}, "on": "hw"},
            {"name": "Thresholding_rtl_1", "op": "Thresholding", "inputs": ["acc", "T_out"], "outputs": ["y_int"],
             "attrs": {"ActVal": -128, "PE": 4}, "on": "hw"},
            {"name": "Mul_0", "op": "Mul", "inputs": ["y_int", "scale"], "outputs": ["embedding"], "attrs": {},
             "on": "host"},
        ],
    }


def driver_spec() -> dict:
    return {
        "format": "samfpga-driver", "version": 1, "board": "kv260", "part": "xck26-sfvc784-2LV-c",
        "family": "zynq_us+", "platform": "zynq-iodma", "fclk_mhz": 200.0, "batch_size": 1,
        "inputs": [{"tensor": "x_nhwc", "dtype": "FLOAT32", "bits": 32, "shape_normal": [1, 64, 64, 3],
                    "shape_folded": [1, 64, 64, 1, 3], "shape_packed": [1, 64, 64, 1, 12], "stream_width_bits": 96,
                    "dma": "idma0"}],
        "outputs": [{"tensor": "y_int", "dtype": "INT8", "bits": 8, "shape_normal": [1, 4, 4, 16],
                     "shape_folded": [1, 4, 4, 4, 4], "shape_packed": [1, 4, 4, 4, 4], "stream_width_bits": 32,
                     "dma": "odma0"}],
        "dma": {"idma0": {"base": BASE, "range": 0x10000, "direction": "mm2s"},
                "odma0": {"base": BASE + 0x10000, "range": 0x10000, "direction": "s2mm"}},
        "accelerator": {"name": "StreamingDataflowPartition_0", "nodes": 4, "first": "Thresholding_rtl_0",
                        "last": "Thresholding_rtl_1"},
        "output_scale_nodes": ["Mul_0"], "runtime_weights": [],
    }


def hwh_text(dmas: dict[str, int]) -> str:
    """A minimal .hwh with the DMA instances' address ranges (what samfpga.deploy reads from Vivado's hwh)."""
    ranges = "".join(f'<MEMRANGE INSTANCE="{n}" BASEVALUE="{b:#x}" HIGHVALUE="{b + 0xFFFF:#x}"/>'
                     for n, b in dmas.items())
    return f'<?xml version="1.0"?><EDKSYSTEM><MODULES><MODULE INSTANCE="zynq_ps"><MEMORYMAP>{ranges}</MEMORYMAP>' \
           '</MODULE></MODULES></EDKSYSTEM>\n'


def write_manifest(root: Path, bitfile: str | None = None, hwh: str | None = None) -> None:
    files = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}
    absent = {} if bitfile else {"bitfile": "synthetic test package", "hwh": "synthetic test package"}
    (root / "manifest.json").write_text(json.dumps({
        "format": "samfpga-deploy", "version": 1, "board": "kv260", "source": "tests/support/synthetic_package.py",
        "files": files, "bitfile": bitfile, "hwh": hwh, "absent": absent}, indent=1))


def make_package(root: Path, seed: int = 0, with_bitfile: bool = False) -> Path:
    """Write the package into ``root`` (created). ``with_bitfile``: a stand-in accel.bit + a hwh naming the DMAs."""
    root.mkdir(parents=True)
    w = _weights(seed)
    (root / "graph.json").write_text(json.dumps(graph_spec()))
    np.savez(root / "weights.npz", **w)
    (root / "driver.json").write_text(json.dumps(driver_spec()))
    shutil.copytree(TINY_BUNDLE, root / "bundle")
    x = np.random.default_rng(seed + 1).normal(size=(1, 3, 64, 64)).astype(np.float32)
    np.savez(root / "selfcheck.npz", input=x, expected=direct(x, w))
    if with_bitfile:
        (root / "accel.bit").write_bytes(b"stand-in")
        (root / "accel.hwh").write_text(hwh_text({"idma0": BASE, "odma0": BASE + 0x10000}))
    write_manifest(root, "accel.bit" if with_bitfile else None, "accel.hwh" if with_bitfile else None)
    return root


def rolled_graph_spec() -> dict:
    """``graph_spec`` with the input quantiser on the host (the accelerator takes INT4, as a rolled accelerator's
    strip reader takes integers) and a repeated stage after the output thresholds: two INT8 -> INT8 Thresholdings,
    one body serving both (its parts: ``rolled_host_parts``)."""
    g = graph_spec()
    t = lambda shape, dt: {"shape": shape, "dtype": dt}  # noqa: E731
    g["accelerator"] = {"input": "x_q", "output": "y3"}
    g["nodes"][1]["on"] = "host"
    g["tensors"].update({"T2": t([16, 255], "INT8"), "y2": t([1, 4, 4, 16], "INT8"), "T3": t([16, 255], "INT8"),
                         "y3": t([1, 4, 4, 16], "INT8")})
    mul = g["nodes"].pop()
    g["nodes"] += [{"name": f"Thresholding_rtl_{k}", "op": "Thresholding", "inputs": [src, f"T{k}"],
                    "outputs": [dst], "attrs": {"ActVal": -128, "PE": 4}, "on": "hw"}
                   for k, src, dst in ((2, "y_int", "y2"), (3, "y2", "y3"))]
    g["nodes"].append({**mul, "inputs": ["y3", "scale"]})
    return g


def rolled_host_json() -> dict:
    """host.json of the rolled accelerator of ``rolled_graph_spec``: part 0 (x_q -> y_int, once), part 1 (two blocks
    of one Thresholding), with the address map samfpga.hw.rolled.board gives it."""
    from samfpga.backends.rolled_host import BufferSide, PartSpec, parts_to_json

    x, y = BufferSide(64, 64, 3, 4, True, 1), BufferSide(4, 4, 16, 8, True, 1)
    host = parts_to_json([PartSpec("0_once", 1, x, y, (1, 64, 64, 3), (1, 4, 4, 16)),
                          PartSpec("1_body", 2, y, y, (1, 4, 4, 16), (1, 4, 4, 16))])
    host.update(board="kv260", part="xck26-sfvc784-2LV-c", family="zynq_us+", fclk_mhz=200.0)
    tensors = [[["x_q", "y_int"]], [["y_int", "y2"], ["y2", "y3"]]]
    for j, (p, ts) in enumerate(zip(host["parts"], tensors)):
        p.update(cell=f"part_{p['name']}", tensors=ts, token_batch=[], runtime_weights=[],
                 reader={"port": "rd_s_axil", "aximm_port": "m_axi_rd", "regs": BASE + 0x20000 * j,
                         "range": 0x10000},
                 writer={"port": "wr_s_axil", "aximm_port": "m_axi_wr", "regs": BASE + 0x20000 * j + 0x10000,
                         "range": 0x10000})
    return host


def make_rolled_package(root: Path, seed: int = 0, hwh: bool = False) -> Path:
    """A rolled build's package (driver.json platform ``rolled``) of ``rolled_graph_spec`` into ``root``; the
    self-check's expected output is the integer graph's own (samfpga.intexec), the graph being this file's.
    ``hwh``: a stand-in accel.bit and a hwh listing every part cell's segments."""
    from samfpga.intexec.executor import IntGraph

    root.mkdir(parents=True)
    rng = np.random.default_rng(seed + 7)
    w = {**_weights(seed), **{f"T{k}": np.sort(rng.integers(-128, 128, size=(16, 255)), axis=1).astype(np.float32)
                              for k in (2, 3)}}
    spec = rolled_graph_spec()
    (root / "graph.json").write_text(json.dumps(spec))
    np.savez(root / "weights.npz", **w)
    drv = driver_spec()
    for key in ("dma", "token_batch"):
        drv.pop(key, None)
    drv["inputs"][0].update(tensor="x_q", dtype="INT4", bits=4)
    drv["outputs"][0].update(tensor="y3")
    drv.update(platform="rolled", rolled="rolled/host.json")
    (root / "driver.json").write_text(json.dumps(drv))
    (root / "rolled").mkdir()
    host = rolled_host_json()
    (root / "rolled" / "host.json").write_text(json.dumps(host))
    shutil.copytree(TINY_BUNDLE, root / "bundle")
    x = np.random.default_rng(seed + 1).normal(size=(1, 3, 64, 64)).astype(np.float32)
    np.savez(root / "selfcheck.npz", input=x, expected=IntGraph(spec, w).run(x))
    if hwh:
        (root / "accel.bit").write_bytes(b"stand-in")
        segs = {(p["cell"], p[s]["regs"]) for p in host["parts"] for s in ("reader", "writer")}
        ranges = "".join(f'<MEMRANGE INSTANCE="{c}" BASEVALUE="{b:#x}" HIGHVALUE="{b + 0xFFFF:#x}"/>'
                         for c, b in sorted(segs))
        (root / "accel.hwh").write_text(f'<?xml version="1.0"?><EDKSYSTEM><MODULES><MODULE INSTANCE="zynq_ps">'
                                        f'<MEMORYMAP>{ranges}</MEMORYMAP></MODULE></MODULES></EDKSYSTEM>\n')
    write_manifest(root, "accel.bit" if hwh else None, "accel.hwh" if hwh else None)
    return root
