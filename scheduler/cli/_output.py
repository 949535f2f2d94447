"""Human output for the CLI: diagnostics rendered as cargo renders them, then where they came from."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..engine._engine import Engine
from ..engine._report import CheckReport


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=1) + "\n")


class Progress:
    """A one-line count of finished units on stderr while cargo runs (only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.units = 0

    def on_message(self, msg: dict[str, Any]) -> None:
        if self.enabled and msg.get("reason") == "compiler-artifact":
            self.units += 1
            target = msg.get("target", {}).get("name", "")
            sys.stderr.write(f"\r\x1b[2K    Checking {target} ({self.units} units done)")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.units:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()


def print_report(root: Path, report: CheckReport, heading: str | None = None, elapsed_s: float | None = None) -> None:
    """Diagnostics, then one summary line, on stderr (where cargo prints them); `elapsed_s` is the
    time the user waited (the whole command's), which the report's own total (the engine's part) is not."""
    colour = sys.stderr.isatty()
    for diag in report.diagnostics:
        text = str(diag.raw.get("rendered") or diag.rendered) if colour else diag.rendered
        sys.stderr.write(text.rstrip("\n") + "\n\n")
    counts: dict[str, int] = {}
    for d in report.diagnostics:
        counts[d.level] = counts.get(d.level, 0) + 1
    ran, cached = report.ran(), report.cached()
    total = elapsed_s if elapsed_s is not None else report.timings_ms.get("total", 0.0) / 1000
    status = "ok" if report.success else "FAILED"
    label = f"{heading}: " if heading else ""
    parts = [f"{label}{status} in {total:.2f}s ({report.kind}, scope {report.scope})"]
    parts.append(f"ran {len(ran)}: {_names(ran)}" if ran else "ran nothing")
    if cached:
        parts.append(f"{len(cached)} from cache")
    if report.pending:
        parts.append(f"{len(report.pending)} pending")
    if counts:
        parts.append(", ".join(f"{n} {lvl}{'s' if n != 1 else ''}" for lvl, n in sorted(counts.items())))
    sys.stderr.write("; ".join(parts) + "\n")
    blocked = {n: r.blocked_by for n, r in report.results.items() if r.blocked_by}
    if blocked:
        sys.stderr.write(f"not compiled, a dependency failed: {_names(sorted(blocked))}\n")
    if report.error:
        sys.stderr.write(f"error: {report.error}\n")
    for note in report.notes:
        if note != report.error:
            sys.stderr.write(f"note: {note}\n")


def _names(names: list[str], most: int = 8) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


async def print_graph(engine: Engine, files: list[str] | None) -> int:
    if files:
        from ..server._paths import resolve_files

        # As the cargo_affected tool: relative to the workspace root, and never outside it.
        paths = resolve_files(files, engine.root, argument="--affected")
        print_json(await engine.affected(paths))
        return 0
    ws = await engine.workspace()
    print_json(
        {
            "root": str(ws.root),
            "target_dir": str(ws.target_dir),
            "order": ws.order(),
            "packages": {
                n: {
                    "root": str(p.root.relative_to(ws.root)) if p.root != ws.root else ".",
                    "deps": sorted(p.deps),
                    "dev_deps": sorted(p.dev_deps),
                }
                for n, p in sorted(ws.packages.items())
            },
        }
    )
    return 0
