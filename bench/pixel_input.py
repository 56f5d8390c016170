"""The pixel-input accelerator against the float-input one: embeddings and DMA input bytes.

Board environment (numpy, pynq; no torch/finn), the tiny 64x64 package against the same build with the float
input (tests/support/tiny_deploy.py makes both):

    .venv-board/bin/python bench/pixel_input.py package --deploy tests/runtime/data/tiny_deploy \\
        --float-graph tests/runtime/data/tiny_float_input

counts the embedding values that differ between the pixel path (Predictor ``quant`` backend: uint8 image padded
with the pad codes) and the float path (the float build's graph on ``normalize_and_pad``) on the 4 bundled samples,
and the DMA input buffer each allocates (``pynq.allocate`` on the simulated device; driver.json's packed shape).

Development environment (finn-plus), a build of the bundled default (256x256) made before the pixel input:

    .venv/bin/python bench/pixel_input.py build --build BUILD_DIR

runs the ``pixel_input`` step on the build's streamlined graph (``intermediate/*_streamline.onnx``): the
enumeration proof for all 256 pixels of each channel, and the input quantizer's output on the 4 samples, float
path vs pixel path, and on 2 random images that are padded (every later layer sees the same integers when these
are equal). Results are merged into
``--out`` (default bench/results/pixel_input.json) under the subcommand's key.

    .venv/bin/python bench/pixel_input.py builds --pixel-build P --float-build F

compares the whole encoder of two builds of one model, with and without the pixel input (each exported as the
``quant`` backend runs it): embeddings on the 4 samples and 2 padded random images, and their DMA input bytes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from samfpga.assets import sample_images
from samfpga.image_io import read_image


def _merge(out: Path, key: str, result: dict) -> None:
    data = json.loads(out.read_text()) if out.is_file() else {}
    data[key] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out} [{key}]")


def _dma_bytes(driver: dict) -> int:
    return int(np.prod(driver["inputs"][0]["shape_packed"]))


def bench_package(deploy: Path, float_graph: Path) -> dict:
    from samfpga.backends.quant_backend import to_nchw
    from samfpga.deploy import load_package
    from samfpga.intexec import load_intgraph
    from samfpga.predictor import Predictor
    from samfpga.transforms import normalize_and_pad

    pkg = load_package(deploy)
    quant = Predictor.from_deploy(pkg.root, backend="quant")
    ref = load_intgraph(float_graph)
    mean, std, s = pkg.bundle.pixel_mean, pkg.bundle.pixel_std, pkg.bundle.image_size
    rows = []
    for path in sample_images():
        image, _ = read_image(path)
        t0 = time.perf_counter()
        quant.set_image(image)
        t_pix = time.perf_counter() - t0
        got = quant.get_image_embedding()
        resized = quant.transform.apply_image(image)
        t0 = time.perf_counter()
        want = to_nchw(ref.run(normalize_and_pad(resized, s, mean, std)), tuple(pkg.bundle.embedding_shape))
        t_float = time.perf_counter() - t0
        rows.append({"image": path.name, "resized": list(resized.shape[:2]), "values": int(want.size),
                     "distinct": int(np.unique(want).size), "differ": int(np.count_nonzero(got != want)),
                     "pixel_set_image_s": round(t_pix, 3), "float_graph_run_s": round(t_float, 3)})
        print(json.dumps(rows[-1]), flush=True)
    float_driver = json.loads((float_graph / "driver.json").read_text())
    dma = {"pixel_input_bytes": _dma_bytes(pkg.driver), "float_input_bytes": _dma_bytes(float_driver),
           "pixel_dtype": pkg.driver["inputs"][0]["dtype"], "float_dtype": float_driver["inputs"][0]["dtype"]}
    try:  # the buffer the pynq backend really allocates, on the simulated device
        sim = Predictor.from_deploy(pkg.root, backend="pynq-sim")
        try:
            dma["pynq_sim_ibuf_nbytes"] = int(sim.encoder.accel.ibuf.nbytes)
        finally:
            sim.encoder.close()
    except ImportError as e:
        dma["pynq_sim_ibuf_nbytes"] = f"not measured ({e})"
    return {"package": str(deploy), "float_graph": str(float_graph), "image_size": s, "input": pkg.input.to_json(),
            "all_equal": all(r["differ"] == 0 for r in rows), "samples": rows, "dma": dma,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def bench_build(build: Path, work: Path) -> dict:
    from samfpga.hw.finn_env import boot

    boot(work)
    from qonnx.core.modelwrapper import ModelWrapper

    import samfpga.hw.custom_ops  # noqa: F401
    from samfpga.hw.build.pixel_input import float_codes, fold_thresholds, to_pixel_input
    from samfpga.kernels.thresholding import multithreshold
    from samfpga.transforms import PIXEL_MEAN, PIXEL_STD, ResizeLongestSide, normalize_and_pad

    src = sorted((build / "intermediate").glob("*_streamline.onnx"))[-1]
    model = ModelWrapper(str(src))
    s = model.get_tensor_shape(model.graph.input[0].name)[-1]
    mt = model.get_nodes_by_op_type("MultiThreshold")[0]
    t_float = model.get_initializer(mt.input[1]).copy()
    t0 = time.perf_counter()
    folded = fold_thresholds(t_float, PIXEL_MEAN, PIXEL_STD)  # raises unless all 3 x 256 codes are equal
    px = np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
    enum_differ = int(np.count_nonzero(multithreshold(px, folded).T != float_codes(t_float, PIXEL_MEAN, PIXEL_STD)))
    pix_model, info = to_pixel_input(model, PIXEL_MEAN, PIXEL_STD)
    t_fold = time.perf_counter() - t0
    resize = ResizeLongestSide(s)
    rows = []
    rng = np.random.default_rng(0)
    images = [(p.name, read_image(p)[0]) for p in sample_images()]
    images += [(f"random_{h}x{w}", rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)) for h, w in ((300, 200),
                                                                                                   (100, 400))]
    for name, image in images:
        r = resize.apply_image(image)
        x = normalize_and_pad(r, s, PIXEL_MEAN, PIXEL_STD).transpose(0, 2, 3, 1)  # channels last, as thresholded
        pix = np.empty((1, s, s, 3), np.float64)
        pix[:] = np.asarray(info.pad_codes, np.float64)
        pix[0, : r.shape[0], : r.shape[1]] = r
        a = multithreshold(x, t_float)
        b = multithreshold(pix, folded)
        rows.append({"image": name, "resized": list(r.shape[:2]), "values": int(a.size),
                     "distinct": int(np.unique(a).size), "differ": int(np.count_nonzero(a != b))})
        print(json.dumps(rows[-1]), flush=True)
    return {"build": str(build), "build_options": json.loads((build / "build_config.json").read_text())["options"],
            "graph": src.name, "image_size": s, "input": info.to_json(),
            "first_node_after": pix_model.graph.node[0].op_type,
            "input_quantizer_thresholds": {"float": list(t_float.shape), "uint8": list(folded.shape),
                                           "uint8_min": float(folded.min()), "uint8_max": float(folded.max())},
            "enumeration": {"pixels": 256, "channels": 3, "differ": enum_differ, "seconds": round(t_fold, 2)},
            "samples": rows, "all_equal": enum_differ == 0 and all(r["differ"] == 0 for r in rows),
            "dma": {"pixel_input_bytes": s * s * 3, "float_input_bytes": s * s * 3 * 4,
                    "how": "graph input values x bytes per value (UINT8 1, FLOAT32 4); FINN packs 8- and 32-bit "
                           "values without padding"},
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def bench_builds(pixel_build: Path, float_build: Path, work: Path) -> dict:
    """Whole-encoder embeddings of two builds of one model, with and without the pixel input, each exported as
    the quant backend runs it (``export_build`` -> ``samfpga.intexec``): pixel path vs float path."""
    from samfpga.backends.quant_backend import to_nchw
    from samfpga.deploy.package import package_input
    from samfpga.hw.build.package import export_build, pixel_input_info
    from samfpga.intexec import load_intgraph
    from samfpga.transforms import ResizeLongestSide, normalize_and_pad

    info = pixel_input_info(pixel_build)
    if info is None or pixel_input_info(float_build) is not None:
        raise SystemExit(f"{pixel_build} must be a pixel-input build and {float_build} a float-input one")
    inp = package_input(info)
    graphs = {}
    for key, b in (("pixel", pixel_build), ("float", float_build)):
        drv = export_build(b, work / key)
        graphs[key] = (load_intgraph(work / key), drv)
    gp, gf = graphs["pixel"][0], graphs["float"][0]
    s = gf.shape(gf.input)[-1]
    resize = ResizeLongestSide(s)
    rng = np.random.default_rng(0)
    images = [(p.name, read_image(p)[0]) for p in sample_images()]
    images += [(f"random_{h}x{w}", rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)) for h, w in ((300, 200),
                                                                                                   (100, 400))]
    rows = []
    for name, image in images:
        r = resize.apply_image(image)
        t0 = time.perf_counter()
        a = gf.run(normalize_and_pad(r, s, inp.pixel_mean, inp.pixel_std))
        t1 = time.perf_counter()
        b = gp.run(inp.pixel_tensor(r, s))
        t2 = time.perf_counter()
        a, b = to_nchw(a, _emb(a)), to_nchw(b, _emb(a))
        rows.append({"image": name, "resized": list(r.shape[:2]), "values": int(a.size),
                     "distinct": int(np.unique(a).size), "differ": int(np.count_nonzero(a != b)),
                     "float_s": round(t1 - t0, 1), "pixel_s": round(t2 - t1, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return {"pixel_build": str(pixel_build), "float_build": str(float_build), "image_size": s, "input": info,
            "host_nodes_before_accelerator": {k: sum(1 for n in g[0].nodes[: g[0]._hw_range[0]])
                                              for k, g in graphs.items()},
            "dma": {"pixel_input_bytes": _dma_bytes(graphs["pixel"][1]),
                    "float_input_bytes": _dma_bytes(graphs["float"][1]),
                    "how": "driver.json input shape_packed of each build (what pynq.allocate gets)"},
            "samples": rows, "all_equal": all(r["differ"] == 0 for r in rows),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def bench_reports(pixel_build: Path, float_build: Path) -> dict:
    """What the two builds' report.json say about the input: host nodes, layers with a float input stream, the
    input quantizer's estimated cost (the report's source label kept), totals."""
    out = {}
    for key, b in (("pixel", pixel_build), ("float", float_build)):
        r = json.loads((b / "report.json").read_text())
        first = next(x for x in r["layers"] if x["op_type"].startswith("Thresholding"))
        out[key] = {"build": str(b), "host_nodes": r["nodes"]["host_nodes"],
                    "float_input_layers": r["nodes"].get("float_input_layers"),
                    "input_quantizer": {k: first.get(k) for k in ("name", "op_type", "LUT", "FF", "BRAM36", "cycles",
                                                                  "source")},
                    "total_resources": r["total"]["resources"], "fps": r["total"]["fps"],
                    "verdict": r["verdict"].get("text", r["verdict"].get("fits"))}
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return out


def _emb(y: np.ndarray) -> tuple[int, int, int]:
    """(C, h, w) of a graph output (1, C, h, w) or (1, h, w, C): the channel axis is the larger one here."""
    _, a, b, c = y.shape
    return (a, b, c) if a > c else (c, a, b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("package")
    p.add_argument("--deploy", type=Path, default=Path("tests/runtime/data/tiny_deploy"))
    p.add_argument("--float-graph", type=Path, default=Path("tests/runtime/data/tiny_float_input"))
    b = sub.add_parser("build")
    b.add_argument("--build", type=Path, required=True)
    b.add_argument("--work", type=Path, default=Path("/tmp/pixel_input_bench"))
    c = sub.add_parser("builds")
    c.add_argument("--pixel-build", type=Path, required=True)
    c.add_argument("--float-build", type=Path, required=True)
    c.add_argument("--work", type=Path, default=Path("/tmp/pixel_input_bench"))
    r = sub.add_parser("reports")
    r.add_argument("--pixel-build", type=Path, required=True)
    r.add_argument("--float-build", type=Path, required=True)
    r.add_argument("--key", help="key in --out (default reports_PIXELDIR_vs_FLOATDIR)")
    for q in (p, b, c, r):
        q.add_argument("--out", type=Path, default=Path("bench/results/pixel_input.json"))
    args = ap.parse_args(argv)
    if args.cmd == "package":
        res = bench_package(args.deploy, args.float_graph)
        key = f"package_{res['image_size']}"
    elif args.cmd == "build":
        res = bench_build(args.build, args.work)
        key = f"default_{res['image_size']}_streamlined"
    elif args.cmd == "reports":
        res = bench_reports(args.pixel_build, args.float_build)
        key = args.key or f"reports_{args.pixel_build.name}_vs_{args.float_build.name}"
    else:
        from samfpga.hw.finn_env import boot

        boot(args.work)
        res = bench_builds(args.pixel_build, args.float_build, args.work)
        key = f"builds_{res['image_size']}"
    res["command"] = "python bench/pixel_input.py " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    _merge(args.out, key, res)
    if "all_equal" not in res:  # reports: figures only, nothing compared
        return 0
    print(f"all equal: {res['all_equal']}")
    return 0 if res["all_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
