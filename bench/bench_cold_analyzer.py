"""The first analyzer answers on a cold workspace: a fresh server and rust-analyzer per run.

    python bench/bench_cold_analyzer.py --runs 3 --crates 6

Each run generates a workspace, starts a server on it (in memory, as the tests do) and times, in
order, `rust_analyzer_symbols` (answered from the file's parse: does not wait for the load),
`rust_analyzer_format` and `rust_analyzer_hover` (these wait for the load), then `symbols` again
(loaded). rust-analyzer-mcp 0.4.0 answers the first symbols call in under 0.1 s; before symbols stopped
waiting for the load, ours took the whole load (6-12 s for 6 crates on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcp import Client  # noqa: E402

from scheduler import ServerState, build_server  # noqa: E402
from scheduler.testing._generate import generate_workspace  # noqa: E402

HUB = "crates/hub/src/lib.rs"
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("symbols_cold", "rust_analyzer_symbols", {"file_path": HUB}),
    ("format", "rust_analyzer_format", {"file_path": HUB}),
    ("hover", "rust_analyzer_hover", {"file_path": HUB, "line": 5, "character": 8}),
    ("symbols_loaded", "rust_analyzer_symbols", {"file_path": HUB}),
]


async def one_run(crates: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ws = generate_workspace(Path(tmp) / "ws", crates)
        async with (
            ServerState(ws.root, cache_dir=Path(tmp) / "cache") as state,
            Client(build_server(ws.root, state=state)) as client,
        ):
            for label, tool, args in CALLS:
                start = time.monotonic()
                result = await client.call_tool(tool, args)
                out[label] = (time.monotonic() - start) * 1000
                data = result.structured_content or {}
                print(
                    f"  {label:15s} {out[label]:8.1f} ms  status={data.get('status')} analysis={data.get('analysis')}"
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--crates", type=int, default=6)
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        print(f"run {i + 1}")
        runs.append(anyio.run(one_run, args.crates))
    for label, _, _ in CALLS:
        values = [r[label] for r in runs]
        print(f"{label:15s} median {statistics.median(values):8.1f} ms  (min {min(values):.1f}, max {max(values):.1f})")


if __name__ == "__main__":
    main()
