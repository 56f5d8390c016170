"""``python -m samfpga.hw.vivado --build BUILD_DIR --out DIR``: write DIR/project.tcl for the build's board and
run Vivado on it when ``vivado`` is on PATH (bitstream DIR/accel.bit + DIR/accel.hwh, which ``samfpga deploy``
picks up when copied to BUILD_DIR/finn/bitfile/). ``--tcl-only`` writes the script alone. For a rolled build
(``samfpga build-hw --roll``: BUILD_DIR/rolled/parts.json) the script is the one its ``hw_codegen`` step wrote
(``samfpga.hw.rolled.design``); Vivado's rolled.bit and rolled.hwh are copied to BUILD_DIR/rolled/, where the
driver (``samfpga.backends.rolled_driver``) takes them."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from samfpga.hw.vivado.tcl import project_tcl


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m samfpga.hw.vivado", description=__doc__)
    ap.add_argument("--build", required=True, type=Path, help="FINN build directory (samfpga build-hw --out)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--tcl-only", action="store_true")
    args = ap.parse_args(argv)
    vivado = shutil.which("vivado")
    if vivado is None and not args.tcl_only:
        print("bitstream: error: vivado is not on PATH (source Vivado's settings64.sh first); "
              "use --tcl-only to write the project script without running it", file=sys.stderr)
        return 2
    rolled = args.build / "rolled" / "parts.json"
    if rolled.is_file():
        return _rolled(args.build, rolled, args.tcl_only)
    try:
        from samfpga.hw.build.package import PackageError, driver_description, intgraph_spec, load_build

        final, parent, cfg = load_build(args.build)
        spec, _ = intgraph_spec(final, parent)
        drv = driver_description(final, cfg, spec)
    except (PackageError, ValueError) as e:
        print(f"bitstream: error: {e}", file=sys.stderr)
        return 2
    ip_repo = args.build / "finn" / "stitched_ip"
    args.out.mkdir(parents=True, exist_ok=True)
    tcl = args.out / "project.tcl"
    tcl.write_text(project_tcl(drv, str(ip_repo.resolve()), out_dir=str((args.out / "proj").resolve())))
    print(f"wrote {tcl}")
    if args.tcl_only:
        return 0
    if not ip_repo.is_dir():
        print(f"bitstream: error: {ip_repo}: no stitched IP (the build's Vivado steps have not run)", file=sys.stderr)
        return 2
    return subprocess.call([vivado, "-mode", "batch", "-source", str(tcl)], cwd=args.out)


def _rolled(build: Path, index_path: Path, tcl_only: bool) -> int:
    import json

    from samfpga.hw.vivado.module_design import run_vivado

    viv = json.loads(index_path.read_text()).get("vivado")
    if not viv:
        print(f"bitstream: error: {index_path}: no Vivado design (a rolled build made before it was generated; "
              "rebuild with samfpga build-hw --roll)", file=sys.stderr)
        return 2
    script = build / viv["script"]
    print(f"rolled build: the Vivado script is {script}")
    if tcl_only:
        return 0
    try:
        print(f"wrote {run_vivado(script, build / 'rolled', 'rolled')}")
    except RuntimeError as e:
        print(f"bitstream: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
