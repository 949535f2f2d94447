"""Helpers for tests that run real fronts and daemons: isolated dirs, a line-level stdio client, cleanup.

Every daemon a test starts lives under a private XDG_RUNTIME_DIR (short, under /tmp: unix socket paths
are limited to 108 bytes) and is stopped by the fixture's finaliser, killed if it does not stop.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scheduler import generate_workspace
from scheduler.daemon import _control, _socket

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0


@dataclass
class Env:
    workspace: Path
    runtime: Path
    fronts: list[Front] = field(default_factory=list)

    @property
    def paths(self) -> _socket.Paths:
        return _socket.Paths(_socket.workspace_root(str(self.workspace)))

    def front(self, *args: str, workspace: Path | None = None, environ: dict[str, str] | None = None) -> Front:
        """A front on `workspace` (default: the generated one), spawned in `environ` (default: ours)."""
        front = Front.spawn(workspace or self.workspace, list(args), environ)
        self.fronts.append(front)
        return front

    def status(self) -> dict[str, Any] | None:
        return _control.control(self.paths, "status")

    def wait_status(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (status := self.status()) is None:
            assert time.monotonic() < deadline, "daemon did not come up"
            time.sleep(0.02)
        return status


def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """Body of each test module's `env` fixture (a plain generator: importing fixtures trips linters)."""
    runtime = Path(tempfile.mkdtemp(prefix="cs-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CARGO_SCHEDULER_IDLE_TIMEOUT", "300")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    generate_workspace(tmp_path / "ws", crates=4)
    e = Env(workspace=tmp_path / "ws", runtime=runtime)
    try:
        yield e
    finally:
        for front in e.fronts:
            front.close()
        stop_all(runtime)
        shutil.rmtree(runtime, ignore_errors=True)


def stop_all(runtime: Path) -> None:
    """Stop every daemon whose pid file is under `runtime` (tests may start several workspaces)."""
    for pidfile in (runtime / "cargo-scheduler").glob("*.json"):
        try:
            pid = int(json.loads(pidfile.read_text())["pid"])
        except (OSError, ValueError, KeyError):
            continue
        if pid != os.getpid() and _socket.pid_alive(pid):  # an in-process test daemon writes ours
            os.kill(pid, signal.SIGTERM)
            if not wait_dead(pid, 10.0):
                os.kill(pid, signal.SIGKILL)


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _socket.pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Front:
    """A `python -m scheduler.daemon._front` subprocess spoken to in raw JSON-RPC lines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.next_id = 100
        threading.Thread(target=self._read, daemon=True).start()

    @classmethod
    def spawn(cls, workspace: Path, args: list[str], environ: dict[str, str] | None = None) -> Front:
        argv = [sys.executable, "-m", "scheduler.daemon._front", "--workspace", str(workspace), *args]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env=environ)
        return cls(proc)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        message = self.lines.get(timeout=timeout)
        assert message is not None, "front closed its stdout"
        return message

    def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        self.send({"id": rid, "method": method, **({"params": params} if params is not None else {})})
        while True:
            message = self.recv(timeout)
            if message.get("id") == rid and "method" not in message:
                return message

    def initialize(self, version: str = "2025-06-18") -> dict[str, Any]:
        reply = self.request(
            "initialize", {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        )
        self.send({"method": "notifications/initialized"})
        return reply

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments or {}})

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def analyzer_pids(env: Env) -> list[int]:
    """rust-analyzer processes the daemon started (its children whose command is rust-analyzer)."""
    daemon = int(env.wait_status()["pid"])
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == daemon and b"rust-analyzer" in cmd:
            found.append(int(name))
    return found
