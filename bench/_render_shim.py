"""The shim section of docs/benchmarks.md, from results["shim"] (`_shim.measure`)."""

from __future__ import annotations

from typing import Any

from _stats import fmt_ratio, ms

COMMAND = 'python bench/report.py --sizes "" --no-traces --no-micro --shim --append'
ORDER = ("no-op", "edit a leaf", "fix loop", "no daemon")


def crossover(workspaces: list[dict[str, Any]]) -> str:
    """Where the shim's cache hit starts beating cargo's no-op, in the generated sizes measured."""
    generated = [w for w in workspaces if w["workspace"].endswith("generated crates")]
    faster = [
        w for w in generated if w["rows"]["no-op"]["shim"]["median_ms"] < w["rows"]["no-op"]["cargo"]["median_ms"]
    ]
    if not generated:
        return ""
    if len(faster) == len(generated):
        return f"The shim's cache hit beats cargo's no-op at every size measured, from {generated[0]['workspace']} up."
    if not faster:
        return "The shim's cache hit is slower than cargo's no-op at every generated size measured."
    return f"The shim's cache hit beats cargo's no-op from {faster[0]['workspace']} up; below, it costs more."


def shim_section(shim: dict[str, Any] | None) -> list[str]:
    if not shim:
        return []
    out = [
        "## `cargo check` typed into a shell: through the shim vs the real cargo",
        "",
        f"`{COMMAND}` ({shim.get('at', '')}). The same command line, `cargo check` at the workspace root, "
        "spawned by PATH lookup and timed to its exit; the real cargo is the one the shim execs. Medians of "
        f"{shim['repeats']} samples (edits: a third of that, at least 3), variants alternating; ratio = cargo / "
        "shim (above 1: the shim is faster). `no daemon` is the shim's fall-through, installed with "
        "`--no-start`, against cargo's no-op: what the shim costs when it cannot answer.",
        "",
        "| workspace | scenario | real cargo | through the shim | cargo / shim | same exit code |",
        "|---|---|---|---|---|---|",
    ]
    for w in shim["workspaces"]:
        for name in ORDER:
            row = w["rows"].get(name)
            if row is None:
                continue
            theirs, ours = row["cargo"]["median_ms"], row["shim"]["median_ms"]
            out.append(
                f"| {w['workspace']} | {name} | {ms(theirs)} | {ms(ours)} | **{fmt_ratio(theirs / ours)}** "
                f"| {'yes' if row['agree'] else 'NO'} |"
            )
    out += ["", crossover(shim["workspaces"]), ""]
    return out
