"""Summaries of repeated samples: a benchmark never reports a single absolute time.

Every figure is a median with its spread (min, max, p10, p90, every sample kept), and comparisons
are ratios of medians, so a reader on another machine compares shapes, not seconds.
"""

from __future__ import annotations

import statistics
from typing import Any


def summary(samples_s: list[float]) -> dict[str, Any]:
    """Median, spread and every sample, in milliseconds, of durations given in seconds."""
    ms = [s * 1000 for s in samples_s]
    out: dict[str, Any] = {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "samples_ms": [round(v, 3) for v in ms],
    }
    if len(ms) >= 2:
        q = statistics.quantiles(ms, n=10, method="inclusive")
        out["p10_ms"], out["p90_ms"] = q[0], q[-1]
    return out


def ms(v: float) -> str:
    """A duration in milliseconds, printed with the precision its size deserves."""
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    if v >= 0.1:
        return f"{v:.2f} ms"
    return f"{v * 1000:.2g} µs" if v * 1000 < 10 else f"{v * 1000:.0f} µs"


def spread(s: dict[str, Any] | None) -> str:
    """`median [min-max]`, or `-` for a measurement that was not taken."""
    if not s:
        return "-"
    return f"{ms(s['median_ms'])} [{ms(s['min_ms'])}-{ms(s['max_ms'])}]"


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return value / base


def fmt_ratio(r: float | None) -> str:
    """1/60 for a sixtieth, 1.09x for a bit slower: the form the README's tables use."""
    if r is None:
        return "-"
    if r < 0.5:
        return f"1/{1 / r:.0f}" if r > 0 else "0"
    return f"{r:.2f}x"
