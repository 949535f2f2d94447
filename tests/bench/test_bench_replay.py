"""One real replay (bench/_replay.py) against our real stdio server on a small generated workspace.

What the benchmark report relies on: every call is answered through `cargo-scheduler serve` over
the mcp SDK's stdio client, bytes are counted, the reads of a step really overlap (our tools are
annotated read-only, so the Codex-like client dispatches them together), and the trace's edits are
undone. The daemon lives in isolated dirs under a short /tmp path and is stopped afterwards.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import anyio
import pytest
from daemon_env import stop_all

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _replay_targets import replay_ours  # noqa: E402
from _traces import parse_trace  # noqa: E402

from scheduler import generate_workspace  # noqa: E402
from scheduler._exceptions import AnalyzerNotFound  # noqa: E402
from scheduler.analyzer._setup import find_rust_analyzer  # noqa: E402

pytestmark = [pytest.mark.analyzer, pytest.mark.timeout(120)]

TRACE = [
    {"trace": "short", "description": "two reads in parallel, an edit, a check"},
    {"step": 0, "call": "rust_analyzer_symbols", "arguments": {"file_path": "crates/hub/src/lib.rs"}},
    {
        "step": 0,
        "call": "rust_analyzer_hover",
        "arguments": {"at": {"file": "crates/hub/src/lib.rs", "find": "pub fn hub_value", "offset": 7}},
    },
    {"step": 1, "edit": "crates/leaf_000/src/lib.rs", "append": "\npub fn extra() -> u32 {\n    value(2)\n}\n"},
    {"step": 2, "call": "cargo_check", "arguments": {"package": "leaf_000"}},
]


def analyzer_missing() -> str | None:
    async def probe() -> None:
        await find_rust_analyzer()

    try:
        anyio.run(probe)
    except AnalyzerNotFound as exc:
        return str(exc)
    return None


def test_replay_against_our_stdio_server(tmp_path: Path) -> None:
    if (why := analyzer_missing()) is not None:
        pytest.skip(f"needs a real rust-analyzer: {why}")
    root = generate_workspace(tmp_path / "ws", 6).root
    leaf = root / "crates/leaf_000/src/lib.rs"
    before = leaf.read_bytes()
    trace = parse_trace("\n".join(json.dumps(line) for line in TRACE))
    base = Path(tempfile.mkdtemp(prefix="cs-replay-", dir="/tmp"))  # short: the daemon's socket lives here
    try:
        out = anyio.run(lambda: replay_ours(trace, root, base=base, call_timeout_s=90.0))
    finally:
        stop_all(base / "rt")
        shutil.rmtree(base, ignore_errors=True)

    assert leaf.read_bytes() == before
    handshake = out["handshake"][0]
    assert 0 < handshake["initialize_ms"] <= handshake["tools_list_ms"]
    assert {"rust_analyzer_symbols", "rust_analyzer_hover", "cargo_check"} <= set(out["read_only_tools"])
    result = out["replay"]
    calls = [c for step in result["steps"] for c in step["calls"] if "bytes" in c]
    assert len(calls) == 3 and result["errors"] == 0 and result["timeouts"] == 0, calls
    assert all(c["bytes"] > 0 for c in calls), calls
    symbols, hover = result["steps"][0]["calls"]
    assert symbols["start_ms"] < hover["end_ms"] and hover["start_ms"] < symbols["end_ms"], (symbols, hover)
    assert ('"status":"ready"' in hover["preview"] and not hover["empty"]) or hover["indexing"], hover
    check = result["steps"][2]["calls"][0]
    assert check["start_ms"] >= result["steps"][1]["calls"][0]["end_ms"]
    assert '"success":true' in check["preview"], check
