"""Shared by the board-environment tests: a lock directory per test (the driver's one-process lock), and a
simulated PYNQ board for a package directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _locks(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMFPGA_LOCK_DIR", str(tmp_path / "locks"))


@dataclass
class SimPackage:
    """What SimDevice reads of a deployment package (graph, driver.json and the files it names; no bundle)."""

    root: Path
    driver: dict
    bitfile: Path | None = None

    def intgraph(self):
        from samfpga.intexec import load_intgraph

        return load_intgraph(self.root)


@pytest.fixture
def sim_overlay(tmp_path):
    """``make(root, **kwargs)``: the driver's ``AcceleratorOverlay`` on a simulated board for the package files in
    ``root`` (kwargs to the overlay: ``ddr_image``, ``runtime_words``)."""
    from samfpga.backends.pynq_driver import AcceleratorOverlay
    from samfpga.pynq_sim.device import SimDevice

    def make(root: Path, **kwargs):
        pkg = SimPackage(Path(root), json.loads((Path(root) / "driver.json").read_text()))
        dev = SimDevice(pkg, tag=f"sim-{tmp_path.name}")
        return AcceleratorOverlay(dev.bitfile, pkg.driver, device=dev, **kwargs)

    return make
