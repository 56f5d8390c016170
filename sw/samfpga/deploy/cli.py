"""``samfpga deploy``: make a deployment package from a FINN build, or check one.

    samfpga deploy BUILD_DIR --out PKG [--bundle DIR] [--engine ENGINE_BUILD] [--check]
                                                                   (compiler environment: reads ONNX graphs)
    samfpga deploy --check PKG                                     (board environment: numpy only)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from samfpga.bundle import BundleError
from samfpga.deploy.package import DeployError, check_package


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="samfpga deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir", nargs="?", type=Path, help="FINN build directory (samfpga build-hw --out)")
    ap.add_argument("--out", type=Path, help="package directory to create")
    ap.add_argument("--bundle", type=Path, help="model bundle for the host (default: the bundled default)")
    ap.add_argument("--engine", type=Path, help="the layer-sequential engine's build of this build's graph "
                    "(samfpga build-hw --engine --out ENGINE_BUILD): the package runs on it")
    ap.add_argument("--check", nargs="?", const=True, default=False, metavar="PKG",
                    help="check a package (PKG, or the one just written with --out)")
    args = ap.parse_args(argv)
    try:
        if args.build_dir is not None:
            if args.out is None:
                raise DeployError("give --out PKG for the package to create")
            try:
                from samfpga.deploy.write import write_package
            except ImportError as e:
                raise DeployError(f"making a package needs the development environment ({e})") from None
            kw = {"bundle_dir": args.bundle} if args.bundle else {}
            if args.engine:
                kw["engine"] = args.engine
            pkg = write_package(args.build_dir, args.out, **kw)
            print(f"wrote {pkg}")
            if args.check is True:
                return 0 if check_package(pkg) else 1
            return 0
        if args.check is True or args.check is False:
            raise DeployError("give BUILD_DIR --out PKG, or --check PKG")
        return 0 if check_package(args.check) else 1
    except (DeployError, BundleError) as e:
        print(f"samfpga deploy: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
