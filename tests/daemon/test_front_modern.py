"""The stdio front in the 2026-07-28 era, driven as Claude Code drives a stdio server: `server/discover`
first, never `initialize`, every request carrying the `_meta` envelope."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_env import Env, Front, isolated_env, wait_dead

from scheduler import __version__
from scheduler.server import _toollist

VERSION = "2026-07-28"
CLAUDE = {"name": "claude-code", "version": "2.1.285"}
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientInfo": CLAUDE,
    "io.modelcontextprotocol/clientCapabilities": {"roots": {}, "elicitation": {}},
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def full_server_answers() -> dict[str, Any]:
    return anyio.run(_toollist.collect)


class ClaudeCodeLike:
    """A scripted stdio client speaking 2026-07-28 as Claude Code does: it stamps the envelope on every
    request, probes with `server/discover`, lists tools, calls them, and never sends `initialize`."""

    def __init__(self, front: Front, envelope: dict[str, Any] = ENVELOPE) -> None:
        self.front = front
        self.envelope = envelope

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.front.request(method, {**(params or {}), "_meta": self.envelope})

    def discover(self) -> dict[str, Any]:
        return self.request("server/discover")

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments or {}})


def test_server_discover_and_tools_list_are_what_the_full_server_answers(
    env: Env, full_server_answers: dict[str, Any]
) -> None:
    client = ClaudeCodeLike(env.front())
    expected = full_server_answers["modern"][VERSION]
    assert client.discover()["result"] == expected["server/discover"]
    assert client.request("tools/list")["result"] == expected["tools/list"]


def test_the_front_answers_discover_and_tools_list_with_no_daemon_reachable(
    env: Env, tmp_path: Path, full_server_answers: dict[str, Any]
) -> None:
    """With a runtime dir the daemon cannot use, only the front itself can answer."""
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    environ = {**os.environ, "XDG_RUNTIME_DIR": str(blocked)}
    client = ClaudeCodeLike(env.front(environ=environ))
    expected = full_server_answers["modern"][VERSION]
    assert client.discover()["result"] == expected["server/discover"]
    assert client.request("tools/list")["result"] == expected["tools/list"]
    refused = client.call("scheduler_status")
    assert "daemon" in refused["error"]["message"] or "runtime directory" in refused["error"]["message"]


def test_a_claude_code_session_discovers_lists_and_calls_without_initialize(env: Env) -> None:
    client = ClaudeCodeLike(env.front())
    discovered = client.discover()["result"]
    assert discovered["supportedVersions"] == [VERSION]
    assert discovered["_meta"]["io.modelcontextprotocol/serverInfo"] == {
        "name": "cargo-scheduler",
        "version": __version__,
    }
    assert len(discovered["instructions"]) < 2000
    tools = {t["name"] for t in client.request("tools/list")["result"]["tools"]}
    assert {"cargo_check", "rust_analyzer_hover", "scheduler_status"} <= tools
    status = client.call("scheduler_status")["result"]
    assert status["isError"] is False
    assert status["structuredContent"]["workspace"] == str(env.workspace)
    # Served by the daemon in the 2026-07-28 era: the era's result stamps are on a relayed answer.
    assert status["resultType"] == "complete"
    assert status["_meta"]["io.modelcontextprotocol/serverInfo"]["version"] == __version__
    check = client.call("cargo_check")["result"]
    assert check["isError"] is False, check
    assert check["structuredContent"]["success"] is True


def test_a_modern_session_survives_a_daemon_restart_in_its_era(env: Env) -> None:
    client = ClaudeCodeLike(env.front())
    client.discover()
    assert client.call("scheduler_status")["result"]["isError"] is False
    pid = env.wait_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_dead(pid, 10)
    reply = client.call("scheduler_status")
    if "error" in reply:  # it raced the daemon's death: a clear, retryable error
        assert reply["error"]["data"] == {"retry": True}
        reply = client.call("scheduler_status")
    assert reply["result"]["isError"] is False
    assert reply["result"]["resultType"] == "complete"  # the new daemon connection is modern too
    assert env.wait_status()["pid"] != pid


def _envelope(**changes: Any) -> dict[str, Any]:
    meta = dict(ENVELOPE)
    for key, value in changes.items():
        full = f"io.modelcontextprotocol/{key}"
        if value is None:
            meta.pop(full)
        else:
            meta[full] = value
    return {"_meta": meta}


HELLO = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
SESSIONS: dict[str, list[tuple[str, dict[str, Any] | None]]] = {
    "discover then tools/list": [("server/discover", _envelope()), ("tools/list", _envelope())],
    "tools/list with no discover": [("tools/list", _envelope()), ("ping", _envelope())],
    "an unsupported version": [("server/discover", _envelope(protocolVersion="2030-01-01"))],
    "no capabilities in the envelope": [("server/discover", _envelope(clientCapabilities=None))],
    "no client info": [("server/discover", _envelope(clientInfo=None)), ("tools/list", _envelope(clientInfo=None))],
    "initialize after discover": [("server/discover", _envelope()), ("initialize", HELLO)],
    "a request without the envelope after discover": [("server/discover", _envelope()), ("tools/list", {})],
    "a cursor": [("server/discover", _envelope()), ("tools/list", {**_envelope(), "cursor": "next"})],
    "an envelope on a handshake session": [
        ("initialize", HELLO),
        ("notifications/initialized", None),
        ("tools/list", _envelope()),
    ],
}


def test_every_session_opening_is_answered_as_the_full_server_answers_it(env: Env) -> None:
    """What the front answers itself and what it relays must be indistinguishable from the SDK's server:
    each session here is played against the real server in memory and against `serve`."""
    for name, session in SESSIONS.items():
        expected = [_strip(a) for a in anyio.run(_toollist._exchange, env.workspace, session)]
        front = env.front()
        got = []
        for method, params in session:
            if method.startswith("notifications/"):
                front.send({"method": method, **({"params": params} if params is not None else {})})
            else:
                got.append(_strip(front.request(method, params)))
        assert got == expected, name
        front.close()


def _strip(wire: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in wire.items() if k != "id"}
