"""rust-analyzer on a real workspace, started as the daemon starts it: time from spawn to ready
(quiescent), its peak RSS (its own process and its children: proc-macro servers, build scripts),
and what it adds to disk under `target/rust-analyzer` (with `cargo.targetDir`).

    python bench/real_analyzer.py --workspace ../rust-analyzer      # prepared as bench/README.md says

The RSS is sampled from /proc every 0.5 s while it loads, so a peak shorter than that can be missed.
Output: JSON on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scheduler._exceptions import AnalyzerIndexing  # noqa: E402
from scheduler.analyzer._pool import AnalyzerPool  # noqa: E402


def _tree_rss_kb(pid: int) -> int:
    """VmRSS of `pid` and every descendant (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parent = int(fields.get("PPid", "0").strip() or 0)
        children.setdefault(parent, []).append(int(entry))
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=False)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout else 0


async def _measure(root: Path, timeout_s: float) -> dict[str, Any]:
    ra_target = root / "target" / "rust-analyzer"
    disk_before = _du(ra_target) if ra_target.exists() else 0
    peak = 0
    async with AnalyzerPool() as pool:
        start = time.perf_counter()
        analyzer = await pool.get(root)
        ready = anyio.Event()

        async def wait() -> None:
            with contextlib.suppress(AnalyzerIndexing):  # not ready within the bound: said below
                await analyzer.wait_until_ready(timeout_s)
                ready.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            with anyio.move_on_after(timeout_s):
                while not ready.is_set():
                    pid = analyzer.pid
                    if pid is not None:
                        peak = max(peak, await anyio.to_thread.run_sync(_tree_rss_kb, pid))
                    with anyio.move_on_after(0.5):
                        await ready.wait()
            tg.cancel_scope.cancel()
        ready_s = time.perf_counter() - start
        pid = analyzer.pid
        settled = await anyio.to_thread.run_sync(_tree_rss_kb, pid) if pid is not None else 0
        status = analyzer.status()
    return {
        "ready_s": round(ready_s, 1),
        "ready": ready.is_set(),
        "peak_rss_mb": round(max(peak, settled) / 1024),
        "rss_when_ready_mb": round(settled / 1024),
        "target_rust_analyzer_added_mb": round((_du(ra_target) - disk_before) / 2**20) if ra_target.exists() else 0,
        "state": status.get("state"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    root = args.workspace.resolve()
    print(json.dumps({"workspace": root.name, **anyio.run(_measure, root, args.timeout)}, indent=1))


if __name__ == "__main__":
    main()
