"""The machine a benchmark ran on: every report carries it, because a time means nothing without it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def _first_line(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def machine_info() -> dict[str, Any]:
    """Cores (and how many this process may use), CPU, memory, toolchain and load average now."""
    mem_kb = None
    cpu_model = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "cargo": _first_line(["cargo", "--version"]),
        "rustc": _first_line(["rustc", "--version"]),
        "rust_analyzer": _first_line(["rust-analyzer", "--version"]),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "loadavg_at_start": os.getloadavg(),
    }


def portable(value: Any, paths: dict[str, str]) -> Any:
    """`value` (JSON-able) with every absolute path in `paths` replaced by its portable spelling, e.g.
    {"/home/me/cargo-scheduler": "."}: a committed report names no directory of the machine it ran on
    (answers quote file URIs of the workspace). Longest paths first, so nested ones keep their tail."""
    order = sorted(paths, key=len, reverse=True)

    def fix(v: Any) -> Any:
        if isinstance(v, str):
            for old in order:
                if old in v:
                    v = v.replace(old + "/", "" if paths[old] == "." else paths[old] + "/").replace(old, paths[old])
            return v
        if isinstance(v, dict):
            return {fix(k): fix(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [fix(x) for x in v]
        return v

    return fix(value)
