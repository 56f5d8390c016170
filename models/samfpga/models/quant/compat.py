"""The one compatibility shim between Brevitas 0.13.0 and torch 2.13.

torch 2.13 removed the named-tensor method ``Tensor.rename``; Brevitas 0.13.0 still calls
``inp.rename(None)`` in every quant layer's forward to drop dimension names. Unnamed tensors are all this
project uses, so ``rename(None)`` is the identity. Import this module before ``brevitas.nn`` is used.
"""

from __future__ import annotations

import torch


def _rename_drop_names(self: torch.Tensor, *names: object, **rename_map: object) -> torch.Tensor:
    if rename_map or any(n is not None for n in names):
        raise NotImplementedError("named tensors are not supported by torch >= 2.13; only rename(None) is shimmed")
    return self


def install() -> None:
    """Give ``torch.Tensor`` a ``rename(None)`` that returns the tensor itself, when torch lacks it."""
    if not hasattr(torch.Tensor, "rename"):
        torch.Tensor.rename = _rename_drop_names  # type: ignore[attr-defined]


install()
