"""The per-resource straight line through two synthesis points, which the engine's plan prices a unit by (fixed +
per lane / channel), and its error at a third point: one fit for every such bench (bench/*_synth.py)."""

from __future__ import annotations


def line_through(points: dict[int, dict[str, float]], lo: int, hi: int, keys) -> dict[str, list[float]]:
    """For each resource in ``keys``, [fixed, per unit] of the line through ``points[lo]`` and ``points[hi]``
    (``points``: size -> resource counts), rounded to 2 places."""
    return {k: [round(points[lo][k] - lo * (points[hi][k] - points[lo][k]) / (hi - lo), 2),
                round((points[hi][k] - points[lo][k]) / (hi - lo), 2)] for k in keys}


def line_error(model: dict[str, list[float]], points: dict[int, dict[str, float]], at: int) -> dict[str, float]:
    """The line's value minus the measured count at size ``at``, per resource of ``model``, rounded to 2 places."""
    return {k: round(a + at * b - points[at][k], 2) for k, (a, b) in model.items()}
