"""Charts for the report, drawn with matplotlib (Agg: no display) into PNG files.

Log scales throughout: the figures span four orders of magnitude (a cached answer in 2 ms, a cold
workspace check in a minute), and on a linear axis every cached answer would be an invisible sliver.
Bars are medians; the whiskers run from the fastest to the slowest sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# One colour per variant across every chart, so a reader learns them once.
COLOURS = {
    "cargo --workspace": "#9e9e9e",
    "cargo -p": "#616161",
    "auto": "#1565c0",
    "changed": "#42a5f5",
    "workspace": "#00897b",
    "auto, cache cold": "#90caf9",
    "workspace, cache cold": "#80cbc4",
    "cargo-scheduler": "#1565c0",
    "peers": "#9e9e9e",
}


def _bars(ax: Any, groups: list[str], series: dict[str, list[dict[str, Any] | None]]) -> None:
    width = 0.8 / max(1, len(series))
    for i, (name, stats) in enumerate(series.items()):
        xs, ys, lo, hi = [], [], [], []
        for g, s in enumerate(stats):
            if not s:
                continue
            xs.append(g + (i - (len(series) - 1) / 2) * width)
            ys.append(s["median_ms"])
            lo.append(s["median_ms"] - s["min_ms"])
            hi.append(s["max_ms"] - s["median_ms"])
        ax.bar(
            xs,
            ys,
            width=width,
            label=name,
            color=COLOURS.get(name),
            yerr=[lo, hi],
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median latency, ms (log; whiskers: min-max)")
    ax.grid(axis="y", which="both", alpha=0.25)


def matrix_chart(workspace: dict[str, Any], path: Path) -> None:
    """Every scenario of one workspace, every variant side by side."""
    scenarios = workspace["scenarios"]
    variants: list[str] = []
    for s in scenarios:
        variants += [v for v in s["variants"] if v not in variants]
    series = {v: [s["variants"].get(v) for s in scenarios] for v in variants}
    fig, ax = plt.subplots(figsize=(11, 4.8))
    _bars(ax, [s["id"] for s in scenarios], series)
    ax.set_title(f"{workspace['name']} ({workspace['members']} members): plain cargo vs cargo-scheduler")
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_chart(workspaces: list[dict[str, Any]], scenario: str, variants: list[str], path: Path) -> bool:
    """One scenario's median against workspace size: how each way of asking scales (generated
    workspaces only: they share one shape, so size is the only thing that differs between them)."""
    found = [
        (w["members"], next((s for s in w["scenarios"] if s["id"] == scenario), None))
        for w in workspaces
        if w.get("name", "").startswith("generated-")
    ]
    points: list[tuple[Any, Any]] = sorted(((m, s) for m, s in found if s is not None), key=lambda p: p[0])
    if len(points) < 2:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for v in variants:
        xs = [m for m, s in points if v in s["variants"]]
        ys = [s["variants"][v]["median_ms"] for m, s in points if v in s["variants"]]
        ax.plot(xs, ys, marker="o", label=v, color=COLOURS.get(v))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("workspace members")
    ax.set_ylabel("median latency, ms")
    ax.set_title(f"{scenario}: latency by workspace size")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def traces_chart(rows: list[dict[str, Any]], path: Path) -> bool:
    """Total latency of each replayed agent session, this server against the peers."""
    if not rows:
        return False
    names = [r["label"] for r in rows]
    series = {t: [r.get(t) for r in rows] for t in ("cargo-scheduler", "peers")}
    fig, ax = plt.subplots(figsize=(8, 4.2))
    _bars(ax, names, series)
    ax.set_ylabel("session total, ms (log; whiskers: min-max)")
    ax.set_title("agent sessions replayed Codex-style: total latency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
