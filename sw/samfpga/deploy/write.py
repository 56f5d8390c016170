"""Write a deployment package from a FINN build directory (compiler environment: reads the build's ONNX graphs).

``write_package(BUILD_DIR, PKG)``: graph + driver description (``samfpga.hw.build.package``), the model bundle,
bitfile/hwh when the build has them (``BUILD_DIR/finn/bitfile/*.bit`` + ``.hwh``; a rolled build's
``BUILD_DIR/rolled/rolled.bit``, with its parts' description, ``add_rolled``; with ``engine``, an engine build's
``engine.bit`` and host files, ``add_engine``), a self-check vector whose
expected output is FINN's own Python execution of the build, a README and the manifest with sha256 of every
file. Written into a temporary directory next to PKG and moved into place only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from samfpga.assets import DEFAULT_DIR
from samfpga.bundle import load_bundle
from samfpga.deploy.package import FORMAT, DeployError, check_engine_graph, package_input, sha256

README = """# samfpga deployment package ({board})

Made from the FINN build `{source}`. On the board (PYNQ 3.0.1 / Kria-PYNQ):

    samfpga deploy --check .                                    # checksums, agreement, self-check
    samfpga segment IMAGE --point X,Y --deploy . --backend pynq --out DIR

Without a board: `--backend pynq-sim` (the same driver against a simulated PYNQ device) or `--backend quant`
(the integer encoder on the CPU). Files: see manifest.json; format in docs/board.md.
{absent}"""


def add_rolled(rolled: Path, pkg: Path, graph: dict) -> dict:
    """Make the package in ``pkg`` (written by ``export_build``) one of a rolled build (``rolled``: the build's
    ``rolled/``): host.json, the token-batched units' weights and the URAM layers' words under ``pkg/rolled/``, each
    block's tensors named as ``graph`` (graph.json) names them; driver.json's platform ``rolled`` (the parts' strip
    engines, ``samfpga.backends.rolled_driver``, instead of the unrolled graph's IODMAs, DDR image and runtime
    weights, whose files are removed). Returns the new driver description."""
    host = json.loads((rolled / "host.json").read_text())
    lacking = [p.get("name") for p in host.get("parts", []) if not {"tensors", "cell", "reader"} <= set(p)]
    if lacking or not host.get("parts"):
        raise DeployError(f"{rolled / 'host.json'}: parts {lacking} lack their tensors or address map (written by "
                          "an older samfpga; rebuild with samfpga build-hw --roll)")
    acc = graph["accelerator"]
    first, last = host["parts"][0]["tensors"][0], host["parts"][-1]["tensors"][-1]
    # the accelerator's input and output may be named after the dataflow partition in graph.json
    rename = {first[0]: acc["input"], last[1]: acc["output"]}
    for p in host["parts"]:
        p["tensors"] = [[rename.get(t, t) for t in pair] for pair in p["tensors"]]
        missing = [t for pair in p["tensors"] for t in pair if t not in graph["tensors"]]
        if missing:
            raise DeployError(f"{rolled / 'host.json'}: part {p['name']} names tensors {missing} that graph.json "
                              "lacks (a rolled/ folder of another build?)")
    (pkg / "rolled").mkdir()
    for sub in ("token_batch", "runtime_weights"):
        if (rolled / sub).is_dir():
            shutil.copytree(rolled / sub, pkg / "rolled" / sub)
    (pkg / "rolled" / "host.json").write_text(json.dumps(host, indent=1) + "\n")
    return _platform(pkg, "rolled")


def _platform(pkg: Path, platform: str) -> dict:
    """driver.json's platform ``platform`` (its host description ``<platform>/host.json``) instead of the unrolled
    graph's IODMAs, DDR image and runtime weights, whose files are removed; returns the new driver description."""
    drv = json.loads((pkg / "driver.json").read_text())
    for key in ("dma", "token_batch"):
        drv.pop(key, None)
    drv.update({"platform": platform, platform: f"{platform}/host.json", "runtime_weights": []})
    (pkg / "driver.json").write_text(json.dumps(drv, indent=2) + "\n")
    shutil.rmtree(pkg / "runtime_weights", ignore_errors=True)
    (pkg / "ddr_weights.bin").unlink(missing_ok=True)
    return drv


def add_engine(engine: Path, pkg: Path, graph: dict) -> dict:
    """Make the package in ``pkg`` (written by ``export_build``) one of the layer-sequential engine (``engine``: an
    engine build's folder, ``samfpga build-hw --engine``, compiled from this build's graph): its host files under
    ``pkg/engine/``; driver.json's platform ``engine`` (``samfpga.backends.engine_driver``, instead of the unrolled
    graph's IODMAs, DDR image and runtime weights, whose files are removed). Returns the new driver description."""
    from samfpga.backends.base import BackendError
    from samfpga.backends.engine_host import read_engine_host

    src = engine / "host"
    try:
        host = read_engine_host(src)
    except BackendError as e:
        raise DeployError(f"{engine}: no engine host files ({e}); build them with samfpga build-hw --engine") from None
    check_engine_graph(host.spec, graph, str(src / "host.json"))
    shutil.copytree(src, pkg / "engine")
    return _platform(pkg, "engine")


def write_package(build_dir: str | Path, out: str | Path, bundle_dir: str | Path = DEFAULT_DIR,
                  seed: int = 0, log=print, engine: str | Path | None = None) -> Path:
    try:
        from samfpga.hw.build.package import PackageError, export_build, finn_execute, pixel_input_info
        from samfpga.hw.build.pixel_input import PIXEL_INPUT_FILE
        from samfpga.hw.finn_env import boot

        boot()
    except ImportError as e:
        raise DeployError(f"making a package needs the development environment with finn-plus ({e})") from None
    build, out = Path(build_dir), Path(out)
    if not (build / "build_config.json").is_file():
        if (build / "host" / "host.json").is_file() and (build / "finn" / "build_config.json").is_file():
            raise DeployError(f"{build}: an engine build; give its FINN build and the engine: samfpga deploy "
                              f"{build / 'finn'} --engine {build} --out PKG")
        raise DeployError(f"{build}: not a samfpga build directory (no build_config.json; make one with "
                          "samfpga build-hw)")
    if out.exists():
        raise DeployError(f"{out}: exists (choose a new package directory)")
    bundle = load_bundle(bundle_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        try:
            drv = export_build(build, tmp)
            pixels = pixel_input_info(build)
        except PackageError as e:
            raise DeployError(str(e)) from None
        shutil.copytree(bundle.root, tmp / "bundle", ignore=shutil.ignore_patterns("checkpoint.pt", "*.yaml",
                                                                                    "EVAL.json", "__*"))
        g = json.loads((tmp / "graph.json").read_text())
        rolled = (build / "rolled" / "host.json").is_file() and engine is None
        if rolled:
            drv = add_rolled(build / "rolled", tmp, g)
        if engine is not None:
            drv = add_engine(Path(engine), tmp, g)
        shape = g["tensors"][g["input"]]["shape"]
        inp = package_input(pixels)
        if shape != inp.graph_shape(bundle.image_size):
            raise DeployError(f"{build}: the build's input {shape} does not fit the bundle {bundle.root} "
                              f"(image size {bundle.image_size}, {inp.layout})")
        if pixels is not None:
            inp.check_normalization(bundle.pixel_mean, bundle.pixel_std, f"{build}/{PIXEL_INPUT_FILE}")
        rng = np.random.default_rng(seed)
        # the accelerator's input: uint8 pixels, or the normalised float image
        x = (rng.integers(0, 256, size=shape, dtype=np.uint8) if inp.pixels
             else rng.normal(size=shape).astype(np.float32))
        log("self-check vector: FINN Python execution of the build ...")
        expected = np.asarray(finn_execute(build, x.astype(np.float32), tmp / ".work"), dtype=np.float32)
        shutil.rmtree(tmp / ".work", ignore_errors=True)
        np.savez(tmp / "selfcheck.npz", input=x, expected=expected)
        absent = {}
        bits = sorted((build / "finn" / "bitfile").glob("*.bit")) if (build / "finn" / "bitfile").is_dir() else []
        if rolled:
            bits = [build / "rolled" / "rolled.bit"] if (build / "rolled" / "rolled.bit").is_file() else []
        if engine is not None:
            bits = [Path(engine) / "engine.bit"] if (Path(engine) / "engine.bit").is_file() else []
        if bits and bits[0].with_suffix(".hwh").is_file():
            shutil.copy(bits[0], tmp / "accel.bit")
            shutil.copy(bits[0].with_suffix(".hwh"), tmp / "accel.hwh")
        else:
            why = "the build stopped before Vivado's bitfile step" if not bits else "no .hwh next to the bitfile"
            absent = {"bitfile": why, "hwh": why}
        (tmp / "README.md").write_text(README.format(
            board=drv["board"], source=build.resolve(),
            absent="" if not absent else f"\nBitfile and hwh are absent: {absent['bitfile']}.\n"))
        files = {p.relative_to(tmp).as_posix(): sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {"format": FORMAT, "version": 1, "board": drv["board"], "source": str(build.resolve()),
                    "files": files, "bitfile": None if absent else "accel.bit", "hwh": None if absent else "accel.hwh",
                    "absent": absent, "input": inp.to_json()}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a package is an ordinary readable directory
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
