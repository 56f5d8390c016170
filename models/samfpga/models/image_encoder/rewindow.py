"""Change the attention window sizes of a TinyViT checkpoint without retraining from scratch.

A TinyViT attention layer's only window-dependent weight is its relative-position bias table
``attention_biases`` (heads, window**2): one entry per (|dy|, |dx|) offset, numbered in first-seen order
(``tiny_vit.relative_position_index``). A smaller window uses a subset of a larger window's offsets, so its table
is the larger table's entries for those offsets: the model stays the same function inside each smaller window
except that tokens no longer see the rest of the old window. Every other weight is unchanged. The result is a
starting point for a short distillation from the original (``configs/default_student_w4.yaml``).

Why: in the FPGA dataflow every window is a buffered page (window partition, per-head q/k/v pages) and the attention
residual waits for its windows, so these buffers scale with the window area (docs/hardware.md).

    python -m samfpga.models.image_encoder.rewindow CHECKPOINT --windows 8,4,4,4 --out OUT.pt
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import torch

from ..checkpoint import read_checkpoint, save_checkpoint
from .tiny_vit import relative_position_index

# image_encoder.layers.<stage>.blocks.<block>.attn.attention_biases
_BIAS_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.blocks\.\d+\.attn\.attention_biases$")


def offset_numbering(window: int) -> dict[tuple[int, int], int]:
    """(|dy|, |dx|) -> table index of a ``window`` x ``window`` attention (the order ``relative_position_index``
    uses)."""
    idx = relative_position_index(window)
    n = window * window
    out: dict[tuple[int, int], int] = {}
    for a in range(n):
        for b in range(n):
            off = (abs(a // window - b // window), abs(a % window - b % window))
            out.setdefault(off, int(idx[a, b]))
    return out


def shrink_bias_table(table: torch.Tensor, old: int, new: int) -> torch.Tensor:
    """(heads, old**2) bias table -> (heads, new**2): the entries of the offsets a ``new`` window has.

    Raises ValueError when ``new`` > ``old`` (offsets the table never learnt) or the table's size is not old**2.
    """
    if table.ndim != 2 or table.shape[1] != old * old:
        raise ValueError(f"attention bias table of shape {tuple(table.shape)} is not (heads, {old * old}) "
                         f"for window {old}")
    if new > old:
        raise ValueError(f"window {new} is larger than the checkpoint's {old}: its offsets up to {new - 1} "
                         f"were never learnt")
    src = offset_numbering(old)
    dst = offset_numbering(new)
    sel = torch.tensor([src[off] for off in sorted(dst, key=dst.get)], dtype=torch.long)
    return table[:, sel].clone()


def rewindow(state: dict[str, torch.Tensor], config: dict, windows: list[int]
             ) -> tuple[dict[str, torch.Tensor], dict]:
    """A samfpga checkpoint's (state, config) with encoder ``window_sizes`` = ``windows``: bias tables shrunk,
    everything else shared (not copied). Stage 0 is convolutional; its entry is kept as given."""
    enc = config.get("encoder_config") or {}
    old = list(enc.get("window_sizes") or [])
    if config.get("encoder") != "tiny_vit" or not old:
        raise ValueError("rewindow needs a samfpga TinyViT checkpoint (config encoder 'tiny_vit' with window_sizes)")
    if len(windows) != len(old):
        raise ValueError(f"{len(windows)} window sizes given, the encoder has {len(old)} stages")
    out = dict(state)
    seen = 0
    for key, table in state.items():
        m = _BIAS_KEY.search(key)
        if m:
            stage = int(m.group(1))
            out[key] = shrink_bias_table(table, old[stage], windows[stage])
            seen += 1
    if not seen:
        raise ValueError("no attention_biases tables in the checkpoint")
    cfg = copy.deepcopy(config)
    cfg["encoder_config"]["window_sizes"] = [int(w) for w in windows]
    return out, cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="samfpga.models.image_encoder.rewindow", description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="samfpga checkpoint (TinyViT encoder)")
    ap.add_argument("--windows", required=True, help="comma-separated window size per stage, e.g. 8,4,4,4")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        windows = [int(w) for w in a.windows.split(",")]
        state, cfg = read_checkpoint(a.checkpoint)
        if cfg is None:
            raise ValueError(f"{a.checkpoint} has no samfpga config (an official-layout state dict)")
        state, cfg = rewindow(state, cfg, windows)
    except (OSError, ValueError) as e:
        print(f"rewindow: {e}", file=sys.stderr)
        return 2
    from ..build import SamConfig, build_from_config

    model = build_from_config(SamConfig.from_dict(cfg))
    model.load_state_dict(state, strict=True)  # the result must load into the new architecture
    half = any(v.dtype == torch.float16 for v in state.values())
    print(save_checkpoint(model, a.out, half=half, config=cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
