"""Shared fixtures. Tests under tests/runtime run in the board-like environment (no torch); the rest in .venv."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
