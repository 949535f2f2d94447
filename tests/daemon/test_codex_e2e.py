"""The real Codex CLI against `cargo-scheduler serve`, through the shared codex-e2e harness.

The harness (`<repo>/../shared/codex-e2e/codex_e2e.py`) runs `codex exec` with a scripted stand-in for
the model: Codex itself spawns our server, lists its tools, applies its parallel/exclusive policy from
`readOnlyHint` and calls the tools. What this proves, on a generated 6-crate workspace:

- the tools are there on the first turn: the first model request already offers every tool of the
  shipped tool list (the stdio front answers the handshake before Codex sends that request);
- all of them under the one namespace `mcp__rust`;
- three read-only calls of one step run together in the server (three hovers while rust-analyzer is
  still loading, so they all wait inside their slots), and the mutation of the next step (`cargo_fmt`)
  runs alone: read from the server's own start/end records (`scheduler_status` `recent_events`).

Codex passes a server only a whitelisted environment (PATH, HOME, ...), so the server command is
`env XDG_RUNTIME_DIR=... XDG_STATE_HOME=... CARGO_SCHEDULER_CACHE_DIR=... cargo-scheduler serve`:
the daemon it starts lives in this test's private dirs and is stopped at the end.

Skipped when node/npm, the harness or a usable rust-analyzer is missing. The first run installs Codex
with npm into ~/.cache/codex-e2e (the harness does it; minutes), later runs take ~15-30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_env import REPO, stop_all

from scheduler import generate_workspace
from scheduler.server import _table, _toollist

HARNESS = REPO.parent / "shared" / "codex-e2e" / "codex_e2e.py"
NAMESPACE = "mcp__rust"
HUB = "crates/hub/src/lib.rs"
# (line, character, what the hover must show): hub_value, Describe, Record in the generated hub.
HOVERS = [(5, 7, "pub fn hub_value(x: u32) -> u32"), (9, 10, "pub trait Describe"), (14, 11, "pub struct Record")]


def _codex_installed() -> bool:
    return bool(os.environ.get("CODEX_BIN")) or Path("~/.cache/codex-e2e/node_modules/.bin/codex").expanduser().exists()


def _rust_analyzer_missing() -> str | None:
    from scheduler._exceptions import AnalyzerNotFound
    from scheduler.analyzer._setup import find_rust_analyzer

    try:
        anyio.run(find_rust_analyzer)
    except AnalyzerNotFound as exc:
        return str(exc)
    return None


def _serve_binary() -> str | None:
    return shutil.which("cargo-scheduler", path=str(Path(sys.executable).parent)) or shutil.which("cargo-scheduler")


pytestmark = [
    pytest.mark.codex,
    pytest.mark.analyzer,
    pytest.mark.skipif(not HARNESS.is_file(), reason=f"the codex-e2e harness is not at {HARNESS}"),
    pytest.mark.skipif(
        shutil.which("node") is None or (shutil.which("npm") is None and not _codex_installed()),
        reason="node/npm are not installed (the harness needs them to run Codex)",
    ),
    pytest.mark.skipif(_serve_binary() is None, reason="the cargo-scheduler script is not installed"),
]


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short private XDG_RUNTIME_DIR (socket paths are limited to 108 bytes); its daemons are stopped."""
    path = Path(tempfile.mkdtemp(prefix="cs-", dir="/tmp"))
    try:
        yield path
    finally:
        stop_all(path)
        shutil.rmtree(path, ignore_errors=True)


def run_harness(workspace: Path, steps: list[Any], tmp: Path, runtime: Path) -> dict[str, Any]:
    script = tmp / "steps.json"
    script.write_text(json.dumps(steps))
    server = [
        "env",
        f"XDG_RUNTIME_DIR={runtime}",
        f"XDG_STATE_HOME={tmp / 'state'}",
        f"CARGO_SCHEDULER_CACHE_DIR={tmp / 'cache'}",
        "CARGO_SCHEDULER_IDLE_TIMEOUT=300",  # a daemon the finaliser misses still goes away
        str(_serve_binary()),
        "serve",
    ]
    argv = [
        sys.executable,
        str(HARNESS),
        "--workspace",
        str(workspace),
        "--script",
        str(script),
        "--timeout",
        "120",
        "--",
        *server,
    ]
    # The first run installs Codex with npm (minutes); later runs take seconds.
    timeout = 300 if _codex_installed() else 1200
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"harness failed ({done.returncode}):\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["exit_code"] == 0, f"codex exec failed:\n{result['stderr_tail']}"
    return result


def structured(output: str) -> dict[str, Any]:
    """The JSON answer inside a Codex function-call output ("Wall time: ...\\nOutput:\\n{...}")."""
    assert "unsupported call" not in output, output
    data: dict[str, Any] = json.loads(output[output.index("{") :])
    return data


def intervals(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """seq -> {label, class, start, end} from the start/end records (end None: still open)."""
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if e["kind"] == "start":
            calls[e["seq"]] = {"label": e["label"], "class": e["class"], "start": e["at_ms"], "end": None}
        elif e["seq"] in calls:  # "end" or "cancelled"
            calls[e["seq"]]["end"] = e["at_ms"]
    return calls


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    inf = float("inf")
    return bool(
        a["start"] < (b["end"] if b["end"] is not None else inf)
        and b["start"] < (a["end"] if a["end"] is not None else inf)
    )


def test_codex_lists_every_tool_on_the_first_turn_and_runs_reads_together_and_the_mutation_alone(
    tmp_path: Path, runtime: Path
) -> None:
    missing = _rust_analyzer_missing()
    if missing:
        pytest.skip(f"rust-analyzer: {missing}")
    ws = tmp_path / "ws"
    generate_workspace(ws, crates=6)
    warm = subprocess.run(
        ["cargo", "check", "--workspace", "--quiet"], cwd=ws, capture_output=True, timeout=300, check=False
    )
    assert warm.returncode == 0, warm.stderr.decode(errors="replace")[-2000:]

    hover = [
        {
            "name": "rust_analyzer_hover",
            "namespace": NAMESPACE,
            "arguments": {"file_path": HUB, "line": line, "character": character},
        }
        for line, character, _ in HOVERS
    ]
    steps = [
        hover,
        [{"name": "cargo_fmt", "namespace": NAMESPACE, "arguments": {}}],
        [{"name": "scheduler_status", "namespace": NAMESPACE, "arguments": {"recent_events": 50}}],
    ]
    result = run_harness(ws, steps, tmp_path, runtime)
    requests = result["requests"]
    assert len(requests) == len(steps) + 1, json.dumps(requests, indent=1)[:4000]

    # (a) The first model request already offers the full tool list: tools on the first turn.
    shipped: dict[str, Any] = _table.decode(_toollist.TOOLLIST_PATH.read_bytes())
    expected = {t["name"] for t in shipped["handshake"][shipped["latest_handshake"]]["tools/list"]["tools"]}
    for version, table in [*shipped["handshake"].items(), *shipped["modern"].items()]:
        assert {t["name"] for t in table["tools/list"]["tools"]} == expected, version
    first = requests[0]["namespaces"]
    assert NAMESPACE in first, f"no {NAMESPACE} in the first request: {sorted(first)}"
    assert set(first[NAMESPACE]) == expected

    # (b) Every tool under that one namespace, in every request; no other MCP namespace, no tool elsewhere.
    for i, request in enumerate(requests):
        namespaces = request["namespaces"]
        assert set(namespaces[NAMESPACE]) == expected, i
        assert [ns for ns in namespaces if ns.startswith("mcp__")] == [NAMESPACE], i
        for ns, names in namespaces.items():
            if ns != NAMESPACE:
                assert not expected & set(names), (i, ns)

    # The calls were really answered (Codex had the tools; rust-analyzer loaded; fmt ran).
    hovers = [structured(o["output"]) for o in requests[1]["outputs"]]
    assert len(hovers) == len(HOVERS)
    for answer, (_, _, shown) in zip(hovers, HOVERS, strict=True):
        assert answer["status"] == "ready", answer
        assert shown in json.dumps(answer["result"]), answer
    (fmt,) = [structured(o["output"]) for o in requests[2]["outputs"]]
    assert fmt["success"] is True, fmt
    (status,) = [structured(o["output"]) for o in requests[3]["outputs"]]

    # (c) From the server's own start/end records: the hovers overlap, cargo_fmt overlaps nothing.
    calls = intervals(status["recent_events"])
    hover_calls = [c for c in calls.values() if c["label"] == "rust_analyzer_hover"]
    fmt_calls = [(seq, c) for seq, c in calls.items() if c["label"] == "cargo_fmt"]
    assert len(hover_calls) == 3 and len(fmt_calls) == 1, status["recent_events"]
    assert all(c["class"] == "read" and c["end"] is not None for c in hover_calls), hover_calls
    assert max(c["start"] for c in hover_calls) < min(c["end"] for c in hover_calls), hover_calls
    fmt_seq, fmt_call = fmt_calls[0]
    assert fmt_call["class"] == "mutation" and fmt_call["end"] is not None, fmt_call
    others = [c for seq, c in calls.items() if seq != fmt_seq and overlap(c, fmt_call)]
    assert not others, (fmt_call, others)
    print(
        json.dumps(
            {  # the highlights, for `pytest -s`
                "requests_at_s": [r["at"] for r in requests],
                "first_request_tools": len(first[NAMESPACE]),
                "hover_wall_s": [o["wall_s"] for o in requests[1]["outputs"]],
                "fmt_wall_s": requests[2]["outputs"][0]["wall_s"],
                "intervals_ms": {
                    seq: [c["label"], c["class"], c["start"], c["end"]] for seq, c in sorted(calls.items())
                },
                "analyzer_ready_after_s": [a.get("ready_after_s") for a in status.get("analyzers", [])],
            }
        )
    )
