"""The report's picture: resource use per layer type against the board's budget, as a stacked bar chart (PNG)."""

from __future__ import annotations

from pathlib import Path

from samfpga.hw.boards import RESOURCES


def resource_chart(by_op_type: dict[str, dict[str, float]], budget: dict[str, int], limit: float, title: str,
                   path: str | Path, top: int = 8) -> Path:
    """One bar per resource (LUT, FF, BRAM36, URAM, DSP), stacked by layer type, in % of the board's budget, with
    the fit limit and 100% marked. The ``top`` layer types by their largest share get their own colour, the rest
    are "other". A resource the board lacks is drawn at 0 with "none on board" when the design uses none of it.
    ``by_op_type``: op type -> {resource: amount}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = [r for r in RESOURCES if budget.get(r, 0) > 0 or any(v.get(r, 0) > 0 for v in by_op_type.values())]

    def pct(op: str, r: str) -> float:
        v = by_op_type[op].get(r, 0.0)
        return 100.0 * v / budget[r] if budget.get(r) else (100.0 if v > 0 else 0.0)

    share = {op: max((pct(op, r) for r in res), default=0.0) for op in by_op_type}
    named = [op for op in sorted(share, key=share.get, reverse=True)[:top] if share[op] > 0]
    rest = [op for op in by_op_type if op not in named]
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=100)
    bottom = [0.0] * len(res)
    colours = plt.get_cmap("tab10")
    for k, op in enumerate(named + (["other"] if rest else [])):
        vals = [sum(pct(o, r) for o in rest) if op == "other" else pct(op, r) for r in res]
        ax.bar(res, vals, bottom=bottom, label=op, color="0.7" if op == "other" else colours(k % 10))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.axhline(100 * limit, color="black", ls="--", lw=1, label=f"fit limit {100 * limit:.0f}%")
    ax.axhline(100, color="tab:red", lw=1, label="board (100%)")
    top_y = max([*bottom, 110.0])
    for x, (r, b) in enumerate(zip(res, bottom, strict=True)):
        ax.text(x, min(b, top_y) + top_y * 0.01, "none on board" if not budget.get(r) else f"{b:.0f}%",
                ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of board budget")
    ax.set_ylim(0, top_y * 1.1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: bars stay readable
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
