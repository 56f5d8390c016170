"""Load and verify a deployment package (format ``samfpga-deploy`` v1).

    PKG/manifest.json   {"format": "samfpga-deploy", "version": 1, "board", "source", "files": {rel: sha256},
                         "bitfile": "accel.bit" | null, "hwh": "accel.hwh" | null, "absent": {what: why},
                         "input": {"dtype": "UINT8", "layout": "NHWC", "pad_codes": [r, g, b],
                                   "pixel_mean": [3], "pixel_std": [3]}}   (``PackageInput``)
    PKG/driver.json     driver description (``samfpga-driver``: DMA names/addresses, I/O datatypes and shapes, clock;
                        platform ``rolled``: the parts' engines described by ``rolled/host.json`` instead)
    PKG/rolled/         a rolled build's host.json, token_batch/, runtime_weights/ (``samfpga.hw.rolled.board``)
    PKG/engine/         platform ``engine``: the layer-sequential engine's host files (host.json, ddr.bin;
                        ``samfpga.backends.engine_host``)
    PKG/graph.json, PKG/weights.npz   the build's final graph (``samfpga-intgraph``): the ``quant`` reference
    PKG/selfcheck.npz   an input and the output FINN's Python execution gave for it when the package was made
    PKG/bundle/         the model bundle (decoder.onnx for the host, encoder.onnx float reference)
    PKG/accel.bit, PKG/accel.hwh   when Vivado built them (else listed under "absent": usable with pynq-sim)
    PKG/README.md

Every check failure is one line naming the file and what disagrees.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samfpga.bundle import Bundle, BundleError, load_bundle

FORMAT, VERSION = "samfpga-deploy", 1
DRIVER_FORMAT = "samfpga-driver"


class DeployError(ValueError):
    """A package is missing, malformed or inconsistent (one line naming the file and the disagreement)."""


@dataclass(frozen=True)
class PackageInput:
    """What the graph takes as its input.

    ``dtype`` "UINT8": the resized image's pixels (the build folded the normalisation into the accelerator's first
    thresholds), padded with ``pad_codes`` (R, G, B: the pixels that quantize like SAM's normalised 0.0), in
    ``layout`` "NHWC" (graph input (1, S, S, 3), sent as the host holds it) or "NCHW". ``dtype`` "FLOAT32": the
    normalised, zero-padded float image (1, 3, S, S), as packages made before the pixel input (no ``input`` field
    in manifest.json) take it.
    """

    dtype: str = "FLOAT32"
    layout: str = "NCHW"
    pad_codes: tuple[int, int, int] | None = None
    pixel_mean: tuple[float, float, float] | None = None
    pixel_std: tuple[float, float, float] | None = None

    @property
    def pixels(self) -> bool:
        return self.dtype == "UINT8"

    def graph_shape(self, size: int) -> list[int]:
        return [1, size, size, 3] if self.layout == "NHWC" else [1, 3, size, size]

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    def check_normalization(self, mean, std, where: str) -> None:
        """``DeployError`` unless (mean, std) are the normalisation the thresholds were folded for."""
        if not (np.array_equal(np.float32(mean), np.float32(self.pixel_mean))
                and np.array_equal(np.float32(std), np.float32(self.pixel_std))):
            raise DeployError(f"{where}: the accelerator's thresholds fold pixel_mean {list(self.pixel_mean)} / "
                              f"pixel_std {list(self.pixel_std)}, the bundle normalises with {list(mean)} / "
                              f"{list(std)}")

    def pixel_tensor(self, image: np.ndarray, size: int) -> np.ndarray:
        """(h, w, 3) uint8 resized image (long side ``size``) -> graph input: (1, S, S, 3) or (1, 3, S, S) uint8,
        padded bottom/right with the pad codes."""
        from samfpga.transforms import pad_pixels

        x = pad_pixels(image, size, self.pad_codes)[None]
        return x if self.layout == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def package_input(d: dict | None, where: str = "manifest.json") -> PackageInput:
    """``PackageInput`` from manifest.json's ``input`` field (None: a package that takes the float image)."""
    if d is None:
        return PackageInput()
    try:
        dtype, layout = d["dtype"], d["layout"]
        if dtype == "FLOAT32":
            return PackageInput(dtype, layout)
        pads = tuple(int(v) for v in d["pad_codes"])
        mean, std = (tuple(float(v) for v in d[k]) for k in ("pixel_mean", "pixel_std"))
    except (KeyError, TypeError, ValueError) as e:
        raise DeployError(f"{where}: field 'input' is malformed ({type(e).__name__}: {e})") from None
    if dtype != "UINT8" or layout not in ("NHWC", "NCHW"):
        raise DeployError(f"{where}: field 'input': unsupported dtype {dtype!r} / layout {layout!r} "
                          "(UINT8 NHWC|NCHW or FLOAT32)")
    if len(pads) != 3 or not all(0 <= v <= 255 for v in pads) or len(mean) != 3 or len(std) != 3:
        raise DeployError(f"{where}: field 'input': pad_codes {list(pads)} must be 3 values in 0..255, "
                          "pixel_mean/pixel_std 3 values each")
    return PackageInput(dtype, layout, pads, mean, std)  # type: ignore[arg-type]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class DeployPackage:
    root: Path
    manifest: dict
    driver: dict
    bundle: Bundle

    @property
    def bitfile(self) -> Path | None:
        b = self.manifest.get("bitfile")
        return self.root / b if b else None

    @property
    def hwh(self) -> Path | None:
        h = self.manifest.get("hwh")
        return self.root / h if h else None

    @property
    def input(self) -> PackageInput:
        """What the graph takes (``PackageInput``; manifest.json's ``input``)."""
        return package_input(self.manifest.get("input"), str(self.root / "manifest.json"))

    def intgraph(self):
        from samfpga.intexec import load_intgraph

        return load_intgraph(self.root)


def _read_json(p: Path, fmt: str) -> dict:
    if not p.is_file():
        raise DeployError(f"{p}: missing")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DeployError(f"{p}: not JSON ({e})") from None
    if d.get("format") != fmt or d.get("version") != 1:
        raise DeployError(f"{p}: not a {fmt} v1 file (format={d.get('format')!r}, version={d.get('version')!r})")
    return d


def hwh_segments(hwh: Path) -> list[tuple[str, int, int]]:
    """Every (instance, base, range) the processor reaches, read from a Vivado .hwh."""
    try:
        root = ET.parse(hwh).getroot()
    except ET.ParseError as e:
        raise DeployError(f"{hwh}: not a readable .hwh ({e})") from None
    out = []
    # the processor's MEMORYMAP lists every slave it reaches: MEMRANGE INSTANCE=<cell> BASEVALUE/HIGHVALUE
    for rng in root.iter("MEMRANGE"):
        inst = rng.get("INSTANCE")
        if inst:
            base = int(rng.get("BASEVALUE"), 16)
            out.append((inst, base, int(rng.get("HIGHVALUE"), 16) - base + 1))
    return out


def hwh_dmas(hwh: Path) -> dict[str, dict]:
    """DMA instances and their AXI-Lite base addresses read from a Vivado .hwh (``{instance: {base, range}}``)."""
    return {i: {"base": b, "range": r} for i, b, r in hwh_segments(hwh) if "dma" in i.lower()}


def check_rolled(pkg: DeployPackage) -> None:
    """A rolled package (driver.json platform ``rolled``): its host.json readable (``rolled_host.read_parts``), the
    first part taking and the last part giving the accelerator's tensors, and, with a hwh, every AXI-Lite slave of
    host.json at its address in a segment of its part's cell."""
    from samfpga.backends.base import BackendError
    from samfpga.backends.rolled_host import part_slaves, read_parts

    path = pkg.root / pkg.driver["rolled"]
    try:
        host = json.loads(path.read_text())
        parts = read_parts(host, str(path))
    except (OSError, ValueError, BackendError) as e:
        raise DeployError(f"{path}: {e}") from None
    for io, shape, which in ((pkg.driver["inputs"][0], parts[0].in_shape, "first part's input"),
                             (pkg.driver["outputs"][0], parts[-1].out_shape, "last part's output")):
        if int(np.prod(shape)) != int(np.prod(io["shape_normal"])):
            raise DeployError(f"{path}: the {which} {list(shape)} is not the accelerator's {io['shape_normal']} "
                              "(driver.json)")
    if pkg.hwh is None:
        return
    segs = {(i, b) for i, b, _ in hwh_segments(pkg.hwh)}
    for p in host["parts"]:
        for what, _, e in part_slaves(p):
            if (p["cell"], e["regs"]) not in segs:
                raise DeployError(f"{pkg.hwh}: no segment of {p['cell']} at {e['regs']:#x} ({what}, host.json)")


def check_engine_graph(host: dict, graph: dict, where: str) -> None:
    """``DeployError`` unless the engine's host description (host.json) takes the graph's accelerator input and
    gives its output (names, shapes, datatypes): its program was compiled from this graph."""
    acc = graph.get("accelerator") or {}
    for key in ("input", "output"):
        io, t = host[key], acc.get(key)
        decl = graph["tensors"].get(t, {})
        if io["tensor"] != t or list(io["shape"]) != list(decl.get("shape", [])) or io["dtype"] != decl.get("dtype"):
            raise DeployError(f"{where}: the engine's {key} {io['tensor']} {io['shape']} {io['dtype']} is not the "
                              f"graph's accelerator {key} {t} {decl.get('shape')} {decl.get('dtype')} (host files of "
                              "another build's graph?)")


def check_engine(pkg: DeployPackage) -> None:
    """An engine package (driver.json platform ``engine``): its host files readable (``engine_host``), taking and
    giving the graph's accelerator tensors, and, with a hwh, the engine cell's registers where host.json has them."""
    from samfpga.backends.base import BackendError
    from samfpga.backends.engine_host import read_engine_host

    path = pkg.root / pkg.driver["engine"]
    try:
        host = read_engine_host(path.parent).spec
    except BackendError as e:
        raise DeployError(str(e)) from None
    check_engine_graph(host, json.loads((pkg.root / "graph.json").read_text()), str(path))
    if pkg.hwh is not None and (host["cell"], host["regs"]) not in {(i, b) for i, b, _ in hwh_segments(pkg.hwh)}:
        raise DeployError(f"{pkg.hwh}: no segment of {host['cell']} at {host['regs']:#x} (host.json)")


def load_package(path: str | Path, verify: bool = True) -> DeployPackage:
    """Load ``PKG``; with ``verify`` the checksums and the agreement of driver description, graph, bundle,
    bitfile and hwh are checked (``DeployError`` on the first disagreement)."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise DeployError(f"{root}: no such deployment package (directory)")
    man = _read_json(root / "manifest.json", FORMAT)
    if verify:
        for rel, digest in man.get("files", {}).items():
            p = root / rel
            if not p.is_file():
                raise DeployError(f"{p}: listed in manifest.json but missing")
            got = sha256(p)
            if got != digest:
                raise DeployError(f"{p}: sha256 {got[:12]}… does not match manifest.json ({digest[:12]}…)")
        for key in ("bitfile", "hwh"):
            if man.get(key) is None and key not in man.get("absent", {}):
                raise DeployError(f"{root / 'manifest.json'}: {key} neither present nor listed under 'absent'")
    drv = _read_json(root / "driver.json", DRIVER_FORMAT)
    try:
        bundle = load_bundle(root / "bundle", verify_hashes=verify)
    except BundleError as e:
        raise DeployError(str(e)) from None
    pkg = DeployPackage(root, man, drv, bundle)
    if verify:
        _check_agreement(pkg)
    return pkg


def _check_agreement(pkg: DeployPackage) -> None:
    drv, root = pkg.driver, pkg.root
    g = json.loads((root / "graph.json").read_text())
    acc = g.get("accelerator") or {}
    for side, key in (("inputs", "input"), ("outputs", "output")):
        io = drv[side][0]
        t = acc.get(key)
        if t != io["tensor"]:
            raise DeployError(f"{root / 'driver.json'}: {side}[0] tensor {io['tensor']!r} is not the graph's "
                              f"accelerator {key} {t!r}")
        decl = g["tensors"][t]
        if decl["dtype"] != io["dtype"]:
            raise DeployError(f"{root / 'driver.json'}: {side}[0] dtype {io['dtype']} != graph.json {decl['dtype']}")
        if int(np.prod(decl["shape"])) != int(np.prod(io["shape_normal"])):
            raise DeployError(f"{root / 'driver.json'}: {side}[0] shape {io['shape_normal']} != graph.json "
                              f"{decl['shape']}")
    gin, gdt = g["tensors"][g["input"]]["shape"], g["tensors"][g["input"]]["dtype"]
    s = pkg.bundle.image_size
    inp = pkg.input
    if gdt != inp.dtype:
        if "input" not in pkg.manifest:
            raise DeployError(f"{root / 'manifest.json'}: no field 'input' (dtype, layout, pad_codes) for a graph "
                              f"whose input is {gdt}: a package made before the pixel input was written into its "
                              "manifest; make it again with samfpga deploy")
        raise DeployError(f"{root / 'manifest.json'}: field 'input' says dtype {inp.dtype}, graph.json's input "
                          f"is {gdt}")
    if list(gin) != inp.graph_shape(s):
        raise DeployError(f"{root / 'graph.json'}: input shape {gin} does not fit the bundle's image size {s} "
                          f"({inp.layout})")
    if inp.pixels:
        inp.check_normalization(pkg.bundle.pixel_mean, pkg.bundle.pixel_std, str(root / "manifest.json"))
    gout = g["tensors"][g["output"]]["shape"]
    c, h, w = pkg.bundle.embedding_shape
    if list(gout) not in ([1, c, h, w], [1, h, w, c]):
        raise DeployError(f"{root / 'graph.json'}: output shape {gout} does not fit the bundle's embedding "
                          f"{[c, h, w]}")
    if drv.get("platform") == "rolled":
        check_rolled(pkg)
    elif drv.get("platform") == "engine":
        check_engine(pkg)
    elif pkg.hwh is not None:
        found = hwh_dmas(pkg.hwh)
        for name, d in drv["dma"].items():
            if name not in found:
                raise DeployError(f"{pkg.hwh}: no DMA {name!r} (driver.json names it; hwh has {sorted(found)})")
            if found[name]["base"] != d["base"]:
                raise DeployError(f"{pkg.hwh}: DMA {name} at {found[name]['base']:#x}, driver.json says {d['base']:#x}")
    if pkg.bitfile is not None and pkg.hwh is not None and pkg.bitfile.stem != pkg.hwh.stem:
        raise DeployError(f"{root / 'manifest.json'}: bitfile {pkg.bitfile.name} and hwh {pkg.hwh.name} differ in name "
                          "(pynq loads NAME.hwh next to NAME.bit)")


def check_package(path: str | Path, log=print) -> bool:
    """Self-check: load with verification, then run the integer graph on ``selfcheck.npz``'s input and compare
    with the output FINN's Python execution gave when the package was made. Returns True when all pass."""
    pkg = load_package(path)
    log(f"{pkg.root}: manifest, checksums ({len(pkg.manifest['files'])} files), driver/graph/bundle agree")
    inp = pkg.input
    log(f"  input: {inp.dtype} {inp.layout}" + (f", pad codes {list(inp.pad_codes)} (pixels quantizing like SAM's "
                                                 "normalised 0)" if inp.pixels else " (normalised float image)"))
    absent = pkg.manifest.get("absent", {})
    for k, why in absent.items():
        log(f"  {k}: absent ({why}); usable with --backend pynq-sim or quant")
    sc = pkg.root / "selfcheck.npz"
    if not sc.is_file():
        raise DeployError(f"{sc}: missing")
    with np.load(sc) as z:
        x, expect = z["input"], z["expected"]
    got = pkg.intgraph().run(x)
    diff = int(np.count_nonzero(got.reshape(expect.shape) != expect))
    if diff:
        log(f"  self-check FAILED: {diff} of {expect.size} outputs differ from the reference in selfcheck.npz "
            f"(max abs {np.abs(got.reshape(expect.shape) - expect).max():.3g})")
        return False
    log(f"  self-check passed: integer graph output equals the reference in selfcheck.npz on {expect.size} values "
        "(FINN's Python execution of the build, for packages made by samfpga deploy)")
    return True
