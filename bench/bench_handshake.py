"""Time from spawning `serve` to its `tools/list` answer, with no daemon (cold) and a running one (warm).

    python bench/bench_handshake.py --runs 10

Codex sends its first model request ~0.6-1.0 s after spawning MCP servers; tools listed later are
missing from that turn. Targets: 150 ms cold, 80 ms warm (median). Both protocol eras are measured:
`initialize_ms` / `tools_list_ms` are the handshake era as Codex speaks it (`initialize`,
`notifications/initialized`, `tools/list`), `discover_ms` / `discover_tools_list_ms` the 2026-07-28
era as Claude Code speaks it (`server/discover` first, never `initialize`, every request carrying the
`_meta` envelope). Also reports each era's first `tools/call` (cold: includes starting the daemon;
warm: a relayed call). Standard library only; each cold run gets a fresh runtime dir, so no daemon can
answer, and its daemon is stopped after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scheduler import generate_workspace  # noqa: E402
from scheduler.daemon import _control, _socket  # noqa: E402  (stdlib-only modules)

INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
ERAS = ("handshake", "modern")


def one_session(workspace: Path, env: dict[str, str], call: bool, era: str = "handshake") -> dict[str, float]:
    """Spawn the front, handshake like Codex does (era "handshake") or discover like Claude Code does
    (era "modern"), optionally make one call; times in ms from spawn (the call's from its request)."""
    argv = [sys.executable, "-m", "scheduler.daemon._front", "--workspace", str(workspace)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        proc.stdin.flush()

    def answer() -> float:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line or "result" not in json.loads(line):
            raise RuntimeError(f"bad answer: {line!r}")
        return (time.perf_counter() - started) * 1000

    times: dict[str, float] = {}
    try:
        if era == "modern":
            meta = {"_meta": ENVELOPE}
            send({"id": 1, "method": "server/discover", "params": meta})
            times["discover_ms"] = answer()
            send({"id": 2, "method": "tools/list", "params": meta})
            times["discover_tools_list_ms"] = answer()
            call_params: dict[str, Any] = {**meta, "name": "scheduler_status", "arguments": {}}
        else:
            send({"id": 1, "method": "initialize", "params": INIT})
            times["initialize_ms"] = answer()
            send({"method": "notifications/initialized"})
            send({"id": 2, "method": "tools/list"})
            times["tools_list_ms"] = answer()
            call_params = {"name": "scheduler_status", "arguments": {}}
        if call:
            mark = time.perf_counter()
            send({"id": 3, "method": "tools/call", "params": call_params})
            answer()
            times["discover_first_call_ms" if era == "modern" else "first_call_ms"] = (
                time.perf_counter() - mark
            ) * 1000
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return times


def summary(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for key in samples[0]:
        values = sorted(s[key] for s in samples)
        p90 = values[min(len(values) - 1, max(0, round(0.9 * len(values)) - 1))]
        out[key] = {"median": round(statistics.median(values), 1), "p90": round(p90, 1), "max": round(values[-1], 1)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--crates", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="csb-", dir="/tmp"))
    workspace = tmp / "ws"
    generate_workspace(workspace, crates=args.crates)
    base = dict(os.environ)
    base["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH")) if p)
    base["XDG_STATE_HOME"] = str(tmp / "state")

    def stop_daemon(env: dict[str, str]) -> None:
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            _control.stop(_socket.Paths(_socket.workspace_root(str(workspace))))
        finally:
            os.environ.clear()
            os.environ.update(saved)

    cold: list[dict[str, float]] = []
    for i in range(args.runs):
        sample: dict[str, float] = {}
        for era in ERAS:
            env = {**base, "XDG_RUNTIME_DIR": str(tmp / f"rt-cold-{era}-{i}")}
            os.makedirs(env["XDG_RUNTIME_DIR"])
            sample.update(one_session(workspace, env, call=True, era=era))
            stop_daemon(env)
        cold.append(sample)

    env = {**base, "XDG_RUNTIME_DIR": str(tmp / "rt-warm")}
    os.makedirs(env["XDG_RUNTIME_DIR"])
    one_session(workspace, env, call=True)  # starts the daemon and leaves it warm
    warm = []
    for _ in range(args.runs):
        sample = {}
        for era in ERAS:
            sample.update(one_session(workspace, env, call=True, era=era))
        warm.append(sample)
    stop_daemon(env)

    print(
        json.dumps(
            {
                "runs": args.runs,
                "python": sys.version.split()[0],
                "command": f"{sys.executable} -m scheduler.daemon._front --workspace WS",
                "cold": summary(cold),
                "warm": summary(warm),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
