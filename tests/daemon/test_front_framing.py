"""JSON-RPC framing and the command line as the peers have them (rust-analyzer-mcp 0.4.0's own
integration tests check the same): a real `serve` process, a real daemon, raw lines on stdio."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_env import REPO, TIMEOUT, Env, isolated_env


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def call(rid: int, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": tool, "arguments": arguments or {}}}


def talk(args: list[str], messages: list[dict[str, Any]], cwd: Path = REPO) -> list[dict[str, Any]]:
    """Write `messages` to a fresh `serve ARGS`, close stdin, and read what it writes until it exits
    (as the peer's `talk_to_server` does: every answer it owes must come before EOF)."""
    argv = [sys.executable, "-m", "scheduler.daemon._front", *args]
    lines = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    done = subprocess.run(argv, input=lines, capture_output=True, cwd=cwd, timeout=TIMEOUT * 3, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_every_request_written_before_stdin_closes_is_answered_before_the_process_exits(env: Env) -> None:
    messages: list[dict[str, Any]] = [INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"}]
    messages += [call(rid, "scheduler_status") for rid in range(1, 6)]
    answers = talk([str(env.workspace)], messages)
    assert sorted(a["id"] for a in answers) == [0, 1, 2, 3, 4, 5]
    assert all(a["result"].get("isError") is not True for a in answers), answers


def test_a_request_with_a_null_id_is_not_answered(env: Env) -> None:
    answers = talk([str(env.workspace)], [{"jsonrpc": "2.0", "id": None, "method": "tools/list"}])
    assert answers == []


def test_a_tool_call_before_initialize_is_served_and_a_later_initialize_answered(env: Env) -> None:
    answers = talk(
        [str(env.workspace)], [call(1, "scheduler_status"), INIT, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]
    )
    by_id = {a["id"]: a for a in answers}
    assert sorted(by_id) == [0, 1, 2]
    assert by_id[1]["result"]["isError"] is False
    assert by_id[1]["result"]["structuredContent"]["workspace"] == str(env.workspace)
    assert by_id[0]["result"]["serverInfo"]["name"] == "cargo-scheduler"
    assert "cargo_check" in {t["name"] for t in by_id[2]["result"]["tools"]}


def test_an_initialize_without_params_is_answered_and_the_session_works(env: Env) -> None:
    answers = talk(
        [str(env.workspace)], [{"jsonrpc": "2.0", "id": 1, "method": "initialize"}, call(2, "scheduler_status")]
    )
    by_id = {a["id"]: a for a in answers}
    assert "protocolVersion" in by_id[1]["result"]
    assert by_id[2]["result"]["isError"] is False, by_id[2]


def test_the_peers_command_line_names_the_workspace_and_its_analysis_features(env: Env) -> None:
    args = ["--features", "a,b", "--no-default-features", "--config", "check.command=clippy", "--", str(env.workspace)]
    answers = talk(args, [INIT, call(1, "scheduler_status")], cwd=env.workspace.parent)
    status = next(a for a in answers if a["id"] == 1)["result"]["structuredContent"]
    assert status["workspace"] == str(env.workspace)


def test_a_sessions_analysis_flags_reach_the_rust_analyzer_that_serves_it(env: Env) -> None:
    front = env.front("--features", "a,b", "--no-default-features", "--config", "check.command=clippy")
    front.initialize()
    lib = next(env.workspace.glob("crates/*/src/lib.rs"))
    front.call("rust_analyzer_symbols", {"file_path": str(lib)})  # starts the session's rust-analyzer
    analyzers = front.call("scheduler_status")["result"]["structuredContent"]["analyzers"]
    wanted = {"features": ["a", "b"], "no_default_features": True, "config": {"check.command": "clippy"}}
    assert [a.get("analysis") for a in analyzers] == [wanted], analyzers


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--all-features", "--features", "x"], "--features cannot be combined with --all-features"),
        (["--config", "nokey"], "--config needs a KEY=VALUE"),
        (["/one", "/two"], "unexpected extra argument '/two'"),
        (["--features"], "--features needs a value"),
        (
            ["--answers", "bogus"],
            "--answers 'bogus' is not accepted: it must be one of cargo-scheduler, rust-analyzer-mcp",
        ),
    ],
)
def test_a_command_line_the_peer_refuses_is_refused_naming_the_flag(args: list[str], problem: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.daemon._front", *args], capture_output=True, cwd=REPO, timeout=30, check=False
    )
    assert done.returncode == 1 and problem in done.stderr.decode(), done.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_sigint_sigterm_and_sighup_end_the_session_with_exit_0(env: Env, signum: int) -> None:
    front = env.front()
    front.initialize()
    assert front.call("scheduler_status")["result"]["isError"] is False
    front.proc.send_signal(signum)
    assert front.proc.wait(timeout=TIMEOUT) == 0
    assert env.status() is not None, "the daemon serves other sessions: it stays up"


def test_a_session_that_asks_for_the_peers_answers_gets_them_from_the_daemon_and_its_shutdown_line(
    env: Env,
) -> None:
    argv = [sys.executable, "-m", "scheduler.daemon._front", "--answers=rust-analyzer-mcp"]
    workspace = str(env.workspace.resolve())
    lines = b"".join(
        json.dumps(m).encode() + b"\n"
        for m in (INIT, call(1, "rust_analyzer_set_workspace", {"workspace_path": workspace}))
    )
    done = subprocess.run(argv, input=lines, capture_output=True, cwd=env.workspace, timeout=TIMEOUT * 3, check=False)
    assert done.returncode == 0, done.stderr.decode()
    answers = {a["id"]: a for a in map(json.loads, done.stdout.splitlines())}
    # The flag travels in the session's environment to the shared daemon, which answers in the peer's words.
    assert answers[1]["result"]["content"][0]["text"] == f"Workspace set to: {workspace}", answers[1]
    assert "Shutting down" in done.stderr.decode()


def test_a_session_with_our_answers_says_nothing_on_exit(env: Env) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.daemon._front"],
        input=b"",
        capture_output=True,
        cwd=env.workspace,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr
