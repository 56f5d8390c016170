"""Collect the figures of ``QuantConfig.bias_on_grid`` (issue 11) into bench/results/int_bias.json, read from the
measured result files (nothing typed in): int_bias_tiny.json, int_bias_default.json, int_bias_accuracy.json, and
for comparison the float-bias default block of int_norm_default_block.json.

    python bench/int_bias_summary.py [--build DIR] [--out bench/results/int_bias.json]

``--build``: a build of the default to convert_to_hw (``python -m samfpga.hw.build_cli --board kv260 --steps
qonnx_to_finn,tidy_up,streamline,pixel_input,convert_to_hw --out DIR``): its layer census after convert_to_hw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

R = Path("bench/results")


def _tables(op_types: dict[str, int]) -> int:
    return sum(v for k, v in op_types.items() if k.startswith("Thresholding"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(R / "int_bias.json"))
    ap.add_argument("--build", help="build directory with intermediate/05_convert_to_hw.onnx")
    args = ap.parse_args(argv)
    out: dict = {"option": "QuantConfig.bias_on_grid (samfpga.models.quant.bias_grid)", "tolerance": 0}
    tiny = R / "int_bias_tiny.json"
    if tiny.is_file():
        t = json.loads(tiny.read_text())
        out["tiny_encoder_whole"] = {
            "command": t["command"],
            **{name: {"requant": v["requant"], "thresholding": v["thresholding"],
                      "mismatches_per_step": {s["step"]: s["mismatches_vs_previous"] for s in v["stages"]}}
               for name, v in t["variants"].items()}}
    d = json.loads((R / "int_bias_default.json").read_text())
    old = json.loads((R / "int_norm_default_block.json").read_text())
    hw_new, hw_old = d["block_stages"][-1]["op_types"], old["stages"][-1]["op_types"]
    out["default"] = {
        "command": d["command"],
        "integer_bias_bits_max": d["integer_bias_bits"]["max"],
        "brevitas_vs_qonnx_full_encoder": d["brevitas_vs_qonnx_full_encoder"],
        "first_block": {
            "cut": d["block_cut"],
            "mismatches_per_step": {s["step"]: s["mismatches_vs_previous"] for s in d["block_stages"]},
            "bias_on_grid": {"requant": hw_new.get("Requant", 0), "thresholding": _tables(hw_new)},
            "float_bias": {"requant": hw_old.get("Requant", 0), "thresholding": _tables(hw_old),
                           "source": "bench/results/int_norm_default_block.json (" + old["command"].strip() +
                                     ", main before this option)"}}}
    a = json.loads((R / "int_bias_accuracy.json").read_text())
    out["accuracy"] = {"command": a["command"], "benchmark": a["benchmark"],
                       **{k: {"miou": {m: round(a["results"][k]["miou"][m], 4)
                                       for m in ("center_point", "box", "clicks_3")},
                              "drop_vs_float_points": {m: a["results"][k]["miou_drop_points"][m]
                                                       for m in ("center_point", "box", "clicks_3")}}
                          for k in ("float", "int_norm", "int_norm_int_bias")}}
    if args.build:
        import collections

        import onnx

        g = onnx.load(str(Path(args.build) / "intermediate" / "05_convert_to_hw.onnx")).graph
        ops = dict(collections.Counter(n.op_type for n in g.node))
        out["default_build_kv260"] = {
            "command": "python -m samfpga.hw.build_cli --board kv260 --steps qonnx_to_finn,tidy_up,streamline,"
                       "pixel_input,convert_to_hw --out " + args.build,
            "requant": ops.get("Requant", 0), "thresholding": _tables(ops), "op_types_after_convert_to_hw": ops}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
