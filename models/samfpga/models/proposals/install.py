"""Add a trained proposal head to a model bundle: copy it as ``proposals.onnx`` and name it in ``bundle.json``
(``files.proposals`` + ``sha256.proposals``), so ``samfpga everything --mode proposals`` finds it.

    python -m samfpga.models.proposals.install out/train/proposals/proposals.onnx sw/samfpga/assets/default

The head's input must match the bundle's embedding shape (checked on a zero embedding); files are replaced
atomically, the manifest last.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

from samfpga.bundle import load_bundle, sha256_file

HEAD_NAME = "proposals.onnx"


def install(head: Path, bundle_dir: Path) -> Path:
    """Copy ``head`` into ``bundle_dir`` and record it in its manifest; returns the installed path."""
    from samfpga.everything.proposals import HEAD_CHANNELS, ProposalHead

    head, bundle_dir = Path(head), Path(bundle_dir)
    bundle = load_bundle(bundle_dir)
    out = ProposalHead(head)(np.zeros((1, *bundle.embedding_shape), np.float32))
    if out.shape != (HEAD_CHANNELS, *bundle.embedding_shape[1:]):
        raise ValueError(f"{head}: output {out.shape} for the bundle's embedding {bundle.embedding_shape}; expected "
                         f"{(HEAD_CHANNELS, *bundle.embedding_shape[1:])}")
    target = bundle_dir / HEAD_NAME
    tmp = bundle_dir / f".{HEAD_NAME}.tmp"
    shutil.copyfile(head, tmp)
    os.replace(tmp, target)
    manifest_path = bundle_dir / "bundle.json"
    meta = json.loads(manifest_path.read_text())
    meta["files"]["proposals"] = HEAD_NAME
    meta.setdefault("sha256", {})["proposals"] = sha256_file(target)
    tmp = bundle_dir / ".bundle.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    load_bundle(bundle_dir)  # the result must load, hashes included
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="samfpga.models.proposals.install", description=__doc__.splitlines()[0])
    p.add_argument("head", type=Path)
    p.add_argument("bundle", type=Path)
    a = p.parse_args(argv)
    print(install(a.head, a.bundle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
