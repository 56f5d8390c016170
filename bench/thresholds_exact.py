"""Why each threshold table of a build stays a table: every MultiThreshold that ``InferExactRequant`` keeps, with
its reason, its LUT (own model, from the build's report.json) and, for requantizers with a float bias
(``threshold_reference.bias_chain``), a comparison of three sets of integer thresholds per level:

- ``graph``: what the build's graph holds (FINN's float32 streamlining + ``RoundAndClipThresholds``);
- ``reference``: the breakpoints of ``fl32(acc * s_acc + b) >= T_k`` as Brevitas/QONNX evaluate it;
- ``exact``: ``ceil((T_k - b) / s_acc)`` in rational arithmetic,

and whether each set is a uniform requantizer (``fitted_requant_params``/``uniform_requant_params`` would convert
it). A what-if at the end: the same graph with each such bias on its accumulator grid
(``bias_on_accumulator_grid``, a model-side change) through ``InferExactRequant`` again.

    .venv/bin/python bench/thresholds_exact.py --build /tmp/b/kv260b [--out bench/results/thresholds_exact.json]

``--build`` is a ``samfpga build-hw`` output folder with intermediate/02_tidy_up.onnx, 03_streamline.onnx and
report.json. The graph before InferExactRequant is rebuilt from 03_streamline.onnx as ``step_convert_to_hw`` does
(integer LayerNorm/softmax, ``RoundAndClipThresholds``) without ``UseReferenceThresholds``; its effect is
reported separately (``use_reference_thresholds``: chains recorded on 02_tidy_up.onnx, as step_streamline does).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np


def _table_lut(report: dict) -> list[float]:
    return [float(x["LUT"]) for x in report["layers"] if x["op_type"].startswith("Thresholding")]


def _uniform(model, name: str, t: np.ndarray) -> bool:
    """Whether InferExactRequant's parameter search (power-of-two step, else any step checked at the breakpoints
    for every input width, as in ``InferExactRequant.apply``) accepts thresholds ``t`` for MultiThreshold
    ``name`` of ``model`` (its datatype / layout checks aside)."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.requant import (
        _X_WIDTH_MAX,
        DSP_VERSION,
        fitted_requant_params,
        input_range,
        signed_bits,
        uniform_requant_params,
    )

    n = model.get_node_from_name(name)
    op = getCustomOp(n)
    odt = DataType[op.get_nodeattr("out_dtype")]
    ob = float(op.get_nodeattr("out_bias"))
    rng = input_range(model, n.input[0])
    p = uniform_requant_params(t, ob, *rng)
    if isinstance(p, str) and p.startswith("non-uniform"):
        idt = model.get_tensor_datatype(n.input[0])
        widths = range(signed_bits(*rng), min(idt.bitwidth(), _X_WIDTH_MAX[DSP_VERSION]) + 1)
        p = fitted_requant_params(t, ob, *rng, odt.bitwidth(), odt.signed(), widths, DSP_VERSION)
    return not isinstance(p, str)


def s_in_of(tidy, name: str, chain) -> float:
    """The input scale ``s_in`` of the chain (``acc_scale = s_in * s_w``)."""
    mt = tidy.get_node_from_name(name)
    s_w = tidy.get_initializer(tidy.find_producer(tidy.find_producer(mt.input[0]).input[0]).input[1]).ravel()
    return float(chain.acc_scale[0]) / float(s_w[0])


def _copy(model):
    from qonnx.core.modelwrapper import ModelWrapper

    return ModelWrapper(copy.deepcopy(model.model))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, type=Path)
    ap.add_argument("--out", default="bench/results/thresholds_exact.json")
    args = ap.parse_args(argv)
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    from samfpga.hw.build.int_ops import IntOpsConfig, use_int_ops
    from samfpga.hw.build.requant import InferExactRequant, input_range
    from samfpga.hw.build.threshold_reference import (
        RecordBiasChains,
        UseReferenceThresholds,
        bias_chain,
        bias_on_accumulator_grid,
        exact_thresholds,
        execute_float_chain,
        reference_thresholds,
    )

    t0 = time.time()
    inter = args.build / "intermediate"
    tidy = ModelWrapper(str(inter / "02_tidy_up.onnx"))
    pre = use_int_ops(ModelWrapper(str(inter / "03_streamline.onnx")), IntOpsConfig(), notes={}, float_ops=True)
    pre = pre.transform(RoundAndClipThresholds())
    after = pre.transform(InferExactRequant())
    kept = json.loads(after.get_metadata_prop("samfpga_thresholds_kept"))
    report = json.loads((args.build / "report.json").read_text())
    luts = _table_lut(report)
    if len(luts) != len(kept):
        raise SystemExit(f"{len(kept)} tables kept here but {len(luts)} Thresholding layers in report.json: "
                         "the build's graph differs from this code's")
    rows, what_if = [], _copy(pre)
    for (name, reason), lut in zip(kept.items(), luts, strict=True):
        n = pre.get_node_from_name(name)
        g = np.sort(pre.get_initializer(n.input[1]).astype(np.float64), axis=1)
        row = {"node": name, "reason": reason, "LUT_own_model": lut, "thresholds": list(g.shape),
               "input": pre.get_tensor_datatype(n.input[0]).name, "input_range": list(input_range(pre, n.input[0]))}
        mt0 = tidy.get_node_from_name(name)
        chain = bias_chain(tidy, mt0) if mt0 is not None else None
        if chain is not None and chain.bias.size == g.shape[0]:
            ref = reference_thresholds(chain.thresholds, chain.bias, chain.acc_scale)
            ex = exact_thresholds(chain.thresholds, chain.bias, chain.acc_scale)
            lo, hi = row["input_range"]
            inside = (ref > lo) & (ref <= hi)  # clipped thresholds are equivalent: compare inside the range
            gq = np.clip(ref, lo, hi + 1)
            row["float_bias_chain"] = {
                "levels": int(g.size),
                "graph_vs_reference_levels_differing": int(np.sum(np.clip(g, lo, hi + 1) != gq)),
                "exact_vs_reference_levels_differing": int(np.sum(np.clip(ex, lo, hi + 1) != gq)),
                "exact_vs_reference_channels_differing": int(np.sum(np.any((ex != ref) & inside, axis=1))),
                "bias_finer_than_accumulator_grid_channels": int(np.sum(
                    np.mod(chain.bias.astype(np.float64), chain.acc_scale.astype(np.float64)) != 0)),
                "reference_uniform": _uniform(pre, name, np.clip(ref, lo - 1, hi + 1)),
                "exact_uniform": _uniform(pre, name, np.clip(ex, lo - 1, hi + 1)),
            }
            # QONNX's own execution of the original float nodes at the levels where graph and reference differ
            diff = np.argwhere(np.clip(g, lo, hi + 1) != gq)
            confirm = {"graph": 0, "reference": 0}
            for key, tab in (("graph", g), ("reference", ref)):
                for ch, k in diff:
                    acc = np.zeros((2, g.shape[0]))
                    acc[:, ch] = (tab[ch, k] - 1, tab[ch, k])
                    lv = execute_float_chain(tidy, name, (acc * s_in_of(tidy, name, chain)).astype(np.float32))
                    before, at = lv[:, ch] - float(getCustomOp(mt0).get_nodeattr("out_bias"))
                    confirm[key] += int(before == k and at == k + 1)
            row["float_bias_chain"]["breakpoints_confirmed_by_qonnx_execution"] = {
                "levels": int(len(diff)), **confirm}
            snapped = exact_thresholds(chain.thresholds, bias_on_accumulator_grid(chain.bias, chain.acc_scale),
                                       chain.acc_scale)
            wn = what_if.get_node_from_name(name)
            what_if.set_initializer(wn.input[1], np.clip(snapped, lo - 1, hi + 1).astype(np.float32))
        rows.append(row)
    wi = what_if.transform(InferExactRequant())
    # the build's own fix (steps.py): chains recorded before streamlining, reference breakpoints after it
    recorded = tidy.transform(RecordBiasChains()).get_metadata_prop("samfpga_bias_chains")
    pre.set_metadata_prop("samfpga_bias_chains", recorded)
    fixed = pre.transform(UseReferenceThresholds())
    fixed_after = fixed.transform(InferExactRequant())
    wi_kept = json.loads(wi.get_metadata_prop("samfpga_thresholds_kept"))
    by_reason: dict[str, dict] = {}
    for r in rows:
        key = r["reason"].split(" (")[0].split(":")[0]
        e = by_reason.setdefault(key, {"tables": 0, "LUT_own_model": 0.0})
        e["tables"] += 1
        e["LUT_own_model"] += r["LUT_own_model"]
    out = {
        "command": f"bench/thresholds_exact.py --build {args.build}",
        "build": str(args.build),
        "source": "own model LUT per Thresholding_rtl layer from the build's report.json; graphs from its "
                  "intermediate/ folder",
        "requant_layers": sum(n.op_type == "Requant" for n in after.graph.node),
        "tables_kept": len(kept),
        "tables_LUT_own_model": sum(luts),
        "by_reason": by_reason,
        "tables": rows,
        "use_reference_thresholds": {
            "chains_recorded": len(json.loads(recorded)),
            **json.loads(fixed.get_metadata_prop("samfpga_reference_thresholds")),
            "requant_layers": sum(n.op_type == "Requant" for n in fixed_after.graph.node),
            "tables_kept": len(json.loads(fixed_after.get_metadata_prop("samfpga_thresholds_kept"))),
        },
        "what_if_bias_on_accumulator_grid": {
            "tables_kept": len(wi_kept),
            "requant_layers": sum(n.op_type == "Requant" for n in wi.graph.node),
            "LUT_own_model_of_tables_that_would_convert": sum(
                r["LUT_own_model"] for r in rows if r["node"] not in wi_kept),
            "converted": sorted(set(kept) - set(wi_kept)),
        },
        "seconds": round(time.time() - t0, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "tables"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
