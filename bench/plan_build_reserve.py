"""The vit_t plans (``samfpga.hw.plan``) with what the FINN build counts and the plan does not, side by side.

    PYTHONPATH=sw:models:hw:. .venv/bin/python bench/plan_build_reserve.py [--out bench/results/plan_build_reserve]

The planner leaves out stream FIFOs, data-width converters, Requant / Thresholding layers outside the token-batched
units, padding and stream adds / duplicates / splits. The build of the same design (vit_t rolled, token-batched,
B = 16, ``--mvau-wwidth-max 128``, whole maps) counts them: their sum per resource is read from the committed
``bench/results/hw_estimates_rolled_{512_kv260,1024_kv260}_strips.json`` (first row, each board's ``op_types``; at
the build's slowest folding, so a lower bound of what a faster design needs) and set aside in the plan
(``PlanConfig.reserved``). Each size is planned on the KV260 without and with it. Writes ``<out>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what the build counts and the plan does not (op types of the build's report)
UNCOUNTED = ("StreamingFIFO_rtl (estimated)", "StreamingDataWidthConverter_rtl (estimated)", "Requant_rtl",
             "Thresholding_rtl", "FMPadding_rtl", "AddStreams_rtl", "DuplicateStreams_rtl", "StreamingSplit_rtl")
BUILDS = {512: "bench/results/hw_estimates_rolled_512_kv260_strips.json",
          1024: "bench/results/hw_estimates_rolled_1024_kv260_strips.json"}


def build_reserve(path: Path) -> tuple[str, dict[str, float]]:
    """(the build row's name, the sum of its UNCOUNTED op types per resource)."""
    from samfpga.hw.boards import RESOURCES

    boards = json.loads(path.read_text())["boards"]
    name, row = next(iter(boards.items()))
    ops = row["op_types"]
    return name, {r: round(sum(ops[k][r] for k in UNCOUNTED if k in ops), 1) for r in RESOURCES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/results/plan_build_reserve")
    args = ap.parse_args(argv)

    from samfpga.hw.plan.planner import PlanConfig, plan

    rows = []
    for size, f in BUILDS.items():
        name, reserve = build_reserve(ROOT / f)
        for reserved in ((), tuple(reserve.items())):
            p = plan(PlanConfig(board="kv260", image_size=size, reserved=reserved))
            rows.append({"image_size": size, "build": f, "build_row": name, "reserved": dict(reserved),
                         "fits": p.fits, "fps": p.fps, "totals": {k: round(v, 1) for k, v in p.totals.items()},
                         "binds": p.binds})
            print(size, "reserved" if reserved else "as planned", "fits" if p.fits else "no fit",
                  f"{p.fps:.3g} fps", p.binds, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    lines = ["# vit_t plans on the KV260 with what the build counts and the plan does not", "",
             "`PYTHONPATH=sw:models:hw:. .venv/bin/python bench/plan_build_reserve.py`. Own model (samfpga.hw.plan); "
             "the reserve is the build's sum of " + ", ".join(UNCOUNTED) + " at its slowest folding (the first "
             "row of each build file: whole maps), a lower bound.", "",
             "| size | reserve (build's) | fits | fps | LUT | BRAM36 | URAM | DSP | what binds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = r["totals"]
        res = ", ".join(f"{k} {v:,.0f}" for k, v in r["reserved"].items() if v) or "none (as planned)"
        lines.append(f"| {r['image_size']}² | {res} | {'yes' if r['fits'] else 'no'} | {r['fps']:.3g} | "
                     f"{t['LUT']:,.0f} | {t['BRAM36']:,.0f} | {t['URAM']:,.0f} | {t['DSP']:,.0f} | "
                     f"{'; '.join(r['binds'])} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
