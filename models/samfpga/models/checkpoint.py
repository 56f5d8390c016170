"""Reading and writing checkpoints in the official SAM / TinySAM / MobileSAM layout.

Official files are plain state dicts with keys ``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``.
samfpga's own checkpoints are ``{"samfpga_config": SamConfig dict, "model": state dict}`` so they rebuild
without naming a variant.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model; the message names the file and the keys."""


def _summarise(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (since 1.6) or, legacy, a pickle (first byte 0x80, protocol >= 2)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


def read_checkpoint(path: str | Path, allow_pickle: bool = False) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Read a checkpoint file.

    Returns:
        (state dict, samfpga config dict or None for official files).

    Raises:
        CheckpointError: missing/unreadable file, or a pickled whole module without ``allow_pickle``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if not _looks_like_torch_file(path):
        raise CheckpointError(f"checkpoint {path}: not a readable torch checkpoint (neither a torch zip archive nor a pickle)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not allow_pickle:
            raise CheckpointError(
                f"checkpoint {path} is not a plain state dict but a pickled Python object (the official "
                f"W8A8 TinySAM file is a pickled nn.Module). Unpickling runs code from the file and needs the "
                f"original classes importable; pass allow_pickle=True (CLI: --allow-pickle) only if you trust it. "
                f"({str(err).splitlines()[0]})"
            ) from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err2:  # the classes it names may not be importable here
            raise CheckpointError(f"checkpoint {path}: cannot unpickle: {err2}") from None
    except Exception as err:
        raise CheckpointError(f"checkpoint {path}: not a readable torch checkpoint ({err})") from None
    if isinstance(obj, nn.Module):
        return dict(obj.state_dict()), None
    if isinstance(obj, Mapping) and "samfpga_config" in obj and "model" in obj:
        return dict(obj["model"]), dict(obj["samfpga_config"])
    if isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj), None
    raise CheckpointError(f"checkpoint {path}: expected a state dict (name -> tensor), got {type(obj).__name__}")


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "state dict") -> None:
    """Raise ``CheckpointError`` naming missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshaped = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys: {_summarise(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_summarise(unexpected)}")
        if misshaped:
            parts.append(f"{len(misshaped)} mis-shaped keys: {_summarise(misshaped, 4)}")
        raise CheckpointError(f"{source} does not fit the model architecture: " + "; ".join(parts))


def load_checkpoint_into(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "state dict", strict: bool = True
) -> None:
    """Load ``state`` into ``model`` (dtype converted to the model's), strict by default."""
    if strict:
        check_state_dict(model, state, source)
        model.load_state_dict(state, strict=True)
    else:
        own = model.state_dict()
        usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
        model.load_state_dict(usable, strict=False)


def save_checkpoint(model: nn.Module, path: str | Path, half: bool = False, config: dict | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename, so no half-written file is left).

    With ``config`` the samfpga layout is written (config travels with the weights); without, a plain
    official-layout state dict. ``half`` stores floating tensors as float16 (compact bundled models).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in model.state_dict().items()}
    payload: Any = {"samfpga_config": config, "model": state} if config is not None else state
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
