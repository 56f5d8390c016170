"""``python -m samfpga.hw.plan --board kv260 --image-size 1024 --out DIR`` (also ``samfpga plan-hw``): plan the
encoder on a board and write DIR/report.json, report.md, report.png. With ``--engine``: the layer-sequential engine
(one shared GEMM unit, ``samfpga.hw.plan.engine``) instead of the per-layer dataflow design; DIR/report.json and
report.md."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    from samfpga.hw.plan.planner import DEFAULT_MODES, MODES, PlanConfig, plan
    from samfpga.hw.plan.report import write

    ap = argparse.ArgumentParser(prog="samfpga plan-hw", description=__doc__)
    ap.add_argument("--board", default="kv260")
    ap.add_argument("--variant", default="vit_t")
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--ddr-efficiency", type=float, default=0.7)
    ap.add_argument("--limit", type=float, default=0.85)
    ap.add_argument("--w4-units", default="", help="comma-separated units whose weights may be 4 bit")
    ap.add_argument("--token-batches", default=",".join(map(str, PlanConfig.token_batches)),
                    help="token batch sizes tried by the *_batched modes")
    ap.add_argument("--batch-output", choices=("act", "acc"), default=PlanConfig.batch_output,
                    help="what the token-batched units' output banks hold: act = values requantised inside the unit "
                    "(token_batch_mvu.sv RQ=1), acc = accumulators (RQ=0, a requantiser after the unit)")
    ap.add_argument("--strips", default=",".join(map(str, PlanConfig.strip_choices)),
                    help="column strips per unit tried (1 = whole feature maps; see samfpga.hw.plan.strips)")
    ap.add_argument("--min-strip", type=int, default=PlanConfig.min_strip,
                    help="fewest output columns of a strip")
    ap.add_argument("--modes", default=",".join(DEFAULT_MODES), help=f"unit modes searched, of {', '.join(MODES)}")
    ap.add_argument("--reserve", default="", metavar="RES=N,...",
                    help="resources set aside for what the plan does not count (FIFOs, width converters, ...), "
                         "e.g. LUT=36633,FF=20000,BRAM36=54 (PlanConfig.reserved)")
    ap.add_argument("--engine", action="store_true",
                    help="plan the layer-sequential engine (samfpga.hw.plan.engine) instead of per-layer units")
    ap.add_argument("--engine-space", default="", metavar="KEY=N,N;...",
                    help="with --engine: values searched per engine field, e.g. 'pe=32,48;simd=32' (the rest from "
                         "samfpga.hw.plan.engine.SEARCH)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.engine:
        return _engine(ap, a)
    try:
        reserved = tuple((k, float(v)) for k, v in (x.split("=") for x in a.reserve.split(",") if x))
    except ValueError:
        ap.error(f"--reserve {a.reserve!r}: expected RES=N[,RES=N...]")
    try:
        cfg = PlanConfig(board=a.board, variant=a.variant, image_size=a.image_size, ddr_efficiency=a.ddr_efficiency,
                         limit=a.limit, w4_units=tuple(x for x in a.w4_units.split(",") if x),
                         token_batches=tuple(int(x) for x in a.token_batches.split(",")),
                         modes=tuple(x for x in a.modes.split(",") if x), batch_output=a.batch_output,
                         strip_choices=tuple(int(x) for x in a.strips.split(",")), min_strip=a.min_strip,
                         reserved=reserved)
    except ValueError as e:
        ap.error(str(e))
    bad = set(cfg.modes) - set(MODES)
    if bad:
        ap.error(f"unknown modes {sorted(bad)}; known: {', '.join(MODES)}")
    p = plan(cfg)
    files = write(p, a.out)
    print(f"{a.board} {a.image_size}: {'fits' if p.fits else 'does not fit'}, {p.fps:.3f} fps "
          f"(roofline {p.roofline['fps']:.3g}); binds: {'; '.join(p.binds)}; {files['md']}")
    return 0


def parse_space(text: str) -> dict[str, tuple[int, ...]]:
    """'pe=32,48;simd=32' -> {"pe": (32, 48), "simd": (32,)} over ``SEARCH``'s fields; ValueError naming the part."""
    from samfpga.hw.plan.engine import SEARCH

    out: dict[str, tuple[int, ...]] = {}
    for part in (x.strip() for x in text.split(";") if x.strip()):
        key, sep, vals = part.partition("=")
        key = key.strip()
        if not sep or key not in SEARCH:
            raise ValueError(f"engine space {part!r}: expected KEY=N[,N...] with KEY one of {', '.join(SEARCH)}")
        try:
            nums = tuple(int(v) for v in vals.split(","))
        except ValueError:
            raise ValueError(f"engine space {part!r}: values must be integers") from None
        if not nums or min(nums) < 1:
            raise ValueError(f"engine space {part!r}: values must be integers >= 1")
        out[key] = nums
    return out


def _engine(ap, a) -> int:
    from samfpga.hw.plan.engine import SEARCH, EngineConfig, search, write

    try:
        space = {**SEARCH, **parse_space(a.engine_space)}
        cfg = EngineConfig(board=a.board, variant=a.variant, image_size=a.image_size,
                           ddr_efficiency=a.ddr_efficiency, limit=a.limit)
    except ValueError as e:
        ap.error(str(e))
    p = search(cfg, space)
    files = write(p, a.out)
    c = p.config
    print(f"{a.board} {a.image_size} engine PE {c['pe']} x SIMD {c['simd']}, batch {c['batch']}: "
          f"{'fits' if p.fits else 'does not fit'}, {p.fps:.3f} fps (roofline {p.roofline['fps']:.3g}, "
          f"{p.roofline['fraction']:.0%}); binds: {p.binding} {p.pressure[p.binding]:.2f}x; {files['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
