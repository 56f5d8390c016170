"""What the committed test packages' generators share: the package files of a final HW graph with the seeded
input and its expected output, and their command line (``--out DIR``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np


def write_package(out: Path, model, x: np.ndarray, y: np.ndarray, ddr: bytes | None = None) -> None:
    """``model``'s KV260 package export under ``out`` (``write_export``; ``ddr``: the token-batched layers' DDR
    image) and ``expected.npz`` holding the input ``x`` and FINN's python execution ``y`` on it."""
    from samfpga.hw.build.package import write_export

    write_export(model, None, {"board": "kv260"}, out, ddr)
    np.savez_compressed(out / "expected.npz", x=x, y=y)


def main_for(doc: str | None, write: Callable[[Path], None]) -> Callable[[list[str] | None], int]:
    """A ``main(argv)`` that parses ``--out DIR`` and calls ``write(DIR)``."""

    def main(argv: list[str] | None = None) -> int:
        ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--out", required=True, type=Path)
        write(ap.parse_args(argv).out)
        return 0

    return main
